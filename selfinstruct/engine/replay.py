"""Resuming: the ledger back into a job's state, the same whatever moment the last run died at.

The ledger is the source of truth; data.jsonl and rejected.jsonl are what its answers gave,
in ledger order. Replaying every answer through the task and the cleaner rebuilds them
exactly, but costs as much CPU as making them. So the job writes a checkpoint as it goes
(`checkpoint.json`: how many answers the two files hold, their sizes, the counts), and a
resume trusts the files up to it:

1. cut both files back to the checkpoint's sizes (lines written after it are re-derived);
2. read them back: the accepted records go back to the task (a bootstrap shows them in
   later prompts) and, with the near duplicates, into the duplicate index, unchecked;
3. replay only the answers after the checkpoint.

A checkpoint is used only when it still matches (see `checkpoint`). Anything else (a
format-1 directory, an upgrade, a file lost with a power cut) falls back to replaying the
whole ledger, which gives the same files. `tests/test_replay.py` checks that both paths give byte-identical results.
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
    state = load_ledger(job.run.ledger)
    for request in state.answered_requests():
        job.task.answered(request)
    checkpoint = usable_checkpoint(job, state)
    if checkpoint is None:
        job.run.checkpoint.unlink(missing_ok=True)
        for path in (job.run.data, job.run.surplus, job.run.rejected):
            _truncate(path, 0)
        tail = state.responses
    else:
        _truncate(job.run.data, checkpoint["data_bytes"])
        _truncate(job.run.rejected, checkpoint["rejected_bytes"])
        _truncate(job.run.surplus, checkpoint["surplus_bytes"])
        kept = [record for _, record in read_jsonl(job.run.data)]
        surplus = [record for _, record in read_jsonl(job.run.surplus)]
        rejected = [row for _, row in read_jsonl(job.run.rejected)]
        job.cleaner.restore(kept + surplus, rejected, Stats(checkpoint["cleaning"]))
        job.stats = Stats(checkpoint["job"])
        job.restore_kept(kept, surplus)
        job.responses_taken = checkpoint["responses"]
        job.last_request_id = checkpoint["last_request_id"]
        tail = state.responses[checkpoint["responses"] :]
    job.open(state)
    for response in tail:
        job.take(state.requests[response["request_id"]], response)
    job.drain(wait=True)
    job.session["replayed"] = len(tail)
    job.session["restore_s"] = time.monotonic() - started
    return state


def _truncate(path: Path, size: int) -> None:
    with open(path, "ab") as f:
        f.truncate(size)
