"""`filter --engine ray`: the local `filter`'s decisions, computed on a Ray cluster.

    verdicts, seconds = check_all_on_ray(cleaner, records, keys, address="auto")

The same decisions as `Cleaner.check_all` (the local path), in five stages:

1. rules and signatures (Ray Data `map_batches`, one task per chunk of records): the preset's
   rules, then for each record they pass its tokens, its exact-duplicate key, its MinHash
   signature, band keys and sketch (`dedup.minhash`, as `dedup.bulk` computes them);
2. exact duplicates: the exact keys go through Ray's shuffle (`groupby` on a hash partition
   of the key); in each group the first record by position is the copy kept;
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
5. the verdicts, counted in `cleaner.stats` in record order (driver), for `clean_dataset`
   to write.

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
from collections.abc import Iterable, Sequence

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


def check_engine(cleaner: Cleaner) -> None:
    """What the Ray engine cannot do, refused before any work."""
    if cleaner.shared_index:
        raise SettingError(
            "{lsh_storage} checks records one by one against a shared index; {engine} 'ray' finds all duplicates "
            "at once: use one or the other",
            "lsh_storage",
            "engine",
        )
    if cleaner.settings.enabled and cleaner.settings.method != "minhash":
        raise SettingError(
            f"{cleaner.preset.path}: [dedup] method = '{cleaner.settings.method}'; {{engine}} 'ray' runs the "
            "MinHash dedup only: use the local engine",
            "engine",
        )
    if cleaner.reference:  # clean_dataset has none; a caller with seed tasks uses check_all
        raise SettingError("{engine} 'ray' cleans a dataset without reference texts", "engine")


def check_all_on_ray(
    cleaner: Cleaner,
    records: Sequence[dict],
    keys: Sequence[str],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> tuple[list[Verdict], dict[str, float]]:
    """`cleaner.check_all(records, keys)` on Ray: the same verdicts, counted in `cleaner.stats`,
    and the wall seconds of each stage (rules_signatures, exact, banding, near, verdicts) with
    the CPU seconds of the rules and of the signatures summed over all tasks. `address` (or
    RAY_ADDRESS) joins a running cluster; without one a local cluster is started for this call
    (`num_cpus` cores) and stopped after it. A Ray session already started in this process is
    used as it is."""
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
        return _RayRun(ray, cleaner, progress).run(records, keys)
    finally:
        if started_here:
            ray.shutdown()


class _RayRun:
    def __init__(self, ray, cleaner: Cleaner, progress: bool):
        self.ray = ray
        self.cleaner = cleaner
        self.settings = cleaner.settings
        self.progress = progress
        self.seconds: dict[str, float] = {}
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.partitions = max(2, 2 * cpus)  # shuffle partitions: two per core, for balance
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ctx.execution_options.preserve_order = False

    def _stage(self, name: str, started: float, done: str) -> float:
        now = time.monotonic()
        self.seconds[name] = round(now - started, 2)
        if self.progress:
            print(f"ray {name}: {done} in {self.seconds[name]} s", file=sys.stderr)
        return now

    def run(self, records: Sequence[dict], keys: Sequence[str]) -> tuple[list[Verdict], dict[str, float]]:
        ray = self.ray
        started = time.monotonic()
        chunks = ray.data.from_items(
            [
                {"start": s, "records": pickle.dumps(list(records[s : s + CHUNK]))}
                for s in range(0, len(records), CHUNK)
            ],
            override_num_blocks=-(-len(records) // CHUNK),
        )
        rules = self.cleaner.rules
        settings = self.settings
        prepared = chunks.map_batches(
            _prepare_chunks, fn_kwargs={"rules": rules, "settings": settings}, batch_size=1, batch_format="pandas"
        ).materialize()
        started = self._stage("rules_signatures", started, f"{len(records):,} records")
        for part in ("rules_cpu_s", "signatures_cpu_s"):  # the two halves of that stage, summed over tasks
            self.seconds[part] = round(prepared.sum(part), 2)

        duplicates: dict[int, Duplicate] = {}
        if settings.enabled:
            exact_of = self._exact_duplicates(prepared) if settings.exact else {}
            started = self._stage("exact", started, f"{len(exact_of):,} exact duplicates")
            involved = self._shared_bucket_members(prepared, exact_of)
            started = self._stage("banding", started, f"{len(involved):,} records share a band bucket")
            near_of = self._near_duplicates(prepared, involved)
            started = self._stage("near", started, f"{len(near_of):,} near duplicates")
            duplicates = {pos: Duplicate(EXACT_DUPLICATE, keys[first]) for pos, first in exact_of.items()}
            duplicates.update({pos: Duplicate(NEAR_DUPLICATE, keys[of]) for pos, of in near_of.items()})

        verdicts = []
        bar = CleanProgress(len(records), enabled=self.progress)
        rejected: Counter[str] = Counter()
        try:
            for checked in self._checked_in_order(prepared):
                part = [self.cleaner.verdict(c, duplicates.get(len(verdicts) + i)) for i, c in enumerate(checked)]
                rejected.update(v.rejection.rule for v in part if v.rejection is not None)
                verdicts += part
                bar.checked(len(part), rejected)
        finally:
            bar.close(self.cleaner.stats.group("rejected"))
        self._stage("verdicts", started, f"{len(verdicts):,} verdicts")
        return verdicts, self.seconds

    def _checked_in_order(self, prepared) -> Iterable[list[Checked]]:
        rows = sorted(prepared.select_columns(["start", "checked"]).iter_rows(), key=lambda row: row["start"])
        for row in rows:
            yield pickle.loads(row["checked"])

    def _exact_duplicates(self, prepared) -> dict[int, int]:
        """Position of each exact duplicate -> position of the first record with its key."""
        parts = self.partitions
        grouped = (
            prepared.flat_map(_partition_exact, fn_kwargs={"parts": parts})
            .groupby("part", num_partitions=parts)
            .map_groups(_first_of_each_key, batch_format="numpy")
        )
        out: dict[int, int] = {}
        for batch in grouped.iter_batches(batch_format="numpy", batch_size=None):
            for dup, first in zip(batch["pos"], batch["first"]):
                out.update(zip(np.frombuffer(dup, np.int64).tolist(), np.frombuffer(first, np.int64).tolist()))
        return out

    def _shared_bucket_members(self, prepared, exact_of: dict[int, int]) -> np.ndarray:
        """Sorted positions of the records (not exact duplicates) that share a band bucket."""
        parts, bands = self.partitions, self.settings.bands
        dropped = self.ray.put(np.array(sorted(exact_of), dtype=np.int64))
        grouped = (
            prepared.flat_map(_partition_bands, fn_kwargs={"dropped": dropped, "bands": bands, "parts": parts})
            .groupby("part", num_partitions=parts)
            .map_groups(_shared_members, batch_format="numpy")
        )
        members = [np.frombuffer(b, np.int64) for b in grouped.to_pandas()["pos"]]
        return np.unique(np.concatenate(members)) if members else np.empty(0, np.int64)

    def _near_duplicates(self, prepared, involved: np.ndarray) -> dict[int, int]:
        """Position of each near duplicate -> position of the kept record it duplicates."""
        if not len(involved):
            return {}
        wanted, settings = self.ray.put(involved), self.settings
        rows = prepared.map_batches(
            _select, fn_kwargs={"wanted": wanted, "settings": settings}, batch_size=1, batch_format="pandas"
        ).to_pandas()
        rows = rows.sort_values("start")
        positions = np.concatenate([np.frombuffer(b, np.int64) for b in rows["pos"]])
        band = np.concatenate([np.frombuffer(b, np.uint64).reshape(-1, self.settings.bands) for b in rows["keys"]])
        sketches = np.concatenate(
            [np.frombuffer(b, np.uint16).reshape(-1, self.settings.num_perm) for b in rows["sketches"]]
        )
        vocabulary = Vocabulary()
        ids = [vocabulary.encode(text.split()) for part in rows["tokens"] for text in pickle.loads(part)]
        found = keep_first(band, ids, sketches, 0, self.settings)
        return {int(positions[i]): int(positions[of]) for i, of in enumerate(found) if of is not None}


# ---- the tasks (run in Ray workers; module functions, so that they pickle by reference)


def _get(ref):
    """A value the driver put in the object store once (not pickled into every task)."""
    import ray

    return ray.get(ref)


def _prepare_chunks(batch, rules: RuleSet, settings: DedupSettings):
    """Rules, then exact keys, band keys and sketches of the records the rules pass."""
    out = []
    for start, blob in zip(batch["start"], batch["records"]):
        began = time.process_time()
        checked = rules.check_many(pickle.loads(blob))
        ruled = time.process_time()
        survivors = [i for i, c in enumerate(checked) if c.rejection is None]
        tokens = [tokenize(settings.text(checked[i].record)) for i in survivors]
        texts = [settings.text(checked[i].record) for i in survivors]
        vocabulary = Vocabulary()
        ids = [vocabulary.encode(t) for t in tokens]
        signatures = MinHasher(settings.num_perm, settings.seed).signatures(ids, vocabulary.hashes)
        out.append(
            {
                "start": int(start),
                "checked": pickle.dumps(checked),
                "pos": (np.array(survivors, dtype=np.int64) + int(start)).tobytes(),
                "exact": b"".join(_digest(exact_key(text, t)) for text, t in zip(texts, tokens)),
                "tokens": pickle.dumps([" ".join(t) for t in tokens]),
                "keys": band_keys(signatures, settings.bands, settings.rows).tobytes(),
                "sketches": sketch(signatures).tobytes(),
                "rules_cpu_s": ruled - began,
                "signatures_cpu_s": time.process_time() - ruled,
            }
        )
    import pandas as pd

    return pd.DataFrame(out)


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
    import pandas as pd

    wanted = _get(wanted)
    out = []
    for start, pos, keys, sketches, tokens in zip(
        batch["start"], batch["pos"], batch["keys"], batch["sketches"], batch["tokens"]
    ):
        pos = np.frombuffer(pos, np.int64)
        take = np.isin(pos, wanted)
        out.append(
            {
                "start": int(start),
                "pos": pos[take].tobytes(),
                "keys": np.frombuffer(keys, np.uint64).reshape(-1, settings.bands)[take].tobytes(),
                "sketches": np.frombuffer(sketches, np.uint16).reshape(-1, settings.num_perm)[take].tobytes(),
                "tokens": pickle.dumps([t for t, k in zip(pickle.loads(tokens), take) if k]),
            }
        )
    return pd.DataFrame(out)
