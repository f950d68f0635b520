"""Stanford Alpaca's own rules (generate_instruction.py, post_process_gpt3_response).

They look at the instruction only. With the defaults, these reproduce Alpaca's decisions
exactly: keep 4-150 words, no blacklisted whole word, no "Write a program" prefix, no
leading punctuation, no non-ASCII first character.
"""

from __future__ import annotations

import re
import string

from pydantic import PrivateAttr

from .artefacts import ascii_pattern, ascii_search
from .base import Rule

ALPACA_BLACKLIST = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)


class InstructionWords(Rule):
    name = "instruction_words"
    reason = "instruction too short or too long (whitespace-separated words)"
    min: int = 4
    max: int = 150

    def check(self, record):
        n = len(record["instruction"].split())
        if n < self.min:
            return f"{n} words < {self.min}"
        if n > self.max:
            return f"{n} words > {self.max}"
        return None


class Blacklist(Rule):
    """Tasks a text-only model cannot do (draw, plot, listen to audio...)."""

    name = "blacklist"
    reason = "instruction contains a blacklisted whole word"
    words: tuple[str, ...] = ALPACA_BLACKLIST
    _pattern: re.Pattern = PrivateAttr()
    _ascii_pattern: re.Pattern | None = PrivateAttr()

    def model_post_init(self, _context) -> None:
        alternatives = "|".join(re.escape(w) for w in self.words)
        self._pattern = re.compile(rf"\b({alternatives})\b", re.IGNORECASE)
        self._ascii_pattern = ascii_pattern(rf"\b({alternatives.lower()})\b")

    def check(self, record):
        instruction = record["instruction"]
        match = ascii_search(self._pattern, self._ascii_pattern, instruction)
        return f"contains '{instruction[match.start() : match.end()]}'" if match else None


class WriteAProgram(Rule):
    """Alpaca found teachers prefix many tasks with "Write a program", making them ambiguous."""

    name = "write_a_program"
    reason = "instruction starts with 'Write a program'"
    prefix: str = "Write a program"

    def check(self, record):
        return "starts with the prefix" if record["instruction"].startswith(self.prefix) else None


class LeadingPunctuation(Rule):
    name = "leading_punctuation"
    reason = "instruction starts with punctuation"

    def check(self, record):
        first = record["instruction"][:1]
        return f"starts with {first!r}" if first and first in string.punctuation else None


class NonAsciiStart(Rule):
    name = "non_ascii_start"
    reason = "instruction starts with a non-ASCII character"

    def check(self, record):
        first = record["instruction"][:1]
        return f"starts with {first!r}" if first and not first.isascii() else None
