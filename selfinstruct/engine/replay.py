"""Resuming: the ledger back into a job's state, the same whatever moment the last run died at.

The ledger is the source of truth; data.jsonl, surplus.jsonl and rejected.jsonl are what its
answers gave, in ledger order. Replaying every answer through the task and the cleaner rebuilds
them exactly, but costs as much CPU as making them. So the job writes a checkpoint as it goes
(`checkpoint.json`: how many answers the three files hold, their sizes, the counts), and a
resume trusts the files up to it:

1. cut the three files back to the checkpoint's sizes (lines written after it are re-derived);
2. read them back: the kept records (data and surplus) go back into the duplicate index with
   the near duplicates, unchecked, and are split again at the target, which may have changed
   (`Job.restore_kept`); the accepted ones go back to the task (a bootstrap shows them in
   later prompts), and every answer up to the checkpoint to the task's `recall` (an evolve
   run builds its next steps from them);
3. replay only the answers after the checkpoint.

A checkpoint is used only when it still matches (see `checkpoint`). Anything else (a
format-1 directory, an upgrade, a file lost with a power cut) falls back to replaying the
whole ledger, which gives the same files. `tests/test_replay.py` checks that both paths give
byte-identical results.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..records import read_jsonl
from ..stats import Stats
from .checkpoint import usable_checkpoint
from .job import Job
from .ledger import LedgerState, load_ledger


def restore(job: Job) -> LedgerState:
    """Rebuild `job` from its run directory and open it for appending."""
    started = time.monotonic()
    rundir = job.rundir
    ledger = load_ledger(rundir.ledger)
    for request in ledger.answered_requests():
        job.work.answered(request)
    checkpoint = usable_checkpoint(rundir, job.identity, job.cleaner, ledger)
    if checkpoint is None:
        rundir.checkpoint.unlink(missing_ok=True)
        for path in (rundir.data, rundir.surplus, rundir.rejected):
            _truncate(path, 0)
        tail = ledger.responses
    else:
        _truncate(rundir.data, checkpoint["data_bytes"])
        _truncate(rundir.rejected, checkpoint["rejected_bytes"])
        _truncate(rundir.surplus, checkpoint["surplus_bytes"])
        kept = [record for _, record in read_jsonl(rundir.data)]
        surplus = [record for _, record in read_jsonl(rundir.surplus)]
        rejected = [row for _, row in read_jsonl(rundir.rejected)]
        job.cleaner.restore(kept + surplus, rejected, Stats(checkpoint["cleaning"]))
        job.state.resumed(checkpoint)
        for response in ledger.responses[: checkpoint["responses"]]:
            job.task.recall(ledger.requests[response["request_id"]], response)
        job.restore_kept(kept, surplus)
        tail = ledger.responses[checkpoint["responses"] :]
    job.open(ledger)
    for response in tail:
        job.check_answer(ledger.requests[response["request_id"]], response)
    job.drain(wait=True)
    job.state.restored(replayed=len(tail), seconds=time.monotonic() - started)
    return ledger


def _truncate(path: Path, size: int) -> None:
    with open(path, "ab") as f:
        f.truncate(size)
