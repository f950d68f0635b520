"""The append-only ledger: every request and response of a run, with usage and cost.

It is the run's source of truth. Each line is one event:
- `run`: the first line, the run's task and settings as config.json has them, so that a run whose
  config.json is lost or damaged can still be checked and resumed (older ledgers lack it);
- `request`: written *before* sending, with the worst-case cost reserved for it;
- `response`: the answer (content, finish reason, usage, latency, cost, attempts), and the
  `endpoint` that answered (with `endpoint_errors`, the failed attempts at each endpoint before);
- `failure`: the request was given up (retries exhausted) or refused (`endpoint`: where it was last tried);
- `cancelled`: the run stopped (Ctrl-C, a fatal error) while the request was in flight;
- `batch`, `batch_file`, `batch_created`, `batch_ended`: a Batch API batch, by its key, with the
  requests it carries (written before anything is uploaded), its input file and remote id
  (each as soon as known), and how it ended (after its answers): see `engine.runners.batch`.

A request with no later event was in flight when the process died. Its cost is unknown
(the provider may have billed it), so the cost cap keeps counting its reservation.
Every line reaches the OS as it is written, so after `kill -9` at most the last line is torn
(and skipped). `sync()` puts them on the disk too: a runner syncs once after starting a group of
requests and before any of them is sent, so a request is durable before it can be billed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..records import JsonlWriter, read_jsonl

RUN_EVENT = "run"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class EndpointTotals:
    """One endpoint's share of a run: what it answered, what that cost, how often it failed."""

    responses: int = 0
    failures: int = 0  # requests given up there (their last attempt was there)
    errors: int = 0  # failed attempts there (429s, timeouts, connections...), retried or not
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_responses: int = 0

    def to_dict(self) -> dict:
        figures = dict(vars(self), cost_usd=None if self.unpriced_responses else round(self.cost_usd, 8))
        del figures["unpriced_responses"]
        return figures


@dataclass
class LedgerTotals:
    """The ledger's figures, summed as its events come (`LedgerState.apply`): what `CostSummary` shows."""

    requests: int = 0
    responses: int = 0
    batch_responses: int = 0  # answered through the Batch API (priced at its discount)
    failures: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0  # reasoning tokens included
    reasoning_tokens: int = 0
    estimated_responses: int = 0  # responses whose usage was counted by tiktoken
    unpriced_responses: int = 0  # responses with no price (cost_usd None): the run's cost is unknown
    cost_usd: float = 0.0
    unsettled_requests: int = 0  # requests whose outcome is unknown: the provider may have billed them
    unsettled_usd: float = 0.0  # their reservations
    latency_s: float = 0.0
    endpoints: dict[str, EndpointTotals] = field(default_factory=dict)  # by name, for the events that name one

    def add_response(self, event: dict) -> None:
        usage = event["usage"]
        self._add_endpoint_errors(event)
        if "endpoint" in event:
            answered = self._endpoint(event["endpoint"])
            answered.responses += 1
            answered.prompt_tokens += usage["prompt_tokens"]
            answered.completion_tokens += usage["completion_tokens"]
            answered.unpriced_responses += event["cost_usd"] is None
            answered.cost_usd += event["cost_usd"] or 0.0
        self.responses += 1
        self.batch_responses += "batch_id" in event
        self.prompt_tokens += usage["prompt_tokens"]
        self.cached_tokens += usage["cached_tokens"]
        self.completion_tokens += usage["completion_tokens"]
        self.reasoning_tokens += usage.get("reasoning_tokens", 0)
        self.estimated_responses += bool(usage["estimated"])
        self.unpriced_responses += event["cost_usd"] is None
        self.cost_usd += event["cost_usd"] or 0.0
        self.latency_s += event["latency_s"] or 0.0  # None through the Batch API

    def add_failure(self, event: dict) -> None:
        self.failures += 1
        self._add_endpoint_errors(event)
        if "endpoint" in event:
            self._endpoint(event["endpoint"]).failures += 1

    def _add_endpoint_errors(self, event: dict) -> None:
        for name, errors in (event.get("endpoint_errors") or {}).items():
            self._endpoint(name).errors += errors

    def _endpoint(self, name: str) -> EndpointTotals:
        return self.endpoints.setdefault(name, EndpointTotals())


