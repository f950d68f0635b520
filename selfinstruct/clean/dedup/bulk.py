"""The same keep-first decisions for a whole dataset at once (the `filter` command)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

from .index import Duplicate, first_copies, first_duplicate, positional_duplicates
from .minhash import MinHasher, band_keys, sketch
from .rouge import Vocabulary, exact_key, tokenize
from .semantic import find_semantic_duplicates
from .settings import DedupSettings


def find_duplicates(
    texts: Sequence[str], settings: DedupSettings, reference: Sequence[str] = ()
) -> list[Duplicate | None]:
    """`DuplicateIndex.check` over a whole list at once, with positions for keys.

    `reference` texts are indexed first and never judged; a duplicate of one has
    `of = -1 - its position in reference`. The decisions equal those of `check` called
    on the texts in order; the MinHashes and band buckets are computed by numpy for all
    texts together (see `keep_first`). With `method = "embedding"`, see semantic.py."""
    if settings.method == "embedding":
        return find_semantic_duplicates(texts, settings, reference)
    all_texts = [*reference, *texts]
    fixed = len(reference)
    vocabulary = Vocabulary()
    ids, exact_keys = [], []
    for text in all_texts:
        tokens = tokenize(text)
        ids.append(vocabulary.encode(tokens))
        exact_keys.append(exact_key(text, tokens))
    exact_of = first_copies(exact_keys, fixed, settings.exact)
    unique = [i for i in range(len(all_texts)) if exact_of[i] == i]  # the references first
    near = _keep_first_texts([ids[i] for i in unique], vocabulary, fixed, settings)
    near_of = {i: unique[d] for i, d in zip(unique, near) if d is not None}
    return positional_duplicates(fixed, exact_of, near_of)


def _keep_first_texts(
    ids: list[tuple[int, ...]], vocabulary: Vocabulary, fixed: int, settings: DedupSettings
) -> list[int | None]:
    hasher = MinHasher(settings.num_perm, settings.seed)
    keys = np.empty((len(ids), settings.bands), dtype=np.uint64)
    sketches = np.empty((len(ids), settings.num_perm), dtype=np.uint16)
    step = 20_000  # texts per block of 32-bit signatures, to bound their memory
    for start in range(0, len(ids), step):
        signatures = hasher.signatures(ids[start : start + step], vocabulary.hashes)
        keys[start : start + step] = band_keys(signatures, settings.bands, settings.rows)
        sketches[start : start + step] = sketch(signatures)
    return keep_first(keys, ids, sketches, fixed, settings)


def _shared_buckets(keys: np.ndarray) -> np.ndarray:
    """(n, bands) ids of the buckets that hold two or more texts, -1 where a text is alone."""
    n, bands = keys.shape
    bucket = np.empty((n, bands), dtype=np.int32)  # fewer than n * bands buckets: fits
    next_id = 0
    for t in range(bands):
        _, inverse, counts = np.unique(keys[:, t], return_inverse=True, return_counts=True)
        shared = counts > 1
        dense = np.full(len(counts), -1, dtype=np.int32)
        dense[shared] = np.arange(next_id, next_id + int(shared.sum()))
        next_id += int(shared.sum())
        bucket[:, t] = dense[inverse]
    return bucket


def keep_first(
    keys: np.ndarray, ids: list[tuple[int, ...]], sketches: np.ndarray, fixed: int, settings: DedupSettings
) -> list[int | None]:
    """The keep-first pass over band keys; the first `fixed` texts are kept unjudged.

    Only buckets holding two or more texts can propose a candidate, so a text walks just
    its shared buckets, and a text alone in all its buckets is kept without a look. The
    kept texts of a bucket form a linked list in flat int arrays (head per bucket, link
    per text and band) rather than millions of Python sets."""
    n, bands = keys.shape
    bucket = _shared_buckets(keys)
    buckets = int(bucket.max()) + 1 if n else 0
    head = array("q", [-1]) * buckets
    kept_in = array("q", [0]) * buckets
    link = array("q", [-1]) * (n * bands)
    limit = settings.max_bucket
    result: list[int | None] = [None] * n
    step = 50_000  # texts whose shared buckets are turned into Python ints at a time
    for block in range(0, n, step):
        rows, cols = np.nonzero(bucket[block : block + step] >= 0)  # grouped by text, in order
        block_cells = bucket[block + rows, cols].tolist()
        block_texts, block_cols = (rows + block).tolist(), cols.tolist()
        j = 0
        while j < len(block_texts):
            i, k = block_texts[j], j
            while k < len(block_texts) and block_texts[k] == i:
                k += 1
            mine = list(zip(block_cols[j:k], block_cells[j:k]))
            j = k
            if i >= fixed:
                earlier = set()
                for t, b in mine:
                    if kept_in[b] >= limit:
                        continue
                    other = head[b]
                    while other >= 0:
                        earlier.add(other)
                        other = link[other * bands + t]
                if earlier:
                    candidates = sorted(earlier)
                    duplicate = first_duplicate(
                        ids[i], sketches[i], candidates, lambda c: ids[candidates[c]], sketches[candidates], settings
                    )
                    if duplicate is not None:
                        result[i] = duplicate
                        continue
            for t, b in mine:
                link[i * bands + t] = head[b]
                head[b] = i
                kept_in[b] += 1
    return result
