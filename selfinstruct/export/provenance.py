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
from ..engine.rundir import file_sha256
from ..engine.view import RunView
from ..errors import SettingError
from ..runfiles import CONFIG_FILE, RUN
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
    if settings.get("endpoints"):  # several, named in a file: the card lists them by name, with their costs
        return f"the endpoints listed in {Path(settings['endpoints']).name}"
    if base_url is None:
        return "the embedded teacher (llama.cpp on the machine that ran selfinstruct)"
    hosts = []
    for url in [base_url] if isinstance(base_url, str) else base_url:  # --base-url may be given several times
        parsed = urlparse(url)
        hosts.append(
            parsed.hostname + (f":{parsed.port}" if parsed.port else "") if parsed.hostname else "unknown host"
        )
    return ", ".join(hosts)


def gather(src: str | Path, records: list[dict], run_dir: str | Path | None = None) -> Provenance:
    src = Path(src)
    teachers = sorted({r["teacher_model"] for r in records if r.get("teacher_model")})
    created = sorted(r["created"] for r in records if r.get("created"))
    facts = Provenance(src, len(records), teachers, (created[0], created[-1]) if created else None)
    run = RunView(run_dir) if run_dir is not None else None
    if run is not None and run.read_config() is None:
        raise SettingError(
            f"{run_dir}: no {CONFIG_FILE}; {{run_dir}} must name a directory made by `selfinstruct generate`", "run_dir"
        )
    _trace(facts, src, run)
    return facts


def _trace(facts: Provenance, src: Path, run: RunView | None) -> None:
    """Follow `src` back to the run that made its records: through a filter output (its stats.json
    names its input) and a judge run (its config names the source it rated)."""
    folder = RunView.of(src)
    run = run if run is not None else _run_of(src)
    filter_stats = None
    if folder is not None and (run is None or folder.path.resolve() != run.path.resolve()):
        filter_stats = folder.read_stats()
        if run is None and filter_stats and filter_stats.get("input"):
            run = _run_of(Path(filter_stats["input"]))  # `selfinstruct filter` names its input
    config = run.read_config() if run is not None else None
    if config is not None and config.get("task") == "judge":
        if facts.judging is None:  # the last judge the records went through (a source judged twice: the second)
            cost = cost_report(run.path) if run.ledger.exists() else None
            facts.judging = Judging(run.path, config, run.read_stats(), cost, after=filter_stats)
        source = config.get("config", {}).get("source")
        if source and Path(source).exists():  # the records it rated: gone when moved since
            _trace(facts, Path(source), None)
        return
    facts.filter_stats = filter_stats
    if config is not None:
        facts.run_dir = run.path
        facts.config = config
        facts.generation_stats = run.read_stats()
        if run.ledger.exists():
            facts.cost = cost_report(run.path)


def _run_of(path: Path) -> RunView | None:
    """The run directory that `path` is, or whose data.jsonl it is; None for anything else."""
    view = RunView.of(path)
    return view if view is not None and view.kind == RUN else None
