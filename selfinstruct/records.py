"""Reading and writing instruction records.

A record is a plain dict with at least `instruction`, `input` and `output` (all strings);
any other keys (provenance, ids) are carried along untouched.

`read_records(src)` accepts everything a user is likely to hand us:
- a run directory or filter output (its `data.jsonl`; see `runfiles.kind_of`),
- a JSONL file, an Alpaca JSON list (either gzipped: `.jsonl.gz`, `.json.gz`), a Parquet file,
- a directory written by `datasets.save_to_disk`,
in Alpaca (`instruction/input/output`), self-instruct (`instruction/instances`), prompt file
(`prompt/completion`, as T0's) or chat (ShareGPT `conversations`, OpenAI `messages`: see
`export/chat.py`) shape.
Errors name the file and line (or item) and the field that is wrong.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .chat import chat_fields
from .errors import SelfInstructError
from .reasoning import CLOSE as CLOSE_THINK
from .reasoning import OPEN as OPEN_THINK
from .reasoning import split_reasoning
from .runfiles import DATA_FILE, FILTER_OUTPUT, RUN, SAVED_DATASET, SAVED_DATASET_MARKERS, kind_of

TEXT_FIELDS = ("instruction", "input", "output")


# ---------------------------------------------------------------- JSONL primitives


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield `(line_number, object)` for each line of a JSONL file (gzipped when its name ends
    in .gz), reading one line at a time: a file larger than memory streams.

    A torn last line (no trailing newline and not valid JSON: the writer was killed
    mid-write) is skipped silently; any other bad line is an error naming file and line.
    """
    path = Path(path)
    with _opened(path) as lines:  # a binary file iterates over its lines
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if not raw.endswith(b"\n"):  # the last line, without its newline: a torn write
                    return
                raise SelfInstructError(f"{path}:{number}: not valid JSON ({e})") from None
            if not isinstance(obj, dict):
                raise SelfInstructError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


@contextmanager
def _opened(path: Path) -> Iterator[IO[bytes]]:
    """The file opened for reading bytes, decompressed when its name ends in .gz; a file that is
    not gzip, truncated or corrupt is an error naming it, wherever the damage is found."""
    gzipped = path.suffix.lower() == ".gz"
    try:
        with gzip.open(path, "rb") if gzipped else path.open("rb") as f:
            yield f
    except (OSError, EOFError, zlib.error) as e:
        if not gzipped or isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise SelfInstructError(f"{path}: not a readable gzip file ({e})") from None


def count_jsonl(path: str | Path) -> int:
    """Objects in a JSONL file (0 when it does not exist), a torn last line not counted."""
    path = Path(path)
    return sum(1 for _ in read_jsonl(path)) if path.exists() else 0


class JsonlWriter:
    """Append-only JSONL file that survives `kill -9`.

    Each `write` / `write_many` reaches the OS at once (`sync` puts it on the disk), and a
    torn tail left by an earlier crash is cut off before the first append, so a new line never
    glues onto half of an old one. `size` is the file's length in bytes.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _truncate_torn_tail(self.path)
        self._file = self.path.open("ab")

    def write(self, obj: dict) -> None:
        self.write_many([obj])

    def write_many(self, objs: Iterable[dict]) -> None:
        data = "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objs).encode("utf-8")
        if not data:
            return
        with naming(self.path):
            self._file.write(data)
        self.flush()

    def flush(self) -> None:
        with naming(self.path):
            self._file.flush()

    def sync(self) -> None:
        with naming(self.path):
            self._file.flush()
            os.fsync(self._file.fileno())

    @property
    def size(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        with naming(self.path):
            self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)


@contextmanager
def naming(path: str | Path):
    """Make an OSError name `path`: a failed write, flush or fsync (a full disk) carries no file name."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


@contextmanager
def atomic_file(path: str | Path):
    """A text file that replaces `path` when complete: readers see the old file or the new one, never
    half of it, and the data is on the disk before the rename, so a power cut cannot leave an empty
    file behind it. On failure the temporary file is removed and an OSError names `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming(path):
            with tmp.open("w", encoding="utf-8") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException as e:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.filename == str(tmp):  # the user knows `path`, not our temporary name
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def write_jsonl_atomic(path: str | Path, objs: Iterable[dict]) -> int:
    """Write all objects to `path` atomically (see `atomic_file`); returns the count."""
    count = 0
    with atomic_file(path) as f:
        for obj in objs:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_json_object(path: str | Path) -> dict | None:
    """The JSON object in `path` (a run's stats.json, a checkpoint...); None when there is no file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        obj = json.loads(path.read_bytes())
    except ValueError as e:  # not JSON, or not even UTF-8 (a torn or zeroed file)
        raise SelfInstructError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise SelfInstructError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path) as f:
        f.write(text)


