"""Teacher artefacts: refusals and the teacher talking about itself.

"As an AI language model, I cannot..." teaches a student to refuse and to claim it is
someone else's model. The phrases live in a plain text file (filters/teacher_phrases.txt,
one per line) so users can add their own teacher's habits without touching code.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, PrivateAttr, field_validator

from .base import Rule, filter_file, read_lines

# Curly quotes and runs of spaces should not hide a phrase.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def phrase_trie(phrases: list[list[str]]) -> str:
    r"""One regex for many phrases (lists of words), shared first words merged, so the regex
    engine tries one branch per position instead of every phrase (4x faster on 62 phrases).

    phrase_trie([["as", "an", "ai"], ["as", "a", "model"]]) -> r"(?:as(?:\s+(?:a(?:\s+(?:model))|an(?:\s+(?:ai)))))"
    """
    trie: dict = {}
    for words in phrases:
        node = trie
        for word in words:
            node = node.setdefault(word, {})
        node[""] = {}  # a phrase ends here

    def branch(node: dict) -> str:
        alternatives = []
        for word, child in sorted(node.items()):
            if not word:
                continue
            rest = r"(?:\s+" + branch(child) + ")" + ("?" if "" in child else "") if set(child) - {""} else ""
            alternatives.append(re.escape(word) + rest)
        return "(?:" + "|".join(alternatives) + ")"

    return branch(trie)


def ascii_pattern(pattern: str) -> re.Pattern | None:
    """`pattern` (lowercase) compiled case-sensitive, for `ascii_search`; None if it is not ASCII."""
    return re.compile(pattern) if pattern.isascii() else None


def ascii_search(ignore_case: re.Pattern, ascii_pattern: re.Pattern | None, text: str) -> re.Match | None:
    """`ignore_case.search(text)` (a lowercase pattern compiled with IGNORECASE), at the same place.

    On an ASCII text, with an ASCII pattern, two letters match ignoring case exactly when their
    lowercase forms are equal, and lowercasing keeps every offset: `ascii_pattern` searching the
    lowercased text finds the same span, about 2.5x faster than IGNORECASE on the text. (Some
    other letters match ASCII ones ignoring case: the Kelvin sign 'K' matches 'k'; hence ASCII
    patterns only.) The match is on the lowercased text: take its span from `text`."""
    if ascii_pattern is not None and text.isascii():
        return ascii_pattern.search(text.lower())
    return ignore_case.search(text)


class TeacherArtefacts(Rule):
    name = "teacher_artefact"
    reason = "a refusal or the teacher speaking of itself ('As an AI language model', 'trained by OpenAI')"
    phrases_file: Path = Field(Path("teacher_phrases.txt"), validate_default=True)
    fields: tuple[str, ...] = ("instruction", "input", "output")
    _pattern: re.Pattern = PrivateAttr()
    _ascii_pattern: re.Pattern | None = PrivateAttr()  # for lowercased ASCII texts (see `ascii_search`)

    _resolve = field_validator("phrases_file")(filter_file)

    def model_post_init(self, _context) -> None:
        phrases = [phrase.translate(_APOSTROPHES).lower().split() for phrase in read_lines(self.phrases_file)]
        pattern = r"\b" + phrase_trie(phrases) + r"\b"
        self._pattern = re.compile(pattern, re.IGNORECASE)
        self._ascii_pattern = ascii_pattern(pattern)

    def check(self, record):
        # one search over all fields: NUL is neither a word nor a space, so no phrase spans two
        text = "\0".join([record[field] for field in self.fields])
        if not text.isascii():
            text = text.translate(_APOSTROPHES)  # an ASCII text has no curly quote to straighten
        match = ascii_search(self._pattern, self._ascii_pattern, text)
        if match is None:
            return None
        field = self.fields[text[: match.start()].count("\0")]
        return f"{field} says {text[match.start() : match.end()]!r}"
