"""`run_job`: a task run (or resumed) in its run directory, the library call behind every
teacher command.

    result = run_job(BootstrapTask(config, seeds, preset), config, "outputs/run")
    result = run_task(evolve_task, config, "outputs/evolved")   # a task's public function: resolve, make, run

It takes the directory's lock, checks that the directory holds this task with these settings,
rebuilds the job from the ledger, starts the teacher (the configured endpoint or the
embedded one) only if there is work left, and writes the final reports. An embedded teacher
that dies mid-run is restarted once and the job rebuilt from its ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import SettingError, warn
from ..teacher.embedded import TeacherDied
from .config import JobConfig
from .job import Job, JobResult, StopPolicy, StopReason
from .replay import restore
from .rundir import RunDir, file_sha256
from .task import Task
from .work import shard_items

C = TypeVar("C", bound=JobConfig)

TEACHER_STARTS = 2  # an embedded teacher that dies mid-run is restarted once; a second death stops the run


def run_job(
    task: Task,
    config: JobConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """`teacher`: an object with the `TeacherClient` interface (`settings`, `complete`, `close`)
    to use instead of the configured endpoint, e.g. a model in this process."""
    run = RunDir(out)
    run.check_usable()
    price = config.price()
    identity = {**task.identity(), "preset_sha256": file_sha256(task.preset.path)}
    if config.shard is not None:  # a shard's records are its part of the run's: it resumes as that shard only
        identity["shard"] = str(config.shard_spec)
        shard_items(task, config.shard_spec)
    with run.lock():
        run.prepare(task.name, identity, config.model_dump(mode="json"), overwrite)
        for start in range(TEACHER_STARTS):
            job = Job(task, config, run, identity, price, policy)
            try:
                restore(job)
                open_batches = job.ledger.state.open_batches()
                done = job.finished()
                if done is not None and not open_batches:
                    return job.result(done)
                if open_batches and not config.batch:
                    names = ", ".join(b.batch_id or b.key for b in open_batches)
                    raise SettingError(
                        f"{run.path}: batch {names} is still open at the provider, and its answers are paid for: "
                        "rerun with {batch} to collect them",
                        "batch",
                    )
                return job.result(_run(job, config, progress, teacher))
            except TeacherDied as e:
                if not e.mid_run:  # it crashed at start-up, before any request: it would again
                    raise
                if start + 1 == TEACHER_STARTS:
                    raise TeacherDied(
                        f"{e}\nIt died again after a restart, so the run stops; {run.path} keeps every answer so far."
                    ) from None
                # A crash mid-run may be a one-off: a new teacher, and the job rebuilt from the
                # ledger, as a rerun would do.
                warn(f"{e}\nRestarting the embedded teacher once; the run resumes from its ledger.")
            finally:
                job.close()


def run_task(make_task: Callable[[C], Task], config: C, out: str | Path, **options) -> JobResult:
    """The body of a task's public function (`generate`, `judge`, `evolve`...): the config's
    defaults filled in (`JobConfig.resolved`), the task made from it, and `run_job` with the
    `options` (overwrite, progress, policy, teacher)."""
    config = config.resolved()
    return run_job(make_task(config), config, out, **options)


def _run(job: Job, config: JobConfig, progress: bool, teacher) -> StopReason:
    """Send the job's requests through the runner its config asks for: online, through the
    Batch API, or to an in-process teacher."""
    # here, not at the top: the clients import openai (0.5 s), a finished run needs none of it
    from ..teacher.endpoint import Endpoint, teacher_endpoints
    from .runners import runner_for

    if teacher is not None:
        return runner_for(config, [Endpoint(teacher.settings, client=teacher)], progress).run(job)
    if config.batch and config.embedded:
        raise SettingError(
            "the embedded teacher has no Batch API: set {base_url} to a provider's endpoint", "base_url", "batch"
        )
    with teacher_endpoints(config, log_path=job.rundir.teacher_log) as endpoints:
        return runner_for(config, endpoints, progress).run(job)
