"""What `filter` reads (gzipped JSONL, the prompt/completion rows `answer` reads) and where it may
write (never a run directory, never one another process holds)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

from click.testing import CliRunner
from conftest import T0_PROMPTS
from fake_run import write_run

from selfinstruct.cli import main
from selfinstruct.records import read_jsonl, read_records
from selfinstruct.tasks.answer import load_prompts


def t0_slice(path: Path, n: int = 200) -> list[dict]:
    """The first `n` rows of the shared T0 file ({template, prompt, completion}), written gzipped to `path`."""
    with gzip.open(T0_PROMPTS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in islice(f, n)]
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    return rows


def filter_cli(src: Path, out: Path):
    return CliRunner().invoke(main, ["filter", str(src), "--out", str(out)])


def test_filter_reads_gzipped_prompt_completion_rows(tmp_path):
    rows = t0_slice(tmp_path / "t0.jsonl.gz")
    result = filter_cli(tmp_path / "t0.jsonl.gz", tmp_path / "clean")
    assert result.exit_code == 0, result.output
    assert f"of {len(rows)} records" in result.output
    kept = [obj for _, obj in read_jsonl(tmp_path / "clean" / "data.jsonl")]
    rejected = [obj for _, obj in read_jsonl(tmp_path / "clean" / "rejected.jsonl")]
    assert kept and len(kept) + len(rejected) == len(rows)
    by_prompt = {row["prompt"]: row for row in rows}
    for record in kept:  # the prompt is the instruction, the completion the output, the rest carried along
        row = by_prompt[record["instruction"]]
        assert record["output"] == row["completion"].strip() and record["template"] == row["template"]
        assert "completion" not in record


def test_filter_and_answer_read_a_prompt_file_alike(tmp_path):
    rows = t0_slice(tmp_path / "t0.jsonl.gz", 50)
    prompts, _ = load_prompts(tmp_path / "t0.jsonl.gz")  # as `answer` reads its source
    records = read_records(tmp_path / "t0.jsonl.gz")  # as `filter` does
    assert [p.instruction for p in prompts] == [r["instruction"] for r in records] == [row["prompt"] for row in rows]
    assert [r["output"] for r in records] == [row["completion"] for row in rows]


def test_a_prompt_without_a_completion_is_for_answer_not_filter(tmp_path):
    src = tmp_path / "questions.jsonl"
    src.write_text(
        json.dumps({"prompt": "What is 2 + 2?", "completion": "4"})
        + "\n"
        + json.dumps({"question": "What is 3 + 3?"})
        + "\n"
    )
    result = filter_cli(src, tmp_path / "clean")
    assert result.exit_code == 1
    assert f"Error: {src}:2: not an instruction record (keys: question)" in result.output
    assert [p.instruction for p in load_prompts(src)[0]] == ["What is 2 + 2?", "What is 3 + 3?"]


def test_a_broken_gzip_file_is_one_clear_error(tmp_path):
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(gzip.compress(b'{"prompt": "Say hi.", "completion": "Hi."}\n' * 100)[:-20])  # cut short
    result = filter_cli(src, tmp_path / "clean")
    assert result.exit_code == 1 and f"Error: {src}: not a readable gzip file" in result.output
    assert "Traceback" not in result.output


def test_filter_refuses_to_write_into_a_run_directory(tmp_path):
    run = write_run(tmp_path / "run")
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "Name a prime number.", "input": "", "output": "Seven."}) + "\n")
    before = (run / "data.jsonl").read_bytes()

    result = filter_cli(src, run)
    assert result.exit_code == 1
    assert f"Error: --out {run}: a run directory (made by generate, answer or judge)" in result.output
    assert (run / "data.jsonl").read_bytes() == before

    (run / "config.json").unlink()  # its ledger alone still makes it a run, recoverable from it
    result = filter_cli(src, run)
    assert result.exit_code == 1 and "a run directory" in result.output
    assert (run / "data.jsonl").read_bytes() == before


# Holds a directory's lock as a job does (RunDir.lock) until its stdin closes.
HOLDER = """
import sys
from selfinstruct.engine.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_filter_respects_the_lock_of_a_directory_in_use(tmp_path):
    out = tmp_path / "starting-run"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": "Name a prime number.", "input": "", "output": "Seven."}) + "\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        result = filter_cli(src, out)
        assert result.exit_code == 1
        assert f"Error: {out} is in use by process {holder.pid}" in result.output
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    result = filter_cli(src, out)  # once it is free
    assert result.exit_code == 0, result.output
    assert (out / "data.jsonl").exists()
