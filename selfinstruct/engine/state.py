"""What a job has made of its answers so far: the one set of figures the engine keeps for a job.

The job changes them as it decides each answer, a resume (`replay`) brings them back from
checkpoint.json or by replaying the ledger, and stats.json, cost.json, the checkpoint and the
progress bar read them. Nobody else writes them: each change is a method here.

    state = JobState()
    state.decided("r000003", parsed, accepted=4, surplus=0)   # an answer's records are written
    state.accepted, state.answers_decided                     # -> 4, 1
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..stats import Stats
from .task import UNPARSEABLE, Parsed


@dataclass
class SessionFigures:
    """This process's share of the run (stats.json's `this_session`); a resume starts them again."""

    started: float = field(default_factory=time.monotonic)
    responses: int = 0  # answers received (not replayed)
    completion_tokens: int = 0
    replayed: int = 0  # answers a resume replayed from the ledger
    restore_s: float = 0.0  # how long the resume took

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


@dataclass
class JobState:
    """A job's figures: those kept in checkpoint.json and rebuilt by a resume, and this session's."""

    # The job's own counters: `responses` (answers decided), `unparseable` answer parts, and the
    # task's (`Parsed.counts`). The cleaner keeps its own (`seen`, `kept`, `rejected/RULE`).
    stats: Stats = field(default_factory=Stats)
    accepted: int = 0  # records in data.jsonl
    surplus: int = 0  # kept past the target, in surplus.jsonl
    last_request_id: str | None = None  # the request of the last answer decided
    failure_streak: int = 0  # requests given up in a row
    barren_streak: int = 0  # answers received in a row that were not useful
    session: SessionFigures = field(default_factory=SessionFigures)

    @property
    def answers_decided(self) -> int:
        """Ledger answers whose records are in data.jsonl, surplus.jsonl and rejected.jsonl."""
        return self.stats["responses"]

    @property
    def unparseable(self) -> int:
        return self.stats[UNPARSEABLE]

    # ------------------------------------------------------------ as answers come

    def answered(self, completion_tokens: int) -> None:
        """An answer arrived in this session: the run of failures is broken."""
        self.failure_streak = 0
        self.session.responses += 1
        self.session.completion_tokens += completion_tokens

    def failed(self) -> int:
        """A request was given up; returns how many in a row."""
        self.failure_streak += 1
        return self.failure_streak

    def decided(self, request_id: str, parsed: Parsed, accepted: int, surplus: int) -> None:
        """An answer's records are written: `accepted` to data.jsonl, `surplus` past the target."""
        self.accepted += accepted
        self.surplus += surplus
        self.stats.add("responses")
        self.stats.add(UNPARSEABLE, len(parsed.problems))
        for name, n in parsed.counts.items():
            self.stats.add(name, n)
        self.last_request_id = request_id

    def record_usefulness(self, useful: bool) -> int:
        """Whether an answer of this session was worth its money; returns the answers in a row that were not."""
        self.barren_streak = 0 if useful else self.barren_streak + 1
        return self.barren_streak

    # ------------------------------------------------------------ on a resume

    def resumed(self, checkpoint: dict) -> None:
        """The counters of a usable checkpoint (see `checkpoint.usable_checkpoint`)."""
        self.stats = Stats(checkpoint["job"])
        self.last_request_id = checkpoint["last_request_id"]

    def kept(self, accepted: int, surplus: int) -> None:
        """The records data.jsonl and surplus.jsonl hold after a resume split them at the target."""
        self.accepted, self.surplus = accepted, surplus

    def restored(self, replayed: int, seconds: float) -> None:
        self.session.replayed = replayed
        self.session.restore_s = seconds
