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

from ..engine.ledger import LedgerState
from ..engine.view import RunView, rule_counts
from ..errors import SelfInstructError
from ..records import read_records
from ..runfiles import FILTER_OUTPUT, RUN, RUN_FILES
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
        return rule_counts(self.stats)

    @classmethod
    def read(cls, src: str | Path, seeds: str | Path | None = None) -> Source:
        """Read `src` (a run or filter directory, its data.jsonl, or a dataset file).

        The seeds are `seeds` when given, else the run's own seed file (config.json), else the
        bundled seed tasks."""
        path = Path(src)
        if not path.exists():
            raise SelfInstructError(f"{path}: no such file or directory")
        view = RunView.of(path)
        if view is None or view.kind not in (RUN, FILTER_OUTPUT):
            return cls(path, path.name, "dataset", read_records(path), None, None, None, None, load_seeds(seeds))
        config = view.read_config()
        ledger = view.read_ledger() if view.kind == RUN else None
        run_seeds = ((config or {}).get("config") or {}).get("seeds")
        return cls(
            path=view.path,
            name=view.path.resolve().name,
            kind=view.kind,
            records=view.read_records(),
            rejected=view.read_rejected(),
            stats=view.read_stats(),
            ledger=ledger,
            cost=cost_report(view.path) if ledger is not None else None,
            seeds=load_seeds(seeds or (run_seeds if run_seeds and Path(run_seeds).exists() else None)),
        )
