"""MinHash signatures of many texts at once (datasketch's values), band keys and sketches."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from .rouge import sha1_hash32

# The k-th repeat of a token in a text is the shingle (token, k): a multiset of unigrams
# (see the module doc). Its hash is the token's plus k times this odd constant.
REPEAT_STEP = 0x9E3779B9


def shingle_hash(shingle: tuple[str, int]) -> int:
    """The hash of one (token, repeat) shingle: what `MinHasher` computes, for datasketch's
    `MinHash(hashfunc=shingle_hash)` to reproduce its signatures."""
    token, repeat = shingle
    return (sha1_hash32(token.encode("utf-8")) + repeat * REPEAT_STEP) & 0xFFFFFFFF


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer: datasketch's affine32 scheme mixes every input hash with it.
    h = h ^ (h >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _repeat_numbers(ids: np.ndarray, doc_of: np.ndarray) -> np.ndarray:
    """For each token, how many times the same token came earlier in the same text."""
    key = doc_of * (int(ids.max()) + 1) + ids
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    run_start = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])))
    run_lengths = np.diff(np.append(run_start, len(key)))
    ranks = np.empty(len(key), dtype=np.int64)
    ranks[order] = np.arange(len(key)) - np.repeat(run_start, run_lengths)
    return ranks


def affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of datasketch's `MinHash(num_perm, seed).permutations` (scheme "affine32": odd
    `a`), drawn as it draws them, without importing datasketch: that takes 0.6 s (it imports
    scipy), which `generate` paid in its event loop at the first answer's duplicate check."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class MinHasher:
    """MinHash signatures of many texts at once, as datasketch computes them.

    datasketch hashes each document separately and each token in Python; here the
    shingles of a chunk of documents go through the permutations in one numpy
    expression and `minimum.reduceat` takes each document's minimum. The values are
    those of datasketch's `MinHash(num_perm, seed, hashfunc=shingle_hash)` (scheme
    "affine32"), so they go into datasketch's `MinHashLSH` and its Redis storage."""

    CHUNK_SHINGLES = 1 << 14  # x num_perm uint32 cells: small enough to stay in cache

    def __init__(self, num_perm: int, seed: int):
        self.num_perm = num_perm
        self.seed = seed
        a, b = affine32_permutations(num_perm, seed)
        self._a = a.reshape(-1, 1)
        self._b = b.reshape(-1, 1)
        self._buffer = np.empty((num_perm, self.CHUNK_SHINGLES), dtype=np.uint32)

    def signatures(self, docs: Sequence[tuple[int, ...]], token_hashes: np.ndarray) -> np.ndarray:
        """uint32 array (len(docs), num_perm) for texts given as `Vocabulary` ids; a text
        with no tokens gets the empty MinHash (all values at the maximum), as in datasketch."""
        out = np.full((len(docs), self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        ends = np.cumsum(lengths)
        start = 0
        while start < len(docs):
            # as many texts as fit in the buffer, and at least one
            limit = ends[start] - lengths[start] + self.CHUNK_SHINGLES
            stop = max(start + 1, int(np.searchsorted(ends, limit, "right")))
            self._fill(docs[start:stop], lengths[start:stop], token_hashes, out[start:stop])
            start = stop
        return out

    def _fill(self, docs, lengths: np.ndarray, token_hashes: np.ndarray, out: np.ndarray) -> None:
        total = int(lengths.sum())
        if total == 0:
            return
        ids = np.fromiter(chain.from_iterable(docs), dtype=np.int64, count=total)
        doc_of = np.repeat(np.arange(len(docs)), lengths)
        repeats = _repeat_numbers(ids, doc_of).astype(np.uint32)
        values = _fmix32(token_hashes[ids] + repeats * np.uint32(REPEAT_STEP)).reshape(1, -1)
        permuted = (
            self._buffer[:, :total] if total <= self.CHUNK_SHINGLES else np.empty((self.num_perm, total), np.uint32)
        )
        np.multiply(self._a, values, out=permuted)  # uint32 arithmetic wraps: that is the mod 2^32
        permuted += self._b
        nonempty = lengths > 0
        offsets = (np.cumsum(lengths) - lengths)[nonempty]
        out[nonempty] = np.minimum.reduceat(permuted, offsets, axis=1).T


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 array (n, bands): one 64-bit hash of each band's rows.

    Two texts share a key when their band rows are equal (as datasketch buckets them);
    a 64-bit collision would only add a candidate, which the exact ROUGE-L then rejects."""
    sig = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for k in range(rows):
        keys = (keys ^ sig[:, :, k]) * np.uint64(0x9E3779B97F4A7C15)
        keys ^= keys >> np.uint64(29)
    return keys


def sketch(signatures: np.ndarray) -> np.ndarray:
    """The low 16 bits of each MinHash value: enough to estimate Jaccard (a chance equality
    adds 1/65536 to the estimate) in an eighth of the memory of the 64-bit values."""
    return signatures.astype(np.uint16)
