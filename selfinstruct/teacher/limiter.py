"""Client-side requests/minute and tokens/minute limits, paced smoothly.

Two token buckets that refill continuously at their per-minute rate. Each holds at most
`burst_s` seconds of its rate (and at least one request), so `--rpm 120` sends about 2
requests a second from the start instead of its whole minute's quota in the first second:
providers count over a sliding window and refuse the rest of such a minute. A request larger
than a bucket waits for a full bucket and leaves it in debt, so the long-run rate holds.

The provider has the last word:
- `x-ratelimit-limit-*` headers replace the limits the user did not set, and a low
  `x-ratelimit-remaining-*` drains our bucket; `remaining: 0` with `x-ratelimit-reset-*`
  pauses until the reset;
- a 429 pauses the whole limiter (`pause`) for its Retry-After, not just the request that got it.
- a server that says no rate but answers 429 with a Retry-After (a quota over a sliding minute)
  has its rate learned (`learn_rpm`): what it served over the last minute, a little less; a
  learned rate creeps up by LEARNED_GROWTH per request, so a quota that rose is found again.

Time comes from `clock` and `sleep`, which tests replace with a simulated clock.

Several endpoints (`engine.runners.multi`) have a limiter each: `delay` tells the router how long
one more request would wait at this one, `acquired_at` when the current task's request went out
(so its latency is the server's, not the time it waited here).

We write this instead of using aiolimiter because limits change while running (headers), one
acquire takes two budgets at once, the whole limiter must pause on a 429, and tests need the clock.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar

BURST_S = 1.0  # a bucket holds this many seconds of its rate
LEARNED_GROWTH = 0.01  # requests/minute a learned rate gains per request: about 1% a minute

# When the request of the current asyncio task left the limiter (each request runs in its own task).
acquired_at: ContextVar[float | None] = ContextVar("acquired_at", default=None)


class _Bucket:
    def __init__(self, per_minute: float | None, now: float, burst_s: float, least: float = 1.0):
        self.burst_s = burst_s
        self.least = least  # the smallest capacity: one request (tokens: no floor beyond zero)
        self.per_minute = per_minute
        self.level = self.capacity
        self.stamp = now

    @property
    def capacity(self) -> float:
        return max(self.least, (self.per_minute or 0.0) / 60 * self.burst_s)

    def set_rate(self, per_minute: float, now: float) -> None:
        self.refill(now)
        self.per_minute = per_minute
        self.level = min(self.level, self.capacity)

    def refill(self, now: float) -> None:
        if self.per_minute:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` may go (a request larger than the bucket waits for a full one)."""
        if not self.per_minute:
            return 0.0
        need = min(amount, self.capacity) - self.level
        return max(0.0, need * 60 / self.per_minute)

    def take(self, amount: float) -> None:
        if self.per_minute:
            self.level -= amount  # may go below zero: the debt of a request larger than the bucket


class RateLimiter:
    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        burst_s: float = BURST_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable] = asyncio.sleep,
    ):
        self.clock = clock
        self.sleep = sleep
        now = clock()
        self.requests = _Bucket(rpm, now, burst_s)
        self.tokens = _Bucket(tpm, now, burst_s, least=0.0)
        self._user_set = {"requests": rpm is not None, "tokens": tpm is not None}
        self.learned = False  # the requests/minute rate was learned from 429s, not given by the user or headers
        self.paused_until = now
        self.waiting = 0  # requests inside `acquire`
        self._lock = asyncio.Lock()  # first come, first served

    async def acquire(self, tokens: int) -> None:
        self.waiting += 1
        try:
            async with self._lock:
                while True:
                    now = self.clock()
                    self.requests.refill(now)
                    self.tokens.refill(now)
                    delay = max(self.paused_until - now, self.requests.wait_for(1), self.tokens.wait_for(tokens))
                    if delay <= 1e-9:  # a rounding error, not a wait: a simulated clock would not move
                        if self.learned:
                            self.requests.set_rate(self.requests.per_minute + LEARNED_GROWTH, now)
                        self.requests.take(1)
                        self.tokens.take(tokens)
                        acquired_at.set(now)
                        return
                    await self.sleep(delay)
        finally:
            self.waiting -= 1

    def delay(self) -> float:
        """Seconds until one more request could go, behind those already waiting (its tokens
        are not known yet: only the requests/minute limit and a pause count)."""
        now = self.clock()
        bucket = self.requests
        bucket.refill(now)
        paced = max(0.0, 1 + self.waiting - bucket.level) * 60 / bucket.per_minute if bucket.per_minute else 0.0
        return max(self.paused_until - now, paced, 0.0)

    def pause(self, seconds: float) -> None:
        """Hold every request for `seconds` (the provider said so: a 429's Retry-After)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def learn_rpm(self, served_per_minute: float) -> None:
        """The server refused our pace with a quota: go at `served_per_minute` (what it served over
        the last minute), unless the user or the server's headers set the rate."""
        if self._user_set["requests"] or (self.requests.per_minute and not self.learned) or served_per_minute < 1:
            return
        self.requests.set_rate(served_per_minute, self.clock())
        self.learned = True

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        now = self.clock()
        for kind, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if limit and not self._user_set[kind]:
                bucket.set_rate(limit, now)
                self.learned = self.learned and kind != "requests"  # the server's word replaces a learned rate
            if remaining is not None and bucket.per_minute:
                bucket.refill(now)
                bucket.level = min(bucket.level, remaining)
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}") or "")
                if remaining <= 0 and reset:
                    self.pause(reset)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """OpenAI's reset/retry durations: "1s", "6m0s", "20ms", or plain seconds "2".

    parse_duration("6m0s") -> 360.0
    """
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
