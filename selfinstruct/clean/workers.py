"""The rule checks in worker processes.

Rules are pure functions of one record, so the candidates of a fast teacher's answers can be
checked on other cores while this process talks to the teacher, writes the ledger and keeps
the duplicate index (which must decide in ledger order, here). On the project's 2-core
machine the rules are about half of a generate run's CPU (benchmarks/RESULTS.md). The
workers also make what the MinHash index needs of each record the rules kept (its tokens,
MinHash values and band keys: `dedup.TextSketch`, a function of the text alone), which left
this process, the busier one, only the index's lookups.

    checker = RuleChecker(cleaner, workers=1)
    future = checker.submit(records)      # -> [Checked, ...] in order (concurrent.futures.Future)
    checker.close()

With `workers=0` the checks run here, at once. The workers are forked when the checker is
made, before the job starts its event loop and HTTP client threads (a fork needs no
`if __name__ == "__main__"` guard in the user's script, unlike "spawn"); each builds the same
rules from their settings, ignores Ctrl-C (the job handles it) and exits when the job's
process is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from ..processes import exit_with_parent
from .dedup import DedupSettings
from .rules import RULES, Checked, RuleSet

_worker_rules: RuleSet | None = None
_worker_dedup: DedupSettings | None = None
_worker_sketcher = None  # made at the first kept record: importing datasketch takes 0.6 s


def _start_worker(parent_pid: int, rules: list[tuple[str, dict]], dedup: DedupSettings | None) -> None:
    global _worker_rules, _worker_dedup
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)  # a worker's pipes do not close when its job is killed
    _worker_rules = RuleSet([RULES[name].model_validate(settings) for name, settings in rules])
    _worker_dedup = dedup


def _check(records: list[dict]) -> tuple[list[Checked], tuple | None]:
    """The rules' verdicts, and the kept records' sketches packed for the pipe (see `_unpacked`)."""
    global _worker_sketcher
    checked = _worker_rules.check_many(records)
    kept = [c for c in checked if c.rejection is None]
    if _worker_dedup is None or not kept:
        return checked, None
    if _worker_sketcher is None:
        from .dedup.index import Sketcher

        _worker_sketcher = Sketcher(_worker_dedup)
    sketches = _worker_sketcher.sketch([_worker_dedup.text(c.record) for c in kept])
    # one array per answer, not one per record: unpickling 20 small arrays cost this process
    # more than making the sketches here saved it
    return checked, (
        [" ".join(sketch.tokens) for sketch in sketches],  # tokens are [a-z0-9]+: split() gives them back
        np.stack([sketch.signature for sketch in sketches]),
        np.array([sketch.band_keys for sketch in sketches], dtype=np.uint64),
    )


def _unpacked(checked: list[Checked], packed: tuple | None) -> list[Checked]:
    """The verdicts with each kept record's `TextSketch` put back."""
    if packed is not None:
        from .dedup.index import TextSketch

        tokens, signatures, keys = packed
        kept = [c for c in checked if c.rejection is None]
        for c, text, signature, band_keys in zip(kept, tokens, signatures, keys.tolist()):
            c.sketch = TextSketch(text.split(), signature, band_keys)
    return checked


class RuleChecker:
    def __init__(self, cleaner, workers: int = 0):
        self.cleaner = cleaner
        self.pool = None
        if workers > 0:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_start_worker,
                initargs=(
                    os.getpid(),
                    [(rule.name, rule.model_dump()) for rule in cleaner.rules.rules],
                    _sketched(cleaner),
                ),
            )
            for started in [self.pool.submit(_check, []) for _ in range(workers)]:
                started.result()  # start them now, while this process has no other threads

    def submit(self, records: list[dict]) -> Future:
        if self.pool is not None and records:
            unpacked: Future = Future()

            def unpack(future: Future) -> None:
                try:
                    unpacked.set_result(_unpacked(*future.result()))
                except Exception as e:  # noqa: BLE001  the worker's error, or the pool's cancellation: `result()` raises it
                    unpacked.set_exception(e)

            self.pool.submit(_check, records).add_done_callback(unpack)
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
