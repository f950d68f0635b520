"""The append-only ledger: every request and response of a run, with usage and cost.

It is the run's source of truth. Each line is one event:
- `request`: written *before* sending, with the worst-case cost reserved for it;
- `response`: the answer (content, finish reason, usage, latency, cost, attempts);
- `failure`: the request was given up (retries exhausted) or refused;
- `cancelled`: the run stopped (Ctrl-C, a fatal error) while the request was in flight.

A request with no later event was in flight when the process died. Its cost is unknown
(the provider may have billed it), so the cost cap keeps counting its reservation.
Every line reaches the OS as it is written, so after `kill -9` at most the last line is torn
(and skipped). `sync()` puts them on the disk too: a runner syncs once after starting a group of
requests and before any of them is sent, so a request is durable before it can be billed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..records import JsonlWriter, read_jsonl

LEDGER_FILE = "ledger.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class LedgerTotals:
    requests: int = 0
    responses: int = 0
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

    def add_response(self, event: dict) -> None:
        usage = event["usage"]
        self.responses += 1
        self.prompt_tokens += usage["prompt_tokens"]
        self.cached_tokens += usage["cached_tokens"]
        self.completion_tokens += usage["completion_tokens"]
        self.reasoning_tokens += usage.get("reasoning_tokens", 0)
        self.estimated_responses += bool(usage["estimated"])
        self.unpriced_responses += event["cost_usd"] is None
        self.cost_usd += event["cost_usd"] or 0.0
        self.latency_s += event["latency_s"]


@dataclass
class LedgerState:
    """What a ledger on disk says: the responses to replay and the money already committed."""

    responses: list[dict] = field(default_factory=list)  # in the order they were taken
    requests: dict[str, dict] = field(default_factory=dict)  # request_id -> its request event
    totals: LedgerTotals = field(default_factory=LedgerTotals)
    next_index: int = 0
    unsettled: dict[str, float] = field(default_factory=dict)  # request_id -> reserved USD


def load_ledger(path: Path) -> LedgerState:
    state = LedgerState()
    if not path.exists():
        return state
    for _, event in read_jsonl(path):
        kind, request_id = event.get("event"), event.get("request_id")
        if kind == "request":
            state.requests[request_id] = event
            state.totals.requests += 1
            state.unsettled[request_id] = event["reserved_usd"]
            state.next_index = max(state.next_index, event["index"] + 1)
        elif kind == "response":
            state.unsettled.pop(request_id, None)
            state.responses.append(event)
            state.totals.add_response(event)
        elif kind == "failure":
            state.unsettled.pop(request_id, None)
            state.totals.failures += 1
        # "cancelled" leaves the reservation unsettled: the provider may still bill it.
    state.totals.unsettled_requests = len(state.unsettled)
    state.totals.unsettled_usd = sum(state.unsettled.values())
    return state


class Ledger:
    """Appends events and keeps the running totals that the cost cap needs.

    `request` reserves the request's worst case at once, so a caller that starts several
    requests before any of them runs still sees every reservation in `committed_usd`.
    """

    def __init__(self, path: Path, state: LedgerState):
        self.totals = state.totals
        self.open: dict[str, float] = {}  # requests in flight now -> their reservation
        self._writer = JsonlWriter(path)

    @property
    def committed_usd(self) -> float:
        """Money spent or possibly spent: the cap must hold against this."""
        return self.totals.cost_usd + self.totals.unsettled_usd + sum(self.open.values())

    def request(self, request_id: str, index: int, reserved_usd: float, **details) -> dict:
        self.open[request_id] = reserved_usd
        self.totals.requests += 1
        line = {"event": "request", "request_id": request_id, "index": index, "time": now_iso(),
                "reserved_usd": reserved_usd, **details}  # fmt: skip
        self._writer.write(line)
        return line

    def response(self, request_id: str, **event) -> dict:
        self.open.pop(request_id)
        line = {"event": "response", "request_id": request_id, "time": now_iso(), **event}
        self._writer.write(line)
        self.totals.add_response(line)
        return line

    def failure(self, request_id: str, error: str, **details) -> None:
        self.open.pop(request_id)
        self.totals.failures += 1
        self._writer.write({"event": "failure", "request_id": request_id, "time": now_iso(), "error": error, **details})

    def cancel_open(self) -> None:
        """The run stops with requests in flight: their cost stays unknown (the provider may
        still bill them), so their reservations remain counted against the cap."""
        for request_id, reserved_usd in self.open.items():
            self.totals.unsettled_requests += 1
            self.totals.unsettled_usd += reserved_usd
            self._writer.write(
                {"event": "cancelled", "request_id": request_id, "time": now_iso(), "reserved_usd": reserved_usd}
            )
        self.open.clear()

    def sync(self) -> None:
        """Everything written so far is on the disk (fsync)."""
        self._writer.sync()

    def close(self) -> None:
        self.sync()
        self._writer.close()
