"""The cleaning stage on its own (the `filter` command): clean any instruction dataset.

    result = clean_dataset("alpaca_data.json", "outputs/clean",
                           decontaminate=["user_oriented_instructions.jsonl"])

reads what `read_records` reads (Alpaca JSON, JSONL, either gzipped, Parquet, a run directory,
a saved Hugging Face dataset) and writes

    DIR/data.jsonl      kept records, after the preset's repairs ("<noinput>" -> "")
    DIR/rejected.jsonl  the others, each with `reason`, `detail` and, for a duplicate,
                        `duplicate_of`: the id of the record it duplicates (its position
                        in the input, from 0, when records have no id)
    DIR/stats.json      counts per rule

DIR is never a run directory (its data.jsonl is derived from its ledger), and it is written
under a run directory's lock (`RunDir.lock`), held for the whole filter: a job starting there,
or another filter writing there, is refused meanwhile, and so is this one while they hold it.
The files replace the old ones only once complete.

With `engine="ray"` (clean/ray_engine.py) the records stream: a JSONL input is read a chunk at
a time into the cluster and the verdicts come back in order to be written, so the input may be
larger than this machine's memory.

With `min_score`, it re-selects records a judge rated (`selfinstruct judge`) at another
threshold, without asking again: the candidates are every scored record of a judge run
(data.jsonl, and the rejected.jsonl rows it rejected as `low_score`), or the records of any
other dataset with a `score`; the preset (default `judge`: the threshold alone) gets
`min_score` as its `low_score` threshold.

    clean_dataset("outputs/run-judged", "outputs/run-4.0", min_score=4.0)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

from ..engine.rundir import RunDir
from ..engine.view import RunView
from ..errors import SelfInstructError, SettingError
from ..records import atomic_file, iter_records, read_records, write_json_atomic
from ..runfiles import DATA_FILE, FILTER_OUTPUT_FILES, RUN
from ..stats import cleaning_summary
from .cleaner import Cleaner, Verdict, rejected_record
from .presets import load_preset
from .rules.score import LowScore, is_score, with_min_score

ENGINES = ("local", "ray")  # where the decisions are computed: this process, or a Ray cluster (ray_engine.py)


@dataclass
class CleanResult:
    out_dir: Path
    stats: dict


def clean_dataset(
    src: str | Path,
    out: str | Path,
    *,
    preset: str | None = None,
    decontaminate: Sequence[str | Path] = (),
    lsh_storage: str | None = None,
    min_score: float | None = None,
    progress: bool = True,
    engine: str = "local",
    ray_address: str | None = None,
    num_cpus: int | None = None,
) -> CleanResult:
    """`preset`: None = `default`, or `judge` with `min_score`. `progress`: a bar on stderr.
    `engine="ray"`: the same decisions on a Ray cluster (clean/ray_engine.py: `ray_address`
    or RAY_ADDRESS joins one, else a local one of `num_cpus` cores runs for this call)."""
    if engine not in ENGINES:
        raise SettingError(f"{{engine}} {engine!r}: one of {', '.join(ENGINES)}", "engine")
    if engine == "ray" and lsh_storage:  # before reading anything
        from .ray_engine import refuse_shared_index

        refuse_shared_index()
    started = time.monotonic()
    src, out = Path(src), Path(out)
    _refuse_to_overwrite(src, out)
    _refuse_run_dir(out)  # before the work, not only after it
    loaded = load_preset(preset or ("default" if min_score is None else "judge"))
    if min_score is not None:
        if not 0 <= min_score <= 5:
            raise SettingError(f"{{min_score}} {min_score:g}: a judge's scores run from 0 to 5", "min_score")
        loaded = loaded.model_copy(update={"rules": with_min_score(loaded.rules, min_score)})
    if engine == "ray":  # the records stream from the file through the cluster to the output
        records = _not_empty(iter_records(src) if min_score is None else scored_records(src), src)
        cleaner = Cleaner(loaded, decontaminate=[str(p) for p in decontaminate])
    else:
        records = read_records(src) if min_score is None else scored_records(src)
        _not_empty(records, src)
        cleaner = Cleaner(
            loaded,
            decontaminate=[str(p) for p in decontaminate],
            lsh_storage=lsh_storage,
            namespace=_input_namespace(records) if lsh_storage else "",
        )
    stage_seconds: dict[str, float] = {}
    with RunDir(out).lock() as written:
        _refuse_run_dir(out)  # a job may have started there meanwhile
        if engine == "ray":
            from .ray_engine import verdicts_on_ray

            verdicts = verdicts_on_ray(
                cleaner, records, seconds=stage_seconds, address=ray_address, num_cpus=num_cpus, progress=progress
            )
        else:
            keys = [str(i) for i in range(len(records))]
            verdicts = _with_public_ids(cleaner.check_all(records, keys, progress=progress), records)
        with atomic_file(written.data) as kept, atomic_file(written.rejected) as rejected:
            for verdict in verdicts:
                if verdict.kept:
                    kept.write(json.dumps(verdict.record, ensure_ascii=False) + "\n")
                else:
                    rejected.write(json.dumps(rejected_record(verdict), ensure_ascii=False) + "\n")
        stats = {
            "input": str(src),
            "preset": loaded.name,
            "decontaminated_against": [str(p) for p in decontaminate],
            "lsh_storage": lsh_storage,
            **({"min_score": min_score} if min_score is not None else {}),
            **cleaning_summary(cleaner.stats),
            "engine": engine,
            **({"stage_seconds": stage_seconds} if stage_seconds else {}),
            "seconds": round(time.monotonic() - started, 2),
        }
        write_json_atomic(written.stats, stats)
    return CleanResult(out, stats)


def _not_empty(records: Iterable[dict], src: Path) -> Iterator[dict]:
    """The records, refused at once when there are none: a wrong or truncated file, most
    likely, which an empty result would hide."""
    records = iter(records)
    first = next(records, None)
    if first is None:
        raise SelfInstructError(f"{src}: no records to filter")
    return chain([first], records)


def _with_public_ids(verdicts: list[Verdict], records: list[dict]) -> Iterator[Verdict]:
    """A duplicate's `duplicate_of`, our key for a record (its position), becomes that record's id;
    another worker's key (a shared index) stays."""
    public_id = {str(i): record.get("id", i) for i, record in enumerate(records)}
    for verdict in verdicts:
        if verdict.duplicate_of is not None:
            verdict = replace(verdict, duplicate_of=public_id.get(verdict.duplicate_of, verdict.duplicate_of))
        yield verdict


