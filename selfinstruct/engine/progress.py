"""The progress bar of a teacher job: the figures a user watches.

    accepted 37/100 | rej near_duplicate 21, instruction_words 9, blacklist 3 | $0.0123 | 512 tok/s

A job with a list of work (answer, judge) counts answered items instead of accepted records.
"""

from __future__ import annotations

import time

from tqdm import tqdm

from .costs import usd

REFRESH_S = 0.25  # redraw at most this often: a fast endpoint answers hundreds of times a second


class RunProgress:
    def __init__(self, job, enabled: bool = True):
        self.job = job
        target, done, unit = self._counts()
        self.bar = tqdm(total=target, initial=min(done, target or done), unit=unit, desc=unit, disable=not enabled)
        self.started = time.monotonic()
        self.tokens_before = job.session["completion_tokens"]
        self.drawn = 0.0

    def _counts(self) -> tuple[int | None, int, str]:
        job = self.job
        pending = job.task.pending()
        if job.task.target is None and pending is not None:
            answered = job.stats["responses"]
            return answered + pending, answered, "answered"
        return job.task.target, job.accepted, "accepted"

    def update(self) -> None:
        now = time.monotonic()
        if self.bar.disable or now - self.drawn < REFRESH_S:
            return
        self.drawn = now
        total, done, _ = self._counts()
        self.bar.total = total
        self.bar.n = min(done, total) if total else done
        rejected = ", ".join(f"{reason} {count}" for reason, count in list(self.job.rejected_counts().items())[:3]) or "none"
        tokens = self.job.session["completion_tokens"] - self.tokens_before
        rate = tokens / max(now - self.started, 1e-9)
        self.bar.set_postfix_str(f"rej {rejected} | {usd(self.job.cost().cost_usd)} | {rate:.0f} tok/s", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
