"""The run directory: one writer at a time, readers welcome, old formats read, new ones refused."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_teacher import FakeTeacher, tasks_answer
from test_resume import command, start_and_wait

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate


def test_a_second_process_fails_fast_and_kill_9_leaves_no_stale_lock(tmp_path):
    """With a rule-check worker process too: it neither keeps the lock nor outlives the job."""
    with FakeOpenAI(tasks_per_answer=5, delay_s=0.3) as server:
        cmd = command(server, tmp_path, 10_000) + ["--cleaning-workers", "1"]
        first = start_and_wait(cmd, tmp_path, responses=2)
        workers = children(first.pid)
        assert len(workers) == 1

        started = time.monotonic()
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"{tmp_path} is in use by process {first.pid}" in second.stderr
        assert time.monotonic() - started < 15  # start-up, then out: it asked for nothing

        # readers are welcome while it runs
        deadline = time.monotonic() + 30
        while not (tmp_path / "data.jsonl").exists() or not (tmp_path / "data.jsonl").stat().st_size:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert CliRunner().invoke(main, ["cost", str(tmp_path), "--json"]).exit_code == 0
        export = CliRunner().invoke(main, ["export", str(tmp_path), "--to", str(tmp_path.parent / "copy.jsonl")])
        assert export.exit_code == 0, export.output

        first.kill()  # SIGKILL: the kernel drops the lock with the process
        first.wait()
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "the rule-check worker outlived its job"
            time.sleep(0.1)
        finished = subprocess.run(command(server, tmp_path, 40), capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr
    sent = [call.client_request_id for call in server.calls]
    assert len(sent) == len(set(sent))  # no request id ever went out twice
    requests = [e["request_id"] for _, e in read_jsonl(tmp_path / "ledger.jsonl") if e["event"] == "request"]
    assert len(requests) == len(set(requests))


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def config(**overrides) -> GenerateConfig:
    return GenerateConfig(
        base_url="http://127.0.0.1:9/v1",
        model="fake-teacher",
        preset="alpaca",
        tasks_per_request=5,
        concurrency=1,
        max_tokens=400,
        **overrides,
    )


def test_a_format_1_directory_resumes_and_becomes_format_2(tmp_path):
    """Format 1 (before the job engine) had no task name in config.json and no checkpoint."""
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    generate(config(num_instructions=10), tmp_path, teacher=teacher, progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    old = {k: v for k, v in saved.items() if k != "task"} | {"format_version": 1}
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "checkpoint.json").unlink()
    data = (tmp_path / "data.jsonl").read_bytes()

    result = generate(config(num_instructions=10), tmp_path, teacher=teacher, progress=False)
    assert result.accepted == 10 and len(teacher.calls) == 2  # resumed from the ledger, asked nothing
    assert (tmp_path / "data.jsonl").read_bytes() == data
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["format_version"] == 2 and saved["task"] == "bootstrap"


def test_a_newer_format_or_another_task_is_refused_with_the_reason(tmp_path):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    generate(config(num_instructions=5), tmp_path, teacher=teacher, progress=False)
    copy = tmp_path.parent / "copy"
    shutil.copytree(tmp_path, copy)

    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(saved | {"format_version": 3}))
    with pytest.raises(SelfInstructError, match=r"run format version 3; this selfinstruct reads versions 1 and 2"):
        generate(config(num_instructions=5), tmp_path, teacher=teacher, progress=False)

    (copy / "config.json").write_text(json.dumps(saved | {"task": "judge"}))
    with pytest.raises(SelfInstructError, match=r"holds a 'judge' run, not 'bootstrap'"):
        generate(config(num_instructions=5), copy, teacher=teacher, progress=False)
