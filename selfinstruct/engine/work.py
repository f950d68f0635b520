"""Which work a job has left, and which requests are out for it: the engine's bookkeeping.

A task says what to ask (`Task.next_request(index)`, or `ItemTask.request(item)`); the job
asks its work (`OpenWork`, or `WorkItems` for an `ItemTask`) for the next request and tells it
what became of each one, by the request's ledger event, so that a resume rebuilds the same
picture from the ledger:

    work = work_for(task)
    request = work.next_request(index)   # None: nothing to ask now
    work.sent(event)                     # the request went out: its item is in flight
    work.answered(event)                 # it has an answer (replayed or new): its item is done
    work.released(event)                 # it was given up or cancelled: its item may be asked again
    work.left()                          # items not answered yet; None for open-ended work
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from .shared_run import Shard
from .task import ItemTask, Request, Task

ITEM = "item"  # the request event's key that names its work item


class OpenWork:
    """The work of a task without a list of items (a bootstrap): request i is the task's i-th,
    until a target or a stop policy ends the run. A shard's request i is the run's
    `shard.request_number(i)`: the shards ask what one run would, each its part."""

    def __init__(self, task: Task, shard: Shard | None = None):
        self.task = task
        self.shard = shard

    def next_request(self, index: int) -> Request | None:
        return self.task.next_request(index if self.shard is None else self.shard.request_number(index))

    def left(self) -> int | None:
        return None

    def sent(self, request: dict) -> None:
        pass

    def answered(self, request: dict) -> None:
        pass

    def released(self, request: dict) -> None:
        self.task.released(request)

    def describe(self) -> dict:
        return {}


class WorkItems(OpenWork):
    """The work items of an `ItemTask`, each asked until it has one answer, in order; an item
    given up is asked again soon. Each request carries its item in its ledger event (`item`).
    A task may append items as answers come (an evolve run's next steps): they join the queue."""

    task: ItemTask

    def __init__(self, task: ItemTask):
        super().__init__(task)
        self.waiting = deque(task.items)  # items answered or in flight are skipped when they come up
        self.queued = len(task.items)
        self.answered_items: set = set()
        self.in_flight: set = set()

    def next_request(self, index: int) -> Request | None:
        self.waiting.extend(self.task.items[self.queued :])
        self.queued = len(self.task.items)
        while self.waiting and (self.waiting[0] in self.answered_items or self.waiting[0] in self.in_flight):
            self.waiting.popleft()
        return self.request(self.waiting[0]) if self.waiting else None

    def request(self, item) -> Request:
        """The task's request for `item`, its item first among the details."""
        request = self.task.request(item)
        return replace(request, details={ITEM: item, **request.details})

    def unanswered(self) -> list:
        return [item for item in self.task.items if item not in self.answered_items]

    def left(self) -> int:
        return len(self.task.items) - len(self.answered_items)

    def sent(self, request: dict) -> None:
        self.in_flight.add(request[ITEM])

    def answered(self, request: dict) -> None:
        self.answered_items.add(request[ITEM])
        self.in_flight.discard(request[ITEM])

    def released(self, request: dict) -> None:
        self.in_flight.discard(request[ITEM])
        self.waiting.appendleft(request[ITEM])

    def describe(self) -> dict:
        return {"items": len(self.task.items), "answered_items": len(self.answered_items)}


def work_for(task: Task, shard: Shard | None = None) -> OpenWork:
    """The task's work; a shard's part of it (an `ItemTask`'s items are taken by `shard_items`)."""
    return WorkItems(task) if isinstance(task, ItemTask) else OpenWork(task, shard)


def shard_items(task: Task, shard: Shard | None) -> None:
    """Keep a shard's part of an `ItemTask`'s items (every N-th); once, before its job is made."""
    if shard is not None and isinstance(task, ItemTask):
        task.items = shard.take(task.items)
