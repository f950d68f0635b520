"""Runs through the Batch API: half price, never paid twice, resumed after kill -9, and
batches that end badly asked again."""

import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.engine.runners.batch import BatchesLeftRunning, BatchRunner
from selfinstruct.errors import SettingError
from selfinstruct.pricing import price_for
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.bootstrap import GenerateConfig, generate

PRICE = price_for("gpt-4o-mini")


def config(server, **overrides) -> GenerateConfig:
    settings = dict(
        base_url=server.base_url,
        model="gpt-4o-mini",
        preset="alpaca",
        tasks_per_request=5,
        num_instructions=60,
        batch=True,
        batch_poll_s=0.01,
        max_tokens=400,
    )
    return GenerateConfig(**{**settings, **overrides})


def events(out, kind=None):
    return [e for _, e in read_jsonl(out / "ledger.jsonl") if kind is None or e["event"] == kind]


def billed(server) -> float:
    return sum(
        PRICE.cost(usage["prompt_tokens"], usage["completion_tokens"], batch=True) for _, _, usage in server.served
    )


def test_a_batch_run_reaches_its_target_at_the_batch_price(tmp_path):
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5)) as server:
        result = generate(config(server), tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED and result.accepted >= 60
    # rounds: a first one sized from the target at the assumed yield (60 at 90% of 5 tasks: 14,
    # plus 10%), then what the yield says is still needed
    sizes = [len(ids) for _, ids in server.uploads]
    assert sizes[0] == 15 and sum(sizes) < 20 + 60 / 5 * 1.5
    responses = events(tmp_path, "response")
    assert len(responses) == len(server.served) and all(e["batch_id"].startswith("batch_") for e in responses)
    assert result.cost["cost_usd"] == pytest.approx(
        billed(server), abs=1e-8
    )  # exactly half the standard price (cost.json: to 1e-8)
    assert billed(server) == pytest.approx(
        sum(PRICE.cost(u["prompt_tokens"], u["completion_tokens"]) for _, _, u in server.served) / 2
    )
    ended = events(tmp_path, "batch_ended")
    assert [e["status"] for e in ended] == ["completed"] * len(sizes)


def test_later_rounds_ask_for_what_the_yield_says_is_missing_with_a_small_margin(tmp_path):
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5)) as server:  # every task is kept: 5 records per answer
        result = generate(config(server, num_instructions=300), tmp_path, progress=False)
    # 20 requests (the most a first round asks) bring 100 records; 200 are missing: 40 requests, plus 10%
    assert [len(ids) for _, ids in server.uploads] == [20, 44]
    assert (
        result.accepted == 300 and result.stats["surplus"] == 20
    )  # the 4 extra answers' records: kept, not in the data


def test_failed_lines_and_an_expired_batch_are_asked_again_once(tmp_path):
    plans = [{"end": "expired", "answered": 8}, {"end": "completed", "failed_lines": 3}, {}]
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), plans=plans) as server:
        result = generate(config(server, num_instructions=100), tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    first, second = server.uploads[0][1], server.uploads[1][1]
    assert len(first) == 20 and set(first[8:]) <= set(second)  # the 12 never reached went again
    again = {rid for name, ids in server.uploads[2:] for rid in ids}
    assert set(second[:3]) <= again  # the error file's lines went again
    answered = [e["request_id"] for e in events(tmp_path, "response")]
    assert len(answered) == len(set(answered)) == len(server.served)  # each answered once, each billed once


def test_a_request_is_asked_in_at_most_three_batches(tmp_path):
    plans = [{"end": "failed"}] * 3
    with FakeBatchAPI(FakeOpenAI(), plans=plans) as server:
        with pytest.raises(Exception, match="in 3 batches"):
            generate(config(server), tmp_path, progress=False)
    assert len(server.uploads) == 3 and all(ids == server.uploads[0][1] for _, ids in server.uploads)
    assert server.served == []
    failures = events(tmp_path, "failure")
    assert len(failures) >= 5 and "in 3 batches" in failures[0]["error"]


def test_the_cost_cap_holds_the_whole_batch_before_it_exists(tmp_path):
    cap = 0.03
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5)) as server:
        result = generate(
            config(server, num_instructions=100_000, max_cost=cap, max_tokens=2000), tmp_path, progress=False
        )
    assert result.stop_reason is StopReason.MAX_COST
    assert 0 < billed(server) <= cap and result.cost["cost_usd"] == pytest.approx(billed(server))
    requests = {e["request_id"]: e for e in events(tmp_path, "request")}
    reserved = [
        sum(requests[rid]["reserved_usd"] for rid in batch["request_ids"]) for batch in events(tmp_path, "batch")
    ]
    paid = 0.0
    for (_, ids), batch_reserve in zip(server.uploads, reserved):  # each round: what was paid + its worst case fit
        assert paid + batch_reserve <= cap
        paid += sum(
            PRICE.cost(u["prompt_tokens"], u["completion_tokens"], batch=True)
            for rid, _, u in server.served
            if rid in ids
        )
    # the cap cuts rounds, and the rounds it cuts keep a useful size: no trickle of tiny batches
    sizes = [len(ids) for _, ids in server.uploads]
    assert len(sizes) >= 3 and min(sizes) >= 20
    worst = max(e["reserved_usd"] for e in requests.values())
    assert cap - result.cost["cost_usd"] < 20 * worst + 1e-9  # stopped only when 20 more could break the cap


