"""checkpoint.json: how much of the ledger data.jsonl and rejected.jsonl already hold.

Written with the reports while a job runs (every few seconds, and at the end); a resume
trusts the two files up to it and replays only the answers after it (see `replay`). It is
used only when it still matches: the same selfinstruct version (rules may change between
versions), the same run identity, the same rule settings (a setting that may change between
resumes, like a judge's threshold, then re-decides every answer from the ledger: nothing is
asked again), a ledger that still has the answers it counted, and files at least as long as
it says.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .. import __version__
from ..records import read_json_object, write_json_atomic
from .ledger import LedgerState


def identity_sha256(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def rules_sha256(job) -> str:
    """The settings of the rules that decided the files, as the rule-check workers rebuild them."""
    rules = [(rule.name, rule.model_dump(mode="json")) for rule in job.cleaner.rules.rules]
    return hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()


def write_checkpoint(job) -> None:
    job.data.flush()
    job.rejected.flush()
    write_json_atomic(job.run.checkpoint, {
        "selfinstruct": __version__,
        "identity_sha256": identity_sha256(job.identity),
        "rules_sha256": rules_sha256(job),
        "responses": job.responses_taken,
        "last_request_id": job.last_request_id,
        "data_bytes": job.data.size,
        "rejected_bytes": job.rejected.size,
        "accepted": job.accepted,
        "cleaning": job.cleaner.stats.to_dict(),
        "job": job.stats.to_dict(),
    })  # fmt: skip


def usable_checkpoint(job, state: LedgerState) -> dict | None:
    """The run directory's checkpoint, if it still describes its files and ledger."""
    checkpoint = read_json_object(job.run.checkpoint) if job.run.checkpoint.exists() else None
    if checkpoint is None:
        return None
    answers = checkpoint.get("responses")
    matches = (
        checkpoint.get("selfinstruct") == __version__
        and checkpoint.get("identity_sha256") == identity_sha256(job.identity)
        and checkpoint.get("rules_sha256") == rules_sha256(job)
        and isinstance(answers, int)
        and answers <= len(state.responses)
        and (state.responses[answers - 1]["request_id"] if answers else None) == checkpoint.get("last_request_id")
        and _size(job.run.data) >= checkpoint.get("data_bytes", -1) >= 0
        and _size(job.run.rejected) >= checkpoint.get("rejected_bytes", -1) >= 0
    )
    return checkpoint if matches else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
