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


class TeacherArtefacts(Rule):
    name = "teacher_artefact"
    reason = "a refusal or the teacher speaking of itself ('As an AI language model', 'trained by OpenAI')"
    phrases_file: Path = Field(Path("teacher_phrases.txt"), validate_default=True)
    fields: tuple[str, ...] = ("instruction", "input", "output")
    _pattern: re.Pattern = PrivateAttr()

    _resolve = field_validator("phrases_file")(filter_file)

    def model_post_init(self, _context) -> None:
        phrases = [phrase.translate(_APOSTROPHES).lower().split() for phrase in read_lines(self.phrases_file)]
        self._pattern = re.compile(r"\b" + phrase_trie(phrases) + r"\b", re.IGNORECASE)

    def check(self, record):
        # one search over all fields: NUL is neither a word nor a space, so no phrase spans two
        texts = [record[field].translate(_APOSTROPHES) for field in self.fields]
        match = self._pattern.search("\0".join(texts))
        if match is None:
            return None
        field = self.fields["\0".join(texts)[: match.start()].count("\0")]
        return f"{field} says {match.group(0)!r}"