def command(server, out, *extra) -> list[str]:
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
        "--tasks-per-request",
        "5",
        "--num-instructions",
        "60",
        "--batch",
        "--batch-poll",
        "0.05",
        "--max-tokens",
        "400",
        "--quiet",
        *extra,
    ]


def start_until_batch_created(server, out) -> subprocess.Popen:
    """`generate --batch` in a process of its own, returned once its first batch is in the ledger."""
    process = subprocess.Popen(command(server, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "ledger.jsonl").exists() or not events(out, "batch_created"):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    return process


def test_kill_9_while_a_batch_runs_then_rerun_collects_it_without_paying_twice(tmp_path):
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=40) as server:  # about 6 s in progress
        process = start_until_batch_created(server, tmp_path)
        process.kill()
        process.wait()
        assert server.batches["batch_1"]["status"] in ("validating", "in_progress")

        rerun = subprocess.run(command(server, tmp_path), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    first_ids = server.uploads[0][1]
    later = [rid for _, ids in server.uploads[1:] for rid in ids]
    assert not set(first_ids) & set(later)  # the first batch's requests were never uploaded again
    answered_by = {e["request_id"]: e["batch_id"] for e in events(tmp_path, "response")}
    assert all(answered_by[rid] == "batch_1" for rid in first_ids)  # its records are the first batch's
    data = [r for _, r in read_jsonl(tmp_path / "data.jsonl")]
    kept = data + [r for _, r in read_jsonl(tmp_path / "surplus.jsonl")]
    assert {r["request_id"] for r in kept} >= set(first_ids) and len(data) == 60


def test_a_crash_between_creating_a_batch_and_recording_it_finds_the_batch(tmp_path):
    """The batch exists at the provider but the ledger never got its id: the rerun finds it by
    its metadata instead of creating (and paying for) a second one."""
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=1000) as server:
        process = start_until_batch_created(server, tmp_path)
        process.kill()
        process.wait()
        ledger = tmp_path / "ledger.jsonl"
        ledger.write_text(
            "".join(line for line in ledger.read_text().splitlines(keepends=True) if '"batch_created"' not in line)
        )
        server.polls = 1
        rerun = subprocess.run(command(server, tmp_path), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
    assert len(server.uploads) == len({name for name, _ in server.uploads})  # no file uploaded twice
    assert [e["batch_id"] for e in events(tmp_path, "batch_created")][0] == "batch_1"
    assert not set(server.uploads[0][1]) & {rid for _, ids in server.uploads[1:] for rid in ids}


def test_ctrl_c_leaves_the_batch_running_and_a_rerun_collects_it(tmp_path):
    import signal

    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=1000) as server:
        process = start_until_batch_created(server, tmp_path)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert (
            process.returncode == 1
            and "Batch batch_1 goes on at the provider; rerun the same command to collect it" in stderr
        )
        assert server.batches["batch_1"]["status"] != "cancelled"
        with pytest.raises(SettingError, match="batch batch_1 is still open at the provider"):
            generate(config(server, batch=False), tmp_path, progress=False)  # an online run would lose it
        server.polls = 1
        result = generate(config(server), tmp_path, progress=False)
    assert result.accepted >= 60 and server.uploads[0][1] == [e["request_id"] for e in events(tmp_path, "request")][:20]


