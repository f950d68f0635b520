"""What a teacher job asks and how it reads the answers: the part of a job that is not the engine.

A task turns work into chat requests, and one answer into candidate records (curator's
prompt/parse pair). Everything else is the engine's: the run directory and its lock, the
ledger, the cost cap, sending the requests (online or in batch), cleaning, resuming,
progress and reports. A new job is a new `Task` under `selfinstruct/tasks/` and its entry
in `tasks/registry.py`; no runner changes.

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
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..stats import Stats
from ..teacher.dialect import raw_messages

if TYPE_CHECKING:  # only named here: the cleaner's package imports the run directory, which imports this
    from ..clean import Preset

UNPARSEABLE = "unparseable"  # the reason a part of an answer that could not be used is rejected with


@dataclass
class Request:
    """One chat request a task wants answered.

    `messages(output_format)` builds the prompt for "json" or "text" output (the client steps
    down from JSON to text on endpoints without structured output); `schema(bounded)` gives
    the JSON schema of the answer, or is None for a plain-text answer. `details` go into the
    ledger's request event (what the request was about, e.g. the examples it showed).

    A raw request (`Request.raw`, Magpie) is a prompt sent as it is to `/completions`, the
    model's template tokens written by the task, its answer ending at a stop string."""

    messages: Callable[[str], list[dict]]
    max_tokens: int
    schema: Callable[[bool], dict] | None = None
    details: dict = field(default_factory=dict)
    prompt: str | None = None  # a raw request's prompt
    stop: tuple[str, ...] = ()  # where a raw request's answer ends
    seed: int | None = None  # the sampling seed, where the same prompt is asked many times (Magpie)

    @classmethod
    def raw(cls, prompt: str, stop: tuple[str, ...], max_tokens: int, details: dict, seed: int | None) -> "Request":
        """A raw request; its `messages` are the prompt as one user message, what the engine counts
        its prompt tokens on (the cost cap, the context check, the estimate)."""
        return cls(lambda _format: raw_messages(prompt), max_tokens, None, details, prompt, stop, seed)

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
    """What a teacher job asks and how it reads the answers.

    A task must say:
        name                   config.json's "task", e.g. "bootstrap"
        preset                 the cleaning preset its records go through
        identity()             the settings and input hashes that decide the data
        next_request(index)    what to ask (or, over a fixed list of work items, `ItemTask.request(item)`)
        parse(request, response)   one answer -> candidate records

    Optional hooks, each with a default that suits a task without it:
        reference              records the duplicate index starts with (a bootstrap's seed tasks)
        target                 stop once this many records are accepted (None: when the work runs out)
        assumed_per_answer     records one answer is assumed to bring before any answer says: sizes
                               the first requests of a run with a target (a small target needs fewer
                               than a full round or a full pipe)
        accept(records)        the records the cleaner kept, in order (a bootstrap shows them in later prompts)
        recall(request, response)  an answer a resume takes from the checkpoint instead of parsing it again
        useful(parsed, kept)   whether an answer was worth its money, for the stop policy
        released(request)      a request given up or cancelled: a task whose requests follow from
                               earlier answers (a Magpie conversation's next turn) asks it again
        describe(stats)        extra figures for stats.json

    Which requests are in flight, answered or given up is the engine's business (`engine.work`).
    """

    name: ClassVar[str]
    preset: Preset
    reference: tuple[dict, ...] = ()
    target: int | None = None
    assumed_per_answer: float | None = None

    @abstractmethod
    def identity(self) -> dict:
        """The settings and input hashes that decide the data: a resumed run must keep them."""

    def next_request(self, index: int) -> Request | None:
        """The request numbered `index` in this run, or None when nothing is left to ask. It
        changes nothing: a request the cost cap held back is asked for again with the same index."""
        raise NotImplementedError(
            f"{type(self).__name__}: write next_request(index), or subclass ItemTask and write request(item)"
        )

    @abstractmethod
    def parse(self, request: dict, response: dict) -> Parsed:
        """Candidate records from one answer. `request` and `response` are the ledger's events."""

    def accept(self, records: list[dict]) -> None:
        """Records the cleaner kept, in order."""

    def recall(self, request: dict, response: dict) -> None:
        """An answer a resume does not parse again (the checkpoint holds what it gave), in ledger
        order: a task whose later requests depend on its answers (evolve) reads it here."""

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        """Whether an answer was worth its money (too many useless answers in a row stop a run):
        by default, when the cleaner kept a record of it. A judge's answer is useful when it gave
        a score, kept or not: a low score is a finding."""
        return bool(kept)

    def released(self, request: dict) -> None:
        """A request given up (its retries ran out) or cancelled (the run stopped with it in
        flight), by its ledger event; `ItemTask`s' items are asked again by the engine."""

    def describe(self, stats: Stats) -> dict:
        """Extra figures for stats.json, given the job's counters: the cleaner's (`seen`, `kept`,
        `rejected/RULE`) and the task's own (`Parsed.counts`)."""
        return {}


class ItemTask(Task):
    """A task with a fixed list of work items (answer every instruction, rate every record): it
    says the request for one item; the engine asks each item until it has one answer, in order,
    and records the item in the request's ledger event, where `parse` finds it (`request["item"]`)."""

    def __init__(self, items: list[Hashable]):
        self.items = items

    @abstractmethod
    def request(self, item: Hashable) -> Request:
        """The request for one work item."""
