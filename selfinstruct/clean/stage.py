"""The cleaning stage on its own (the `filter` command): clean any instruction dataset.

    result = clean_dataset("alpaca_data.json", "outputs/clean",
                           decontaminate=["user_oriented_instructions.jsonl"])

reads what `read_records` reads (Alpaca JSON, JSONL, Parquet, a run directory, a saved
Hugging Face dataset) and writes

    DIR/data.jsonl      kept records, after the preset's repairs ("<noinput>" -> "")
    DIR/rejected.jsonl  the others, each with `reason`, `detail` and, for a duplicate,
                        `duplicate_of`: the id of the record it duplicates (its position
                        in the input, from 0, when records have no id)
    DIR/stats.json      counts per rule
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SettingError
from ..records import read_records, write_json_atomic, write_jsonl_atomic
from ..stats import cleaning_summary
from .cleaner import Cleaner, rejected_record
from .presets import load_preset

OUTPUT_FILES = ("data.jsonl", "rejected.jsonl", "stats.json")


@dataclass
class CleanResult:
    out_dir: Path
    stats: dict


def clean_dataset(
    src: str | Path,
    out: str | Path,
    *,
    preset: str = "default",
    decontaminate: Sequence[str | Path] = (),
    lsh_storage: str | None = None,
) -> CleanResult:
    started = time.monotonic()
    src, out = Path(src), Path(out)
    _refuse_to_overwrite(src, out)
    loaded = load_preset(preset)
    records = read_records(src)
    cleaner = Cleaner(
        loaded,
        decontaminate=[str(p) for p in decontaminate],
        lsh_storage=lsh_storage,
        namespace=_input_namespace(records) if lsh_storage else "",
    )
    keys = [str(i) for i in range(len(records))]
    verdicts = cleaner.check_all(records, keys)

    public_id = {key: record.get("id", i) for i, (key, record) in enumerate(zip(keys, records))}
    kept, rejected = [], []
    for verdict in verdicts:
        if verdict.kept:
            kept.append(verdict.record)
        else:
            row = rejected_record(verdict)
            if "duplicate_of" in row:  # a key of ours becomes the record's id; another worker's stays
                row["duplicate_of"] = public_id.get(row["duplicate_of"], row["duplicate_of"])
            rejected.append(row)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out / "data.jsonl", kept)
    write_jsonl_atomic(out / "rejected.jsonl", rejected)
    stats = {
        "input": str(src),
        "preset": loaded.name,
        "decontaminated_against": [str(p) for p in decontaminate],
        "lsh_storage": lsh_storage,
        **cleaning_summary(cleaner.stats),
        "seconds": round(time.monotonic() - started, 2),
    }
    write_json_atomic(out / "stats.json", stats)
    return CleanResult(out, stats)


def _refuse_to_overwrite(src: Path, out: Path) -> None:
    source = (src / "data.jsonl" if src.is_dir() else src).resolve()
    if any((out / name).resolve() == source for name in OUTPUT_FILES):
        raise SettingError(f"{{out}} {out}: would overwrite the input {source}; choose another directory", "out")


def _input_namespace(records: list[dict]) -> str:
    """Names this input's records in a shared index: the same input gets the same keys,
    so filtering it again replays the same decisions instead of finding it all duplicated."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode())
    return f"filter:{digest.hexdigest()[:16]}"
