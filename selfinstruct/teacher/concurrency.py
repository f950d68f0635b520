"""How many requests one endpoint may have in flight, learned as answers come (AIMD).

    limit = AdaptiveConcurrency(most=32)
    epoch = limit.epoch                  # noted when a request starts
    limit.succeeded(latency_s=0.8)       # grows by about one per round of answers
    limit.overloaded(epoch)              # a 429 or a timeout: cut to 3/4
    limit.refused_at(5)                  # a 429 with no time said, sent with 5 in flight: at most 4
    limit.allowed                        # -> requests that may be in flight now

- It starts at `start` (4, or `most` if lower) and grows by half each round of answers (slow
  start; TCP doubles, but a round's answers often land together, and the extra requests then go
  out together: past a hard limit each is a 429) until the first sign of overload or `most`: a
  cold server is not hit with `most` at once, and the latency of a lightly loaded server is what
  later latencies are compared with.
- Additive increase: each answer adds 1/limit, one more request per round of answers.
- Multiplicative decrease: a 429, a timeout, or the latency risen to RISE times its baseline cuts
  the limit to CUT (Data Designer's reduce factor, 0.75) of what it was, never below `least`.
- A 429 with no time said (a limit on requests in flight, not a quota) for a request sent with N
  in flight says more than "fewer": the server's limit is below N, so the limit drops to N - 1 at
  most, whichever round it was sent in, and N is the ceiling. Without it, the requests sent at 3/4 of a level twice
  the server's limit are refused in turn, and cut again.
- One cut per round: the failures of requests started before the last cut were sent at the old
  level and say nothing new, so they do not cut again; a burst of 429s is one signal, not a fall
  to the floor (Data Designer's "cascade dampening").
- The level where the last cut happened is a ceiling: past it the limit grows SLOW times more
  slowly, so a server with a hard limit on requests in flight is probed for more only now and then
  (few 429s), and one whose limit rose is still found. Each cut at the same ceiling again (within
  one request) doubles that slowness, up to MAX_SLOW: a hard limit found twice is probed half as
  often each time (a probe is a 429), as TCP backs off its retransmissions; a cut at another level
  starts again at SLOW.
- Latency (a vLLM that queues instead of answering 429, Data Designer's issue 634): an average of
  the answers' latency against a baseline, the lowest average seen. The baseline does not drift up
  with time (it would follow the queue it should detect, and the limit would creep up with it);
  instead, a latency still risen with the limit at `least` means the server became slower for
  everyone (or the answers longer): that latency becomes the baseline, and the limit grows again.

A limit at `least` still sends (a request at a time): retries, Retry-After pauses and the
run's stop policies, not the limit, decide when an endpoint that only answers 429 is given up
(Data Designer's issue 575: AIMD alone stalled there).
"""

from __future__ import annotations

START = 4  # the first limit, unless `most` is lower
SLOW_START_STEP = 0.5  # growth per answer in slow start: x1.5 per round of answers
CUT = 0.75  # the limit after a sign of overload, as a share of what it was
SLOW = 10  # growth past the last ceiling is this many times slower
MAX_SLOW = 640  # ... doubled by each cut at the same ceiling, up to this
RISE = 2.0  # latency this many times its baseline is overload
SMOOTHING = 0.2  # weight of a new answer in the latency average
MIN_ANSWERS = 8  # answers before the latency is compared with its baseline


class AdaptiveConcurrency:
    def __init__(self, most: int, least: int = 1, start: int = START):
        self.most = most
        self.least = min(least, most)
        self.limit = float(max(self.least, min(start, most)))
        self.slow_start = self.limit < most
        self.ceiling: float | None = None  # where the last cut happened
        self.slowness = SLOW  # how much more slowly the limit grows past the ceiling
        self.epoch = 0  # cuts so far: a request notes it when it starts
        self.cuts: dict[str, int] = {}  # why the limit was cut, counted
        self.latency: float | None = None  # the average
        self.baseline: float | None = None
        self.answers = 0

    @property
    def allowed(self) -> int:
        return max(self.least, int(self.limit))

    def succeeded(self, latency_s: float | None = None, epoch: int | None = None) -> None:
        if latency_s is not None and self._latency_rose(latency_s):
            self.overloaded(self.epoch if epoch is None else epoch, "latency")
            return
        if self.slow_start:
            step = SLOW_START_STEP
        elif self.ceiling is not None and self.limit + 1 >= self.ceiling:
            step = 1 / (self.slowness * self.limit)
        else:
            step = 1 / self.limit
        self.limit = min(float(self.most), self.limit + step)
        self.slow_start = self.slow_start and self.limit < self.most

    def overloaded(self, epoch: int, why: str = "429") -> bool:
        """A sign of overload from a request started in `epoch`; True when it cut the limit."""
        if epoch != self.epoch:  # sent before the last cut: already accounted for
            return False
        same_ceiling = self.ceiling is not None and abs(self.limit - self.ceiling) < 1
        self.slowness = min(MAX_SLOW, self.slowness * 2) if same_ceiling else SLOW
        self.ceiling = self.limit
        self.limit = max(float(self.least), self.limit * CUT)
        self.slow_start = False
        self.epoch += 1
        self.cuts[why] = self.cuts.get(why, 0) + 1
        return True

    def refused_at(self, level: int) -> None:
        """A 429 without a time to wait for a request sent with `level` requests in flight
        (itself included): the server takes fewer than that at once."""
        self.limit = max(float(self.least), min(self.limit, level - 1.0))
        self.ceiling = float(level) if self.ceiling is None else min(self.ceiling, float(level))
        self.slow_start = False

    def _latency_rose(self, latency_s: float) -> bool:
        self.answers += 1
        self.latency = latency_s if self.latency is None else SMOOTHING * latency_s + (1 - SMOOTHING) * self.latency
        if self.answers < MIN_ANSWERS:
            return False
        if self.baseline is None or self.latency < self.baseline:
            self.baseline = self.latency
        rose = self.latency > RISE * self.baseline
        if rose and self.allowed == self.least:  # no fewer requests can bring it down: the new normal
            self.baseline = self.latency
            return False
        return rose
