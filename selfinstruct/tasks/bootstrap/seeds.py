"""Seed tasks: the human-written examples the teacher imitates.

Accepted formats are those of `records.read_records`: self-instruct JSONL (`instruction`,
`instances`), Alpaca's JSON list, or JSONL with `instruction/input/output`. Like Alpaca,
a self-instruct task contributes its first instance. Each seed keeps where it is in its file
(`file:line` in JSONL), for the messages about it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ...errors import SelfInstructError
from ...records import read_located_records
from ...resources import data_dir

DEFAULT_SEEDS = "seed_tasks.jsonl"


@dataclass(frozen=True)
class SeedSet:
    path: Path
    sha256: str
    tasks: list[dict]  # each: id, instruction, input, output
    where: list[str]  # where each task is in the file


def default_seeds_path() -> Path:
    return data_dir("seeds") / DEFAULT_SEEDS


def load_seeds(path: str | Path | None = None) -> SeedSet:
    path = Path(path) if path else default_seeds_path()
    tasks, where, seen_ids = [], [], set()
    for number, (place, record) in enumerate(read_located_records(path)):
        task_id = str(record.get("id", f"seed_{number}"))
        if task_id in seen_ids:  # later instances of one self-instruct task
            continue
        seen_ids.add(task_id)
        tasks.append(
            {"id": task_id, "instruction": record["instruction"], "input": record["input"], "output": record["output"]}
        )
        where.append(place)
    if not tasks:
        raise SelfInstructError(f"{path}: no seed tasks in the file")
    return SeedSet(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), tasks=tasks, where=where)
