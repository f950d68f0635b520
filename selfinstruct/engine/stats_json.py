"""stats.json: what a job did, from the one set of counters (see `selfinstruct.stats`).

The keys are those generate runs have always written (the dataset card and `cost` read
them); `task` and `this_session.resume_seconds` were added with the job engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..stats import cleaning_summary

if TYPE_CHECKING:
    from .job import Job


def stats_json(job: Job, status: str) -> dict:
    cleaning = job.cleaner.stats
    totals = job.ledger.totals
    state = job.state
    session = state.session
    elapsed = session.elapsed_s()
    return {
        "status": status,
        "task": job.task.name,
        "target": job.target,
        "accepted": state.accepted,
        "surplus": state.surplus,  # kept past the target, in surplus.jsonl
        "requests": totals.requests,
        "responses": totals.responses,
        "failed_requests": totals.failures,
        "candidates": cleaning["seen"],
        "acceptance_rate": round(cleaning["kept"] / cleaning["seen"], 4) if cleaning["seen"] else None,
        # the teacher's yield: the surplus was accepted too
        "accepted_per_response": round((state.accepted + state.surplus) / totals.responses, 3)
        if totals.responses
        else None,
        "unparseable": state.unparseable,
        "filters": cleaning_summary(cleaning),
        "preset": job.task.preset.name,
        **job.work.describe(),
        **job.task.describe(cleaning + state.stats),
        "this_session": {
            "seconds": round(elapsed, 1),
            "responses": session.responses,
            "requests_per_s": round(session.responses / elapsed, 4) if elapsed else None,
            "completion_tokens_per_s": round(session.completion_tokens / elapsed, 1) if elapsed else None,
            "replayed_responses": session.replayed,
            "resume_seconds": round(session.restore_s, 3),
        },
    }
