"""The rule checks in worker processes.

Rules are pure functions of one record, so the candidates of a fast teacher's answers can be
checked on other cores while this process talks to the teacher and writes the ledger and the
records. On the project's 2-core machine the rules are about half of a generate run's CPU
(benchmarks/RESULTS.md), and this process, whose event loop paces the requests, is the busier
one. So it gets back only what the rules and the duplicate check found:

- with one worker and the in-memory MinHash index, the worker keeps the run's duplicate index
  too: it gets the answers in the order the job decides them (one process takes its tasks in
  order), so its keep-first decisions are the ones the job's own index would make, and the
  job only counts and writes them. It indexes the reference texts when it starts, and the
  records of a resumed run (`Cleaner.take_restored`) before its first check;
- else (several workers, whose answers may finish in any order, or an index shared in Redis)
  the index stays in the job's process, and the workers make what it needs of each record the
  rules kept (its tokens, MinHash values and band keys: `dedup.TextSketch`, a function of the
  text alone), which leaves this process only the index's look-ups.

    checker = RuleChecker(cleaner, workers=1)
    future = checker.submit(records)      # -> [Checked, ...] in order (concurrent.futures.Future)
    checker.close()

With `workers=0` the checks run here, at once. The workers are forked when the checker is
made, before the job starts its event loop and HTTP client threads (a fork needs no
`if __name__ == "__main__"` guard in the user's script, unlike "spawn"); each builds the same
rules from their settings, loads their models (`RuleSet.load`) while the job goes on starting
and sends its first requests, ignores Ctrl-C (the job handles it) and exits when the job's
process is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from ..processes import exit_with_parent
from .dedup import DedupSettings, Duplicate
from .rules import RULES, Checked, Rejection, RuleSet

_worker_rules: RuleSet | None = None
_worker_dedup: DedupSettings | None = None
_worker_index = None  # the run's duplicate index, when this worker keeps it
_worker_sketcher = None  # else what makes the sketches for the job's index


def _start_worker(
    parent_pid: int,
    rules: list[tuple[str, dict]],
    dedup: DedupSettings | None,
    index: tuple[str, list[tuple[str, str]]] | None,
) -> None:
    """`index`: the namespace and reference texts of the duplicate index this worker keeps."""
    global _worker_rules, _worker_dedup, _worker_index, _worker_sketcher
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)  # a worker's pipes do not close when its job is killed
    _worker_rules = RuleSet([RULES[name].model_validate(settings) for name, settings in rules])
    _worker_rules.load()
    _worker_dedup = dedup
    if dedup is None:
        return
    from .dedup import open_index
    from .dedup.index import Sketcher

    if index is not None:
        namespace, reference = index
        _worker_index = open_index(dedup, namespace=namespace)  # in memory, as the job's own would be
        _worker_index.add(reference)
    else:
        _worker_sketcher = Sketcher(dedup)


def _check(records: list[dict], restored: tuple[list, list] = ([], [])) -> tuple[list, dict, tuple | None]:
    """The rules' verdicts packed for the pipe (see `_unpacked`): each record's rejection (rule,
    detail) or None, the records the rules repaired (by position, with the repairs' names), and
    what the duplicate check needs of the kept records: ("duplicates", [(reason, of) or None])
    from the index kept here, or ("sketches", tokens, MinHash values, band keys) for the job's.
    The job's process has the records: sending them back cost it more to unpickle than all
    the verdicts. `restored`: what a resumed run's index holds (`Cleaner.take_restored`),
    indexed first."""
    if any(restored):
        _worker_index.restore(*restored)
    checked = _worker_rules.check_many(records)
    verdicts = [None if c.rejection is None else (c.rejection.rule, c.rejection.detail) for c in checked]
    repaired = {i: (c.record, c.fixed) for i, c in enumerate(checked) if c.fixed}
    kept = [i for i, c in enumerate(checked) if c.rejection is None]
    if _worker_dedup is None or not kept:
        return verdicts, repaired, None
    texts = [_worker_dedup.text(checked[i].record) for i in kept]
    if _worker_index is not None:
        # keyed by the records' ids, as the job keys its decisions
        found = _worker_index.check_many([(records[i]["id"], text) for i, text in zip(kept, texts)])
        return verdicts, repaired, ("duplicates", [None if d is None else (d.reason, d.of) for d in found])
    sketches = _worker_sketcher.sketch(texts)
    # one array per answer, not one per record: unpickling 20 small arrays cost the job's
    # process more than making the sketches here saved it
    return (
        verdicts,
        repaired,
        (
            "sketches",
            [" ".join(sketch.tokens) for sketch in sketches],  # tokens are [a-z0-9]+: split() gives them back
            np.stack([sketch.signature for sketch in sketches]),
            np.array([sketch.band_keys for sketch in sketches], dtype=np.uint64),
        ),
    )


def _unpacked(
    records: list[dict], verdicts: list, repaired: dict[int, tuple[dict, list[str]]], dedup: tuple | None
) -> list[Checked]:
    """`records`' `Checked`s from what `_check` sent."""
    checked = []
    for i, (record, verdict) in enumerate(zip(records, verdicts)):
        record, fixed = repaired.get(i, (record, []))
        checked.append(Checked(record, None if verdict is None else Rejection(*verdict), fixed))
    if dedup is None:
        return checked
    kept = [c for c in checked if c.rejection is None]
    if dedup[0] == "duplicates":
        for c, found in zip(kept, dedup[1]):
            c.deduplicated, c.duplicate = True, None if found is None else Duplicate(*found)
        return checked
    from .dedup.index import TextSketch

    _, tokens, signatures, keys = dedup
    for c, text, signature, band_keys in zip(kept, tokens, signatures, keys.tolist()):
        c.sketch = TextSketch(text.split(), signature, band_keys)
    return checked


class RuleChecker:
    def __init__(self, cleaner, workers: int = 0):
        self.cleaner = cleaner
        self.pool = None
        dedup = _sketched(cleaner)
        # one worker takes its tasks in order: it can keep an index that is this process's alone
        self.keeps_index = workers == 1 and dedup is not None and not cleaner.shared_index
        if workers > 0:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_start_worker,
                initargs=(
                    os.getpid(),
                    [(rule.name, rule.model_dump()) for rule in cleaner.rules.rules],
                    dedup,
                    (cleaner.namespace, cleaner.reference_items()) if self.keeps_index else None,
                ),
            )
            # forks them now, while this process has no other threads; they load their rules'
            # models meanwhile, and the first answer's check waits for that if it must
            self.pool.submit(_check, [])

    def submit(self, records: list[dict]) -> Future:
        if self.pool is not None and records:
            # a resumed run's index goes with the first answer (then it is empty)
            restored = self.cleaner.take_restored() if self.keeps_index else ([], [])
            unpacked: Future = Future()

            def unpack(future: Future) -> None:
                try:
                    unpacked.set_result(_unpacked(records, *future.result()))
                except Exception as e:  # noqa: BLE001  the worker's error, or the pool's cancellation: `result()` raises it
                    unpacked.set_exception(e)

            self.pool.submit(_check, records, restored).add_done_callback(unpack)
            return unpacked
        done: Future = Future()
        done.set_result(self.cleaner.check_rules(records))
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _sketched(cleaner) -> DedupSettings | None:
    """The dedup settings when the index takes `TextSketch`es (MinHash), else None."""
    settings = cleaner.settings
    return settings if settings.enabled and settings.method == "minhash" else None
