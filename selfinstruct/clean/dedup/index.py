"""The keep-first decision, one text at a time: `DuplicateIndex.check`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...errors import SelfInstructError
from .minhash import MinHasher, band_keys, sketch
from .rouge import Vocabulary, exact_key, exceeds, tokenize
from .settings import DedupSettings
from .store import IndexStore, MemoryStore

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"


def first_duplicate(
    ids: tuple[int, ...],
    own_sketch: np.ndarray,
    candidates: Sequence,
    candidate_ids,
    candidate_sketches: np.ndarray,
    settings: DedupSettings,
):
    """The first of `candidates` (in order) that the text duplicates, or None.

    A candidate whose estimated Jaccard is below `min_jaccard` is skipped: a ROUGE-L
    duplicate has a multiset Jaccard above 0.54, and 0.35 is more than four standard
    deviations of a 128-value estimate (0.044 there) below that. `candidate_ids(i)` gives candidate i's token ids."""
    if not len(candidates):
        return None
    # the share of equal values, as a float like `mean` gives (an exact count over num_perm), without its overhead
    likely = np.flatnonzero(
        np.count_nonzero(candidate_sketches == own_sketch, axis=1) / own_sketch.size >= settings.min_jaccard
    )
    for i in likely.tolist():
        if exceeds(ids, candidate_ids(i), settings.rouge_threshold):
            return candidates[i]
    return None


@dataclass(frozen=True)
class Duplicate:
    reason: str  # EXACT_DUPLICATE or NEAR_DUPLICATE
    of: object  # the key (or position) of the earlier text


def positional_duplicates(reference: int, exact_of: list[int], near_of: dict[int, int]) -> list[Duplicate | None]:
    """The whole-dataset answer from its decisions over reference + texts: `exact_of[i]` is the
    first text equal to text i (i itself when none), `near_of[i]` the kept text it is near to.
    A duplicate of text j says `of = j` (its position in texts), or `-1 - j` for reference j."""

    def public(i: int) -> int:
        return i - reference if i >= reference else -1 - i

    out: list[Duplicate | None] = []
    for i in range(reference, len(exact_of)):
        if exact_of[i] != i:
            out.append(Duplicate(EXACT_DUPLICATE, public(exact_of[i])))
        elif i in near_of:
            out.append(Duplicate(NEAR_DUPLICATE, public(near_of[i])))
        else:
            out.append(None)
    return out


def first_copies(exact_keys: Sequence[str], reference: int, exact: bool) -> list[int]:
    """For each of reference + texts (as `exact_key`s), the first text with the same key: the
    `exact_of` of `positional_duplicates`. References are all indexed, even copies of each
    other, so each is its own; without `exact`, so is every text."""
    first_with: dict[str, int] = {}
    firsts = []
    for i, key in enumerate(exact_keys):
        first = first_with.setdefault(key, i)
        firsts.append(first if exact and i >= reference else i)
    return firsts


class KeyedIndex(ABC):
    """What the one-at-a-time duplicate indexes share (MinHash here, embeddings in semantic.py):
    keys within a namespace, reference texts indexed unchecked, a check as a batch of one."""

    def __init__(self, settings: DedupSettings, namespace: str = ""):
        self.settings = settings
        self.prefix = f"{namespace}/" if namespace else ""

    @abstractmethod
    def check_many(self, items: Sequence[tuple[str, str]]) -> list[Duplicate | None]:
        """`check` on each (key, text) pair in order."""

    @abstractmethod
    def _index_unchecked(self, items: Sequence[tuple[str, str]]) -> None: ...

    def add(self, items: Sequence[tuple[str, str]]) -> None:
        """Index reference texts (seed tasks), unchecked: (key, text) pairs, keys without namespace."""
        self._index_unchecked(items)

    def check(self, key: str, text: str) -> Duplicate | None:
        """Index `text` under `key` unless it duplicates an earlier text; say which if so."""
        return self.check_many([(key, text)])[0]

    def _public(self, key: str) -> str:
        """A key as the caller knows it: without our namespace, others' keys in full."""
        return key[len(self.prefix) :] if self.prefix and key.startswith(self.prefix) else key

    @staticmethod
    def _reused_key(key: str) -> SelfInstructError:
        return SelfInstructError(
            f"duplicate index: key {key!r} is already indexed with another text; "
            "keys must be unique within a run (use another index name for another dataset)"
        )


