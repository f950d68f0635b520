"""The online runner: a job's requests over HTTP, many at once, within the limits and the budget.

It keeps up to `concurrency` requests in flight. Before each one it asks the job whether
another request is needed (the target, the end-of-run throttle), builds it, and reserves its
worst-case cost; a request that could break `max_cost` waits until answers settle below
their reservations, and the run ends when it still does not fit with nothing in flight. Each
answer goes to the job as it arrives. On Ctrl-C or any error, requests in flight are cancelled
and stay in the ledger as possibly billed.

`multi.MultiRunner` is this loop over several endpoints: it overrides how requests are started
(`_fill`) and settled (`_settle_one`), and wakes the loop when an endpoint can take a request
again with none in flight (`_wake`).
"""

from __future__ import annotations

import asyncio

from ...teacher.client import RequestFailed, TeacherClient, TeacherRefused, TeacherSettings
from ...teacher.limiter import RateLimiter
from ..endpoints import Via
from ..job import Job, JobStopped, Planned, StopReason
from ..progress import RunProgress
from .base import Runner


class OnlineRunner(Runner):
    def __init__(
        self, settings: TeacherSettings, *, progress: bool = True, client=None, watch=None, name: str | None = None
    ):
        """`client` replaces the HTTP client (tests drive the runner with an in-process teacher);
        `watch()` is awaited beside the requests and raises when the teacher's process dies;
        `name` is the endpoint's, as the ledger records it."""
        self.settings = settings
        self.show_progress = progress
        self.client = client
        self.watch = watch
        self.via = Via(name) if name else None

    def run(self, job: Job) -> StopReason:
        self.job = job
        return asyncio.run(self._run())

    async def _run(self) -> StopReason:
        job = self.job
        progress = RunProgress(job, enabled=self.show_progress)
        client = self._open(progress)
        in_flight: dict[asyncio.Task, dict] = {}  # -> the request's ledger event
        stop: StopReason | None = None
        watching = asyncio.create_task(self.watch()) if self.watch else None
        try:
            while True:
                capped = self._fill(client, in_flight)
                job.ledger.sync()  # the requests just started are on the disk before any is sent
                wake = self._wake()
                if not in_flight and wake is None:
                    if job.checking:  # answers still being checked may reach the target, or not
                        job.drain(wait=True)
                        continue
                    stop = StopReason.MAX_COST if capped else None
                    break
                waiting = [*in_flight, *(task for task in (watching, wake) if task is not None)]
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if wake is not None:
                    wake.cancel()
                    done.discard(wake)
                if watching in done:
                    watching.result()  # raises: the teacher is gone, and so are the answers in flight
                self._settle(done, in_flight)
                job.drain()
                job.report_if_due("running")
                progress.update()
        except BaseException as e:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            job.cancel_in_flight(self._unsettled(in_flight))
            job.write_reports(_stop_reason(e).value)
            raise
        finally:
            if watching:
                watching.cancel()
            progress.close()
            await client.close()
        return stop or job.finished() or StopReason.WORK_DONE

    def _open(self, progress: RunProgress):
        """What the requests go through (closed when the run ends)."""
        limiter = RateLimiter(self.job.config.rpm, self.job.config.tpm)
        return self.client or TeacherClient(self.settings, limiter, on_retry=progress.retried)

    def _wake(self) -> asyncio.Task | None:
        """A task that ends when a request could start although no answer came (None: only an
        answer lets one start)."""
        return None

    def _unsettled(self, in_flight: dict) -> list[dict]:
        """The requests sent and not settled when the run stops: those in flight."""
        return list(in_flight.values())

    def _fill(self, client: TeacherClient, in_flight: dict) -> bool:
        """Start requests until `concurrency` are in flight or nothing more is worth asking;
        True when the next request waits for money: it could break the cost cap until the
        requests in flight settle below their reservations."""
        job = self.job
        while len(in_flight) < job.config.concurrency and not job.finished() and job.worth_another(len(in_flight)):
            sent = self._send_next()
            if isinstance(sent, bool):
                return sent
            planned, request = sent
            in_flight[asyncio.create_task(self._ask(client, planned))] = request
        return False

    def _send_next(self) -> tuple[Planned, dict] | bool:
        """The next request and its ledger event (in the ledger, and reserved, before it is sent);
        False when the task has nothing to ask, True when it could break the cost cap."""
        planned = self.job.plan()
        if planned is None:
            return False
        if self.job.would_break_cap(planned.reserve_usd, planned.request_id):
            return True
        return planned, self.job.send(planned)

    async def _ask(self, client: TeacherClient, planned: Planned):
        return await client.complete(self.job.ask(planned.request), planned.request_id)

    def _settle(self, done: set[asyncio.Task], in_flight: dict) -> None:
        """Hand each finished request to the job; a refusal or a stop policy is raised once
        every finished request is recorded (their answers are paid for)."""
        stopped = None
        for task in done:
            request = in_flight.pop(task)
            try:
                self._settle_one(task, request)
            except (TeacherRefused, JobStopped) as e:
                stopped = stopped or e
        if stopped is not None:
            raise stopped

    def _settle_one(self, task: asyncio.Task, request: dict) -> None:
        try:
            completion = task.result()
        except TeacherRefused as e:
            self.job.give_up(request, str(e), attempts=1, refused=True, via=self.via)
            raise
        except RequestFailed as e:
            self.job.give_up(request, str(e), e.attempts, e.retry_errors, via=self.via)
        else:
            self.job.receive(request, completion, self.settings.model, via=self.via)


def _stop_reason(error: BaseException) -> StopReason:
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return StopReason.INTERRUPTED
    if isinstance(error, JobStopped):
        return error.reason
    if isinstance(error, TeacherRefused):
        return StopReason.REFUSED
    return StopReason.FAILED
