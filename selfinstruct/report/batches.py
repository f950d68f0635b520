"""The batches of a run (`selfinstruct batches DIR`), read from its ledger: status and cost."""

from __future__ import annotations

from pathlib import Path

from ..engine.view import RunView
from ..errors import SelfInstructError
from ..runfiles import LEDGER_FILE


def batch_rows(src: str | Path) -> list[dict]:
    """One row per batch: key, remote id, status (as last seen; "open" while it runs),
    requests, answered, and the dollars its answers cost (at the batch price)."""
    state = RunView(src).read_ledger()
    if state is None:
        raise SelfInstructError(f"{src}: no {LEDGER_FILE} here; `batches` reads a run directory")
    answers_of: dict[str, list[dict]] = {}
    for response in state.responses:
        if response.get("batch_id") is not None:
            answers_of.setdefault(response["batch_id"], []).append(response)
    rows = []
    for record in state.batches.values():
        answers = answers_of.get(record.batch_id, []) if record.batch_id is not None else []
        rows.append(
            {
                "key": record.key,
                "batch_id": record.batch_id,
                "status": record.status or "open",
                "requests": len(record.request_ids),
                "answered": len(answers),
                "cost_usd": round(sum(r["cost_usd"] or 0.0 for r in answers), 8),
            }
        )
    return rows
