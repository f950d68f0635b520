"""`selfinstruct filter`: any input format in, data / rejected / stats out; and the same
rules in the bootstrap loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import USER_ORIENTED
from fake_run import replayed, write_answer

from selfinstruct.clean import Cleaner, clean_dataset, load_preset
from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig
from selfinstruct.tasks.bootstrap.seeds import load_seeds

EVAL = USER_ORIENTED

# Answers of the embedded teacher (SmolLM2-135M), as `generate` parsed them, plus copies.
TEACHER_RECORDS = [
    {
        "instruction": "How much to pay for an additional car?",
        "input": "$20.00, $40.00, $80.00,",
        "output": "2 dollars",
    },
    {
        "instruction": "Use a regex to remove all non-alphanumeric characters from any string before removing them,",
        "input": "string_to_remove",
        "output": "",
    },
    {
        "instruction": "In a room of any size you can fit anything.",
        "input": "",
        "output": "You should have everything under your bed.",
    },
    {
        "instruction": "What is the maximum number of people that can be seated in a double-decker bus using only one seat?",
        "input": "20,576",
        "output": ");[{",
    },
    {
        "instruction": "What are the main pros and cons of renting a home versus buying one?",
        "input": "<noinput>",
        "output": "I am not allowed to provide any detailed data or information on this task; I have only written 3 items in total.",
    },
    {"instruction": "What is the world's largest continent?", "input": "Africa", "output": "South Africa"},
    {"instruction": "What is the world's largest continent?", "input": "", "output": "Asia"},
    {"instruction": "What is the world's biggest continent?", "input": "N/A", "output": "Asia is."},
    {"instruction": "Is there anything on the other side of the world?", "input": "The United States", "output": "USA"},
]
EXPECTED_REASONS = [
    "truncated",
    "empty_output",
    "not_a_task",
    "empty_output",
    "teacher_artefact",
    None,
    "exact_duplicate",
    "near_duplicate",
    None,
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read(path: Path) -> list[dict]:
    return [obj for _, obj in read_jsonl(path)]


def test_filter_an_alpaca_json_file_without_ids(tmp_path):
    src = tmp_path / "alpaca_data.json"
    src.write_text(json.dumps(TEACHER_RECORDS, indent=1))
    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "clean")])
    assert result.exit_code == 0, result.output
    assert "kept 2 of 9 records" in result.output
    kept, rejected = read(tmp_path / "clean" / "data.jsonl"), read(tmp_path / "clean" / "rejected.jsonl")
    assert [r["instruction"] for r in kept] == [TEACHER_RECORDS[i]["instruction"] for i in (5, 8)]
    assert [r["reason"] for r in rejected] == [r for r in EXPECTED_REASONS if r]
    duplicates = {r["reason"]: r["duplicate_of"] for r in rejected if "duplicate_of" in r}
    assert duplicates == {"exact_duplicate": 5, "near_duplicate": 5}  # positions in the input
    assert rejected[-1]["input"] == ""  # "N/A" repaired before the record was judged
    stats = json.loads((tmp_path / "clean" / "stats.json").read_text())
    assert stats["seen"] == 9 and stats["kept"] + sum(stats["rejected"].values()) == 9
    assert stats["rejected"]["empty_output"] == 2 and stats["fixed"] == {"noinput_marker": 2}
    assert stats["preset"] == "default"


def test_ids_are_reported_when_records_have_them(tmp_path):
    rows = [{**r, "id": f"task-{i}"} for i, r in enumerate(TEACHER_RECORDS)]
    result = clean_dataset(write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out")
    rejected = read(result.out_dir / "rejected.jsonl")
    assert {r["duplicate_of"] for r in rejected if "duplicate_of" in r} == {"task-5"}


@pytest.mark.parametrize("shape", ["run_dir", "parquet", "saved_dataset"])
def test_other_input_formats(tmp_path, shape):
    import datasets

    rows = [dict(r) for r in TEACHER_RECORDS]
    if shape == "run_dir":
        (tmp_path / "run").mkdir()
        src = write_jsonl(tmp_path / "run" / "data.jsonl", rows).parent
    elif shape == "parquet":
        src = tmp_path / "data.parquet"
        datasets.Dataset.from_list(rows).to_parquet(str(src))
    else:
        src = tmp_path / "saved"
        datasets.Dataset.from_list(rows).save_to_disk(str(src))
    result = clean_dataset(src, tmp_path / "out")
    assert result.stats["kept"] == 2
    assert [r["reason"] for r in read(tmp_path / "out" / "rejected.jsonl")] == [r for r in EXPECTED_REASONS if r]


def test_alpaca_preset_keeps_what_only_the_new_rules_reject(tmp_path):
    result = clean_dataset(write_jsonl(tmp_path / "in.jsonl", TEACHER_RECORDS), tmp_path / "out", preset="alpaca")
    assert result.stats["rejected"] == {"near_duplicate": 2}
    assert result.stats["kept"] == 7


def test_decontaminate_option(tmp_path):
    task = json.loads(EVAL.read_text().splitlines()[10])
    rows = [
        *TEACHER_RECORDS,
        {"instruction": task["instruction"], "input": task["instances"][0]["input"], "output": "A fine answer."},
    ]
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["filter", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--out", str(out), "--decontaminate", str(EVAL)]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rejected"]["contaminated"] == 1
    assert stats["decontaminated_against"] == [str(EVAL)]


def test_refuses_to_overwrite_its_input(tmp_path):
    (tmp_path / "run").mkdir()
    src = write_jsonl(tmp_path / "run" / "data.jsonl", TEACHER_RECORDS).parent
    with pytest.raises(SelfInstructError, match="would overwrite the input"):
        clean_dataset(src, src)


def test_errors_name_the_file_and_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "Name a prime.", "input": "", "output": "7"}\n{"instruction": "Hi", "input": ""}\n')
    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "in.jsonl:2: field 'output' is missing" in result.output
    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "out"), "--preset", "nope"])
    assert "no such preset" in result.output


def test_list_rules():
    result = CliRunner().invoke(main, ["filter", "--list-rules"])
    assert result.exit_code == 0
    assert "teacher_artefact" in result.output and "instruction_words" in result.output


def test_whole_dataset_and_one_by_one_agree():
    """filter (check_all) and the bootstrap loop (check) make the same decisions."""
    rows = TEACHER_RECORDS * 2 + [{**r, "instruction": r["instruction"].upper()} for r in TEACHER_RECORDS]
    keys = [str(i) for i in range(len(rows))]
    seeds = load_seeds().tasks
    bulk = Cleaner(load_preset("default"), reference=seeds).check_all(rows, keys)
    one = Cleaner(load_preset("default"), reference=seeds)
    incremental = [one.check(r, k) for r, k in zip(rows, keys)]
    assert [(v.rejection, v.duplicate_of, v.record) for v in bulk] == [
        (v.rejection, v.duplicate_of, v.record) for v in incremental
    ]


def test_bootstrap_loop_applies_the_preset(tmp_path):
    """A generate run replays its ledger through the same Cleaner: the teacher's bad
    tasks are rejected by the default preset's rules, "<noinput>" is repaired."""
    out = tmp_path / "run"
    write_answer(out, json.dumps({"tasks": TEACHER_RECORDS}))
    replayed(out, GenerateConfig())
    rejected = read(out / "rejected.jsonl")
    assert [r["reason"] for r in rejected] == [r for r in EXPECTED_REASONS if r]
    assert [r["input"] for r in read(out / "data.jsonl")] == ["Africa", "The United States"]
