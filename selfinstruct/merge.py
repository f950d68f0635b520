"""`selfinstruct merge DIR... --out OUT`: the run directories of one run's workers (`--shard i/N`)
made into one run directory, which `export`, `cost` and `report` read as they read any run.

    result = merge(["outputs/w1", "outputs/w2", "outputs/w3"], "outputs/merged")

- The shards must be workers of one run: the same task and settings (config.json's identity),
  each its own shard. Each is locked while it is read, so a worker still writing is refused.
- Records: the shards' data.jsonl in shard order, then their surplus.jsonl, through the
  duplicate check of the run's preset (its `[dedup]` settings, keep the first copy): a
  record that duplicates one of an earlier shard goes to rejected.jsonl with the reason and
  the record it repeats, and is counted per shard. Workers that shared a duplicate index
  (`--shared-run`) leave none; shards run apart leave some.
- Money: ledger.jsonl holds every shard's events, each request id prefixed with its shard
  ("2/3:r000012", and so are the records' ids and request ids: each shard numbers its own), so the cost report and the card add up all the workers' tokens and dollars
  (cost.json is written from it, as a run writes its own).
- config.json is the first shard's, without its shard, and names the shards (`merged_from`):
  the card describes the records as the run made them. A merged directory is never resumed:
  each shard resumes in its own directory (`RunDir.prepare` refuses it).
- stats.json: the totals, the rejections by reason, and per shard its records, surplus,
  duplicates of other shards, requests and dollars.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .clean.dedup import find_duplicates
from .clean.presets import load_preset, preset_path
from .engine.costs import CostSummary
from .engine.ledger import load_ledger
from .engine.rundir import RunDir, file_sha256, read_run_config
from .errors import SelfInstructError, SettingError
from .pricing import price_for
from .records import JsonlWriter, read_json_object, read_jsonl, write_json_atomic
from .runfiles import MERGED_FROM, RUN_FILES, RunFiles

CROSS_SHARD = "duplicate_across_shards"  # stats.json's count of records dropped as another shard's copies


@dataclass
class MergeResult:
    out_dir: Path
    records: int
    surplus: int
    duplicates: int  # records dropped as copies of another shard's
    stats: dict


@dataclass
class _Shard:
    path: Path
    label: str  # "2/3", or the directory's position among those merged
    config: dict
    records: list[dict]
    surplus: list[dict]


def merge(run_dirs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False) -> MergeResult:
    """Combine the shards' run directories `run_dirs` into the run directory `out`."""
    if len(run_dirs) < 2:
        raise SettingError("give two or more run directories to merge, the shards of one run", "run_dirs")
    out = Path(out)
    _check_out(out, overwrite)
    shards = [_read_shard(Path(d), position) for position, d in enumerate(run_dirs, 1)]
    _check_one_run(shards)
    first = shards[0].config
    preset = _preset(first, shards[0].path)

    # Records in shard order, data before surplus: an earlier shard's copy is the one kept.
    rows = [(shard, _prefixed(record, shard.label), False) for shard in shards for record in shard.records]
    rows += [(shard, _prefixed(record, shard.label), True) for shard in shards for record in shard.surplus]
    duplicates = find_duplicates([preset.dedup.text(record) for _, record, _ in rows], preset.dedup)

    out.mkdir(parents=True, exist_ok=True)
    files = RunFiles(out)
    per_shard = {shard.label: {"dir": str(shard.path), "records": 0, "surplus": 0, CROSS_SHARD: 0} for shard in shards}
    rejected_reasons: dict[str, int] = {}
    kept = surplus = dropped = 0
    with (
        JsonlWriter(files.data) as data,
        JsonlWriter(files.surplus) as surplus_file,
        JsonlWriter(files.rejected) as rejected,
    ):
        for (shard, record, is_surplus), duplicate in zip(rows, duplicates):
            counts = per_shard[shard.label]
            if duplicate is not None:
                of_shard, of_record, _ = rows[duplicate.of]
                rejected.write(
                    {
                        **record,
                        "reason": duplicate.reason,
                        "detail": f"{CROSS_SHARD}: shard {shard.label} repeats shard {of_shard.label}",
                        "duplicate_of": of_record["id"],
                        "shard": shard.label,
                    }
                )
                counts[CROSS_SHARD] += 1
                rejected_reasons[duplicate.reason] = rejected_reasons.get(duplicate.reason, 0) + 1
                dropped += 1
            elif is_surplus:
                surplus_file.write(record)
                counts["surplus"] += 1
                surplus += 1
            else:
                data.write(record)
                counts["records"] += 1
                kept += 1

    ledger = _merge_ledgers(shards, files.ledger)
    model = first["identity"].get("model")
    settings = first.get("config") or {}
    summary = CostSummary.of(
        ledger.totals,
        model=model,
        price=price_for(model, settings.get("price_in"), settings.get("price_out"), settings.get("price_cached"))
        if model
        else None,
        accepted=kept + surplus,
        max_cost_usd=settings.get("max_cost"),
    )
    for shard in shards:
        shard_cost = read_json_object(RunFiles(shard.path).cost) or {}
        per_shard[shard.label].update(requests=shard_cost.get("requests"), cost_usd=shard_cost.get("cost_usd"))
    shard_stats = [read_json_object(RunFiles(shard.path).stats) or {} for shard in shards]
    targets = [s.get("target") for s in shard_stats]
    stats = {
        "status": "merged",
        "task": first["task"],
        # a shared run's workers share one target; shards run apart each had their part of it
        "target": targets[0] if settings.get("shared_run") or None in targets else sum(targets),
        "accepted": kept,
        "surplus": surplus,
        "candidates": sum(s.get("candidates") or 0 for s in shard_stats),
        "requests": ledger.totals.requests,
        "responses": ledger.totals.responses,
        "filters": _filters(shard_stats, rejected_reasons),
        "rejected_across_shards": rejected_reasons,
        "shards": per_shard,
    }
    write_json_atomic(files.stats, stats)
    write_json_atomic(files.cost, summary.cost_json())
    config = {
        **first,
        "identity": {k: v for k, v in first["identity"].items() if k != "shard"},
        "config": {k: v for k, v in settings.items() if k not in ("shard", "shared_run")},
        MERGED_FROM: [{"dir": str(shard.path), "shard": shard.label} for shard in shards],
    }
    write_json_atomic(files.config, config)
    return MergeResult(out, kept, surplus, dropped, stats)


