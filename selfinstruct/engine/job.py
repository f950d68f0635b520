"""One teacher job in its run directory: the task, the ledger, the cleaner and the files they feed.

A runner (online today, batch later) drives it:

    planned = job.plan()                      # the next request, its id and worst-case cost
    request = job.send(planned)               # ledger first: never pay for an unrecorded request
    job.receive(request, completion)          # ledger, then records: parse, clean, write, count
    job.give_up(request, error)               # retries ran out

The job decides everything that does not depend on how requests travel: when the work is
done, whether another request is worth its money (the cost cap, and the end-of-run throttle
that does not pay for answers nobody needs), when a run of failures or of useless answers
must stop it, and what the reports say. Its figures (accepted, surplus, counters, streaks,
this session's throughput) are one `JobState`, changed only through its methods.

A job with a target writes exactly that many records to data.jsonl (the dataset). Answers that
land after it (in flight, or a batch's last lines) are paid for: what the cleaner keeps of them
goes to surplus.jsonl, in order, and a rerun with a higher target takes them first.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..clean import Cleaner, rejected_record
from ..clean.workers import RuleChecker
from ..errors import SelfInstructError, SettingError
from ..pricing import Price, completion_bound
from ..records import JsonlWriter, write_json_atomic, write_jsonl_atomic
from ..teacher.dialect import Ask, Completion
from ..tokens import prompt_tokens_upper_bound
from .checkpoint import RecordSizes, identity_sha256, write_checkpoint
from .config import JobConfig
from .costs import CostSummary
from .endpoints import Via
from .ledger import Ledger, LedgerState
from .rundir import RunDir
from .shared_run import SharedRun
from .state import JobState
from .stats_json import stats_json
from .task import UNPARSEABLE, Parsed, Request, Task
from .work import work_for

REPORT_EVERY_S = 2.0  # stats.json, cost.json and checkpoint.json while running
MAX_CHECKING = 256  # answers whose rule checks may be under way at once


class StopReason(str, Enum):
    TARGET_REACHED = "target reached"
    WORK_DONE = "all work done"
    MAX_COST = "max cost reached"
    FAILURE_STREAK = "too many failed requests in a row"
    BARREN_STREAK = "too many answers in a row without an acceptable record"
    REFUSED = "refused by the teacher"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True)
class StopPolicy:
    max_failure_streak: int = 5  # requests given up in a row before the run stops
    max_barren_streak: int = 50  # answers in a row with nothing accepted before the run stops


class JobStopped(SelfInstructError):
    """A stop policy ended the run; the run directory holds everything so far."""

    def __init__(self, reason: StopReason, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Planned:
    request_id: str
    index: int
    request: Request
    reserve_usd: float  # what the request can cost at most


@dataclass
class Checking:
    """An answer in the ledger whose candidates are being checked (see `Job.check_answer`)."""

    request: dict
    response: dict
    parsed: Parsed
    checked: Future  # -> [Checked, ...]
    live: bool  # answered in this session (not replayed): counts for the stop policies


@dataclass
class JobResult:
    out_dir: Path
    accepted: int
    stop_reason: StopReason
    stats: dict
    cost: dict

    def require_done(self, what: str, meanwhile: str = "") -> JobResult:
        """This result, if the job did all its work; else an error saying how to go on. For a step
        whose next one needs every answer of it (a student's run, an eval's answers): one stopped
        early (a cost cap) would decide on part of the work."""
        if self.stop_reason is not StopReason.WORK_DONE:
            raise SelfInstructError(
                f"{what}: {self.stop_reason.value} before every item was done; {self.out_dir} keeps what was "
                f"paid for: rerun the same command (with a higher --max-cost if that stopped it) to go on"
                + (f"; {meanwhile}" if meanwhile else "")
            )
        return self


def run_namespace(out: Path, identity: dict) -> str:
    """Tells a run's keys in a shared duplicate index from other runs' ("r000001-0" is in
    every run): the machine, the run directory, and the run's settings."""
    return f"{socket.gethostname()}:{Path(out).resolve()}:{identity_sha256(identity)[:8]}"


