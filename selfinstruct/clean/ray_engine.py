"""`filter --engine ray`: the local `filter`'s decisions, computed on a Ray cluster.

    seconds = {}
    for verdict in verdicts_on_ray(cleaner, iter_records("big.jsonl"), seconds=seconds):
        ...  # in record order

The same decisions as `Cleaner.check_all` (the local path), in five stages. The driver never
holds the records: it reads them one chunk at a time into Ray's object store, keeps object
references and positions, and gets each chunk back only to hand out its verdicts.

1. rules and signatures (one Ray task per chunk of records, started while the driver reads
   on): the preset's rules, then for each record they pass its tokens, its exact-duplicate
   key, its MinHash signature, band keys and sketch (`dedup.minhash`, as `dedup.bulk`
   computes them). The checked records stay in the object store for stage 5;
2. exact duplicates: the exact keys go through Ray Data's shuffle (`groupby` on a hash
   partition of the key); in each group the first record by position is the copy kept;
3. LSH banding: the (band, key) pairs of the remaining records go through the shuffle the
   same way; each partition keeps the buckets holding two or more records, the only ones
   that can propose a candidate. Records alone in every bucket are kept without a look;
4. near duplicates (driver): keep-first by record order over the records in shared buckets,
   by the very function of the local path (`dedup.bulk.keep_first`): a record is a duplicate
   of the earliest *kept* record of its shared buckets whose estimated Jaccard and exact
   ROUGE-L pass, and a bucket holding `max_bucket` kept records stops proposing. Those
   decisions depend on each other in record order, which no partition of the data can
   decide alone (NeMo Curator and datatrove drop that order and keep one record per
   connected component of similar pairs instead, which removes more); this stage is the
   part that does not spread over nodes (see benchmarks/RESULTS.md);
5. the verdicts, chunk by chunk in record order (driver), counted in `cleaner.stats` and
   handed to the caller, which writes them.

Ray is an optional extra (`pip install 'selfinstruct[ray]'`), imported here only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

import numpy as np

from ..errors import SelfInstructError, SettingError
from .cleaner import Cleaner, Verdict
from .dedup import EXACT_DUPLICATE, NEAR_DUPLICATE, Duplicate
from .dedup.bulk import keep_first
from .dedup.minhash import MinHasher, band_keys, sketch
from .dedup.rouge import Vocabulary, exact_key, tokenize
from .dedup.settings import DedupSettings
from .progress import CleanProgress
from .rules import Checked, RuleSet

CHUNK = 5_000  # records per task: seconds of rules, small enough to spread 55K records over cores
PARTITION = 250_000  # records per shuffle partition: its (band, key) pairs, about 200 MB, fit a worker


def import_ray():
    """Ray, or a one-line error with the pip command."""
    try:
        import ray
        import ray.data  # the extra installs ray[data]: Ray alone lacks it
    except ImportError:
        raise SelfInstructError(
            "--engine ray needs Ray: pip install 'selfinstruct[ray]' (or: pip install 'ray[data]')"
        ) from None
    return ray


def refuse_shared_index() -> None:
    raise SettingError(
        "{lsh_storage} checks records one by one against a shared index; {engine} 'ray' finds all duplicates "
        "at once: use one or the other",
        "lsh_storage",
        "engine",
    )


def check_engine(cleaner: Cleaner) -> None:
    """What the Ray engine cannot do, refused before any work."""
    if cleaner.shared_index:
        refuse_shared_index()
    if cleaner.settings.enabled and cleaner.settings.method != "minhash":
        raise SettingError(
            f"{cleaner.preset.path}: [dedup] method = '{cleaner.settings.method}'; {{engine}} 'ray' runs the "
            "MinHash dedup only: use the local engine",
            "engine",
        )
    if cleaner.reference:  # clean_dataset has none; a caller with seed tasks uses check_all
        raise SettingError("{engine} 'ray' cleans a dataset without reference texts", "engine")


def verdicts_on_ray(
    cleaner: Cleaner,
    records: Iterable[dict],
    *,
    seconds: dict[str, float],
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    chunk: int = CHUNK,
) -> Iterator[Verdict]:
    """`cleaner.check_all` on Ray: the same verdicts, in record order, counted in
    `cleaner.stats`, except that a duplicate's `duplicate_of` is the id of the record it
    duplicates (its "id", else its position), as `filter` writes it. `records` is read once,
    `chunk` records at a time, and may be larger than memory.

    `seconds` gets the wall seconds of each stage as it ends (rules_signatures, which
    includes reading the records; exact, banding, near; verdicts, which includes the
    caller's writing of them), the driver's parts of them (`reading`, the keep-first pass
    `keep_first`), and the CPU seconds of the rules and of the signatures summed over all
    tasks. `address` (or RAY_ADDRESS) joins a running cluster; without one a local
    cluster is started for this call (`num_cpus` cores) and stopped after it. A Ray session
    already started in this process is used as it is."""
    check_engine(cleaner)
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        joins = address or os.environ.get("RAY_ADDRESS")
        if joins and num_cpus:
            raise SettingError("{num_cpus} is for a local cluster; a running cluster has its own", "num_cpus")
        ray.init(address=joins, num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset: the bars say it
    try:
        yield from _RayRun(ray, cleaner, progress, seconds).run(records, chunk)
    finally:
        if started_here:
            ray.shutdown()


class _RayRun:
    def __init__(self, ray, cleaner: Cleaner, progress: bool, seconds: dict[str, float]):
        self.ray = ray
        self.cleaner = cleaner
        self.settings = cleaner.settings
        self.progress = progress
        self.seconds = seconds
        self.cpus = int(ray.cluster_resources().get("CPU", 1))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ctx.execution_options.preserve_order = False

    def _stage(self, name: str, started: float, done: str) -> float:
        now = time.monotonic()
        self.seconds[name] = round(now - started, 2)
        if self.progress:
            print(f"ray {name}: {done} in {self.seconds[name]} s", file=sys.stderr)
        return now

    def run(self, records: Iterable[dict], chunk: int) -> Iterator[Verdict]:
        started = time.monotonic()
        (*starts, total), columns, checked = self._prepare(records, chunk)
        started = self._stage("rules_signatures", started, f"{total:,} records")
        prepared = self.ray.data.from_pandas_refs(columns) if columns else None
        for part in ("rules_cpu_s", "signatures_cpu_s"):  # the two halves of that stage, summed over tasks
            self.seconds[part] = round(prepared.sum(part), 2) if prepared is not None else 0.0
        # shuffle partitions: two per core for balance, more for a large input (a partition is one group in a worker)
        self.partitions = max(2 * self.cpus, -(-total // PARTITION))

        duplicates = _Duplicates()
        if self.settings.enabled and prepared is not None:
            if self.settings.exact:
                duplicates.add(*self._exact_duplicates(prepared), EXACT_DUPLICATE)
            started = self._stage("exact", started, f"{len(duplicates):,} exact duplicates")
            involved = self._shared_bucket_members(prepared, duplicates.pos)
            started = self._stage("banding", started, f"{len(involved):,} records share a band bucket")
            before = len(duplicates)
            duplicates.add(*self._near_duplicates(prepared, involved), NEAR_DUPLICATE)
            started = self._stage("near", started, f"{len(duplicates) - before:,} near duplicates")
        del prepared, columns  # the signatures and keys: the object store frees them
        yield from self._verdicts(starts, checked, total, duplicates)
        self._stage("verdicts", started, f"{total:,} verdicts")

    def _prepare(self, records: Iterable[dict], chunk: int) -> tuple[list[int], list, list]:
        """Stage 1, started chunk by chunk as the records are read, with at most a few chunks
        per core waiting (the reading never runs far ahead of the rules). The chunks' first
        positions (and the total after them), and for each chunk the references to its
        dedup columns and to its checked records."""
        ray = self.ray
        prepare = ray.remote(_prepare_chunk).options(num_returns=2)
        rules = ray.put(self.cleaner.rules)
        window = 3 * self.cpus
        starts, columns, checked, waiting = [0], [], [], []
        bar = CleanProgress(None, enabled=self.progress)
        records = iter(records)
        reading = 0.0  # the driver's own share: reading and sending the chunks, one process however many nodes
        while True:
            began = time.monotonic()
            part = list(islice(records, chunk))
            if not part:
                break
            dedup_columns, checked_records = prepare.remote(part, starts[-1], rules, self.settings)
            reading += time.monotonic() - began
            starts.append(starts[-1] + len(part))
            columns.append(dedup_columns)
            checked.append(checked_records)
            waiting.append((dedup_columns, len(part)))
            if len(waiting) > window:
                ray.wait([ref for ref, _ in waiting[:1]], fetch_local=False)
                bar.checked(waiting.pop(0)[1])
        for ref, n in waiting:
            ray.wait([ref], fetch_local=False)
            bar.checked(n)
        bar.close()
        self.seconds["reading"] = round(reading, 2)
        return starts, columns, checked

    def _verdicts(self, starts: list[int], checked: list, total: int, duplicates: _Duplicates) -> Iterator[Verdict]:
        """Stage 5: the verdicts in record order, one chunk back from the object store at a time.
        A duplicate's record comes before it, so its id is known by then."""
        ids: dict[int, object] = {}
        bar = CleanProgress(total, enabled=self.progress)
        rejected: Counter[str] = Counter()
        try:
            for k, start in enumerate(starts):
                chunk: list[Checked] = self.ray.get(checked[k])
                checked[k] = None  # done with: the object store frees it
                end = start + len(chunk)
                for pos in duplicates.referenced(start, end):
                    ids[pos] = chunk[pos - start].record.get("id", pos)
                found = duplicates.within(start, end)
                for i, one in enumerate(chunk):
                    duplicate = found.get(start + i)
                    if duplicate is None:
                        verdict = self.cleaner.verdict(one, None)
                    else:  # the detail names the position, as the local path's; duplicate_of the id
                        reason, of = duplicate
                        verdict = replace(self.cleaner.verdict(one, Duplicate(reason, str(of))), duplicate_of=ids[of])
                    if verdict.rejection is not None:
                        rejected[verdict.rejection.rule] += 1
                    yield verdict
                bar.checked(len(chunk), rejected)
        finally:
            bar.close(self.cleaner.stats.group("rejected"))

    def _exact_duplicates(self, prepared) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the exact duplicates, and of the first record with the key of each."""
        parts = self.partitions
        grouped = (
            prepared.select_columns(["pos", "exact"])
            .flat_map(_partition_exact, fn_kwargs={"parts": parts})
            .groupby("part", num_partitions=parts)
            .map_groups(_first_of_each_key, batch_format="numpy")
        )
        pos, first = [], []
        for batch in grouped.iter_batches(batch_format="numpy", batch_size=None):
            pos += [np.frombuffer(b, np.int64) for b in batch["pos"]]
            first += [np.frombuffer(b, np.int64) for b in batch["first"]]
        return _joined(pos), _joined(first)

    def _shared_bucket_members(self, prepared, dropped: np.ndarray) -> np.ndarray:
        """Sorted positions of the records (not exact duplicates) that share a band bucket."""
        parts, bands = self.partitions, self.settings.bands
        dropped = self.ray.put(dropped)
        grouped = (
            prepared.select_columns(["pos", "keys"])
            .flat_map(_partition_bands, fn_kwargs={"dropped": dropped, "bands": bands, "parts": parts})
            .groupby("part", num_partitions=parts)
            .map_groups(_shared_members, batch_format="numpy")
        )
        members = [np.frombuffer(b, np.int64) for b in grouped.to_pandas()["pos"]]
        return np.unique(_joined(members))

    def _near_duplicates(self, prepared, involved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the near duplicates, and of the kept record each one duplicates. The
        involved records' band keys, sketches and token ids are filled into arrays made once,
        each chunk's rows where its positions fall, in whatever order the chunks come back."""
        settings, n = self.settings, len(involved)
        band = np.empty((n, settings.bands), dtype=np.uint64)
        sketches = np.empty((n, settings.num_perm), dtype=np.uint16)
        ids: list[tuple[int, ...]] = [()] * n
        vocabulary = Vocabulary()  # ids are compared for equality only: any order of chunks gives the same decisions
        selected = prepared.select_columns(["pos", "keys", "sketches", "tokens"]).map_batches(
            _select,
            fn_kwargs={"wanted": self.ray.put(involved), "settings": settings},
            batch_size=1,
            batch_format="numpy",
        )
        for batch in selected.iter_batches(batch_format="numpy", batch_size=None):
            for pos, keys, chunk_sketches, tokens in zip(
                batch["pos"], batch["keys"], batch["sketches"], batch["tokens"]
            ):
                at = np.searchsorted(involved, np.frombuffer(pos, np.int64))
                band[at] = np.frombuffer(keys, np.uint64).reshape(-1, settings.bands)
                sketches[at] = np.frombuffer(chunk_sketches, np.uint16).reshape(-1, settings.num_perm)
                for i, text in zip(at.tolist(), pickle.loads(tokens)):
                    ids[i] = vocabulary.encode(text.split())
        began = time.monotonic()
        found = keep_first(band, ids, sketches, 0, settings)
        self.seconds["keep_first"] = round(time.monotonic() - began, 2)
        near = np.array([i for i, of in enumerate(found) if of is not None], dtype=np.int64)
        of = np.array([found[i] for i in near], dtype=np.int64)
        return involved[near], involved[of]


class _Duplicates:
    """The duplicates found, as sorted arrays (millions of them: no dict of objects): each one's
    position, the position of the record it duplicates, and the reason."""

    def __init__(self):
        self.pos, self.of, self.reason = _joined([]), _joined([]), np.empty(0, dtype=object)
        self._referenced = _joined([])

    def __len__(self) -> int:
        return len(self.pos)

    def add(self, pos: np.ndarray, of: np.ndarray, reason: str) -> None:
        joined = np.concatenate([self.pos, pos])
        order = np.argsort(joined, kind="stable")
        self.pos = joined[order]
        self.of = np.concatenate([self.of, of])[order]
        self.reason = np.concatenate([self.reason, np.full(len(pos), reason, dtype=object)])[order]
        self._referenced = np.unique(self.of)

    def within(self, start: int, end: int) -> dict[int, tuple[str, int]]:
        lo, hi = np.searchsorted(self.pos, [start, end])
        return {int(p): (r, int(o)) for p, r, o in zip(self.pos[lo:hi], self.reason[lo:hi], self.of[lo:hi])}

    def referenced(self, start: int, end: int) -> list[int]:
        """The positions in [start, end) that some duplicate names."""
        lo, hi = np.searchsorted(self._referenced, [start, end])
        return self._referenced[lo:hi].tolist()


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)


