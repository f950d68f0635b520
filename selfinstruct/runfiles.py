"""The files selfinstruct writes into a folder, each name defined once, and what a path handed to it is.

A run directory (`generate`, `answer`, `judge --out DIR`):

    DIR/config.json      the task, its settings, the format version, hashes of its inputs
    DIR/ledger.jsonl     every request and response (the source of truth)
    DIR/data.jsonl       accepted records, the target's worth } derived from the ledger;
    DIR/surplus.jsonl    accepted past the target (paid for)  } on resume they are checked
    DIR/rejected.jsonl   rejected ones, with the reason       } against the checkpoint and
    DIR/checkpoint.json  how much of the ledger they hold     } completed from it
    DIR/stats.json       counts per rule, acceptance, throughput
    DIR/cost.json        tokens and dollars
    DIR/teacher.log      the embedded teacher's log
    DIR/.lock            locked by the process writing the directory

A filter output (`filter --out DIR`) holds data.jsonl, rejected.jsonl and stats.json alone.
How a run directory is written and resumed is `engine/rundir.py`; how any of them is read,
`engine/view.py`. This module is on the ground floor so that `read_records` can tell them apart
too, without importing the engine.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.json"
LEDGER_FILE = "ledger.jsonl"
DATA_FILE = "data.jsonl"
SURPLUS_FILE = "surplus.jsonl"
REJECTED_FILE = "rejected.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
STATS_FILE = "stats.json"
COST_FILE = "cost.json"
TEACHER_LOG = "teacher.log"
LOCK_FILE = ".lock"
RUN_FILES = (
    CONFIG_FILE,
    LEDGER_FILE,
    DATA_FILE,
    SURPLUS_FILE,
    REJECTED_FILE,
    CHECKPOINT_FILE,
    STATS_FILE,
    COST_FILE,
    TEACHER_LOG,
)
FILTER_OUTPUT_FILES = (DATA_FILE, REJECTED_FILE, STATS_FILE)
MERGED_FROM = "merged_from"  # config.json's key that names the shards a merged run directory was made from
SAVED_DATASET_MARKERS = ("state.json", "dataset_dict.json")  # what `datasets.save_to_disk` leaves in a folder

# What a path handed to selfinstruct is (`kind_of`).
RUN = "run"  # a run directory with records: data.jsonl and config.json
FILTER_OUTPUT = "filter output"  # data.jsonl without a run's config: a filter output (or any folder with a data.jsonl)
SAVED_DATASET = "saved dataset"  # a folder written by `datasets.save_to_disk`
DATASET_FILE = "dataset file"  # any other file: read_records tells its format by its name


class RunFiles:
    """The paths of the files in a run directory (or a filter output, which has three of them)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config = property(lambda self: self.path / CONFIG_FILE)
    ledger = property(lambda self: self.path / LEDGER_FILE)
    data = property(lambda self: self.path / DATA_FILE)
    surplus = property(lambda self: self.path / SURPLUS_FILE)
    rejected = property(lambda self: self.path / REJECTED_FILE)
    checkpoint = property(lambda self: self.path / CHECKPOINT_FILE)
    stats = property(lambda self: self.path / STATS_FILE)
    cost = property(lambda self: self.path / COST_FILE)
    teacher_log = property(lambda self: self.path / TEACHER_LOG)


def folder_of(path: Path) -> Path | None:
    """The folder `path` names: itself when it is a directory, its folder when it is a data.jsonl
    (outputs/run/data.jsonl -> outputs/run); None for any other file."""
    if path.is_dir():
        return path
    return path.parent if path.name == DATA_FILE else None


def kind_of(path: Path) -> str | None:
    """RUN, FILTER_OUTPUT, SAVED_DATASET or DATASET_FILE; None for a directory that is none of them.

    A run directory or filter output is named by its folder or by its data.jsonl; its data.jsonl
    comes first, so a folder holding both it and a saved dataset is read as ours."""
    folder = folder_of(path)
    if folder is None:
        return DATASET_FILE
    if (folder / DATA_FILE).exists():
        return RUN if (folder / CONFIG_FILE).exists() else FILTER_OUTPUT
    if any((folder / marker).exists() for marker in SAVED_DATASET_MARKERS):
        return SAVED_DATASET
    return None
