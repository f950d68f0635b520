"""Preference pairs for `finetune --method dpo`: reading them, checking them, and what they hold.

The pairs are trl's preference rows, as `selfinstruct export --format dpo` writes them (or any
dataset of that shape): `prompt`, `chosen`, `rejected`, as strings (standard) or message lists
(conversational), with the judge's `score_chosen` / `score_rejected` when they came from one.
Standard rows are trained as written, their prompt already in Alpaca's template (`--template
alpaca`); conversational rows go through the model's chat template (`--template chat`), so a
recipe whose template does not fit the rows is refused before the model is loaded.

    rows = read_pairs(Path("pairs.jsonl"))
    check_pairs(rows, "alpaca", "pairs.jsonl")
    describe_pairs(rows) -> {"pairs": 120, "conversational": False, "margins": {"3": 40, ...}, ...}
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..errors import SelfInstructError
from ..records import read_jsonl
from .template import Template

COLUMNS = ("prompt", "chosen", "rejected")
EXPORT_HINT = "make them with `selfinstruct export JUDGED_RUN --format dpo`"


def read_pairs(data: Path) -> list[dict]:
    """The rows of a .jsonl / .json / .parquet file or a saved datasets directory (its train split)."""
    name = data.name.lower()
    if data.is_dir():
        import datasets

        try:
            loaded = datasets.load_from_disk(str(data))
        except FileNotFoundError:
            raise SelfInstructError(f"{data}: not a saved dataset of preference pairs; {EXPORT_HINT}") from None
        rows = loaded["train"] if isinstance(loaded, datasets.DatasetDict) else loaded
        return rows.to_list()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(data).to_pylist()
    if name.endswith(".json") and data.read_text(encoding="utf-8").lstrip().startswith("["):
        return json.loads(data.read_text(encoding="utf-8"))
    return [row for _, row in read_jsonl(data)]


def check_pairs(rows: list[dict], template: Template, where: str) -> None:
    """Refuse rows that are not preference pairs, or whose form does not fit `template`."""
    if not rows:
        raise SelfInstructError(f"{where}: no preference pairs to train on")
    for number, row in enumerate(rows, start=1):
        missing = [column for column in COLUMNS if column not in row]
        if missing:
            raise SelfInstructError(
                f"{where}: row {number} has no {', '.join(repr(c) for c in missing)}: not preference pairs; {EXPORT_HINT}"
            )
        kinds = {type(row[column]) for column in COLUMNS}
        if kinds not in ({str}, {list}):
            raise SelfInstructError(
                f"{where}: row {number}: 'prompt', 'chosen' and 'rejected' must be all strings or all message lists"
            )
    conversational = isinstance(rows[0]["prompt"], list)
    if conversational != (template == "chat"):
        form, fit = ("conversational (message lists)", "chat") if conversational else ("standard (strings)", "alpaca")
        raise SelfInstructError(
            f"{where}: the pairs are {form}; train them with --template {fit} "
            "(standard rows are trained as written, conversational ones through the model's chat template)"
        )
    if any(isinstance(row["prompt"], list) != conversational for row in rows):
        raise SelfInstructError(f"{where}: some pairs are standard (strings) and some conversational (message lists)")


def describe_pairs(rows: list[dict]) -> dict:
    """What the model card says of the pairs: how many, their form, and the judge's score margins."""
    scored = [row for row in rows if _is_number(row.get("score_chosen")) and _is_number(row.get("score_rejected"))]
    margins = Counter(f"{row['score_chosen'] - row['score_rejected']:g}" for row in scored)
    return {
        "pairs": len(rows),
        "conversational": isinstance(rows[0]["prompt"], list),
        "scored": len(scored),
        "margins": dict(sorted(margins.items(), key=lambda item: -float(item[0]))),
        "mean_margin": round(sum(r["score_chosen"] - r["score_rejected"] for r in scored) / len(scored), 3)
        if scored
        else None,
    }


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
