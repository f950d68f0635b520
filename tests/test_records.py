"""Reading records and seeds: every accepted shape, and errors that name file, line and field."""

import gzip
import json
from itertools import islice

import pytest
from conftest import SEED_TASKS

from selfinstruct.errors import SelfInstructError
from selfinstruct.records import JsonlWriter, iter_records, read_jsonl, read_records
from selfinstruct.tasks.bootstrap.seeds import default_seeds_path, load_seeds


def test_loads_self_instructs_175_seeds_unchanged():
    seeds = load_seeds(SEED_TASKS)
    raw = [json.loads(line) for line in SEED_TASKS.read_text().splitlines()]
    assert len(seeds.tasks) == len(raw) == 175
    for task, original in zip(seeds.tasks, raw):
        assert task["id"] == original["id"]
        assert task["instruction"] == original["instruction"]
        assert task["input"] == original["instances"][0]["input"]
        assert task["output"] == original["instances"][0]["output"]


def test_alpaca_json_list_and_jsonl(tmp_path):
    records = [
        {"instruction": "Add two and two.", "input": "", "output": "4"},
        {"instruction": "Say hi.", "output": "Hi"},
    ]
    (tmp_path / "a.json").write_text(json.dumps(records, indent=2))
    (tmp_path / "a.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    for name in ("a.json", "a.jsonl"):
        loaded = read_records(tmp_path / name)
        assert [r["output"] for r in loaded] == ["4", "Hi"]
        assert loaded[1]["input"] == ""  # missing input means no input, as in Alpaca


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"instruction": "ok ok ok ok", "output": "x"}\n{"instruction": 3, "output": "x"}\n',
            r"bad\.jsonl:2: field 'instruction' must be a string, got a int",
        ),
        ('{"instruction": "ok ok ok ok"}\n', r"bad\.jsonl:1: field 'output' is missing"),
        (
            '{"instruction": "a b c d", "instances": [{"input": "", "output": 5}]}\n',
            r"bad\.jsonl:1: field 'instances\[0\]\.output' must be a string",
        ),
        ('{"prompt": "x"}\n', r"bad\.jsonl:1: not an instruction record \(keys: prompt\)"),
        (
            '{"instruction": "x", "output": "y"}\nnot json\n{"instruction": "x", "output": "y"}\n',
            r"bad\.jsonl:2: not valid JSON",
        ),
    ],
)
def test_malformed_jsonl_names_file_line_and_field(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SelfInstructError, match=message):
        read_records(path)


def test_malformed_json_list_names_the_line_and_item(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"instruction": "a b c d", "output": "x"},\n  {"instruction": "e f g h", "output": null}\n]')
    with pytest.raises(
        SelfInstructError, match=r"bad\.json:3 \(item 1\): field 'output' must be a string, got missing"
    ):
        read_records(path)


def test_a_torn_last_line_is_skipped_and_cut_before_appending(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "b"')
    assert [obj["a"] for _, obj in read_jsonl(path)] == [1, 2]
    with JsonlWriter(path) as writer:
        writer.write({"a": 4})
    assert [obj["a"] for _, obj in read_jsonl(path)] == [1, 2, 4]


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SelfInstructError, match="no such file or directory"):
        read_records(tmp_path / "nope.jsonl")


def test_bundled_seed_set():
    seeds = load_seeds()
    assert seeds.path == default_seeds_path()
    assert len(seeds.tasks) >= 175
    raw = [json.loads(line) for line in default_seeds_path().read_text().splitlines()]
    assert 20 <= sum(t["is_classification"] for t in raw) <= 35
    with_input = sum(bool(t["input"]) for t in seeds.tasks)
    assert 0.3 < with_input / len(seeds.tasks) < 0.6


def test_jsonl_streams_a_line_at_a_time_plain_or_gzipped(tmp_path):
    """`iter_records` hands out the first record before it reads the rest of the file: a file
    larger than memory streams (the Ray filter reads 10M records this way), and a bad line far
    down is still named by its line number once the reading gets there."""
    lines = [json.dumps({"instruction": f"Task {i}.", "output": "x"}) for i in range(5)] + ["not json", "{}"]
    for path in (tmp_path / "big.jsonl", tmp_path / "big.jsonl.gz"):
        data = ("\n".join(lines) + "\n").encode()
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        records = iter_records(path)
        assert next(records)["instruction"] == "Task 0."
        assert [r["instruction"] for r in islice(records, 4)] == [f"Task {i}." for i in range(1, 5)]
        with pytest.raises(SelfInstructError, match=rf"{path.name}:6: not valid JSON"):
            next(records)


def test_a_corrupt_gzip_is_named_wherever_the_damage_is(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(
        ("".join(json.dumps({"instruction": f"Task {i}.", "output": "x"}) + "\n" for i in range(3000))).encode()
    )
    path.write_bytes(whole[: len(whole) // 2])  # truncated mid-stream
    with pytest.raises(SelfInstructError, match=r"cut\.jsonl\.gz: not a readable gzip file"):
        read_records(path)
    (tmp_path / "not.jsonl.gz").write_text('{"instruction": "a", "output": "b"}\n')
    with pytest.raises(SelfInstructError, match=r"not\.jsonl\.gz: not a readable gzip file"):
        read_records(tmp_path / "not.jsonl.gz")
