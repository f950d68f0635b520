"""The online runner: a job's requests over HTTP, many at once, within the limits and the budget.

It keeps up to `concurrency` requests in flight. Before each one it asks the job whether
another request is needed (the target, the end-of-run throttle), builds it, and reserves its
worst-case cost; a request that could break `max_cost` waits until answers settle below
their reservations, and the run ends when it still does not fit with nothing in flight. Each
answer goes to the job as it arrives. On Ctrl-C or any error, requests in flight are cancelled
and stay in the ledger as possibly billed.
"""

from __future__ import annotations

import asyncio

from ...teacher.client import RequestFailed, TeacherClient, TeacherRefused, TeacherSettings
from ...teacher.limiter import RateLimiter
from ..job import Job, JobStopped, Planned, StopReason
from ..progress import RunProgress
from .base import Runner


class OnlineRunner(Runner):
    def __init__(self, settings: TeacherSettings, *, progress: bool = True, client=None, watch=None):
        """`client` replaces the HTTP client (tests drive the runner with an in-process teacher);
        `watch()` is awaited beside the requests and raises when the teacher's process dies."""
        self.settings = settings
        self.show_progress = progress
        self.client = client
        self.watch = watch

    def run(self, job: Job) -> StopReason:
        self.job = job
        return asyncio.run(self._run())

    async def _run(self) -> StopReason:
        job = self.job
        progress = RunProgress(job, enabled=self.show_progress)
        limiter = RateLimiter(job.config.rpm, job.config.tpm)
        client = self.client or TeacherClient(self.settings, limiter, on_retry=progress.retried)
        in_flight: dict[asyncio.Task, dict] = {}  # -> the request's ledger event
        stop: StopReason | None = None
        watching = asyncio.create_task(self.watch()) if self.watch else None
        try:
            while True:
                capped = self._fill(client, in_flight)
                job.ledger.sync()  # the requests just started are on the disk before any is sent
                if not in_flight:
                    if job.checking:  # answers still being checked may reach the target, or not
                        job.drain(wait=True)
                        continue
                    stop = StopReason.MAX_COST if capped else None
                    break
                waiting = [*in_flight, watching] if watching else list(in_flight)
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
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
            job.cancel_in_flight(list(in_flight.values()))
            job.write_reports(_stop_reason(e).value)
            raise
        finally:
            if watching:
                watching.cancel()
            progress.close()
            await client.close()
        return stop or job.finished() or StopReason.WORK_DONE

    def _fill(self, client: TeacherClient, in_flight: dict) -> bool:
        """Start requests until `concurrency` are in flight or nothing more is worth asking;
        True when the next request waits for money: it could break the cost cap until the
        requests in flight settle below their reservations."""
        job = self.job
        while len(in_flight) < job.config.concurrency and not job.finished() and job.worth_another(len(in_flight)):
            planned = job.plan()
            if planned is None:
                return False
            if job.would_break_cap(planned.reserve_usd):
                return True
            request = job.send(planned)  # in the ledger, and reserved, before it is sent
            in_flight[asyncio.create_task(self._ask(client, planned))] = request
        return False

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
            self.job.give_up(request, str(e), attempts=1, refused=True)
            raise
        except RequestFailed as e:
            self.job.give_up(request, str(e), e.attempts, e.retry_errors)
        else:
            self.job.receive(request, completion, self.settings.model)


def _stop_reason(error: BaseException) -> StopReason:
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return StopReason.INTERRUPTED
    if isinstance(error, JobStopped):
        return error.reason
    if isinstance(error, TeacherRefused):
        return StopReason.REFUSED
    return StopReason.FAILED