# ---------------------------------------------------------------- record shapes


def normalize(raw: dict, where: str, require_output: bool = True) -> list[dict]:
    """Turn one raw object into records, checking the text fields.

    Alpaca shape: `{"instruction", "input"?, "output"}` -> one record.
    Self-instruct shape: `{"instruction", "instances": [{"input", "output"}, ...]}` -> one
    record per instance, with the task's other keys (id, name, is_classification) kept.
    Prompt-file shape: `{"prompt" or "question", "completion"?}` -> one record, the prompt its
    instruction and the completion its output (T0's files); without a completion it is an
    instruction to be answered (GSM8K), read only without `require_output`, where a missing
    output is "".
    An output with its reasoning inline (`<think>…</think>answer`) is split into `reasoning`
    and `output`, as exported with `--reasoning inline`.
    """
    for shape in RECORD_SHAPES:
        records = shape(raw, where, require_output)
        if records is not None:
            return records
    keys = ", ".join(sorted(raw)) or "none"
    raise SelfInstructError(
        f"{where}: not an instruction record (keys: {keys}); expected 'instruction' with "
        "'output' (Alpaca), 'instances' (self-instruct), 'prompt' with 'completion', or 'conversations' / "
        "'messages' (chat)" + ("" if require_output else ", or a 'prompt' / 'question' to answer")
    )


def _alpaca_shape(raw: dict, where: str, require_output: bool) -> list[dict] | None:
    if "instruction" not in raw or "instances" in raw:
        return None
    record = dict(raw)
    record.setdefault("input", "")
    if "output" not in record:
        if require_output:
            raise SelfInstructError(f"{where}: field 'output' is missing")
        record["output"] = ""
    _check_text_fields(record, where)
    if (
        "reasoning" not in record
        and CLOSE_THINK in record["output"]
        and record["output"].lstrip().startswith(OPEN_THINK)
    ):
        record["reasoning"], record["output"] = split_reasoning(record["output"], None)
    return [record]


def _prompt_shape(raw: dict, where: str, require_output: bool) -> list[dict] | None:
    field = next((f for f in PROMPT_FIELDS if isinstance(raw.get(f), str)), None)
    if field is None or (require_output and "output" not in raw and COMPLETION_FIELD not in raw):
        return None  # a prompt with no answer is no record where one is required
    record = {"instruction": raw[field], **{k: v for k, v in raw.items() if k != field}}
    if "output" not in record and COMPLETION_FIELD in record:
        record["output"] = record.pop(COMPLETION_FIELD)
    return _alpaca_shape(record, where, require_output)


def _self_instruct_shape(raw: dict, where: str, require_output: bool) -> list[dict] | None:
    if "instances" not in raw:
        return None
    instances = raw["instances"]
    if not isinstance(instances, list) or not instances:
        raise SelfInstructError(f"{where}: field 'instances' must be a non-empty list")
    task = {k: v for k, v in raw.items() if k != "instances"}
    records = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise SelfInstructError(f"{where}: field 'instances[{i}]' must be an object")
        record = {
            **task,
            "input": instance.get("input", ""),
            "output": instance.get("output", None if require_output else ""),
        }
        if record["output"] is None:
            raise SelfInstructError(f"{where}: field 'instances[{i}].output' is missing")
        _check_text_fields(record, where, prefix=f"instances[{i}].")
        records.append(record)
    return records


def _chat_shape(raw: dict, where: str, require_output: bool) -> list[dict] | None:
    fields = chat_fields(raw, where)
    return None if fields is None else _alpaca_shape(fields, where, require_output)


# Each shape returns None when the object is not of that shape. The chat shapes (ShareGPT
# `conversations`, OpenAI `messages`) are here so that every export format reads back
# through `read_records`; the prompt shape comes last: a record with an instruction is never
# read as a prompt.
RECORD_SHAPES: list[Callable[[dict, str, bool], list[dict] | None]] = [
    _alpaca_shape,
    _self_instruct_shape,
    _chat_shape,
    _prompt_shape,
]
PROMPT_FIELDS = ("prompt", "question")  # where prompt files keep the instruction
COMPLETION_FIELD = "completion"  # and the answer, when they have one


