"""checkpoint.json: how much of the ledger data.jsonl, surplus.jsonl and rejected.jsonl already hold.

Written with the reports while a job runs (every few seconds, and at the end); a resume
trusts the three files up to it and replays only the answers after it (see `replay`). It is
used only when it still matches: the same selfinstruct version (rules may change between
versions), the same run identity, the same rule settings (a setting that may change between
resumes, like a judge's threshold, then re-decides every answer from the ledger: nothing is
asked again), a ledger that still has the answers it counted, and files at least as long as
it says. A damaged one (a power cut before the file reached the disk) is ignored with a warning:
the whole ledger is replayed instead.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .. import __version__
from ..errors import SelfInstructError, warn
from ..records import read_json_object, write_json_atomic
from .ledger import LedgerState
from .state import JobState

if TYPE_CHECKING:
    from ..clean import Cleaner
    from .rundir import RunDir


class RecordSizes(NamedTuple):
    """The sizes in bytes of the three files a job appends records to."""

    data: int
    surplus: int
    rejected: int


def identity_sha256(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def rules_sha256(cleaner: Cleaner) -> str:
    """The settings of the rules that decided the files, as the rule-check workers rebuild them."""
    rules = [(rule.name, rule.model_dump(mode="json")) for rule in cleaner.rules.rules]
    return hashlib.sha256(json.dumps(rules, sort_keys=True, default=str).encode()).hexdigest()


def write_checkpoint(path: Path, identity: dict, cleaner: Cleaner, state: JobState, sizes: RecordSizes) -> None:
    """`sizes`: data.jsonl, surplus.jsonl and rejected.jsonl as they are on the disk now, flushed."""
    write_json_atomic(
        path,
        {
            "selfinstruct": __version__,
            "identity_sha256": identity_sha256(identity),
            "rules_sha256": rules_sha256(cleaner),
            "responses": state.answers_decided,
            "last_request_id": state.last_request_id,
            "data_bytes": sizes.data,
            "surplus_bytes": sizes.surplus,
            "rejected_bytes": sizes.rejected,
            "accepted": state.accepted,
            "cleaning": cleaner.stats.to_dict(),
            "job": state.stats.to_dict(),
        },
    )


def made_with(run: RunDir, identity: dict) -> bool:
    """Whether `run`'s checkpoint was written by a job of this identity: what vouches for a run whose
    config.json is lost when its ledger is too old to record the run's settings."""
    try:
        checkpoint = read_json_object(run.checkpoint) or {}
    except SelfInstructError:
        return False
    return checkpoint.get("identity_sha256") == identity_sha256(identity)


def usable_checkpoint(rundir: RunDir, identity: dict, cleaner: Cleaner, ledger: LedgerState) -> dict | None:
    """The run directory's checkpoint, if it still describes its files and ledger."""
    try:
        checkpoint = read_json_object(rundir.checkpoint)
    except SelfInstructError as e:
        warn(f"{e}: ignored; data.jsonl, surplus.jsonl and rejected.jsonl are rebuilt from the whole ledger instead")
        return None
    if checkpoint is None:
        return None
    answers = checkpoint.get("responses")
    matches = (
        checkpoint.get("selfinstruct") == __version__
        and checkpoint.get("identity_sha256") == identity_sha256(identity)
        and checkpoint.get("rules_sha256") == rules_sha256(cleaner)
        and all(
            isinstance(checkpoint.get(key), int)
            for key in ("responses", "data_bytes", "surplus_bytes", "rejected_bytes")
        )
        and answers <= len(ledger.responses)
        and (ledger.responses[answers - 1]["request_id"] if answers else None) == checkpoint.get("last_request_id")
        and _size(rundir.data) >= checkpoint.get("data_bytes", -1) >= 0
        and _size(rundir.rejected) >= checkpoint.get("rejected_bytes", -1) >= 0
        and _size(rundir.surplus) >= checkpoint.get("surplus_bytes", -1) >= 0
    )
    return checkpoint if matches else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