@dataclass
class BatchRecord:
    """A batch as the ledger knows it."""

    key: str
    request_ids: list[str]
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None  # how it ended; None while it is open

    @property
    def open(self) -> bool:
        return self.status is None


@dataclass
class LedgerState:
    """What a ledger says: the totals, the money committed, the batches. Every event, read back
    or just written, goes through `apply`; a ledger read back also keeps the events a resume replays.

    A request is outstanding until its answer or failure; while a process waits for it, it is
    in flight. One that is outstanding and not in flight (its run was cancelled, or its process
    died: `load_ledger` reads a ledger whose writer is gone) may have been billed."""

    responses: list[dict] = field(default_factory=list)  # read back: the answers, in ledger order
    requests: dict[str, dict] = field(default_factory=dict)  # read back: request_id -> its request event
    totals: LedgerTotals = field(default_factory=LedgerTotals)
    next_index: int = 0
    outstanding: dict[str, float] = field(default_factory=dict)  # request_id -> reserved USD, in ledger order
    in_flight: dict[str, float] = field(default_factory=dict)  # the outstanding requests a process waits for
    batches: dict[str, BatchRecord] = field(default_factory=dict)  # key -> batch, in order
    submissions: dict[str, int] = field(default_factory=dict)  # request_id -> batches it went in

    @property
    def committed_usd(self) -> float:
        """Money spent or possibly spent: the cap must hold against this."""
        return self.totals.cost_usd + self.totals.unsettled_usd + sum(self.in_flight.values())

    def apply(self, event: dict) -> None:
        """Account for one event (of a ledger being read, or being written)."""
        kind, request_id = event.get("event"), event.get("request_id")
        if kind == "request":
            self.totals.requests += 1
            self.outstanding[request_id] = self.in_flight[request_id] = event["reserved_usd"]
            self.next_index = max(self.next_index, event["index"] + 1)
        elif kind in ("response", "failure"):
            self._settle(request_id)
            if kind == "response":
                self.totals.add_response(event)
            else:
                self.totals.add_failure(event)
        elif kind == "cancelled" and request_id in self.in_flight:  # the provider may still bill it
            self.totals.unsettled_requests += 1
            self.totals.unsettled_usd += self.in_flight.pop(request_id)
        elif kind == "batch":
            self.batches[event["batch_key"]] = BatchRecord(event["batch_key"], event["request_ids"])
            for submitted in event["request_ids"]:
                self.submissions[submitted] = self.submissions.get(submitted, 0) + 1
        elif kind == "batch_file":
            self.batches[event["batch_key"]].file_id = event["file_id"]
        elif kind == "batch_created":
            self.batches[event["batch_key"]].batch_id = event["batch_id"]
        elif kind == "batch_ended":
            self.batches[event["batch_key"]].status = event["status"]

    def writer_gone(self) -> None:
        """The process that wrote the ledger is gone (`load_ledger`): what it had in flight may
        have been billed. The possibly billed are counted again from what is outstanding, in ledger order."""
        self.in_flight.clear()
        self.totals.unsettled_requests = len(self.outstanding)
        self.totals.unsettled_usd = sum(self.outstanding.values())

    def reopen(self, request_ids: list[str]) -> None:
        """Requests of a batch still open at the provider (a resumed run): in flight again, their
        reservations moved from "possibly billed" back to in flight."""
        for request_id in request_ids:
            if request_id in self.outstanding and request_id not in self.in_flight:
                reserved_usd = self.in_flight[request_id] = self.outstanding[request_id]
                self.totals.unsettled_requests -= 1
                self.totals.unsettled_usd -= reserved_usd

    def _settle(self, request_id: str) -> None:
        reserved_usd = self.outstanding.pop(request_id, None)
        if request_id in self.in_flight:
            del self.in_flight[request_id]
        elif reserved_usd is not None:  # answered after it was counted as possibly billed
            self.totals.unsettled_requests -= 1
            self.totals.unsettled_usd -= reserved_usd

    def answered_requests(self) -> list[dict]:
        """The request events that have an answer, in ledger order."""
        return [self.requests[response["request_id"]] for response in self.responses]

    def open_batches(self) -> list[BatchRecord]:
        return [batch for batch in self.batches.values() if batch.open]


