"""Alpaca JSON lists (`alpaca_data.json`): every record read, and errors deep in a long list name
the line the item starts on. How fast: benchmarks/read_alpaca_json.py (52,002 records)."""

import gzip
import json

import pytest

from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_records

N = 3000


def alpaca(n: int = N) -> list[dict]:
    return [
        {
            "instruction": f"Describe item {i} in one sentence.",
            "input": "" if i % 3 else f"Item {i}\nsecond line",
            "output": f"Item {i} is fine.",
        }
        for i in range(n)
    ]


def line_of(text: str, needle: str) -> int:
    """The line of the `{` that opens the object holding `needle`."""
    return text.count("\n", 0, text.rindex("{", 0, text.index(needle))) + 1


def test_every_record_comes_back_in_order_from_alpacas_layout(tmp_path):
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(alpaca(), indent=4))  # as Alpaca wrote it: one key a line
    assert read_records(path) == alpaca()


@pytest.mark.parametrize("index", [1, 1234, N - 1])
def test_a_bad_item_deep_in_the_list_names_its_own_line(tmp_path, index):
    rows = alpaca()
    rows[index] = {"instruction": "THE BAD ONE", "output": None}
    text = json.dumps(rows, indent=4)
    path = tmp_path / "alpaca_data.json"
    path.write_text(text)
    line = line_of(text, "THE BAD ONE")
    assert line == 2 + 5 * index  # "[" then five lines per item: the count is not relative to anything else
    with pytest.raises(
        SelfInstructError,
        match=rf"alpaca_data\.json:{line} \(item {index}\): field 'output' must be a string, got missing",
    ):
        read_records(path)


def test_invalid_json_and_non_objects_deep_in_the_list_name_their_lines(tmp_path):
    rows = [json.dumps(row) for row in alpaca()]
    rows[2500] = '{"instruction": "broken", "output": oops}'
    path = tmp_path / "one_per_line.json"
    path.write_text("[\n" + ",\r\n".join(rows) + "\n]\n")  # Windows line ends count as one line each
    with pytest.raises(SelfInstructError, match=r"one_per_line\.json:2502: item 2500 is not valid JSON"):
        read_records(path)

    rows[2500] = '"just a string"'
    path.write_text("[\n" + ",\n".join(rows) + "\n]\n")
    with pytest.raises(SelfInstructError, match=r"one_per_line\.json:2502: item 2500 must be an object"):
        read_records(path)


def test_a_gzipped_list_reads_the_same_with_the_same_lines(tmp_path):
    rows = alpaca()
    text = json.dumps(rows, indent=4)
    (tmp_path / "alpaca_data.json.gz").write_bytes(gzip.compress(text.encode()))
    assert read_records(tmp_path / "alpaca_data.json.gz") == rows

    rows[2999] = {"instruction": 5, "output": "x"}
    (tmp_path / "bad.json.gz").write_bytes(gzip.compress(json.dumps(rows, indent=4).encode()))
    with pytest.raises(
        SelfInstructError, match=rf"bad\.json\.gz:{2 + 5 * 2999} \(item 2999\): field 'instruction' must be a string"
    ):
        read_records(tmp_path / "bad.json.gz")
