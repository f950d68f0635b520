"""The read side of a folder selfinstruct wrote: a run directory or a filter output.

    view = RunView.of("outputs/run/data.jsonl")  # its folder; None for a dataset file
    view.kind                                    # "run" or "filter output" (see `runfiles.kind_of`)
    view.read_config()                           # config.json, format 1 read as format 2
    view.read_records(), view.read_rejected(), view.read_stats(), view.read_ledger()

`filter`, `export`, `report` and `cost` read runs through it. It reads a file when asked and
never writes or locks: a run may be read while its job writes it (readers skip a torn last line,
and every other file is replaced whole). A file that is not there reads as None.
"""

from __future__ import annotations

from pathlib import Path

from ..records import read_json_object, read_jsonl, read_records
from ..runfiles import RunFiles, folder_of, kind_of
from .ledger import LedgerState, load_ledger
from .rundir import read_run_config


class RunView(RunFiles):
    @classmethod
    def of(cls, src: str | Path) -> RunView | None:
        """The view of the folder `src` is, or whose data.jsonl it is; None for any other file."""
        folder = folder_of(Path(src))
        return cls(folder) if folder is not None else None

    @property
    def kind(self) -> str | None:
        return kind_of(self.path)

    def read_config(self) -> dict | None:
        """The run's task, identity and settings (format 1 read as format 2)."""
        return read_run_config(self.path) if self.config.exists() else None

    def read_records(self) -> list[dict]:
        return read_records(self.path)

    def read_rejected(self) -> list[dict] | None:
        """rejected.jsonl's rows: the record with its `reason`, `detail` and `duplicate_of`."""
        return [row for _, row in read_jsonl(self.rejected)] if self.rejected.exists() else None

    def read_stats(self) -> dict | None:
        return read_json_object(self.stats)

    def read_ledger(self) -> LedgerState | None:
        return load_ledger(self.ledger) if self.ledger.exists() else None


def rule_counts(stats: dict | None) -> dict[str, int] | None:
    """Rejections per rule from a stats.json: a run keeps them under `filters`, a filter output at the top."""
    if not stats:
        return None
    counts = stats.get("filters", stats).get("rejected")
    return counts if isinstance(counts, dict) else None
