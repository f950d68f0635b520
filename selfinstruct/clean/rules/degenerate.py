"""Degenerate text: a teacher stuck in a loop, or a record far too short or long.

The repetition ratios are data-juicer's (character_repetition_filter and
word_repetition_filter, from BigScience's data tooling), with its defaults: 10-grams,
rejected above 0.5.
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import Field

from ...records import TEXT_FIELDS
from ...tokens import count_tokens
from .base import Rule


def char_repetition_ratio(text: str, n: int) -> float:
    """Share of the character n-grams taken by the sqrt(#distinct) most frequent repeated ones."""
    total = len(text) - n + 1
    if len({text[i : i + n] for i in range(total)}) >= total:  # nothing repeats (most texts): no need to count
        return 0.0
    counts = sorted(Counter(text[i : i + n] for i in range(total)).values(), reverse=True)
    repeated = sum(1 for c in counts if c > 1)
    top = min(int(math.sqrt(len(counts))), repeated)
    return sum(counts[:top]) / sum(counts)


def word_repetition_ratio(text: str, n: int) -> float:
    """Share of the word n-grams that occur more than once."""
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(set(grams)) == len(grams):
        return 0.0
    counts = Counter(grams).values()
    total = sum(counts)
    return sum(c for c in counts if c > 1) / total if total else 0.0


class _Repetition(Rule):
    n: int = Field(10, ge=1)
    max_ratio: float = Field(0.5, gt=0, le=1)
    fields: tuple[str, ...] = TEXT_FIELDS

    def ratio(self, text: str) -> float:
        raise NotImplementedError

    def check(self, record):
        for field in self.fields:
            ratio = self.ratio(record[field])
            if ratio > self.max_ratio:
                return f"{field}: ratio {ratio:.2f} > {self.max_ratio}"
        return None


class CharRepetition(_Repetition):
    name = "char_repetition"
    reason = "text repeats itself (character n-gram repetition ratio, data-juicer)"

    def ratio(self, text: str) -> float:
        return char_repetition_ratio(text, self.n)


class WordRepetition(_Repetition):
    name = "word_repetition"
    reason = "text repeats itself (word n-gram repetition ratio, data-juicer)"

    def ratio(self, text: str) -> float:
        return word_repetition_ratio(text, self.n)


class TokenLength(Rule):
    """Bounds in tokens (tiktoken's cl100k_base, the estimate used across selfinstruct)."""

    name = "token_length"
    reason = "input or output longer or shorter than the preset's bounds (cl100k tokens)"
    min_input: int = Field(0, ge=0)
    max_input: int = Field(1024, ge=0)
    min_output: int = Field(1, ge=0)
    max_output: int = Field(2048, ge=0)

    def check(self, record):
        for field, low, high in (
            ("input", self.min_input, self.max_input),
            ("output", self.min_output, self.max_output),
        ):
            text = record[field]
            # byte-level BPE gives at least one token per text and at most one per byte:
            # within those bounds there is nothing to count
            if low <= min(1, len(text)) and len(text.encode()) <= high:
                continue
            n = count_tokens(text)
            if not low <= n <= high:
                return f"{field} has {n} tokens, outside [{low}, {high}]"
        return None
