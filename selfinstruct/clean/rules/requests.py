"""Is the instruction a request at all?

The embedded teacher's commonest defect is an "instruction" that states something
("It is possible to create a new travel date with the input time range of 24 days.")
instead of asking for anything. Human-written instructions ask in a handful of ways,
and the rule accepts any of them anywhere in the instruction, so that a statement
followed by a real question or order passes:

- a question mark;
- a clause that opens with an imperative verb (filters/task_verbs.txt), "please" or
  "let's": "Write...", "Given a list, sort it", "If a pen costs $2, find...", "... and
  then answer"; an "-ing" form opening the instruction names a task ("Converting 85 F
  to Celsius.");
- a clause that opens like a question without its mark ("If he has 32, how many...");
- a request in other words: "can you", "I want you to", "you need to", "your task is",
  "it would be great if", "the tone should be changed";
- a line that ends with a colon (a text to continue, "Here are some examples:") or a
  label at the start ("Question: ...").
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, PrivateAttr, field_validator

from .base import Rule, filter_file, read_lines

# Where a clause starts: the text's start, after a sentence end, a comma, a dash, or a
# joining word ("... and then answer", "Solving the equation and find X"); its first word
# after quotes, a list number and fillers ("then", "now", "please").
_CLAUSE = re.compile(
    r"(?:^|[.!?;:,\n]|\s[-\u2013\u2014]|\b(?:and|or|but|so)\b)[\s\"'(\[*]*(?:\d+[.)]\s*)?"
    r"(?:(?:then|also|now|just|simply|finally|first|next|please|kindly)\s+)*([A-Za-z][\w'-]*)",
    re.IGNORECASE,
)
# A question without its mark: a sentence opening with "what", "how"...; after a comma, only
# a wh-word with a verb ("If he has 32, how many..."; not "..., which is", "..., where x").
_QUESTION_OPENING = re.compile(
    r"(?:^|[.!?;:\n]\s*)(?:what|which|how|who|whom|whose|why)\b"
    r"|(?:^|[.!?;:,\n]\s*)(?:how\s+(?:to|many|much|long|far|old|often|would|do|does|did|is|are|can|could|should|will)"
    r"|(?:what|which|who|whom|whose|why|where)\s+(?:is|are|was|were|do|does|did|will|would|can|could|should|has|have|had)"
    r"|(?:what|which)\s+(?:kinds?|types?|sorts?)\s+of"
    r"|(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have)\s+(?:the|this|that|these|those|it|there|you|he|she|they|we|i|a|an|any|my|your)\b)",
    re.IGNORECASE,
)
_REQUEST_PHRASE = re.compile(
    r"\b(?:please|kindly|let's|let\s+us"
    r"|(?:can|could|would|will)\s+you"
    r"|i\s+(?:want|need|would\s+like|'d\s+like)\s+(?:you|a|an|some|help|ideas|advice|suggestions)\b"
    r"|i\s+(?:would|'d)\s+appreciate"
    r"|(?:help|show|tell|teach|give)\s+me"
    r"|you\s+(?:should|must|need|have\s+to|will\s+(?:need|have)\s+to|will\s+be\s+\w+(?:ed|en)\b|are\s+(?:supposed|to))"
    r"|(?:is|are)\s+(?:asked|required|requested|expected)\s+to\b|help\s+is\s+needed"
    r"|we\s+(?:need|want|would\s+like)"
    r"|(?:your|the)\s+(?:task|job|goal|challenge)\s+is"
    r"|(?:would|will)\s+be\s+(?:great|helpful|nice|appreciated|greatly\s+appreciated)"
    r"|if\s+you\s+(?:could|would|can)"
    r"|(?:should|must|needs?\s+to|has\s+to|have\s+to)\s+be\s+\w+(?:ed|en|ne|wn)\b)",
    re.IGNORECASE,
)
_LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")
_INTRODUCES = re.compile(r":[ \t]*(?:\n|$)")  # a line ending with a colon: "Here are some examples:"
_LABEL = re.compile(
    r"^\s*(?:question|task|instruction|instructions|prompt|exercise|problem|q)\s*\d*\s*:", re.IGNORECASE
)


def _gerunds(verb: str) -> set[str]:
    """ "solve" -> {"solving"}; "plan" -> {"planing", "planning"} (whether English doubles the
    last consonant is not worth deciding: the wrong form is never a word)."""
    if verb.endswith("e") and not verb.endswith("ee"):
        return {verb[:-1] + "ing"}
    return {verb + "ing", verb + verb[-1] + "ing"}


class NotATask(Rule):
    name = "not_a_task"
    reason = (
        "instruction states something instead of asking: no question, imperative, 'please', 'can you' or trailing colon"
    )
    verbs_file: Path = Field(Path("task_verbs.txt"), validate_default=True)
    _verbs: frozenset[str] = PrivateAttr()
    _gerunds: frozenset[str] = PrivateAttr()

    _resolve = field_validator("verbs_file")(filter_file)

    def model_post_init(self, _context) -> None:
        self._verbs = frozenset(verb.lower() for verb in read_lines(self.verbs_file))
        self._gerunds = frozenset(form for verb in self._verbs for form in _gerunds(verb))

    def check(self, record):
        text = record["instruction"].strip()
        if "?" in text:
            return None
        words = _CLAUSE.finditer(text)
        first = next(words, None)
        if first is None:
            return "no words"
        first = first.group(1).lower()
        if first in self._verbs or first in self._gerunds:  # most instructions: decided here
            return None
        if _INTRODUCES.search(text) or _LABEL.match(text):
            return None
        if any(match.group(1).lower() in self._verbs and not self._coordinated(match) for match in words):
            return None
        if _QUESTION_OPENING.search(text) or _REQUEST_PHRASE.search(text):
            return None
        return f"no request in {text[:60]!r}"

    def _coordinated(self, clause: re.Match) -> bool:
        """A verb joined to the verb before it ("I am ready to assist and improve") continues
        a statement; after anything else ("Solving the equation and find X") it opens a clause."""
        before = _LAST_WORD.search(clause.string, 0, clause.start())
        return clause.group(0).lstrip()[:1].isalpha() and before is not None and before.group(1).lower() in self._verbs