# ---- the tasks (run in Ray workers; module functions, so that they pickle by reference)


def _get(ref):
    """A value the driver put in the object store once (not pickled into every task)."""
    import ray

    return ray.get(ref)


def _prepare_chunk(records: list[dict], start: int, rules: RuleSet, settings: DedupSettings):
    """Stage 1 for one chunk: the rules, then exact keys, band keys and sketches of the records
    they pass (one row of dedup columns), and the checked records."""
    import pandas as pd

    began = time.process_time()
    checked = rules.check_many(records)
    ruled = time.process_time()
    survivors = [i for i, c in enumerate(checked) if c.rejection is None]
    texts = [settings.text(checked[i].record) for i in survivors]
    tokens = [tokenize(text) for text in texts]
    vocabulary = Vocabulary()
    ids = [vocabulary.encode(t) for t in tokens]
    signatures = MinHasher(settings.num_perm, settings.seed).signatures(ids, vocabulary.hashes)
    columns = {
        "pos": (np.array(survivors, dtype=np.int64) + start).tobytes(),
        "exact": b"".join(_digest(exact_key(text, t)) for text, t in zip(texts, tokens)),
        "tokens": pickle.dumps([" ".join(t) for t in tokens]),
        "keys": band_keys(signatures, settings.bands, settings.rows).tobytes(),
        "sketches": sketch(signatures).tobytes(),
        "rules_cpu_s": ruled - began,
        "signatures_cpu_s": time.process_time() - ruled,
    }
    return pd.DataFrame([columns]), checked


