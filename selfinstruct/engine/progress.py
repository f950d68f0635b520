"""The progress bar of a teacher job: the figures a user watches.

    accepted 37/100 | rej near_duplicate 21, instruction_words 9, blacklist 3 | $0.0123 | 512 tok/s | retried HTTP 429 4

Over several endpoints, each one's answers (and its failed attempts) follow:

    ... | 512 tok/s | gpu0 410, gpu1 380 (3 err) | retried gpu1 connection 3

A job with a list of work (answer, judge) counts answered items instead of accepted records.
Failures being retried show as they happen (`retried`): a bar that does not move says why.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..stats import top_counts
from .costs import usd

if TYPE_CHECKING:
    from .job import Job

REFRESH_S = 0.25  # redraw at most this often: a fast endpoint answers hundreds of times a second


class RunProgress:
    def __init__(self, job: Job, enabled: bool = True):
        self.job = job
        target, done, unit = self._counts()
        self.bar = tqdm(total=target, initial=min(done, target or done), unit=unit, desc=unit, disable=not enabled)
        self.started = time.monotonic()
        self.tokens_before = job.state.session.completion_tokens
        self.drawn = 0.0
        self.retries: Counter[str] = Counter()  # failures retried, by kind: "HTTP 429", "timeout"...

    def _counts(self) -> tuple[int | None, int, str]:
        job = self.job
        left = job.work.left()
        if job.target is None and left is not None:
            answered = job.state.answers_decided
            # answers whose records are still being checked are neither answered here nor left
            return answered + len(job.checking) + left, answered, "answered"
        return job.target, job.accepted_toward_target(), "accepted"

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.bar.disable or (now - self.drawn < REFRESH_S and not force):
            return
        self.drawn = now
        total, done, _ = self._counts()
        self.bar.total = total
        self.bar.n = min(done, total) if total else done
        rejected = top_counts(self.job.rejected_counts())
        tokens = self.job.state.session.completion_tokens - self.tokens_before
        rate = tokens / max(now - self.started, 1e-9)
        retried = f" | retried {top_counts(self.retries)}" if self.retries else ""
        shares = self.job.ledger.totals.endpoints
        endpoints = (
            " | "
            + ", ".join(f"{n} {e.responses}" + (f" ({e.errors} err)" if e.errors else "") for n, e in shares.items())
            if len(shares) > 1
            else ""
        )
        self.bar.set_postfix_str(
            f"rej {rejected} | {usd(self.job.cost().cost_usd)} | {rate:.0f} tok/s{endpoints}{retried}", refresh=False
        )
        self.bar.refresh()

    def retried(self, kind: str) -> None:
        """A request failed and waits to be sent again: redrawn, as nothing else may move for a while."""
        self.retries[kind] += 1
        self.update()

    def close(self) -> None:
        self.update(force=True)  # the last answers land within REFRESH_S of the last redraw
        self.bar.close()
