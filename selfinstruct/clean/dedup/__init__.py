"""Duplicate removal: exact copies, then near-duplicates decided like Alpaca's ROUGE-L > 0.7.

Alpaca drops an instruction whose ROUGE-L F-measure against any earlier kept instruction
is above 0.7, which costs O(N^2) LCS computations. Here MinHash LSH proposes the few
earlier texts that could be that similar and the exact ROUGE-L decides, so every
duplicate found is one Alpaca would find too; LSH can only miss some (measured in
benchmarks/RESULTS.md).

Why the shingles are *multiset* unigrams (the second "the" of a text is ("the", 1)):
ROUGE-L F = 2*LCS/(m+n) > 0.7 needs an LCS of more than 0.35*(m+n) tokens, and the LCS
is at most the multiset overlap, so the multiset Jaccard of a ROUGE-L duplicate pair is
above 0.35/0.65 = 0.54. 32 bands of 4 rows propose a pair at Jaccard 0.54 with
probability 0.94 and at 0.7 with 0.9995, a pair at 0.2 with 0.05.

Three things keep the exact check cheap: a pair whose lengths rule out F > 0.7 is
skipped; a candidate whose MinHash-estimated Jaccard is far below 0.54 is skipped
(`min_jaccard`); and a band bucket already holding `max_bucket` kept texts stops
proposing candidates. Such buckets form on short texts whose band minima all fall on
stopwords ("the", "a", "of"): in a million short instructions a few hundred of them
would otherwise propose most of the candidates, almost none of them duplicates.

`method = "embedding"` in the settings replaces MinHash + ROUGE-L with the cosine of
sentence embeddings (semantic.py: paraphrases that share few words), with the same
keep-first decisions; `open_index` gives the index the settings ask for.

Two ways to run the same decisions:
- `DuplicateIndex.check`: one text at a time (the bootstrap loop; several workers
  sharing an index in Redis), on datasketch's `MinHashLSH` and its storage;
- `find_duplicates`: a whole dataset at once, with the MinHashes and band buckets of
  all texts computed by numpy (the `filter` command).

    index = DuplicateIndex(DedupSettings())
    index.check("a", "Give three tips for staying healthy.")        -> None (kept)
    index.check("b", "Give three tips for staying healthy!")        -> Duplicate("exact_duplicate", "a")
    index.check("c", "Give me three tips for staying healthy.")     -> Duplicate("near_duplicate", "a")
"""

from ...errors import SettingError
from .bulk import find_duplicates
from .index import EXACT_DUPLICATE, NEAR_DUPLICATE, Duplicate, DuplicateIndex
from .rouge import exact_key, rouge_l, tokenize
from .semantic import SemanticIndex, find_semantic_duplicates
from .settings import DedupSettings
from .store import IndexStore, MemoryStore, open_store


def check_storage(settings: DedupSettings, lsh_storage: str | None) -> None:
    if settings.method == "embedding" and lsh_storage is not None:
        raise SettingError(
            "{lsh_storage} shares a MinHash index; the preset's [dedup] method = 'embedding' keeps its index in memory",
            "lsh_storage",
        )


def open_index(
    settings: DedupSettings, lsh_storage: str | None = None, namespace: str = ""
) -> DuplicateIndex | SemanticIndex:
    """The one-at-a-time index for `settings`: MinHash (in memory or Redis) or embeddings."""
    check_storage(settings, lsh_storage)
    if settings.method == "embedding":
        return SemanticIndex(settings, namespace)
    return DuplicateIndex(settings, open_store(lsh_storage, settings), namespace)


__all__ = [
    "EXACT_DUPLICATE",
    "NEAR_DUPLICATE",
    "DedupSettings",
    "Duplicate",
    "DuplicateIndex",
    "IndexStore",
    "MemoryStore",
    "SemanticIndex",
    "check_storage",
    "exact_key",
    "find_duplicates",
    "find_semantic_duplicates",
    "open_index",
    "open_store",
    "rouge_l",
    "tokenize",
]
