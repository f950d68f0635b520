"""The multi-endpoint runner: one job's requests spread over several endpoints serving the same
model (vLLM replicas, a provider and its fallback, two accounts), each at its own pace.

It is the online runner's loop (`online.OnlineRunner`) with a `Router` in place of one client:

- A request goes to an endpoint with room: fewer requests in flight than its adaptive limit
  (`teacher.concurrency`: AIMD within `concurrency`, cut on 429s, timeouts and rising latency),
  and its own requests/tokens-per-minute limiter ready within HORIZON_S. Among those, the one
  whose limiter is ready first, then the one with the largest share of its limit free (times
  its `weight`). With none, the loop waits for an answer or for the first endpoint to have room.
- Each endpoint's client makes one attempt per request; this runner retries, so that a failed
  attempt can go elsewhere. A 429 cuts that endpoint's limit and pauses it alone, for its
  Retry-After (without one, only 429s that go on through cuts with no answer pause it, for a
  backoff that doubles: a concurrency limit needs the cut, not a pause); a timeout cuts its
  limit. A 429 with a Retry-After is a quota: unless the user or the server's headers gave the
  endpoint a rate, it goes on at QUOTA_SHARE of what it served in the last minute
  (`RateLimiter.learn_rpm`; raised again as the answers in flight at the 429 land), so a
  sliding-minute quota is not met by a 429 for every request once its first minute is spent.
- A refused or dropped connection (its process killed), or BENCH_AFTER server errors or
  timeouts in a row, bench the endpoint: no request goes there for BENCH_S, doubling up to MAX_BENCH_S, after which
  one request at a time probes it; an answer reopens it.
- A request whose attempt failed is asked again, at whichever endpoint has room, up to
  `max_attempts` attempts in all, then given up. It keeps its ledger event and its reservation:
  only an attempt that failed is asked again, and one request is never at two endpoints at once,
  so an answer that arrived is never paid for twice.
- An endpoint that refuses (401: a wrong key, 403, 404...) is named in a warning and dropped,
  and its request asked elsewhere; when the last endpoint refuses, the run stops as with one.

Each endpoint keeps its own client, so its own dialect (`teacher.dialect`: the structured-output
mode and the parameters it takes). The ledger names the endpoint of each answer (`endpoint`)
and the failed attempts at each (`endpoint_errors`); an answer is priced at its endpoint's price,
while a request reserves the dearest endpoint's worst case (`JobConfig.price`): failover may
send it anywhere. Time comes from `clock` and `sleep`, which tests replace.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from ...errors import warn
from ...teacher.client import RequestFailed, TeacherClient, TeacherRefused
from ...teacher.concurrency import AdaptiveConcurrency
from ...teacher.endpoint import Endpoint
from ...teacher.limiter import RateLimiter, acquired_at
from ..config import JobConfig
from ..endpoints import Via
from ..job import Planned
from ..progress import RunProgress
from .online import OnlineRunner

HORIZON_S = 1.0  # a request goes to an endpoint whose limiter lets it go within this many seconds
BENCH_AFTER = 3  # server errors, bad answers or timeouts in a row that bench an endpoint
BENCH_S = 2.0  # the first bench; each failed probe doubles it
MAX_BENCH_S = 60.0
BACKOFF_S = 1.0  # the pause after 429s without Retry-After through two cuts with no answer; then doubled
MAX_BACKOFF_S = 60.0
QUOTA_SHARE = 0.97  # of what an endpoint served in the last minute, the rate learned from its quota's 429


class Lane:
    """One endpoint as the router sees it: its client, limiter, adaptive limit and health."""

    def __init__(self, endpoint: Endpoint, config: JobConfig, clock: Callable[[], float], sleep):
        spec = endpoint.spec
        self.name = endpoint.name
        self.clock = clock
        self.settings = replace(endpoint.settings, max_attempts=1, reached=True)  # the runner retries
        self.limiter = RateLimiter(
            (spec and spec.rpm) or config.rpm, (spec and spec.tpm) or config.tpm, clock=clock, sleep=sleep
        )
        self.client = endpoint.client or TeacherClient(self.settings, self.limiter)
        self.limit = AdaptiveConcurrency((spec and spec.concurrency) or config.concurrency)
        self.price = config.endpoint_price(spec) if spec is not None else None
        self.weight = spec.weight if spec is not None else 1.0
        self.in_flight = 0
        self.benched_until: float | None = None
        self.bench_s = BENCH_S
        self.refusals = 0  # 429s since its last answer
        self.backoff_s = BACKOFF_S
        self.streak = 0  # server errors, bad answers or timeouts in a row
        self.dropped: str | None = None  # why it was dropped
        self.reached = False  # it has answered like an API: an answer, or an HTTP error
        self.answered_sent_at: deque[float] = deque()  # when its answers of the last minute were sent
        self.last_error = ""

    def delay(self) -> float:
        """Seconds until it could send one more request (inf: never again, or not before an answer)."""
        if self.dropped is not None:
            return float("inf")
        if self.benched_until is not None:  # one probe at a time
            return max(0.0, self.benched_until - self.clock()) if self.in_flight == 0 else float("inf")
        return self.limiter.delay() if self.in_flight < self.limit.allowed else float("inf")

    def free_share(self) -> float:
        return self.weight * (self.limit.allowed - self.in_flight) / self.limit.allowed

    # ------------------------------------------------------------ what an attempt said

    def succeeded(self, latency_s: float | None, epoch: int, sent_at: float | None = None) -> None:
        self.reached = True
        if sent_at is not None:
            self.answered_sent_at.append(sent_at)
        served = self._served_last_minute()
        if self.limiter.learned:  # answers that were in flight at the 429 count too: the quota is at least them
            self.limiter.learn_rpm(max(self.limiter.requests.per_minute, QUOTA_SHARE * served))
        self.streak = 0
        self.refusals, self.backoff_s = 0, BACKOFF_S
        if self.benched_until is not None:
            self.benched_until, self.bench_s = None, BENCH_S
            warn(f"endpoint {self.name} answers again; requests go to it again")
        self.limit.succeeded(latency_s, epoch)

    def failed(self, error: RequestFailed, epoch: int, level: int | None = None) -> None:
        """`level`: the requests in flight here when it was sent, itself included."""
        self.reached = self.reached or error.kind.startswith("HTTP")
        self.last_error = str(error)
        if error.kind == "HTTP 429":
            cut = self.limit.overloaded(epoch, "429")
            self.refusals += 1
            if error.retry_after_s is not None:  # a quota: it says when, and its rate is learned
                self.limiter.learn_rpm(QUOTA_SHARE * self._served_last_minute())
                self.limiter.pause(min(error.retry_after_s, MAX_BACKOFF_S))  # this endpoint only
            else:  # no time said: a limit on requests in flight, below `level`
                if level is not None:
                    self.limit.refused_at(level)
                if cut and self.refusals > 1:  # the cut answers it, unless the 429s go on through cuts
                    self.limiter.pause(self.backoff_s)  # with no answer between
                    self.backoff_s = min(MAX_BACKOFF_S, self.backoff_s * 2)
        else:
            if error.kind == "timeout":  # overloaded, or hung: a streak of them benches it too
                self.limit.overloaded(epoch, "timeout")
            self.streak += 1
            if error.kind == "connection" or self.streak >= BENCH_AFTER or self.benched_until is not None:
                self._bench(str(error))

    def _served_last_minute(self) -> int:
        start = self.clock() - 60
        while self.answered_sent_at and self.answered_sent_at[0] < start:
            self.answered_sent_at.popleft()
        return len(self.answered_sent_at)

    def _bench(self, why: str) -> None:
        if self.benched_until is None:
            warn(f"endpoint {self.name} is failing ({why}); its requests go to the others, and it is tried again later")
        self.benched_until = self.clock() + self.bench_s
        self.bench_s = min(MAX_BENCH_S, self.bench_s * 2)

    def drop(self, why: str, others: list[str]) -> None:
        self.dropped = why
        warn(f"endpoint {self.name} is dropped: {why}\nThe run goes on with {', '.join(others)}.")


class Router:
    """The endpoints, and which one takes the next request."""

    def __init__(self, lanes: list[Lane], clock: Callable[[], float]):
        self.lanes = lanes
        self.clock = clock

    def pick(self) -> Lane | None:
        """The endpoint for the next request, or None when none has room now."""
        ready = [(lane.delay(), -lane.free_share(), i) for i, lane in enumerate(self.lanes)]
        delay, _, i = min(ready)
        return self.lanes[i] if delay <= HORIZON_S else None

    def room_at(self) -> float | None:
        """When the first endpoint will have room with no answer coming (None: not before an answer)."""
        delay = min(lane.delay() for lane in self.lanes)
        # a millisecond past it: a wake at exactly HORIZON_S may find the limiter a rounding error short
        return None if delay == float("inf") else self.clock() + max(0.0, delay - HORIZON_S) + 0.001

    def unreachable(self) -> TeacherRefused | None:
        """Every endpoint failed to connect, none ever answered: wrong URLs, not busy servers (as
        one endpoint's first connection failure is, see `teacher.client`)."""
        if any(lane.reached or (lane.benched_until is None and lane.dropped is None) for lane in self.lanes):
            return None
        causes = "; ".join(f"{lane.name}: {lane.dropped or lane.last_error}" for lane in self.lanes)
        return TeacherRefused(f"None of the endpoints can be reached ({causes}); check {{base_url}}", "base_url")

    def open_names(self, but: Lane) -> list[str]:
        return [lane.name for lane in self.lanes if lane is not but and lane.dropped is None]

    async def close(self) -> None:
        for lane in self.lanes:
            await lane.client.close()


@dataclass
class Attempt:
    lane: Lane
    planned: Planned
    epoch: int  # the lane's limit epoch when it was sent
    level: int  # the requests in flight at the lane when it was sent, itself included


@dataclass
class Tries:
    """A request's failed attempts so far, over all endpoints."""

    attempts: int = 0
    retry_errors: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # endpoint name -> failed attempts there

    def failed(self, lane: Lane, error: Exception) -> None:
        self.attempts += 1
        self.retry_errors.append(f"{lane.name}: {error}")
        self.errors[lane.name] = self.errors.get(lane.name, 0) + 1


class MultiRunner(OnlineRunner):
    def __init__(
        self,
        endpoints: list[Endpoint],
        *,
        progress: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable] = asyncio.sleep,
    ):
        super().__init__(endpoints[0].settings, progress=progress)
        self.endpoints = endpoints
        self.clock = clock
        self.sleep = sleep

    def _open(self, progress: RunProgress) -> Router:
        self.progress = progress
        self.router = Router([Lane(e, self.job.config, self.clock, self.sleep) for e in self.endpoints], self.clock)
        self.again: deque[tuple[Planned, dict]] = deque()  # attempts that failed, to ask again
        self.sent: dict[asyncio.Task, Attempt] = {}
        self.tries: dict[str, Tries] = {}  # request_id -> its failed attempts
        self.blocked = False  # a request waits for an endpoint with room
        return self.router

    def _fill(self, router: Router, in_flight: dict) -> bool:
        job = self.job
        self.blocked = False
        while self.again or (not job.finished() and job.worth_another(len(in_flight))):
            lane = router.pick()
            if lane is None:
                self.blocked = True
                return False
            sent = self.again.popleft() if self.again else self._send_next()
            if isinstance(sent, bool):
                return sent
            planned, request = sent
            task = asyncio.create_task(self._ask_at(lane, planned))
            in_flight[task] = request
            lane.in_flight += 1
            self.sent[task] = Attempt(lane, planned, lane.limit.epoch, lane.in_flight)
        return False

    async def _ask_at(self, lane: Lane, planned: Planned):
        """The answer, when it was sent, and the seconds the endpoint took (not those spent waiting
        for its limiter)."""
        completion = await lane.client.complete(self.job.ask(planned.request), planned.request_id)
        sent_at = acquired_at.get()
        return completion, sent_at, (self.clock() - sent_at if sent_at is not None else completion.latency_s)

    def _wake(self) -> asyncio.Task | None:
        at = self.router.room_at() if self.blocked else None
        return None if at is None else asyncio.create_task(self.sleep(max(0.0, at - self.clock())))

    def _unsettled(self, in_flight: dict) -> list[dict]:
        return [*in_flight.values(), *(request for _, request in self.again)]

    def _settle_one(self, task: asyncio.Task, request: dict) -> None:
        attempt = self.sent.pop(task)
        lane, request_id = attempt.lane, attempt.planned.request_id
        lane.in_flight -= 1
        try:
            completion, sent_at, latency_s = task.result()
        except TeacherRefused as e:
            self._refused(attempt, request, e)
        except RequestFailed as e:
            lane.failed(e, attempt.epoch, attempt.level)
            self.progress.retried(f"{lane.name} {e.kind}")
            tries = self.tries.setdefault(request_id, Tries())
            tries.failed(lane, e)
            unreachable = self.router.unreachable()
            if unreachable is not None:
                del self.tries[request_id]
                via = Via(lane.name, errors=tries.errors)
                self.job.give_up(request, str(unreachable), tries.attempts, tries.retry_errors, refused=True, via=via)
                raise unreachable
            if tries.attempts < self.job.config.max_attempts:
                self.again.append((attempt.planned, request))
                return
            del self.tries[request_id]
            self.job.give_up(
                request, str(e), tries.attempts, tries.retry_errors, via=Via(lane.name, errors=tries.errors)
            )
        else:
            lane.succeeded(latency_s, attempt.epoch, sent_at)
            tries = self.tries.pop(request_id, Tries())
            completion.attempts += tries.attempts
            completion.retry_errors = [*tries.retry_errors, *completion.retry_errors]
            self.job.receive(request, completion, lane.settings.model, via=Via(lane.name, lane.price, tries.errors))

    def _refused(self, attempt: Attempt, request: dict, refusal: TeacherRefused) -> None:
        """Drop the endpoint and ask elsewhere; the last endpoint's refusal stops the run."""
        lane = attempt.lane
        tries = self.tries.setdefault(attempt.planned.request_id, Tries())
        tries.failed(lane, refusal)
        others = self.router.open_names(but=lane)
        if not others:
            self.job.give_up(
                request, str(refusal), tries.attempts, refused=True, via=Via(lane.name, errors=tries.errors)
            )
            raise refusal
        if lane.dropped is None:
            lane.drop(str(refusal), others)
        self.again.append((attempt.planned, request))