def _digest(key: str) -> bytes:
    """16 bytes standing for an exact key: equal keys, equal digests (a collision: 2^-128)."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


def _partition_exact(row: dict, parts: int) -> list[dict]:
    digests = np.frombuffer(row["exact"], np.uint64).reshape(-1, 2)
    pos = np.frombuffer(row["pos"], np.int64)
    part = digests[:, 0] % np.uint64(parts)
    return [
        {"part": p, "exact": digests[part == p].tobytes(), "pos": pos[part == p].tobytes()}
        for p in range(parts)
        if (part == p).any()
    ]


def _first_of_each_key(group: dict) -> dict:
    digests = np.concatenate([np.frombuffer(b, np.uint64).reshape(-1, 2) for b in group["exact"]])
    pos = np.concatenate([np.frombuffer(b, np.int64) for b in group["pos"]])
    order = np.lexsort((pos, digests[:, 1], digests[:, 0]))
    digests, pos = digests[order], pos[order]
    new = np.concatenate(([True], (digests[1:] != digests[:-1]).any(axis=1)))
    first = pos[np.flatnonzero(new)][np.cumsum(new) - 1]
    copies = ~new
    return {"pos": [pos[copies].tobytes()], "first": [first[copies].tobytes()]}


def _partition_bands(row: dict, dropped, bands: int, parts: int) -> list[dict]:
    dropped = _get(dropped)
    pos = np.frombuffer(row["pos"], np.int64)
    keys = np.frombuffer(row["keys"], np.uint64).reshape(-1, bands)
    keep = ~np.isin(pos, dropped)
    pos, keys = np.repeat(pos[keep], bands), keys[keep].ravel()
    band = np.tile(np.arange(bands, dtype=np.uint64), int(keep.sum()))
    part = (keys ^ (band * np.uint64(0x9E3779B97F4A7C15))) % np.uint64(parts)
    return [
        {
            "part": p,
            "band": band[part == p].tobytes(),
            "key": keys[part == p].tobytes(),
            "pos": pos[part == p].tobytes(),
        }
        for p in range(parts)
        if (part == p).any()
    ]


def _shared_members(group: dict) -> dict:
    band = np.concatenate([np.frombuffer(b, np.uint64) for b in group["band"]])
    keys = np.concatenate([np.frombuffer(b, np.uint64) for b in group["key"]])
    pos = np.concatenate([np.frombuffer(b, np.int64) for b in group["pos"]])
    order = np.lexsort((keys, band))
    band, keys, pos = band[order], keys[order], pos[order]
    starts = np.concatenate(([True], (band[1:] != band[:-1]) | (keys[1:] != keys[:-1])))
    group_of = np.cumsum(starts) - 1
    shared = np.bincount(group_of)[group_of] > 1
    return {"pos": [np.unique(pos[shared]).tobytes()]}


def _select(batch, wanted, settings: DedupSettings):
    """The band keys, sketches and tokens of the `wanted` positions in each chunk."""
    wanted = _get(wanted)
    out = {"pos": [], "keys": [], "sketches": [], "tokens": []}
    for pos, keys, sketches, tokens in zip(batch["pos"], batch["keys"], batch["sketches"], batch["tokens"]):
        pos = np.frombuffer(pos, np.int64)
        take = np.isin(pos, wanted)
        out["pos"].append(pos[take].tobytes())
        out["keys"].append(np.frombuffer(keys, np.uint64).reshape(-1, settings.bands)[take].tobytes())
        out["sketches"].append(np.frombuffer(sketches, np.uint16).reshape(-1, settings.num_perm)[take].tobytes())
        out["tokens"].append(pickle.dumps([t for t, k in zip(pickle.loads(tokens), take) if k]))
    return {name: np.array(values, dtype=object) for name, values in out.items()}