class DuplicateIndex(KeyedIndex):
    """Keep-first duplicate index, one text at a time.

    A text is an exact duplicate when an earlier text (kept or not) normalises to the same
    string, else a near duplicate when it exceeds the ROUGE-L threshold against an earlier
    *kept* text; candidates are checked oldest first, so `of` is the earliest one. A new
    text is indexed under its key.

    `check_many` decides a batch in order (as many `check` calls would), computing the
    MinHashes of the whole batch in one numpy pass. With a Redis store several workers share
    the index: a check runs under the store's lock, and `namespace` (one per run or input)
    keeps their keys apart. Checking a key that is already indexed with the same text says
    "new" again without indexing it twice, so a resumed run replays its records to the
    same decisions."""

    def __init__(self, settings: DedupSettings, store: IndexStore | None = None, namespace: str = ""):
        super().__init__(settings, namespace)
        self.store = store if store is not None else MemoryStore(settings)
        self.sketcher = Sketcher(settings)
        self.vocabulary = self.sketcher.vocabulary  # token ids for the exact ROUGE-L, local to this index

    def __len__(self) -> int:
        return len(self.store)

    def restore(self, kept: Sequence[tuple[str, str]], near_duplicates: Sequence[tuple[str, str]]) -> None:
        """Put back what earlier checks left in the index, without checking again: the texts
        they kept, and the texts they found near duplicates (whose exact copies are still
        exact duplicates). Each in the order it was checked."""
        self._index_unchecked([(self.prefix + key, text) for key, text in kept])
        with self.store.locked():
            for key, text in near_duplicates:
                self.store.claim_exact(exact_key(text), self.prefix + key)

    def _index_unchecked(self, items: Sequence[tuple[str, str]]) -> None:
        prepared = self._prepare([text for _, text in items])
        with self.store.locked():
            for (key, text), p in zip(items, prepared):
                if self.store.indexed_text(key) is None:
                    self.store.claim_exact(exact_key(text, p.tokens), key)
                    self.store.insert(key, *p)

    def check_many(
        self, items: Sequence[tuple[str, str]], sketches: Sequence[TextSketch] | None = None
    ) -> list[Duplicate | None]:
        """`sketches`: the texts' `TextSketch`es when they were made elsewhere (a rule worker)."""
        prepared = self._prepare([text for _, text in items], sketches)
        return [self._check(self.prefix + key, text, p) for (key, text), p in zip(items, prepared)]

    def _check(self, key: str, text: str, prepared: "_Prepared") -> Duplicate | None:
        with self.store.locked():
            if self._already_indexed(key, prepared):
                return None
            first = self.store.claim_exact(exact_key(text, prepared.tokens), key) if self.settings.exact else key
            if first != key:
                return Duplicate(EXACT_DUPLICATE, self._public(first))
            found = self.store.candidates(prepared.signature, prepared.band_keys, self.settings.max_bucket)
            duplicate_of = first_duplicate(
                prepared.ids,
                sketch(prepared.signature),
                found.keys,
                lambda i: self._ids(found.texts[i]),
                found.sketches,
                self.settings,
            )
            if duplicate_of is not None:
                return Duplicate(NEAR_DUPLICATE, self._public(duplicate_of))
            self.store.insert(key, *prepared)
        return None

    def _ids(self, text) -> tuple[int, ...]:
        """Token ids of a stored text: the memory store keeps ids, Redis keeps tokens."""
        return text if isinstance(text, tuple) else self.vocabulary.encode(text)

    def _already_indexed(self, key: str, prepared: "_Prepared") -> bool:
        indexed = self.store.indexed_text(key)
        if indexed is None:
            return False
        if self._ids(indexed) != prepared.ids:
            raise self._reused_key(key)
        return True

    def _prepare(self, texts: Sequence[str], sketches: Sequence[TextSketch] | None = None) -> list["_Prepared"]:
        if sketches is None:
            return [_Prepared(*fields) for fields in zip(*self.sketcher.parts(texts))]
        return [_Prepared(s.tokens, self.vocabulary.encode(s.tokens), s.signature, s.band_keys) for s in sketches]


class TextSketch(NamedTuple):
    """What a text's duplicate check needs that does not depend on the index: its tokens, MinHash
    values and band keys. Any process can make it (`generate`'s rule workers do, beside the
    rules), as the values are functions of the tokens alone."""

    tokens: list[str]
    signature: np.ndarray  # uint32 MinHash values
    band_keys: list[int]


class Sketcher:
    """`TextSketch`es of many texts at once (the MinHashes in one numpy pass)."""

    def __init__(self, settings: DedupSettings):
        self.settings = settings
        self.hasher = MinHasher(settings.num_perm, settings.seed)
        self.vocabulary = Vocabulary()

    def sketch(self, texts: Sequence[str]) -> list[TextSketch]:
        tokens, _, signatures, keys = self.parts(texts)
        return [TextSketch(*fields) for fields in zip(tokens, signatures, keys)]

    def parts(self, texts: Sequence[str]) -> tuple[list, list, list, list]:
        """The texts' tokens, token ids (of `vocabulary`), MinHash values and band keys."""
        if not texts:
            return [], [], [], []
        tokens = [tokenize(text) for text in texts]
        ids = [self.vocabulary.encode(t) for t in tokens]
        signatures = self.hasher.signatures(ids, self.vocabulary.hashes)
        return tokens, ids, list(signatures), band_keys(signatures, self.settings.bands, self.settings.rows).tolist()


class _Prepared(NamedTuple):
    """A text as the store takes it: `store.insert(key, *prepared)`."""

    tokens: list[str]
    ids: tuple[int, ...]
    signature: np.ndarray  # uint32 MinHash values
    band_keys: list[int]
