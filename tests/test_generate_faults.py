"""The bootstrap loop against a misbehaving OpenAI-compatible server."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FAKE_KEY, assert_no_key_in
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.errors import SettingError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.client import TeacherRefused


def config(server: FakeOpenAI, **overrides) -> GenerateConfig:
    settings = dict(
        base_url=server.base_url,
        model="gpt-4o-mini",
        preset="alpaca",
        tasks_per_request=5,
        num_instructions=10,
        concurrency=1,
        timeout=1.0,
        max_tokens=400,
    )
    settings.update(overrides)
    return GenerateConfig(**settings)


def ledger(out: Path) -> list[dict]:
    return [event for _, event in read_jsonl(out / "ledger.jsonl")]


def lines(path: Path) -> list[dict]:
    return [obj for _, obj in read_jsonl(path)]


def test_transient_faults_are_retried_and_the_ledger_matches_the_server(tmp_path):
    faults = ["429", "500", "hang", "empty_choice", "bad_body", "ok", "malformed_json", "truncated"]
    with FakeOpenAI(faults=faults, hang_s=3) as server:
        result = generate(config(server, num_instructions=12), tmp_path, progress=False)

    assert result.stop_reason == "target reached" and result.accepted >= 12
    events = ledger(tmp_path)
    responses = [e for e in events if e["event"] == "response"]
    assert [e["event"] for e in events].count("request") == len(responses)  # none lost or failed

    # The first request survived five transient faults, waiting out Retry-After: 1.
    first = responses[0]
    assert first["attempts"] == 6
    errors = " | ".join(first["retry_errors"])
    for expected in ("HTTP 429", "HTTP 500", "timeout", "EmptyAnswer", "JSONDecodeError"):
        assert expected in errors
    assert server.calls[1].arrived - server.calls[0].arrived >= 1.0

    # The malformed answer is kept in the ledger (it was paid for) and reported as unparseable.
    malformed, truncated = responses[1], responses[2]
    rejected = lines(tmp_path / "rejected.jsonl")
    assert any(r["request_id"] == malformed["request_id"] and r["reason"] == "unparseable" for r in rejected)
    assert not any(r["request_id"] == malformed["request_id"] for r in lines(tmp_path / "data.jsonl"))

    # The truncated answer keeps only its complete tasks.
    assert truncated["finish_reason"] == "length"
    kept = [r for r in lines(tmp_path / "data.jsonl") if r["request_id"] == truncated["request_id"]]
    assert 0 < len(kept) < 5

    # Every response in the ledger is an answer the server delivered, with the same usage.
    served = {c.server_request_id: c for c in server.completed}
    for event in responses:
        call = served[event["provider_request_id"]]
        assert call.client_request_id == event["request_id"]
        assert event["usage"]["prompt_tokens"] == call.usage["prompt_tokens"]
        assert event["usage"]["completion_tokens"] == call.usage["completion_tokens"]
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["prompt_tokens"] == sum(e["usage"]["prompt_tokens"] for e in responses)
    assert cost["cost_usd"] == pytest.approx(
        sum(e["usage"]["prompt_tokens"] * 0.15 + e["usage"]["completion_tokens"] * 0.60 for e in responses) / 1e6
    )
    assert_no_key_in(tmp_path)


def test_401_stops_the_run_at_once_without_a_retry_storm(tmp_path):
    with FakeOpenAI(faults=["401"] * 50) as server:
        with pytest.raises(TeacherRefused) as refused:
            generate(config(server, concurrency=4), tmp_path, progress=False)

    message = str(refused.value)
    assert "HTTP 401" in message and "$OPENAI_API_KEY" in message
    assert FAKE_KEY not in message  # the server echoed the key; we do not repeat it
    assert len(server.calls) <= 4  # each request tried once, no retries
    events = ledger(tmp_path)
    assert any(e["event"] == "failure" for e in events)
    assert json.loads((tmp_path / "stats.json").read_text())["status"] == StopReason.REFUSED == "refused by the teacher"
    assert_no_key_in(tmp_path)


def test_server_without_json_schema_gets_json_object_instead(tmp_path):
    with FakeOpenAI(reject_json_schema=True) as server:
        result = generate(config(server, num_instructions=5), tmp_path, progress=False)

    assert result.accepted >= 5
    assert [c.fault for c in server.calls].count("reject_json_schema") == 1  # no retries of a refusal
    responses = [e for e in ledger(tmp_path) if e["event"] == "response"]
    assert {e["response_format"] for e in responses} == {"json_object"}


def test_text_format_uses_alpaca_numbered_blocks(tmp_path):
    with FakeOpenAI() as server:
        result = generate(config(server, num_instructions=5, response_format="text"), tmp_path, progress=False)

    assert result.accepted >= 5
    first = next(e for e in ledger(tmp_path) if e["event"] == "response")
    assert first["output_format"] == "text" and "1. Instruction:" in first["messages"][0]["content"]
    assert "response_format" not in (server.calls[0].response_format or {})


def test_missing_usage_is_estimated_with_tiktoken_and_marked(tmp_path):
    with FakeOpenAI(send_usage=False) as server:
        generate(config(server, num_instructions=5), tmp_path, progress=False)

    usage = next(e for e in ledger(tmp_path) if e["event"] == "response")["usage"]
    assert usage["estimated"] is True and usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 10
    assert json.loads((tmp_path / "cost.json").read_text())["usage_estimated"] is True


def test_cost_cap_holds_under_concurrency(tmp_path):
    # Prices chosen so each answer costs about $0.003 and the worst case about $0.01.
    cap = 0.05
    overrides = dict(concurrency=8, num_instructions=10_000, price_in=1.0, price_out=2.0, max_cost=cap, max_tokens=2000)
    with FakeOpenAI(delay_s=0.05) as server:
        result = generate(config(server, **overrides), tmp_path, progress=False)

    assert result.stop_reason == "max cost reached"
    spent = result.cost["cost_usd"]
    assert 0 < spent <= cap
    assert len(server.completed) == result.stats["responses"]  # nothing paid went unrecorded
    assert spent == pytest.approx(
        sum(c.usage["prompt_tokens"] * 1.0 + c.usage["completion_tokens"] * 2.0 for c in server.completed) / 1e6
    )

    # A rerun with the same cap sends nothing: the money left is less than one worst case.
    with FakeOpenAI() as again:
        result = generate(config(again, **overrides), tmp_path, progress=False)
    assert result.stop_reason == "max cost reached" and again.calls == []


def test_unknown_model_with_a_cost_cap_needs_prices(tmp_path):
    """The library names the settings; the command line names the flags that set them."""
    with FakeOpenAI() as server:
        with pytest.raises(
            SettingError, match="so 'max_cost' cannot be enforced: set 'price_in' and 'price_out'"
        ) as error:
            generate(config(server, model="my-local-model", max_cost=1.0), tmp_path, progress=False)
        assert error.value.fields == ("max_cost", "price_in", "price_out")
        result = CliRunner().invoke(
            main,
            [
                "generate",
                "--out",
                str(tmp_path / "cli"),
                "--base-url",
                server.base_url,
                "--model",
                "my-local-model",
                "--max-cost",
                "1",
            ],
        )
    assert result.exit_code == 1
    assert "so --max-cost cannot be enforced: set --price-in and --price-out (USD per 1M tokens)" in result.output
    assert server.calls == [] and not (tmp_path / "cli").exists()


def test_provider_rate_limit_headers_slow_the_client_down(tmp_path):
    # 60 requests/min with none remaining: the client waits about a second between requests.
    headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0"}
    with FakeOpenAI(extra_headers=headers) as server:
        generate(config(server, num_instructions=15), tmp_path, progress=False)

    arrivals = [c.arrived for c in server.calls]
    assert len(arrivals) >= 3
    assert all(b - a >= 0.9 for a, b in zip(arrivals, arrivals[1:]))
