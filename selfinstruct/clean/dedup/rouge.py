"""Texts as rouge-score tokens, exact keys, and ROUGE-L as Alpaca computes it, fast."""

from __future__ import annotations

import hashlib
import re
import struct
from array import array
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import LCSseq

_TOKEN = re.compile(r"[a-z0-9]+")


def sha1_hash32(data: bytes) -> int:
    """datasketch.hashfunc.sha1_hash32, without importing datasketch (0.6 s, with scipy) in a
    process that never builds an LSH index (a resumed run that is already finished)."""
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def tokenize(text: str) -> list[str]:
    """rouge-score's tokenizer without stemming (as Alpaca uses it): lowercase alphanumeric runs."""
    return _TOKEN.findall(text.lower())


def exact_key(text: str, tokens: list[str] | None = None) -> str:
    """What two exact duplicates have in common: the same tokens, i.e. ROUGE-L 1.0, so an
    exact duplicate is always one for Alpaca too. A text without any [a-z0-9] token (which
    Alpaca never compares) falls back to its casefolded words."""
    tokens = tokenize(text) if tokens is None else tokens
    return " ".join(tokens) if tokens else " ".join(text.casefold().split())


def rouge_l(candidate: Sequence, reference: Sequence) -> float:
    """ROUGE-L F-measure of two token sequences, the same float as rouge-score's `_score_lcs`.

    Any sequences of hashables work (token lists, or the faster `Vocabulary` id tuples);
    the LCS comes from rapidfuzz's bit-parallel C++ in place of a Python DP table.

    rouge_l("a b c d".split(), "a c d e".split()) -> 0.75
    """
    return _fmeasure(LCSseq.similarity(candidate, reference), len(candidate), len(reference))


def _fmeasure(lcs: int, m: int, n: int) -> float:
    if lcs == 0:
        return 0.0
    precision, recall = lcs / n, lcs / m
    return 2 * precision * recall / (precision + recall)


def exceeds(candidate: Sequence, reference: Sequence, threshold: float) -> bool:
    """rouge_l(candidate, reference) > threshold, skipping what cannot reach it.

    F = 2*LCS/(m+n) <= 2*min(m,n)/(m+n) rules out pairs of unequal lengths for free, and
    rapidfuzz stops early once the LCS cannot reach threshold*(m+n)/2."""
    m, n = len(candidate), len(reference)
    # the margin keeps pairs exactly at the bound: rouge-score's float for an exact 0.7 can
    # come out as 0.7000000000000001, and Alpaca then counts the pair as a duplicate
    if 2 * min(m, n) < threshold * (m + n) * (1 - 1e-9):
        return False
    lcs = LCSseq.similarity(candidate, reference, score_cutoff=int(threshold * (m + n) / 2 * (1 - 1e-9)))
    return _fmeasure(lcs, m, n) > threshold


class Vocabulary:
    """Token ids and token hashes for one dedup run.

    A text becomes a tuple of small ints, one per token: rapidfuzz compares those about
    2.5x faster than token lists, and a tuple holds no token strings of its own. Each
    new token is hashed once (datasketch's SHA-1 hash) for the MinHashes. Ids are local
    to one vocabulary: only tuples of the same one may be compared."""

    def __init__(self):
        self._ids: dict[str, int] = {}
        self._hashes = array("I")

    def encode(self, tokens: list[str]) -> tuple[int, ...]:
        ids = self._ids
        try:
            return tuple(map(ids.__getitem__, tokens))
        except KeyError:
            for token in set(tokens).difference(ids):
                ids[token] = len(ids)
                self._hashes.append(sha1_hash32(token.encode("utf-8")))
            return tuple(map(ids.__getitem__, tokens))

    @property
    def hashes(self) -> np.ndarray:
        """uint32 hash of each token id."""
        return np.frombuffer(self._hashes, dtype=np.uint32)
