"""What every runner is: it sends a job's requests until the job is done or must stop.

The job decides what to ask, whether another request is worth its money and what an answer
is worth (`engine.job`); a runner decides only how requests travel and when, and hands each
answer (or failure) back to the job. A new way to send requests (several endpoints, a
distributed engine) is a new subclass, chosen in `runners.runner_for`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..job import Job, StopReason


class Runner(ABC):
    @abstractmethod
    def run(self, job: Job) -> StopReason:
        """Send `job`'s requests; return why it stopped. On Ctrl-C or an error, what was sent
        stays in the ledger (a rerun resumes from it) and the exception is raised."""