def start_ledger(path: Path, run: dict) -> None:
    """Begin an empty (or absent) ledger with its `run` event; a ledger with events is left as it is."""
    with JsonlWriter(path) as ledger:  # cuts a torn tail first: a header half-written by kill -9 is rewritten
        if ledger.size == 0:
            ledger.write({"event": RUN_EVENT, "time": now_iso(), **run})
            ledger.sync()


def ledger_header(path: Path) -> dict | None:
    """The ledger's `run` event, or None (no ledger, or one from before it was recorded)."""
    if not path.exists():
        return None
    with path.open("rb") as f:
        first = f.readline()
    try:
        event = json.loads(first)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") == RUN_EVENT else None


def load_ledger(path: Path) -> LedgerState:
    state = LedgerState()
    if not path.exists():
        return state
    for _, event in read_jsonl(path):
        state.apply(event)
        # the events a resume replays; a ledger being written keeps none (a long run would hold every answer)
        if event.get("event") == "request":
            state.requests[event["request_id"]] = event
        elif event.get("event") == "response":
            state.responses.append(event)
    state.writer_gone()
    return state


class Ledger:
    """Appends events, each applied to the state as it is written: the running totals that the
    cost cap needs.

    `request` reserves the request's worst case at once, so a caller that starts several
    requests before any of them runs still sees every reservation in `committed_usd`.
    """

    def __init__(self, path: Path, state: LedgerState):
        self.state = state  # what was read, and what was written since
        self.totals = state.totals
        self._writer = JsonlWriter(path)

    @property
    def committed_usd(self) -> float:
        return self.state.committed_usd

    def request(self, request_id: str, index: int, reserved_usd: float, **details) -> dict:
        return self._write(
            {
                "event": "request",
                "request_id": request_id,
                "index": index,
                "time": now_iso(),
                "reserved_usd": reserved_usd,
                **details,
            }
        )

    def response(self, request_id: str, **event) -> dict:
        return self._write({"event": "response", "request_id": request_id, "time": now_iso(), **event})

    def failure(self, request_id: str, error: str, **details) -> None:
        self._write({"event": "failure", "request_id": request_id, "time": now_iso(), "error": error, **details})

    def cancel_in_flight(self) -> None:
        """The run stops with requests in flight: their cost stays unknown (the provider may
        still bill them), so their reservations remain counted against the cap."""
        for request_id, reserved_usd in list(self.state.in_flight.items()):
            self._write(
                {"event": "cancelled", "request_id": request_id, "time": now_iso(), "reserved_usd": reserved_usd}
            )

    def reopen(self, request_ids: list[str]) -> None:
        self.state.reopen(request_ids)

    def batch(self, key: str, request_ids: list[str], **details) -> None:
        self._batch_event(
            {"event": "batch", "batch_key": key, "time": now_iso(), "request_ids": request_ids, **details}
        )

    def batch_file(self, key: str, file_id: str) -> None:
        self._batch_event({"event": "batch_file", "batch_key": key, "time": now_iso(), "file_id": file_id})

    def batch_created(self, key: str, batch_id: str) -> None:
        self._batch_event({"event": "batch_created", "batch_key": key, "time": now_iso(), "batch_id": batch_id})

    def batch_ended(self, key: str, status: str, **counts) -> None:
        self._batch_event({"event": "batch_ended", "batch_key": key, "time": now_iso(), "status": status, **counts})

    def _batch_event(self, event: dict) -> None:
        """Batch events are synced at once: each is what a restart needs not to pay twice."""
        self._write(event)
        self.sync()

    def _write(self, event: dict) -> dict:
        self._writer.write(event)
        self.state.apply(event)
        return event

    def sync(self) -> None:
        """Everything written so far is on the disk (fsync)."""
        self._writer.sync()

    def close(self) -> None:
        self.sync()
        self._writer.close()
