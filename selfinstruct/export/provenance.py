"""What a source says about how its records were made: the facts a dataset card states.

A run directory (`generate --out`) knows everything: teacher, settings, seed and preset
hashes (config.json), filter counts (stats.json) and tokens and dollars (ledger.jsonl). A
filter output directory knows its own counts per rule, and its stats.json names its input,
which leads to the run (or name the run with `run_dir`). A plain file knows only its records
(which may name their teacher). A judge run (`selfinstruct judge`) knows its ratings and
their cost (`Judging`), and its config names the source it rated, which leads on to the run
that made the records.
Missing facts stay None and the card says they are unknown.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..clean.presets import preset_path
from ..engine.rundir import CONFIG_FILE, LEDGER_FILE, file_sha256
from ..errors import SettingError
from ..records import read_json_object
from ..report.cost import CostReport, cost_report
from ..tasks.bootstrap.seeds import default_seeds_path


@dataclass
class Judging:
    """A judge run the records went through, and a `filter` run after it (`--min-score`)."""

    run_dir: Path
    config: dict  # the judge run's config.json
    stats: dict | None  # its stats.json
    cost: CostReport | None
    after: dict | None = None  # stats.json of a `filter` of the judged records

    @property
    def model(self) -> str | None:
        return self.config.get("identity", {}).get("model")

    @property
    def host(self) -> str | None:
        return teacher_host(self.config.get("config", {}))

    @property
    def figures(self) -> dict:
        """{"threshold", "scored", "kept", "histogram"} from the judge's stats.json."""
        return (self.stats or {}).get("judge") or {}

    @property
    def threshold(self) -> float | None:
        """The threshold the exported records were selected at: a later `filter --min-score`'s, or the judge's."""
        if self.after and self.after.get("min_score") is not None:
            return self.after["min_score"]
        return self.figures.get("threshold", self.config.get("config", {}).get("threshold"))


@dataclass
class Provenance:
    source: Path
    records: int
    teachers: list[str]  # teacher_model values found in the records
    created: tuple[str, str] | None  # first and last `created` of the records
    run_dir: Path | None = None
    config: dict | None = None  # the run's config.json
    generation_stats: dict | None = None  # the run's stats.json
    filter_stats: dict | None = None  # stats.json of a filter output directory
    cost: CostReport | None = None
    judging: Judging | None = None  # the records were rated by a judge run

    @property
    def identity(self) -> dict:
        return (self.config or {}).get("identity", {})

    @property
    def settings(self) -> dict:
        return (self.config or {}).get("config", {})

    @property
    def teacher(self) -> str | None:
        return self.identity.get("model") or (", ".join(self.teachers) if self.teachers else None)

    @property
    def host(self) -> str | None:
        """Where the teacher ran: host and port only, so no path, query or user:password
        part of a base URL (where keys sometimes hide) can reach the card."""
        return teacher_host(self.settings) if self.config else None

    def seeds(self) -> tuple[str, str] | None:
        """(name, sha256) of the seed set: the bundled one, or the file's name."""
        if not self.config:
            return None
        path = self.settings.get("seeds")
        name = f"`{Path(path).name}` (the user's)" if path else f"the bundled `seeds/{default_seeds_path().name}`"
        return name, self.identity.get("seeds_sha256", "unknown")

    def dedup_settings(self) -> dict | None:
        """The `[dedup]` table of the run's preset as written in its file (unset keys take their
        defaults), when the file is still the one the run used."""
        name, sha = self.identity.get("preset"), self.identity.get("preset_sha256")
        path = preset_path(name) if name else None
        if path is None or not path.is_file() or file_sha256(path) != sha:
            return None
        return tomllib.loads(path.read_text(encoding="utf-8")).get("dedup", {})


def teacher_host(settings: dict) -> str:
    """Where a run's teacher ran: host and port only, so no path, query or user:password part
    of a base URL (where keys sometimes hide) can reach the card."""
    base_url = settings.get("base_url")
    if base_url is None:
        return "the embedded teacher (llama.cpp on the machine that ran selfinstruct)"
    parsed = urlparse(base_url)
    return parsed.hostname + (f":{parsed.port}" if parsed.port else "") if parsed.hostname else "unknown host"


def gather(src: str | Path, records: list[dict], run_dir: str | Path | None = None) -> Provenance:
    src = Path(src)
    teachers = sorted({r["teacher_model"] for r in records if r.get("teacher_model")})
    created = sorted(r["created"] for r in records if r.get("created"))
    facts = Provenance(src, len(records), teachers, (created[0], created[-1]) if created else None)
    if run_dir is not None and read_json_object(Path(run_dir) / CONFIG_FILE) is None:
        raise SettingError(
            f"{run_dir}: no {CONFIG_FILE}; {{run_dir}} must name a directory made by `selfinstruct generate`", "run_dir"
        )
    _trace(facts, src, Path(run_dir) if run_dir is not None else None)
    return facts


def _trace(facts: Provenance, src: Path, run_dir: Path | None) -> None:
    """Follow `src` back to the run that made its records: through a filter output (its stats.json
    names its input) and a judge run (its config names the source it rated)."""
    folder = src if src.is_dir() else src.parent if src.name == "data.jsonl" else None
    run_dir = run_dir if run_dir is not None else _run_dir_of(src)
    filter_stats = None
    if folder is not None and (run_dir is None or folder.resolve() != run_dir.resolve()):
        filter_stats = read_json_object(folder / "stats.json")
        if run_dir is None and filter_stats and filter_stats.get("input"):
            run_dir = _run_dir_of(Path(filter_stats["input"]))  # `selfinstruct filter` names its input
    config = read_json_object(run_dir / CONFIG_FILE) if run_dir is not None else None
    if config is not None and config.get("task") == "judge":
        if facts.judging is None:  # the last judge the records went through (a source judged twice: the second)
            cost = cost_report(run_dir) if (run_dir / LEDGER_FILE).exists() else None
            facts.judging = Judging(run_dir, config, read_json_object(run_dir / "stats.json"), cost, after=filter_stats)
        source = config.get("config", {}).get("source")
        if source and Path(source).exists():  # the records it rated: gone when moved since
            _trace(facts, Path(source), None)
        return
    facts.filter_stats = filter_stats
    if config is not None:
        facts.run_dir = run_dir
        facts.config = config
        facts.generation_stats = read_json_object(run_dir / "stats.json")
        if (run_dir / LEDGER_FILE).exists():
            facts.cost = cost_report(run_dir)


def _run_dir_of(path: Path) -> Path | None:
    """The run directory that `path` is, or whose data.jsonl it is; None for anything else."""
    folder = path if path.is_dir() else path.parent if path.name == "data.jsonl" else None
    return folder if folder is not None and (folder / CONFIG_FILE).exists() else None


def rule_counts(stats: dict | None) -> dict[str, int] | None:
    """Rejections per rule: a run keeps them under `filters`, a filter output at the top."""
    if not stats:
        return None
    counts = stats.get("filters", stats).get("rejected")
    return counts if isinstance(counts, dict) else None