def test_ctrl_c_while_a_rerun_recovers_its_batch_names_the_batch_left_running(tmp_path, monkeypatch):
    """Interrupted before the batch it found in the ledger is polled again: the ledger, not the
    batch being polled, says what still runs at the provider."""
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=1000) as server:
        process = start_until_batch_created(server, tmp_path)
        process.kill()
        process.wait()

        def interrupted(self, submission):
            raise KeyboardInterrupt

        monkeypatch.setattr(BatchRunner, "_find_or_create", interrupted)
        with pytest.raises(BatchesLeftRunning) as caught:
            generate(config(server), tmp_path, progress=False)
    assert caught.value.batch_ids == ["batch_1"]


def test_answer_through_a_batch(tmp_path):
    source = tmp_path / "questions.jsonl"
    source.write_text("".join(json.dumps({"question": f"Name {i} rivers."}) + "\n" for i in range(7)))
    with FakeBatchAPI(FakeOpenAI(reasoning="deepseek")) as server:
        config_ = AnswerConfig(
            source=str(source),
            base_url=server.base_url,
            model="deepseek-chat",
            samples=2,
            batch=True,
            batch_poll_s=0.01,
            max_tokens=300,
        )
        result = answer(config_, tmp_path / "run", progress=False)
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == 14
    assert len(server.uploads) == 1 and len(server.uploads[0][1]) == 14  # no target: one round of everything
    assert all(r["reasoning"] for _, r in read_jsonl(tmp_path / "run" / "data.jsonl"))


def test_the_batches_of_a_run_are_listed(tmp_path):
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5)) as server:
        generate(config(server), tmp_path, progress=False)
    result = CliRunner().invoke(main, ["batches", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "b0001" in result.output and "batch_1" in result.output and "completed" in result.output
    rows = json.loads(CliRunner().invoke(main, ["batches", str(tmp_path), "--json"]).output)
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(
        billed(server), abs=1e-8 * len(rows)
    )  # rounded to 1e-8 each
    assert rows[0]["requests"] == 15 and rows[0]["answered"] == 15


def test_a_dry_run_with_batch_is_priced_at_the_batch_discount(tmp_path):
    def expected(*flags):
        args = [
            "generate",
            "--out",
            str(tmp_path / "run"),
            "--base-url",
            "https://api.openai.com/v1",
            "--model",
            "gpt-4o-mini",
            "-n",
            "52000",
            "--dry-run",
            *flags,
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return float(re.search(r"expected cost: \$([\d.,]+)", result.output).group(1).replace(",", "")), result.output

    standard, _ = expected()
    batch, output = expected("--batch")
    assert batch == pytest.approx(standard / 2, rel=1e-3) and "at the Batch API price" in output


def test_the_52k_cost_benchmark_runs_at_a_small_target(tmp_path, monkeypatch):
    """benchmarks/cost_52k.py: its realistic teacher through the batch stand-in, priced as billed."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "benchmarks"))
    bench = importlib.import_module("cost_52k")
    figures = bench.run(tmp_path / "run", target=200)
    assert figures["accepted"] >= 200 and figures["batches"][0] == 13  # 200 at 90% of 20 tasks: 12, plus 10%
    assert 500 < figures["prompt_tokens_per_request"] < 1024  # our real prompt: below the size OpenAI caches
    assert figures["tokens_per_accepted_record"]["cached"] == 0
    costs = figures["usd_for_52k"]
    assert costs["gpt-4o-mini standard"] == pytest.approx(2 * costs["gpt-4o-mini batch"], abs=0.02)
    assert "| gpt-4.1-nano |" in bench.markdown(figures)
