"""The Batch API runner: a job's requests in batches, at the provider's batch price (OpenAI: -50%).

Each round of requests becomes one batch (more when past 50,000 requests or 200 MB):
1. the request events (each reserving its worst case at the batch price) and a `batch` event
   naming them go to the ledger and the disk before anything is uploaded, so the cost cap
   holds the whole batch before it exists;
2. the input file is uploaded (`batch_file`) and the batch created with our key in its
   metadata (`batch_created`), each recorded as soon as known;
3. it is polled until it ends. Its answers become responses, priced at the batch discount; its
   failed lines and the lines it never reached (expired, failed, cancelled) are asked again in
   the next batch, at most `max_submissions` times in all, then given up; `batch_ended` closes it.
   The answers are cleaned before the next round is built.

A rerun after Ctrl-C, `kill -9` or a reboot finds the open batches in the ledger and goes back
to polling them. A batch whose creation was not recorded is looked up by its key, an input
file by its name, and the requests are read back from the uploaded file: nothing is uploaded,
created or paid for twice.

A job with a record target (a bootstrap) runs in rounds: the first is sized from the target at
the task's assumed records per answer, and is at most `first_round` requests (that rate is a
guess); later ones are sized from the records per answer so far (the estimate that throttles
the end of an online run) with a small margin, so a run stops near its target. What lands past
the target is kept in the run's surplus (see `job`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tqdm import tqdm

from ...teacher.batch import ENDPOINT, MAX_BYTES, MAX_REQUESTS, BatchAPI, RemoteBatch
from ...teacher.client import TeacherSettings, retried_status
from ...teacher.dialect import Body, Dialect, EmptyAnswer, read_answer
from ..job import Job, JobStopped, StopReason
from .base import Runner

FIRST_ROUND = 20  # the most requests in the first batch of a job with a target, before its yield is known
# A round asks for what the yield says is missing, plus 10% (rounded) but at most a first round
# more: a shortfall costs one more (small) round of hours, an excess is paid for and not needed.
ROUND_MARGIN = 0.1
MAX_SUBMISSIONS = 3  # batches one request may go in before it is given up
POLL_S = 30.0


class BatchesLeftRunning(KeyboardInterrupt):
    """Ctrl-C while batches run at the provider: they go on, and a rerun collects them."""

    def __init__(self, batch_ids: list[str]):
        super().__init__()
        self.batch_ids = batch_ids


@dataclass
class Submission:
    """A batch of ours: its key, the requests it carries (ledger events) and their bodies."""

    key: str
    requests: dict[str, dict]
    bodies: dict[str, Body]
    file_id: str | None = None
    batch_id: str | None = None
    done: set[str] = field(default_factory=set)  # answered or given up in this batch

    def file_name(self, namespace: str) -> str:
        return f"selfinstruct-{namespace}-{self.key}.jsonl"

    def input_file(self) -> bytes:
        return "".join(
            json.dumps({"custom_id": rid, "method": "POST", "url": ENDPOINT, "body": body.json}, ensure_ascii=False)
            + "\n"
            for rid, body in self.bodies.items()
        ).encode()


class BatchRunner(Runner):
    def __init__(
        self,
        settings: TeacherSettings,
        *,
        progress: bool = True,
        api: BatchAPI | None = None,
        poll_s: float = POLL_S,
        first_round: int = FIRST_ROUND,
        max_submissions: int = MAX_SUBMISSIONS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.model = settings.model
        self.dialect = Dialect(settings.model, settings.base_url, settings.response_format, settings.first_format)
        self.api = api or BatchAPI(settings)
        self.show_progress = progress
        self.poll_s = poll_s
        self.first_round = first_round
        self.max_submissions = max_submissions
        self.sleep = sleep

    def run(self, job: Job) -> StopReason:
        self.job = job
        self.namespace = hashlib.sha256(job.namespace.encode()).hexdigest()[:12]  # this run directory
        self.again: dict[str, tuple[dict, Body]] = {}  # requests to ask in the next batch
        self.cut_by_cap = False  # a round was cut short by --max-cost
        capped = False
        try:
            for submission in self._recover():
                self._collect(submission)
            while not job.finished():
                submission, capped = self._next_submission()
                if submission is None:
                    break
                self._submit(submission)
                self._collect(submission)
        except (KeyboardInterrupt, JobStopped) as e:
            job.write_reports(e.reason.value if isinstance(e, JobStopped) else StopReason.INTERRUPTED.value)
            # the ledger knows every batch created and not yet ended: recovered ones not collected yet included
            running = [batch.batch_id for batch in job.ledger.state.open_batches() if batch.batch_id is not None]
            if isinstance(e, KeyboardInterrupt) and running:
                raise BatchesLeftRunning(running) from None
            raise
        return (StopReason.MAX_COST if capped else None) or job.finished() or StopReason.WORK_DONE

    # ------------------------------------------------------------ building a batch

    def _next_submission(self) -> tuple[Submission | None, bool]:
        """The next round: requests to ask again first, then new ones while they are worth it
        and fit the limits and the cost cap; (None, capped) when there is nothing to send."""
        job = self.job
        requests: dict[str, dict] = {}
        bodies: dict[str, Body] = {}
        size, capped = 0, False
        for request_id, (request, body) in list(self.again.items())[:MAX_REQUESTS]:
            requests[request_id], bodies[request_id] = request, body.adapted(self.dialect)
            size += len(json.dumps(body.json))
            del self.again[request_id]
        round_size, fresh = self._round_size(), 0
        while len(requests) < round_size and not job.finished():
            planned = job.plan(batch=True)
            if planned is None:
                break
            body = self.dialect.body(job.ask(planned.request))
            line = len(json.dumps(body.json)) + 200  # + the line's envelope
            # Once the cap has cut a round, a round takes hours for what the cap frees: one
            # without room for `first_round` new requests is not worth its wait.
            least = min(self.first_round, round_size - len(requests)) if self.cut_by_cap and not fresh else 1
            if job.would_break_cap(planned.reserve_usd * least):
                capped = self.cut_by_cap = True
                break
            if size + line > MAX_BYTES:
                break
            request = job.send(planned)
            requests[planned.request_id], bodies[planned.request_id] = request, body
            size += line
            fresh += 1
        if not requests:
            return None, capped
        key = f"b{len(job.ledger.state.batches) + 1:04d}"
        job.ledger.batch(key, list(requests))  # synced: on the disk before anything is uploaded
        return Submission(key, requests, bodies), capped

    def _round_size(self) -> int:
        """All there is to ask (up to the limit of one batch); a job with a target asks for what
        its yield says is missing: the assumed yield at first, for at most a first round, then
        the yield seen (another first round while answers came and none was kept)."""
        job = self.job
        if job.target is None:
            return MAX_REQUESTS
        needed = job.requests_to_target()
        if math.isinf(needed):
            return self.first_round
        size = math.ceil(needed) + min(round(needed * ROUND_MARGIN), self.first_round)
        return min(size, self.first_round if not job.state.answers_decided else MAX_REQUESTS)

    def _submit(self, submission: Submission) -> None:
        ledger = self.job.ledger
        submission.file_id = self.api.upload(submission.file_name(self.namespace), submission.input_file())
        ledger.batch_file(submission.key, submission.file_id)
        remote = self.api.create(submission.file_id, self._metadata(submission))
        submission.batch_id = remote.id
        ledger.batch_created(submission.key, remote.id)

    def _metadata(self, submission: Submission) -> dict:
        return {"selfinstruct_run": self.namespace, "selfinstruct_batch": submission.key}

    # ------------------------------------------------------------ after a restart

    def _recover(self) -> list[Submission]:
        """The batches the ledger shows open, back in flight: found or made at the provider."""
        job, found = self.job, []
        for record in job.ledger.state.open_batches():
            requests = {rid: job.ledger.state.requests[rid] for rid in record.request_ids}
            job.ledger.reopen(list(requests))
            for request in requests.values():
                job.work.sent(request)
            submission = Submission(record.key, requests, {}, record.file_id, record.batch_id)
            remote = self._find_or_create(submission)
            if remote is None:  # never uploaded: nothing was sent, ask again from scratch
                for request in requests.values():
                    job.give_up(request, "the run stopped before its batch was uploaded", attempts=0, refused=True)
                job.ledger.batch_ended(record.key, "never_sent")
                continue
            submission.bodies = {
                line["custom_id"]: Body.of(line["body"]) for line in self.api.lines(remote.input_file_id)
            }
            found.append(submission)
        return found

    def _find_or_create(self, submission: Submission) -> RemoteBatch | None:
        ledger = self.job.ledger
        if submission.batch_id is not None:
            return self.api.retrieve(submission.batch_id)
        remote = self.api.find(self._metadata(submission))  # created, but not recorded
        if remote is None:
            if submission.file_id is None:
                submission.file_id = self.api.find_file(submission.file_name(self.namespace))
                if submission.file_id is None:
                    return None
                ledger.batch_file(submission.key, submission.file_id)
            remote = self.api.create(submission.file_id, self._metadata(submission))
        submission.batch_id = remote.id
        ledger.batch_created(submission.key, remote.id)
        return remote

    # ------------------------------------------------------------ collecting

    def _collect(self, submission: Submission) -> None:
        """Every line of an ended batch into the ledger (all are paid for), then a stop policy
        that one of them tripped, if any."""
        remote = self._wait(submission)
        stopped = None
        for line in self.api.lines(remote.output_file_id) + self.api.lines(remote.error_file_id):
            try:
                self._read_line(submission, line, remote)
            except JobStopped as e:
                stopped = stopped or e
        for request_id in sorted(set(submission.requests) - submission.done):  # never reached
            try:
                self._ask_again(submission, request_id, f"the batch ended {remote.status} before answering it")
            except JobStopped as e:
                stopped = stopped or e
        self.job.ledger.batch_ended(
            submission.key, remote.status, total=remote.total, completed=remote.completed, failed=remote.failed
        )
        if stopped is not None:
            raise stopped
        self.job.drain(wait=True)  # cleaned before the next round is built
        self.job.write_reports("running")

    def _wait(self, submission: Submission) -> RemoteBatch:
        started = time.monotonic()
        accepted = self.job.state.accepted
        target = f"{accepted}/{self.job.target} accepted" if self.job.target else f"{accepted} kept"
        bar = tqdm(
            total=len(submission.requests),
            desc=f"batch {submission.key} ({target})",
            unit="req",
            disable=not self.show_progress,
        )
        try:
            while True:
                remote = self.api.retrieve(submission.batch_id)
                bar.n = remote.completed + remote.failed
                bar.set_postfix_str(
                    f"{remote.status} | {remote.completed} done, {remote.failed} failed | "
                    f"{time.monotonic() - started:.0f} s",
                    refresh=True,
                )
                if remote.ended:
                    return remote
                self.sleep(self.poll_s)
        finally:
            bar.close()

    def _read_line(self, submission: Submission, line: dict, remote: RemoteBatch) -> None:
        request_id = line.get("custom_id")
        if request_id not in submission.requests or request_id in submission.done:
            return
        response = line.get("response") or {}
        error = line.get("error") or (response.get("body") or {}).get("error") or {}
        status = response.get("status_code") or 0
        if status == 200:
            try:
                completion = read_answer(
                    response.get("body"),
                    submission.bodies[request_id],
                    latency_s=None,
                    attempts=self.job.ledger.state.submissions.get(request_id, 1),
                    provider_request_id=response.get("request_id"),
                    batch_id=remote.id,
                )
            except EmptyAnswer as e:
                self._ask_again(submission, request_id, str(e))
                return
            submission.done.add(request_id)
            self.job.receive(submission.requests[request_id], completion, self.model)
            return
        message = str(error.get("message") or error.get("code") or f"HTTP {status}")
        learned = self.dialect.learn(status, message, error.get("param"), submission.bodies[request_id])
        if learned or not status or retried_status(status):
            self._ask_again(submission, request_id, f"HTTP {status}: {message}")
        else:
            submission.done.add(request_id)
            self.job.give_up(submission.requests[request_id], f"HTTP {status}: {message}", attempts=1)

    def _ask_again(self, submission: Submission, request_id: str, why: str) -> None:
        """In the next batch, unless it has been in enough of them already."""
        submission.done.add(request_id)
        request = submission.requests[request_id]
        if self.job.ledger.state.submissions.get(request_id, 1) >= self.max_submissions:
            self.job.give_up(request, f"{why} (in {self.max_submissions} batches)", attempts=self.max_submissions)
        else:
            self.again[request_id] = (request, submission.bodies[request_id])


def cancel_batches(config, batch_ids: list[str]) -> None:
    """Ask the provider to cancel these batches (Ctrl-C, answered yes): what they finished is
    billed, and a rerun collects it and asks the rest again."""
    from ...teacher.endpoint import teacher_endpoint

    with teacher_endpoint(config) as endpoint:
        api = BatchAPI(endpoint.settings)
        for batch_id in batch_ids:
            api.cancel(batch_id)