def _check_text_fields(record: dict, where: str, prefix: str = "") -> None:
    for field in TEXT_FIELDS:
        value = record.get(field)
        if not isinstance(value, str):
            name = field if field == "instruction" else prefix + field
            got = "missing" if value is None else f"a {type(value).__name__}"
            raise SelfInstructError(f"{where}: field '{name}' must be a string, got {got}")
    if not record["instruction"].strip():
        raise SelfInstructError(f"{where}: field 'instruction' is empty")


# ---------------------------------------------------------------- sources


def read_records(src: str | Path, *, require_output: bool = True) -> list[dict]:
    """Read every record from a file or directory (see the module docstring); without
    `require_output`, instructions to be answered (see `normalize`)."""
    src = Path(src)
    if not src.exists():
        raise SelfInstructError(f"{src}: no such file or directory")
    if src.is_dir():
        kind = kind_of(src)
        if kind in (RUN, FILTER_OUTPUT):
            return read_records(src / DATA_FILE, require_output=require_output)
        if kind == SAVED_DATASET:
            return _read_saved_dataset(src, require_output)
        raise SelfInstructError(
            f"{src}: directory has neither {DATA_FILE} (a selfinstruct run) "
            f"nor a saved Hugging Face dataset ({' / '.join(SAVED_DATASET_MARKERS)})"
        )
    name = src.name.lower()
    if name.endswith(".parquet"):
        return _read_parquet(src, require_output)
    if name.removesuffix(".gz").endswith(".json"):
        return _read_json_list(src, require_output)
    return [record for _, record in _located_jsonl(src, require_output)]


def iter_records(src: str | Path, *, require_output: bool = True) -> Iterator[dict]:
    """`read_records` one record at a time. A JSONL file (a run's data.jsonl included) is read a
    line at a time, so that one larger than memory streams; the other formats are read whole."""
    src = Path(src)
    if src.is_dir() and kind_of(src) in (RUN, FILTER_OUTPUT):
        src = src / DATA_FILE
    if _is_jsonl_file(src):
        return (record for _, record in _located_jsonl(src, require_output))
    return iter(read_records(src, require_output=require_output))


def read_located_records(src: str | Path) -> list[tuple[str, dict]]:
    """`read_records` with where each record is, for messages about one of them: `file:line` in
    JSONL, `file (record N)` in the other formats."""
    src = Path(src)
    if _is_jsonl_file(src):
        return list(_located_jsonl(src, require_output=True))
    return [(f"{src} (record {number})", record) for number, record in enumerate(read_records(src), start=1)]


def _is_jsonl_file(src: Path) -> bool:
    return src.is_file() and not src.name.lower().removesuffix(".gz").endswith((".json", ".parquet"))


def _located_jsonl(path: Path, require_output: bool) -> Iterator[tuple[str, dict]]:
    """Each record of a JSONL file with its `file:line`, a line at a time."""
    for number, obj in read_jsonl(path):
        for record in normalize(obj, f"{path}:{number}", require_output):
            yield f"{path}:{number}", record


def _read_json_list(path: Path, require_output: bool) -> list[dict]:
    """Alpaca JSON list; errors give the item index and its line in the file."""
    try:
        with _opened(path) as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SelfInstructError(f"{path}: not UTF-8 text ({e})") from None
    stripped = text.lstrip()
    if not stripped.startswith("["):
        if stripped.startswith("{"):  # a JSONL file with a .json name
            return [record for _, record in _located_jsonl(path, require_output)]
        raise SelfInstructError(f"{path}: expected a JSON list of records")
    decoder = json.JSONDecoder()
    records: list[dict] = []
    pos = text.index("[") + 1
    index = 0
    line, counted = 1, 0  # `line` is where `counted` is: count on from the last item, never from the start
    while True:
        pos = _skip_space_and_commas(text, pos)
        if pos >= len(text):
            raise SelfInstructError(f"{path}: the JSON list is not closed (truncated file?)")
        if text[pos] == "]":
            return records
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise SelfInstructError(f"{path}:{line}: item {index} is not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise SelfInstructError(f"{path}:{line}: item {index} must be an object")
        records.extend(normalize(obj, f"{path}:{line} (item {index})", require_output))
        index += 1


def _skip_space_and_commas(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n,":
        pos += 1
    return pos


def _read_parquet(path: Path, require_output: bool) -> list[dict]:
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    return [r for i, row in enumerate(rows) for r in normalize(row, f"{path}: row {i}", require_output)]


def _read_saved_dataset(path: Path, require_output: bool) -> list[dict]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    records = []
    for split, dataset in splits:
        for i, row in enumerate(dataset):
            where = f"{path}: {split + ' ' if split else ''}row {i}"
            records.extend(normalize(row, where, require_output))
    return records
