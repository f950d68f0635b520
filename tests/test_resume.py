"""Crashes and interrupts: a rerun resumes without asking again for anything paid for."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from fake_openai import FakeOpenAI

from selfinstruct.engine.ledger import load_ledger
from selfinstruct.records import read_jsonl

TASKS_PER_ANSWER = 5


def command(server: FakeOpenAI, out: Path, target: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "selfinstruct",
        "generate",
        "--out",
        str(out),
        "--base-url",
        server.base_url,
        "--model",
        "gpt-4o-mini",
        "--preset",
        "alpaca",
        "--num-instructions",
        str(target),
        "--tasks-per-request",
        str(TASKS_PER_ANSWER),
        "--concurrency",
        "4",
        "--quiet",
    ]


def responses_in(out: Path) -> int:
    path = out / "ledger.jsonl"
    return path.read_text().count('"event": "response"') if path.exists() else 0


def start_and_wait(cmd: list[str], out: Path, responses: int) -> subprocess.Popen:
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while responses_in(out) < responses:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "generate made no progress"
        time.sleep(0.05)
    return process


def check_exact(server: FakeOpenAI, out: Path, target: int) -> None:
    events = [e for _, e in read_jsonl(out / "ledger.jsonl")]
    responses = [e for e in events if e["event"] == "response"]

    # Nothing paid for was asked again: each request id reached the server once.
    sent = [c.client_request_id for c in server.calls]
    assert len(sent) == len(set(sent))

    # Every answer the server delivered is in the ledger, or its request is still unsettled
    # (it was in flight when the process died; the cost cap keeps counting it).
    delivered = {c.client_request_id: c for c in server.completed}
    answered = {e["request_id"] for e in responses}
    assert answered <= set(delivered)
    assert set(delivered) - answered <= set(load_ledger(out / "ledger.jsonl").outstanding)

    # Ledger totals are the server's figures for those answers, to the token.
    cost = json.loads((out / "cost.json").read_text())
    assert cost["responses"] == len(responses)
    assert cost["prompt_tokens"] == sum(delivered[r].usage["prompt_tokens"] for r in answered)
    assert cost["completion_tokens"] == sum(delivered[r].usage["completion_tokens"] for r in answered)

    # Records: every answer carries 5 distinct valid tasks, each accepted exactly once.
    data = [r for _, r in read_jsonl(out / "data.jsonl")]
    assert len(data) == TASKS_PER_ANSWER * len(responses) >= target
    assert len({r["id"] for r in data}) == len(data)
    assert {r["request_id"] for r in data} == answered


def test_kill_9_then_resume_is_exact(tmp_path):
    target = 80
    with FakeOpenAI(tasks_per_answer=TASKS_PER_ANSWER, delay_s=0.15) as server:
        cmd = command(server, tmp_path, target)
        process = start_and_wait(cmd, tmp_path, responses=4)
        process.kill()  # SIGKILL: no cleanup at all
        process.wait()
        before = responses_in(tmp_path)
        assert before < target / TASKS_PER_ANSWER

        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        check_exact(server, tmp_path, target)


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    target = 60
    with FakeOpenAI(tasks_per_answer=TASKS_PER_ANSWER, delay_s=0.3) as server:
        cmd = command(server, tmp_path, target)
        process = start_and_wait(cmd, tmp_path, responses=2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode != 0
        assert "Interrupted" in stderr and "rerun the same command to resume" in stderr
        assert json.loads((tmp_path / "stats.json").read_text())["status"] == "interrupted"
        # A clean stop leaves no request without an outcome: those in flight are "cancelled".
        events = [e for _, e in read_jsonl(tmp_path / "ledger.jsonl")]
        outcomes = {e["request_id"] for e in events if e["event"] in ("response", "failure", "cancelled")}
        assert {e["request_id"] for e in events if e["event"] == "request"} == outcomes

        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        check_exact(server, tmp_path, target)


def test_torn_last_ledger_line_is_tolerated(tmp_path):
    with FakeOpenAI(tasks_per_answer=TASKS_PER_ANSWER) as server:
        cmd = command(server, tmp_path, 10)
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        ledger = tmp_path / "ledger.jsonl"
        with ledger.open("a") as f:
            f.write('{"event": "response", "request_id": "r0000')  # what kill -9 mid-write leaves
        subprocess.run(command(server, tmp_path, 20), check=True, capture_output=True, timeout=60)
        assert all(line.endswith("}") for line in ledger.read_text().splitlines())
        assert sum(1 for _ in read_jsonl(tmp_path / "data.jsonl")) >= 20
