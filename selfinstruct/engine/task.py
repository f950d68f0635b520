"""What a teacher job asks and how it reads the answers: the part of a job that is not the engine.

A task turns work into chat requests, and one answer into candidate records (curator's
prompt/parse pair). Everything else is the engine's: the run directory and its lock, the
ledger, the cost cap, sending the requests (online or in batch), cleaning, resuming,
progress and reports. A new job is a new `Task` under `selfinstruct/tasks/`; no runner
changes.

    class Echo(Task):
        name = "echo"
        def next_request(self, index):            # the index-th request of the run
            return Request(lambda fmt: [{"role": "user", "content": f"Say {index}."}], max_tokens=16)
        def parse(self, request, response):        # one answer -> candidate records
            return Parsed([{"id": response["request_id"], "instruction": "...", "input": "",
                            "output": response["content"]}])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import ClassVar

from ..clean import Preset
from ..stats import Stats

UNPARSEABLE = "unparseable"  # the reason a part of an answer that could not be used is rejected with


@dataclass
class Request:
    """One chat request a task wants answered.

    `messages(output_format)` builds the prompt for "json" or "text" output (the client steps
    down from JSON to text on endpoints without structured output); `schema(bounded)` gives
    the JSON schema of the answer, or is None for a plain-text answer. `details` go into the
    ledger's request event (what the request was about, e.g. the examples it showed)."""

    messages: Callable[[str], list[dict]]
    max_tokens: int
    schema: Callable[[bool], dict] | None = None
    details: dict = field(default_factory=dict)

    @property
    def output_formats(self) -> tuple[str, ...]:
        return ("json", "text") if self.schema is not None else ("text",)


@dataclass
class Parsed:
    """One answer, read: candidate records for the cleaner (each with a unique `id`), a line
    for each part of the answer that could not be used, and counters the task keeps (added to
    the job's, which survive a resume: e.g. a judge's `score/4.5`)."""

    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Task(ABC):
    name: ClassVar[str]  # config.json's "task", e.g. "bootstrap"
    preset: Preset  # the cleaning preset its records go through
    reference: tuple[dict, ...] = ()  # records the duplicate index starts with (a bootstrap's seed tasks)
    target: int | None = None  # stop once this many records are accepted (None: when the work runs out)
    # records one answer is assumed to bring before any answer says: sizes the first requests of
    # a run with a target (a small target needs fewer than a full round or a full pipe)
    assumed_per_answer: float | None = None

    @abstractmethod
    def identity(self) -> dict:
        """The settings and input hashes that decide the data: a resumed run must keep them."""

    @abstractmethod
    def next_request(self, index: int) -> Request | None:
        """The request numbered `index` in this run, or None when nothing is left to ask now
        (every work item answered or in flight). It changes nothing: a request the cost cap
        held back is asked for again with the same index."""

    def pending(self) -> int | None:
        """Work items not answered yet; None for a task without a fixed list of work (a bootstrap)."""
        return None

    @abstractmethod
    def parse(self, request: dict, response: dict) -> Parsed:
        """Candidate records from one answer. `request` and `response` are the ledger's events."""

    def sent(self, request: dict) -> None:
        """The request (its ledger event) went out: its work item is in flight."""

    def answered(self, request: dict) -> None:
        """The request (its ledger event) has an answer: called for every answer, replayed or new,
        before `parse`; a task with work items marks the item done here."""

    def released(self, request: dict) -> None:
        """The request was given up (failed or cancelled): its work item may be asked again."""

    def accept(self, records: list[dict]) -> None:
        """Records the cleaner kept, in order (a bootstrap shows them in later prompts)."""

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        """Whether an answer was worth its money, for the stop policy (too many useless answers
        in a row stop a run): by default, when the cleaner kept a record of it. A judge's
        answer is useful when it gave a score, kept or not: a low score is a finding."""
        return bool(kept)

    def describe(self, stats: Stats) -> dict:
        """Extra figures for stats.json (e.g. work items left), given the job's counters: the
        cleaner's (`seen`, `kept`, `rejected/RULE`) and the task's own (`Parsed.counts`)."""
        return {}


class ItemTask(Task):
    """A task with a fixed list of work items (answer every instruction, rate every record),
    each asked until it has one answer, in order; an item given up is asked again soon."""

    def __init__(self, items: list[Hashable]):
        self.items = items
        self.waiting = deque(items)  # items answered or in flight are skipped when they come up
        self.answered_items: set = set()
        self.in_flight: set = set()

    @abstractmethod
    def request(self, item: Hashable) -> Request:
        """The request for one work item."""

    def next_request(self, index: int) -> Request | None:
        while self.waiting and (self.waiting[0] in self.answered_items or self.waiting[0] in self.in_flight):
            self.waiting.popleft()
        return self.request(self.waiting[0]) if self.waiting else None

    def unanswered(self) -> list[Hashable]:
        return [item for item in self.items if item not in self.answered_items]

    def pending(self) -> int:
        return len(self.items) - len(self.answered_items)

    def sent(self, request: dict) -> None:
        self.in_flight.add(request["item"])

    def answered(self, request: dict) -> None:
        self.answered_items.add(request["item"])
        self.in_flight.discard(request["item"])

    def released(self, request: dict) -> None:
        self.in_flight.discard(request["item"])
        self.waiting.appendleft(request["item"])

    def describe(self, stats: Stats) -> dict:
        return {"items": len(self.items), "answered_items": len(self.answered_items)}
