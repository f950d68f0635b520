"""Rate limits, Retry-After and prices."""

import asyncio

import pytest

from selfinstruct.pricing import price_for
from selfinstruct.teacher.client import _retry_after
from selfinstruct.teacher.limiter import RateLimiter, parse_duration


class Clock:
    """Simulated time for the limiter: `sleep` moves the clock instead of waiting."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter(clock: Clock, **limits) -> RateLimiter:
    return RateLimiter(clock=clock, sleep=clock.sleep, **limits)


def grant_times(limiter: RateLimiter, clock: Clock, n: int, tokens: int = 0) -> list[float]:
    async def acquire_all():
        times = []
        for _ in range(n):
            await limiter.acquire(tokens)
            times.append(clock.now)
        return times

    return asyncio.run(acquire_all())


def test_requests_per_minute_are_paced_from_the_start():
    """120/min is 2 a second from the first second: a burst of one second's worth, then one
    request every 0.5 s, not the whole minute's quota at once."""
    clock = Clock()
    times = grant_times(limiter(clock, rpm=120), clock, 10)
    start = times[0]
    assert [round(t - start, 3) for t in times] == [0, 0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]


def test_tokens_per_minute_pace_and_a_large_request_leaves_a_debt():
    clock = Clock()
    tokens = limiter(clock, tpm=6000)  # 100 tokens a second, a bucket of 100
    times = grant_times(tokens, clock, 3, tokens=300)
    # the first goes at once and leaves 200 tokens of debt: 3 s until the bucket is full again
    assert [round(t - times[0], 3) for t in times] == [0, 3.0, 6.0]


def sliding_window_run(
    limiter: RateLimiter, clock: Clock, seconds: float, limit: int = 120, pause: bool = True
) -> tuple[int, int]:
    """Requests go out as the limiter lets them; a provider refuses any request that would make
    more than `limit` in the last 60 s with a 429 and Retry-After (until a slot frees), which
    pauses the limiter as the client does (`pause`). Returns (served, refused)."""
    window: list[float] = []
    served = refused = 0

    async def run():
        nonlocal served, refused
        end = clock.now + seconds
        while clock.now < end:
            await limiter.acquire(0)
            now = clock.now
            while window and window[0] <= now - 60:
                window.pop(0)
            if len(window) >= limit:
                refused += 1
                if pause:
                    limiter.pause(window[0] + 60 - now)
            else:
                window.append(now)
                served += 1

    asyncio.run(run())
    return served, refused


def test_paced_requests_fill_a_sliding_minute_without_a_429_storm():
    """The provider counts 120 requests over any sliding minute: smooth pacing serves at least
    95% of the configured rate with at most 2% of requests refused. A bucket holding the whole
    minute (a burst of 120 at start) whose 429s pause nothing, as before, gets a 429 storm."""
    clock = Clock()
    served, refused = sliding_window_run(limiter(clock, rpm=120), clock, seconds=600)
    assert served / 10 >= 0.95 * 120
    assert refused / (served + refused) <= 0.02

    clock = Clock()
    served, refused = sliding_window_run(limiter(clock, rpm=120, burst_s=60), clock, seconds=600, pause=False)
    assert refused / (served + refused) > 0.05  # 119 of 1,320 here


def test_a_429_pauses_every_request_and_so_does_an_exhausted_window():
    clock = Clock()
    shared = limiter(clock, rpm=6000)
    shared.pause(5.0)  # a 429 said Retry-After: 5
    assert grant_times(shared, clock, 1)[0] == pytest.approx(1005.0)
    shared.update_from_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert grant_times(shared, clock, 1)[0] == pytest.approx(1007.0)


def test_provider_headers_set_the_limits_we_did_not():
    limiter = RateLimiter(rpm=10)
    limiter.update_from_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "150000",
        }
    )
    assert limiter.requests.per_minute == 10  # the user's own limit wins
    assert limiter.requests.level <= 3
    assert limiter.tokens.per_minute == 200000 and limiter.tokens.level <= 150000


@pytest.mark.parametrize(
    "text, seconds", [("1s", 1), ("6m0s", 360), ("20ms", 0.02), ("2", 2), ("1h", 3600), ("soon", None)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_retry_after_forms():
    assert _retry_after({"retry-after": "3"}) == 3
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _retry_after({}) is None
    assert 0 <= _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0  # a past date: go now


def test_prices():
    assert price_for("gpt-4o-mini-2024-07-18").input == 0.15  # dated snapshots match
    assert price_for("gpt-4.1-mini").output == 1.60  # longest prefix wins over gpt-4.1
    assert price_for("llama-3-70b") is None
    custom = price_for("llama-3-70b", price_in=0.5, price_out=1.0)
    assert (custom.input, custom.output, custom.cached_input) == (0.5, 1.0, 0.5)
    assert price_for("gpt-4o-mini").cost(1_000_000, 1_000_000, cached_tokens=500_000) == pytest.approx(
        0.075 + 0.0375 + 0.60
    )
