"""Where exported rows go, told by the destination's name.

    DEST.json      a JSON list (Alpaca's alpaca_data.json is one)
    DEST.jsonl     JSON Lines
    DEST.parquet   one Parquet file (written by `datasets`, so its features travel with it)
    DEST           (no extension, or an existing directory) a directory written by
                   `datasets.Dataset.save_to_disk`, or a DatasetDict with train/test splits
                   when a test share is given
Any other extension (`out.csv`) is refused: no directory is made under a file's name.

The dataset card goes inside a datasets directory as `README.md`, the Hub's place for it, and
beside a file as `DEST.README.md` (`alpaca_data.json.README.md`): several files exported into
one folder each keep their own card, and a folder's own README.md is never touched.
`selfinstruct finetune` looks for both. An existing destination is replaced only when asked
(`overwrite`), and then written beside and renamed over the old one, so a failed export never
leaves half a dataset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import SelfInstructError, SettingError
from ..records import write_json_atomic, write_jsonl_atomic
from ..runfiles import SAVED_DATASET, kind_of

JSON, JSONL, PARQUET, DATASETS = "json", "jsonl", "parquet", "datasets"
FILE_KINDS = {".json": JSON, ".jsonl": JSONL, ".parquet": PARQUET}
CARD_SUFFIX = ".README.md"  # a file's card: DEST.README.md


def destination_kind(dest: Path) -> str:
    suffix = dest.suffix.lower()
    if suffix in FILE_KINDS:
        return FILE_KINDS[suffix]
    if suffix and not dest.is_dir():
        raise SettingError(
            f"{{to}} {dest}: export writes no {suffix} files; name a .json, .jsonl or .parquet file, or a directory "
            "(a name without an extension) for a datasets export",
            "to",
        )
    return DATASETS


def card_path(dest: Path) -> Path:
    return dest / "README.md" if destination_kind(dest) == DATASETS else dest.with_name(dest.name + CARD_SUFFIX)


def check_destination(dest: Path, overwrite: bool) -> None:
    """Refuse, before anything is read or written, a destination that may not be replaced: a folder
    that is not an earlier export, ever; an earlier export, unless `overwrite`."""
    if destination_kind(dest) == DATASETS:
        _check_replaceable_dir(dest)
        exists = dest.is_dir() and any(dest.iterdir())
    elif dest.is_dir():
        raise SettingError(f"{{to}} {dest}: is a directory; name the file to write", "to")
    else:
        exists = dest.exists()
    if exists and not overwrite:
        raise SettingError(
            f"{{to}} {dest}: exists; pass {{overwrite}} to replace it, or choose another {{to}}", "to", "overwrite"
        )


def to_dataset(rows: list[dict], test_share: float | None, seed: int):
    """A `datasets.Dataset`, or a train/test `DatasetDict` when `test_share` is given."""
    import datasets

    dataset = datasets.Dataset.from_list(rows)
    if test_share is None:
        return dataset
    try:
        return dataset.train_test_split(test_size=test_share, seed=seed)
    except ValueError as e:  # a split would be empty
        raise SettingError(f"{{split_test}} {test_share} with {len(rows)} records: {e}", "split_test") from None


def split_sizes(dataset) -> dict[str, int] | None:
    """{"train": n, "test": m} for a DatasetDict, None for a single Dataset."""
    import datasets

    return {split: len(part) for split, part in dataset.items()} if isinstance(dataset, datasets.DatasetDict) else None


def write_rows(rows: list[dict], dest: Path, test_share: float | None = None, seed: int = 42) -> dict[str, int] | None:
    """Write `rows` to `dest`; returns the size of each split when there are splits."""
    kind = destination_kind(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == JSON:
        write_json_atomic(dest, rows)
    elif kind == JSONL:
        write_jsonl_atomic(dest, rows)
    elif kind == PARQUET:
        tmp = dest.with_name(dest.name + ".tmp")
        to_dataset(rows, None, seed).to_parquet(str(tmp))
        os.replace(tmp, dest)
    else:
        _check_replaceable_dir(dest)
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        dataset = to_dataset(rows, test_share, seed)
        dataset.save_to_disk(str(tmp))
        _replace_dir(tmp, dest)
        return split_sizes(dataset)
    return None


def _check_replaceable_dir(dest: Path) -> None:
    """Only a saved dataset (an earlier export) may be replaced: never a run or a user's folder."""
    if dest.is_file():
        raise SelfInstructError(
            f"{dest}: is a file; name a .json, .jsonl or .parquet file, or a directory for a datasets export"
        )
    if dest.is_dir() and any(dest.iterdir()) and kind_of(dest) != SAVED_DATASET:
        raise SelfInstructError(
            f"{dest}: exists and is not a saved dataset; choose a new directory (or end the name with "
            ".json, .jsonl or .parquet to write a file)"
        )


def _replace_dir(new: Path, dest: Path) -> None:
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