def _filters(shard_stats: list[dict], across: dict[str, int]) -> dict:
    """The shards' rule counts added up, the duplicates across shards counted under their reason."""
    seen = kept = 0
    rejected: dict[str, int] = {}
    fixed: dict[str, int] = {}
    for stats in shard_stats:
        filters = stats.get("filters") or {}
        seen += filters.get("seen") or 0
        kept += filters.get("kept") or 0
        for total, counts in ((rejected, filters.get("rejected")), (fixed, filters.get("fixed"))):
            for rule, n in (counts or {}).items():
                total[rule] = total.get(rule, 0) + n
    for reason, n in across.items():
        rejected[reason] = rejected.get(reason, 0) + n
    return {"seen": seen, "kept": kept - sum(across.values()), "rejected": rejected, "fixed": fixed}


def _check_out(out: Path, overwrite: bool) -> None:
    """`out` must be new or empty, or a merge made before (with `overwrite`): never a run's own directory."""
    if not out.exists() or not any(out.iterdir()):
        return
    merged = MERGED_FROM in (read_json_object(RunFiles(out).config) or {})
    if not merged:
        raise SettingError(f"{out}: exists and is not an earlier merge; choose another {{out}}", "out")
    if not overwrite:
        raise SettingError(f"{out}: holds an earlier merge; give {{overwrite}} to replace it", "out", "overwrite")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def _read_shard(path: Path, position: int) -> _Shard:
    run = RunDir(path)
    if not run.config.is_file() or not run.data.is_file():
        raise SelfInstructError(f"{path}: not a run directory (config.json and data.jsonl expected)")
    with run.lock():  # a worker still writing it is refused, with its pid
        config = read_run_config(path)
        if MERGED_FROM in config:
            raise SelfInstructError(f"{path}: is itself a merge; give the shards' own run directories")
        records = [record for _, record in read_jsonl(run.data)]
        surplus = [record for _, record in read_jsonl(run.surplus)] if run.surplus.exists() else []
    label = config["identity"].get("shard") or str(position)
    return _Shard(path, label, config, records, surplus)


def _check_one_run(shards: list[_Shard]) -> None:
    """The shards must be one run's workers: one task, one identity but for the shard, no shard twice."""
    first = shards[0]
    seen: dict[str, Path] = {}
    for shard in shards:
        if shard.label in seen:
            raise SelfInstructError(f"{shard.path} and {seen[shard.label]} are both shard {shard.label}")
        seen[shard.label] = shard.path
        if shard.config["task"] != first.config["task"]:
            raise SelfInstructError(
                f"{shard.path} holds a {shard.config['task']!r} run, {first.path} a {first.config['task']!r} run: "
                "merge the workers of one run"
            )
        # the preset by its hash: workers on several machines may keep the same file at other paths
        mine = {k: v for k, v in shard.config["identity"].items() if k not in ("shard", "preset")}
        theirs = {k: v for k, v in first.config["identity"].items() if k not in ("shard", "preset")}
        differences = [
            f"{k}: {theirs.get(k)!r} vs {mine.get(k)!r}"
            for k in sorted(mine.keys() | theirs.keys())
            if mine.get(k) != theirs.get(k)
        ]
        if differences:
            raise SelfInstructError(
                f"{shard.path} was made with other settings than {first.path} ({'; '.join(differences)}): "
                "merge the workers of one run"
            )


def _preset(config: dict, where: Path):
    """The run's preset, if its file is still the one the run used (its dedup settings decide)."""
    identity = config["identity"]
    path = preset_path(identity["preset"])
    if path is None or not path.is_file() or file_sha256(path) != identity.get("preset_sha256"):
        raise SelfInstructError(
            f"{where}: the run's preset {identity['preset']!r} is missing or has changed since the run, so its "
            "duplicate settings are unknown: put back the preset file the run used"
        )
    return load_preset(str(path))


def _prefixed(record: dict, label: str) -> dict:
    """The record with its id and request id prefixed with its shard, as in the merged ledger:
    each shard numbers its requests from r000000."""
    prefixed = {**record, "id": f"{label}:{record['id']}"} if "id" in record else dict(record)
    if record.get("request_id"):
        prefixed["request_id"] = f"{label}:{record['request_id']}"
    return prefixed


def _merge_ledgers(shards: list[_Shard], path: Path):
    """One ledger of every shard's events, request ids prefixed with the shard; read back as a ledger."""
    with open(path, "wb") as merged:
        for shard in shards:
            for _, event in read_jsonl(RunDir(shard.path).ledger):
                if "request_id" in event:
                    event["request_id"] = f"{shard.label}:{event['request_id']}"
                if "request_ids" in event:
                    event["request_ids"] = [f"{shard.label}:{r}" for r in event["request_ids"]]
                if "batch_key" in event:
                    event["batch_key"] = f"{shard.label}:{event['batch_key']}"
                merged.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
    return load_ledger(path)
