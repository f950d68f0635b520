"""Degenerate text: a teacher stuck in a loop, or a record far too short or long.

The repetition ratios are data-juicer's (character_repetition_filter and
word_repetition_filter, from BigScience's data tooling), with its defaults: 10-grams,
rejected above 0.5. Most texts repeat too few character 10-grams to come near the limit:
`char_repetition_bounds` clears them for a whole batch in one numpy pass, and only the others
are counted exactly.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
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
    if n > 1 and len(set(zip(words, words[1:]))) == len(words) - 1:
        return 0.0  # no two words repeat together, so no n do (nine texts in ten): nothing to count
    grams = list(zip(*(words[i:] for i in range(n))))  # each run of n words, as a tuple
    if len(set(grams)) == len(grams):
        return 0.0
    counts = Counter(grams).values()
    total = sum(counts)
    return sum(c for c in counts if c > 1) / total if total else 0.0


_HASH_BASE = np.uint64(0x100000001B3)  # FNV's 64-bit prime: odd, so every code point moves the hash
_TEXT_SALT = np.uint64(0x9E3779B97F4A7C15)


def char_repetition_bounds(texts: Sequence[str], n: int) -> np.ndarray:
    """An upper bound of `char_repetition_ratio(text, n)` for each text, for a batch in one
    numpy pass (most texts need no exact count). The k = min(isqrt(D), repeated) most frequent
    of the D distinct n-grams hold at most T - (D - k) of the T n-grams (every other one
    occurs at least once), so the ratio is at most (T - D + isqrt(D)) / T, which only grows
    as D shrinks. D is bounded below by the number of distinct 64-bit polynomial hashes of
    the n-grams (code points, mod 2^64): equal n-grams hash alike, and a chance collision only
    makes the bound looser."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    windows = np.maximum(lengths - n + 1, 0)
    bounds = np.zeros(len(texts))
    total = int(windows.sum())
    if total == 0:
        return bounds
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    powers = _HASH_BASE ** np.arange(n - 1, -1, -1, dtype=np.uint64)  # uint64 arithmetic wraps: mod 2^64
    hashes = np.lib.stride_tricks.sliding_window_view(codes, n) @ powers
    # the windows that lie inside one text, each salted with its text's number
    text_of = np.repeat(np.arange(len(texts)), windows)
    starts = np.arange(total) + np.repeat(np.cumsum(lengths) - lengths - (np.cumsum(windows) - windows), windows)
    keys = hashes[starts] ^ (text_of.astype(np.uint64) * _TEXT_SALT)
    order = np.argsort(keys)
    ordered, ordered_text = keys[order], text_of[order]
    new = np.ones(total, dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]) | (ordered_text[1:] != ordered_text[:-1])
    distinct = np.bincount(ordered_text[new], minlength=len(texts))
    some = windows > 0
    bounds[some] = (windows[some] - distinct[some] + np.floor(np.sqrt(distinct[some]))) / windows[some]
    return bounds


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

    def check_many(self, records: Sequence[dict]) -> list[str | None]:
        """`check` on the records where the bound of some field's ratio exceeds `max_ratio`:
        the others pass, as `check` would pass them."""
        bounds = char_repetition_bounds([record[field] for field in self.fields for record in records], self.n)
        suspect = (bounds.reshape(len(self.fields), len(records)) > self.max_ratio).any(axis=0).tolist()
        return [self.check(record) if flag else None for record, flag in zip(records, suspect)]


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
