"""Semantic near-duplicates: the embedding cosine in place of MinHash + ROUGE-L.

ROUGE-L sees shared words in order; "Give three tips for staying healthy." and "List 3
ways to keep fit." share none. With `method = "embedding"` in a preset's `[dedup]` table a
text is a near duplicate when the cosine of its embedding (wordllama, see
clean/embedding.py) with an earlier kept text's is above `cosine_threshold`. Everything
else is as with MinHash: exact copies first (after the same normalisation), keep-first,
the earliest such text named in `duplicate_of`, references (seed tasks) indexed unjudged.
Every pair is compared (one matrix product per batch), so the decisions are exact, and
the cost grows with the square of the kept texts (benchmarks/RESULTS.md).

    index = SemanticIndex(DedupSettings(method="embedding"))     # one at a time
    find_semantic_duplicates(texts, settings, reference)           # a whole dataset
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..embedding import embedder
from .index import EXACT_DUPLICATE, NEAR_DUPLICATE, Duplicate, KeyedIndex, first_copies, positional_duplicates
from .rouge import exact_key
from .settings import DedupSettings


class SemanticIndex(KeyedIndex):
    """`DuplicateIndex`'s interface and decisions, with the embedding cosine for near
    duplicates; in this process's memory only."""

    def __init__(self, settings: DedupSettings, namespace: str = ""):
        super().__init__(settings, namespace)
        self._exact: dict[str, str] = {}  # normalised text -> the key that had it first
        self._indexed: dict[str, str] = {}  # kept key -> its normalised text
        self._keys: list[str] = []  # kept keys in order
        self._vectors = np.empty((1024, embedder().dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._keys)

    def restore(self, kept: Sequence[tuple[str, str]], near_duplicates: Sequence[tuple[str, str]]) -> None:
        """As `DuplicateIndex.restore`: the kept texts back in the index, the near duplicates'
        exact texts claimed."""
        self._index_unchecked([(self.prefix + key, text) for key, text in kept])
        for key, text in near_duplicates:
            self._exact.setdefault(exact_key(text), self.prefix + key)

    def _index_unchecked(self, items: Sequence[tuple[str, str]]) -> None:
        vectors = embedder().embed([text for _, text in items])
        for (key, text), vector in zip(items, vectors):
            if key not in self._indexed:
                normalised = exact_key(text)
                self._exact.setdefault(normalised, key)
                self._insert(key, normalised, vector)

    def check_many(self, items: Sequence[tuple[str, str]]) -> list[Duplicate | None]:
        """`check` on each (key, text) pair in order; the cosines with the texts kept before
        the batch in one matrix product."""
        if not items:
            return []
        vectors = embedder().embed([text for _, text in items])
        before = len(self._keys)
        earlier = vectors @ self._vectors[:before].T  # (batch, kept before it)
        found = []
        for (key, text), vector, cosines in zip(items, vectors, earlier):
            key = self.prefix + key
            found.append(self._check(key, exact_key(text), vector, cosines, before))
        return found

    def _check(
        self, key: str, normalised: str, vector: np.ndarray, cosines: np.ndarray, before: int
    ) -> Duplicate | None:
        if key in self._indexed:
            if self._indexed[key] != normalised:
                raise self._reused_key(key)
            return None
        first = self._exact.setdefault(normalised, key) if self.settings.exact else key
        if first != key:
            return Duplicate(EXACT_DUPLICATE, self._public(first))
        hits = np.flatnonzero(cosines > self.settings.cosine_threshold)
        if not hits.size and len(self._keys) > before:  # texts kept earlier in this batch
            hits = before + np.flatnonzero(
                self._vectors[before : len(self._keys)] @ vector > self.settings.cosine_threshold
            )
        if hits.size:
            return Duplicate(NEAR_DUPLICATE, self._public(self._keys[hits[0]]))
        self._insert(key, normalised, vector)
        return None

    def _insert(self, key: str, normalised: str, vector: np.ndarray) -> None:
        number = len(self._keys)
        if number == len(self._vectors):
            self._vectors = np.concatenate([self._vectors, np.empty_like(self._vectors)])
        self._vectors[number] = vector
        self._keys.append(key)
        self._indexed[key] = normalised


def find_semantic_duplicates(
    texts: Sequence[str], settings: DedupSettings, reference: Sequence[str] = ()
) -> list[Duplicate | None]:
    """`SemanticIndex.check` over a whole list at once, with positions for keys (a duplicate
    of reference i has `of = -1 - i`), as `find_duplicates` does for MinHash.

    The cosines are computed a block of texts at a time against every earlier text; a text
    is then compared, in order, with the earlier ones that were kept."""
    all_texts = [*reference, *texts]
    fixed = len(reference)
    exact_of = first_copies([exact_key(text) for text in all_texts], fixed, settings.exact)
    vectors = embedder().embed(all_texts)
    kept = np.zeros(len(all_texts), dtype=bool)
    kept[:fixed] = True
    near: dict[int, int] = {}
    block = 512  # rows of cosines at a time: 512 x 55,000 floats is 110 MB
    for start in range(fixed, len(all_texts), block):
        stop = min(start + block, len(all_texts))
        above = (vectors[start:stop] @ vectors[:stop].T) > settings.cosine_threshold
        for i in range(start, stop):
            if exact_of[i] != i:
                continue
            hits = np.flatnonzero(above[i - start, :i] & kept[:i])
            if hits.size:
                near[i] = int(hits[0])
            else:
                kept[i] = True

    return positional_duplicates(fixed, exact_of, near)