def scored_records(src: Path) -> list[dict]:
    """The records a judge rated, to select from again: a judge run's kept records and the ones
    it rejected as `low_score` (without the reason), in the order they were asked for; or the
    records of any other source, each of which must have a score."""
    # a judge run is named by its directory: its data.jsonl alone is a scored dataset like any other
    run = RunView(src) if src.is_dir() else None
    if run is not None and run.kind == RUN and run.read_config()["task"] == "judge":
        below = [row for row in run.read_rejected() or [] if row.get("reason") == LowScore.name]
        records = run.read_records() + [
            {k: v for k, v in row.items() if k not in ("reason", "detail")} for row in below
        ]
        return sorted(records, key=lambda record: str(record.get("judge_request_id", "")))
    records = read_records(src)
    unscored = [i for i, record in enumerate(records) if not is_score(record.get("score"))]
    if unscored:
        first = records[unscored[0]]
        which = f"record {unscored[0]}" + (f" (id {first['id']!r})" if "id" in first else "")
        raise SettingError(
            f"{src}: {len(unscored)} of {len(records)} records have no score from 0 to 5 ({which}: "
            f"{first.get('score', 'no score field')!r}); {{min_score}} selects records rated by `selfinstruct judge`: "
            "judge them first, or give the judge's run directory",
            "min_score",
        )
    return records


def _refuse_to_overwrite(src: Path, out: Path) -> None:
    source = (src / DATA_FILE if src.is_dir() else src).resolve()
    if any((out / name).resolve() == source for name in FILTER_OUTPUT_FILES):
        raise SettingError(f"{{out}} {out}: would overwrite the input {source}; choose another directory", "out")


def _refuse_run_dir(out: Path) -> None:
    if RunDir(out).holds_run():
        raise SettingError(
            f"{{out}} {out}: a run directory (made by generate, answer or judge); filter would replace its records: "
            "choose another directory",
            "out",
        )


def _input_namespace(records: list[dict]) -> str:
    """Names this input's records in a shared index: the same input gets the same keys,
    so filtering it again replays the same decisions instead of finding it all duplicated."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
    return f"filter:{digest.hexdigest()[:16]}"