class Job:
    def __init__(
        self,
        task: Task,
        config: JobConfig,
        rundir: RunDir,
        identity: dict,
        price: Price | None,
        policy: StopPolicy = StopPolicy(),
    ):
        self.task = task
        self.config = config
        shard = config.shard_spec
        self.work = work_for(task, shard)  # which requests are out, which work items are done
        # A worker of a shared run counts against the run's target and cap, in Redis, under its
        # shard's and its run's name (the runs of one command, `answer --student`'s student and
        # teacher, keep their money apart), taken first: a second process of it stops here. A
        # shard on its own takes its part of the target and the cap.
        worker = f"{shard.name}-{identity_sha256(identity)[:8]}" if config.shared_run else None
        self.shared = SharedRun(config.shared_run, worker) if worker else None
        if self.shared is not None:
            self.shared.join()
        alone = shard is None or self.shared is not None
        self.target = task.target if alone else shard.share(task.target)
        self.max_cost = config.max_cost if alone else shard.share(config.max_cost)
        self.rundir = rundir
        self.identity = identity
        self.price = price
        self.policy = policy
        self.namespace = run_namespace(rundir.path, identity)  # this run, among others sharing an index or a provider
        try:
            self.cleaner = Cleaner(
                task.preset, reference=task.reference, lsh_storage=config.index_storage(), namespace=self.namespace
            )
            self.checker = RuleChecker(self.cleaner, workers=cleaning_workers(config))
        except BaseException:
            if self.shared is not None:  # the worker's name is free again for the rerun
                self.shared.leave()
            raise
        self.checking: deque[Checking] = deque()  # answers in ledger order, their rule checks under way
        self.state = JobState()
        self.ledger: Ledger | None = None
        self.data: JsonlWriter | None = None
        self.surplus: JsonlWriter | None = None
        self.rejected: JsonlWriter | None = None
        self._reported = 0.0

    def open(self, ledger: LedgerState) -> None:
        """Start appending (after `replay.restore` has read the ledger back)."""
        if self.shared is not None:  # what this worker's last process left in Redis, settled by its ledger
            self.shared.reconcile(ledger.committed_usd)
        self.ledger = Ledger(self.rundir.ledger, ledger)
        self.data = JsonlWriter(self.rundir.data)
        self.surplus = JsonlWriter(self.rundir.surplus)
        self.rejected = JsonlWriter(self.rundir.rejected)

    def restore_kept(self, data: list[dict], surplus: list[dict]) -> None:
        """Take back the records that data.jsonl and surplus.jsonl hold (a resume, before `open`),
        split again at the target, which may have changed since: a raised target takes the surplus
        first, a lowered one moves the records past it to the surplus, so that the files are
        those a replay of the whole ledger would write. Each file changes in an order that a crash
        leaves for the checkpoint to cut back (data.jsonl grown) or to refuse (a file shorter than
        it says): the next resume then does the same again, or replays the ledger."""
        kept = data + surplus
        cut = self._room(len(kept), accepted=0)
        if cut > len(data):
            with JsonlWriter(self.rundir.data) as writer:
                writer.write_many(kept[len(data) : cut])
                writer.sync()
            write_jsonl_atomic(self.rundir.surplus, kept[cut:])
        elif cut < len(data):
            raw, end = self.rundir.data.read_bytes(), 0
            for _ in range(cut):
                end = raw.index(b"\n", end) + 1
            os.truncate(self.rundir.data, end)
            write_jsonl_atomic(self.rundir.surplus, kept[cut:])
        self.task.accept(kept[:cut])
        self.state.kept(cut, len(kept) - cut)

    def close(self) -> None:
        self.checker.close()
        if self.shared is not None:
            self.shared.leave()
        for writer in (self.ledger, self.data, self.surplus, self.rejected):
            if writer is not None:
                writer.close()

    # ------------------------------------------------------------ what to ask next

    def finished(self) -> StopReason | None:
        if self.target is not None and self.accepted_toward_target() >= self.target:
            return StopReason.TARGET_REACHED
        if self.work.left() == 0:
            return StopReason.WORK_DONE
        return None

    def requests_to_target(self) -> float:
        """Answers still needed to reach the target at the accepted-per-answer rate so far (before
        any answer, the task's assumed rate): 0 at the target, infinite without a target or
        when answers came and nothing was accepted."""
        if self.target is None:
            return math.inf
        accepted, answers = self.state.accepted, self.state.answers_decided
        missing = self.target - self.accepted_toward_target()
        if missing <= 0:
            return 0
        if accepted:
            return missing * answers / accepted
        assumed = self.task.assumed_per_answer
        return missing / assumed if assumed and not answers else math.inf

    def worth_another(self, in_flight: int) -> bool:
        """Start a request only if what is outstanding (in flight, or answered and being checked)
        will likely fall short of the target by more than half an answer's yield: the end of a
        run, and the start of a small one, pay for no answers far beyond what is missing."""
        outstanding = in_flight + len(self.checking)
        return outstanding == 0 or outstanding + 0.5 < self.requests_to_target()

    def plan(self, batch: bool = False) -> Planned | None:
        """The next request with its worst-case cost (at the Batch API's price with `batch`), or
        None when the task has nothing to ask."""
        index = self.ledger.state.next_index
        request = self.work.next_request(index)
        if request is None:
            return None
        return Planned(f"r{index:06d}", index, request, self.worst_case_usd(request, batch))

    def ask(self, request: Request) -> Ask:
        """The request with the run's sampling settings, as a teacher client takes it."""
        config = self.config
        return Ask(
            request.messages,
            request.schema,
            request.max_tokens,
            config.temperature,
            config.top_p,
            config.reasoning_effort,
            request.prompt,
            request.stop,
            request.seed,
        )

    def worst_case_usd(self, request: Request, batch: bool = False) -> float:
        """What `request` can cost at most, whichever prompt format it ends up using."""
        if self.price is None:
            return 0.0
        prompt = max(prompt_tokens_upper_bound(request.messages(fmt)) for fmt in request.output_formats)
        completion = completion_bound(self.config.model, request.max_tokens, self.config.max_output_tokens)
        return self.price.cost(prompt, completion, batch=batch)

    def accepted_toward_target(self) -> int:
        """The records in data.jsonl: this run's, or every worker's of a shared run."""
        return self.shared.accepted() if self.shared is not None else self.state.accepted

    def would_break_cap(self, reserve_usd: float, request_id: str | None = None) -> bool:
        """True when a request reserving `reserve_usd` could take the run past `max_cost`; an
        error when nothing is spent or reserved yet: then no request can ever fit, and the run
        must not end as if it had reached its cap. A worker of a shared run reserves it in Redis
        (under `request_id`) against what every worker spent and holds."""
        if self.max_cost is None:
            return False
        if self.shared is not None:
            if self.shared.reserve(request_id, reserve_usd, self.max_cost):
                return False
            committed = self.shared.committed()
        else:
            committed = self.ledger.committed_usd
            if committed + reserve_usd <= self.max_cost:
                return False
        if committed == 0:
            raise SettingError(
                f"{{max_cost}} (${self.max_cost}) is below what one request can cost "
                f"(${reserve_usd:.4f} at most), so nothing was sent: raise {{max_cost}} or lower {{max_tokens}}",
                "max_cost",
                "max_tokens",
            )
        return True

    # ------------------------------------------------------------ the ledger, then the records

    def send(self, planned: Planned) -> dict:
        """Record the request before it is sent; returns its ledger event."""
        request = self.ledger.request(planned.request_id, planned.index, planned.reserve_usd, **planned.request.details)
        self.work.sent(request)
        return request

    def receive(self, request: dict, completion: Completion, model: str, *, via: Via | None = None) -> dict:
        """Record an answer, then turn it into records; returns its ledger event. `via`: the endpoint
        that answered (the ledger names it), priced at its own price."""
        usage = completion.usage
        price = via.price if via is not None and via.price is not None else self.price
        response = self.ledger.response(
            request["request_id"],
            model=model,
            response_format=completion.response_format,
            output_format=completion.output_format,
            messages=completion.messages,
            content=completion.content,
            finish_reason=completion.finish_reason,
            usage=vars(usage),
            cost_usd=price.cost(
                usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, batch=completion.batch_id is not None
            )
            if price
            else None,
            latency_s=completion.latency_s,
            attempts=completion.attempts,
            retry_errors=completion.retry_errors,
            provider_request_id=completion.provider_request_id,
            request_params=completion.params,
            **({"reasoning": completion.reasoning} if completion.reasoning is not None else {}),
            **({"batch_id": completion.batch_id} if completion.batch_id is not None else {}),
            **(via.ledger_fields() if via is not None else {}),
        )
        if self.shared is not None:
            self.shared.settle(request["request_id"], response["cost_usd"])
        self.state.answered(usage.completion_tokens)
        self.work.answered(request)
        self.check_answer(request, response, live=True)
        return response

    def give_up(
        self,
        request: dict,
        error: str,
        attempts: int,
        retry_errors: list[str] | None = None,
        *,
        refused: bool = False,
        via: Via | None = None,
    ) -> None:
        """Record a request that will not be answered; too many in a row stop the run."""
        details = {"retry_errors": retry_errors} if retry_errors else {}
        details.update(via.ledger_fields() if via is not None else {})
        self.ledger.failure(request["request_id"], error, attempts=attempts, **details)
        if self.shared is not None:
            self.shared.release(request["request_id"])
        self.work.released(request)
        if refused:
            return
        streak = self.state.failed()
        if streak >= self.policy.max_failure_streak:
            raise JobStopped(
                StopReason.FAILURE_STREAK,
                f"the teacher failed {streak} requests in a row (last: {error}); "
                "the run is saved, rerun the same command to resume",
            )

    def cancel_in_flight(self, requests: list[dict]) -> None:
        """The run stops with these requests unanswered: possibly billed, and free to ask again."""
        self.ledger.cancel_in_flight()
        if self.shared is not None:
            self.shared.cancel([request["request_id"] for request in requests])
        for request in requests:
            self.work.released(request)

    def check_answer(self, request: dict, response: dict, live: bool = False) -> None:
        """Queue one answer: parse it and send its candidates to the rule checks (perhaps in a
        worker process); `drain` then decides, writes and counts the answers in ledger order."""
        parsed = self.task.parse(request, response)
        self.checking.append(Checking(request, response, parsed, self.checker.submit(parsed.records), live))
        if len(self.checking) > MAX_CHECKING:
            self._decide(self.checking.popleft())
        self.drain()

    def drain(self, wait: bool = False) -> None:
        """Decide the queued answers whose rule checks are done (all of them with `wait`), in order."""
        while self.checking and (wait or self.checking[0].checked.done()):
            self._decide(self.checking.popleft())

    def _decide(self, answer: Checking) -> None:
        records = answer.parsed.records
        verdicts = self.cleaner.decide(answer.checked.result(), [record["id"] for record in records])
        kept = [v.record for v in verdicts if v.kept]
        rejected = [rejected_record(v) for v in verdicts if not v.kept]
        request_id = answer.response["request_id"]
        rejected += [
            {"id": f"{request_id}-p{j}", "request_id": request_id, "reason": UNPARSEABLE, "detail": problem}
            for j, problem in enumerate(answer.parsed.problems)
        ]
        room = self._room(len(kept), self.state.accepted)
        self.data.write_many(kept[:room])
        self.surplus.write_many(kept[room:])
        self.rejected.write_many(rejected)
        self.task.accept(kept[:room])
        self.state.decided(request_id, answer.parsed, accepted=len(kept[:room]), surplus=len(kept[room:]))
        if answer.live:
            streak = self.state.record_usefulness(self.task.useful(answer.parsed, kept))
            if streak >= self.policy.max_barren_streak:
                raise JobStopped(
                    StopReason.BARREN_STREAK,
                    f"the last {streak} answers gave nothing usable; see {self.rundir.rejected} "
                    "for why (a stronger teacher or another preset may help); the run is saved",
                )

    def _room(self, count: int, accepted: int) -> int:
        """How many of `count` kept records go to data.jsonl (the rest to surplus.jsonl), `accepted`
        being there: all of them without a target, else those that fit under it (a shared run's,
        claimed in Redis)."""
        if self.target is None:
            return count
        if self.shared is not None:
            return self.shared.claim(count, self.target)
        return min(count, max(self.target - accepted, 0))

    # ------------------------------------------------------------ reports

    def rejected_counts(self) -> dict[str, int]:
        counts = self.cleaner.stats.group("rejected")
        if self.state.unparseable:
            counts[UNPARSEABLE] = self.state.unparseable
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def cost(self) -> CostSummary:
        return CostSummary.of(
            self.ledger.totals,
            model=self.config.model,
            price=self.price,
            accepted=self.state.accepted + self.state.surplus,  # what the money bought, the surplus included
            max_cost_usd=self.max_cost,
        )

    def report_if_due(self, status: str) -> None:
        if time.monotonic() - self._reported >= REPORT_EVERY_S:
            self.write_reports(status)

    def write_reports(self, status: str) -> tuple[dict, dict]:
        """stats.json, cost.json and the checkpoint that lets a resume skip the replay."""
        self._reported = time.monotonic()
        stats, cost = stats_json(self, status), self.cost().cost_json()
        write_json_atomic(self.rundir.stats, stats)
        write_json_atomic(self.rundir.cost, cost)
        write_checkpoint(self.rundir.checkpoint, self.identity, self.cleaner, self.state, self._flushed_sizes())
        return stats, cost

    def _flushed_sizes(self) -> RecordSizes:
        for writer in (self.data, self.surplus, self.rejected):
            writer.flush()
        return RecordSizes(self.data.size, self.surplus.size, self.rejected.size)

    def result(self, stop_reason: StopReason) -> JobResult:
        self.drain(wait=True)
        stats, cost = self.write_reports(stop_reason.value)
        return JobResult(self.rundir.path, self.state.accepted, stop_reason, stats, cost)


def cleaning_workers(config: JobConfig) -> int:
    """Worker processes for the rule checks: the setting, or one when a spare core and a
    concurrency that can outrun one core (32 requests in flight) are both there."""
    if config.cleaning_workers is not None:
        return config.cleaning_workers
    return 1 if (os.cpu_count() or 1) > 1 and (config.concurrency or 1) >= 32 else 0
