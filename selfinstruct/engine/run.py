"""`run_job`: a task run (or resumed) in its run directory, the library call behind every
teacher command.

    result = run_job(BootstrapTask(config, seeds, preset), config, "outputs/run")

It takes the directory's lock, checks that the directory holds this task with these settings,
rebuilds the job from the ledger, starts the teacher (the configured endpoint or the
embedded one) only if there is work left, and writes the final reports.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .config import JobConfig
from .job import Job, JobResult, StopPolicy
from .replay import restore
from .rundir import RunDir, file_sha256
from .task import Task


def run_job(task: Task, config: JobConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True,
            policy: StopPolicy = StopPolicy(), teacher=None) -> JobResult:  # fmt: skip
    """`teacher`: an object with the `TeacherClient` interface (`settings`, `complete`, `close`)
    to use instead of the configured endpoint, e.g. a model in this process."""
    run = RunDir(out)
    run.check_usable()
    price = config.price()
    identity = {**task.identity(), "preset_sha256": file_sha256(task.preset.path)}
    with run.lock():
        run.prepare(task.name, identity, config.model_dump(mode="json"), overwrite)
        job = Job(task, config, run, identity, price, policy)
        try:
            restore(job)
            done = job.finished()
            if done is not None:
                return job.result(done)
            # here, not at the top: the client imports openai (0.5 s), a finished run needs none of it
            from ..teacher.endpoint import teacher_endpoint
            from .runner import OnlineRunner

            if teacher is not None:
                stop = asyncio.run(OnlineRunner(job, teacher.settings, progress=progress, client=teacher).run())
            else:
                with teacher_endpoint(config, log_path=run.teacher_log) as settings:
                    stop = asyncio.run(OnlineRunner(job, settings, progress=progress).run())
            return job.result(stop)
        finally:
            job.close()
