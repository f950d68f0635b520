"""What a report reads: the records of a dataset and, for a run, how they were made.

    run directory (generate --out)  data.jsonl, rejected.jsonl, stats.json, ledger.jsonl, config.json
    filter output (filter --out)    data.jsonl, rejected.jsonl, stats.json
    any file read_records reads     the records alone

Everything is read, nothing written: a report may be made of a run that is still being
written (readers skip a torn last line), and SRC is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.ledger import LedgerState, load_ledger
from ..engine.rundir import CONFIG_FILE, DATA_FILE, LEDGER_FILE, REJECTED_FILE, RUN_FILES, STATS_FILE
from ..errors import SelfInstructError
from ..records import read_json_object, read_jsonl, read_records
from ..tasks.bootstrap.seeds import SeedSet, load_seeds
from .cost import CostReport, cost_report


@dataclass
class Source:
    path: Path
    name: str
    kind: str  # "run", "filter output" or "dataset"
    records: list[dict]  # the accepted records
    rejected: list[dict] | None  # rejected.jsonl rows (reason, detail, duplicate_of); None: not known
    stats: dict | None  # stats.json
    ledger: LedgerState | None
    cost: CostReport | None
    seeds: SeedSet  # what "ROUGE-L to the most similar seed" compares with

    def files(self) -> list[Path]:
        """The files a report reads (and so must never write)."""
        if self.kind == "dataset":
            return [self.path]
        return [self.path / name for name in RUN_FILES]

    @property
    def rule_counts(self) -> dict[str, int] | None:
        """Rejections per rule: a run keeps them under `filters`, a filter output at the top."""
        if not self.stats:
            return None
        counts = self.stats.get("filters", self.stats).get("rejected")
        return counts if isinstance(counts, dict) else None


def load_source(src: str | Path, seeds: str | Path | None = None) -> Source:
    """Read `src` (a run or filter directory, its data.jsonl, or a dataset file).

    The seeds are `seeds` when given, else the run's own seed file (config.json), else the
    bundled seed tasks."""
    path = Path(src)
    if not path.exists():
        raise SelfInstructError(f"{path}: no such file or directory")
    folder = path if path.is_dir() else path.parent if path.name == DATA_FILE else None
    if folder is None or not (folder / DATA_FILE).exists():
        return Source(path, path.name, "dataset", read_records(path), None, None, None, None, load_seeds(seeds))
    config = read_json_object(folder / CONFIG_FILE)
    is_run = config is not None and (folder / LEDGER_FILE).exists()
    run_seeds = ((config or {}).get("config") or {}).get("seeds")
    rejected_file = folder / REJECTED_FILE
    return Source(
        path=folder,
        name=folder.resolve().name,
        kind="run" if is_run else "filter output",
        records=read_records(folder / DATA_FILE),
        rejected=[row for _, row in read_jsonl(rejected_file)] if rejected_file.exists() else None,
        stats=read_json_object(folder / STATS_FILE),
        ledger=load_ledger(folder / LEDGER_FILE) if is_run else None,
        cost=cost_report(folder) if is_run else None,
        seeds=load_seeds(seeds or (run_seeds if run_seeds and Path(run_seeds).exists() else None)),
    )
