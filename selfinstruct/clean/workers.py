"""The rule checks in worker processes.

Rules are pure functions of one record, so the candidates of a fast teacher's answers can be
checked on other cores while this process talks to the teacher, writes the ledger and keeps
the duplicate index (which must decide in ledger order, here). On the project's 2-core
machine the rules are about half of a generate run's CPU (benchmarks/RESULTS.md).

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

from ..processes import exit_with_parent
from .rules import RULES, Checked, RuleSet

_worker_rules: RuleSet | None = None


def _start_worker(parent_pid: int, rules: list[tuple[str, dict]]) -> None:
    global _worker_rules
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent_pid)  # a worker's pipes do not close when its job is killed
    _worker_rules = RuleSet([RULES[name].model_validate(settings) for name, settings in rules])


def _check(records: list[dict]) -> list[Checked]:
    return _worker_rules.check_many(records)


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
                initargs=(os.getpid(), [(rule.name, rule.model_dump()) for rule in cleaner.rules.rules]),
            )
            for started in [self.pool.submit(_check, []) for _ in range(workers)]:
                started.result()  # start them now, while this process has no other threads

    def submit(self, records: list[dict]) -> Future:
        if self.pool is not None and records:
            return self.pool.submit(_check, records)
        done: Future = Future()
        done.set_result(self.cleaner.check_rules(records))
        return done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
