"""Reasoning teachers: the parameters they take, their traces in the records, the cap with
reasoning tokens billed, and `answer --verify math`."""

import json
import re

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.pricing import PRICES, completion_bound, price_for
from selfinstruct.reasoning import inline, split_reasoning
from selfinstruct.records import read_jsonl
from selfinstruct.report.cost import cost_report
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.bootstrap import GenerateConfig, generate


def events(out, kind):
    return [e for _, e in read_jsonl(out / "ledger.jsonl") if e["event"] == kind]


def data(out):
    return [r for _, r in read_jsonl(out / "data.jsonl")]


@pytest.fixture
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("source") / "prompts.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"Name {i} animals that live in the sea."} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "content, field, expected",
    [
        ("<think>2+2 is 4</think>\n\nFour.", None, ("2+2 is 4", "Four.")),
        ("2+2 is 4\n</think>\n\nFour.", None, ("2+2 is 4", "Four.")),  # R1-distill without the opening tag
        ("Four.", "2+2 is 4", ("2+2 is 4", "Four.")),
        ("<think>2+2 is", None, ("2+2 is", "")),  # cut off inside the trace
        ("Four.", None, (None, "Four.")),
    ],
)
def test_traces_are_found_in_every_form(content, field, expected):
    assert split_reasoning(content, field) == expected
    if expected[0] is not None:
        assert split_reasoning(inline(*expected), None) == expected  # the export form reads back


def test_an_openai_reasoning_model_gets_the_parameters_it_takes(tmp_path):
    """400 for max_tokens, then for temperature 0.7: the client switches to
    max_completion_tokens and drops temperature, once each, and the ledger says so."""
    with FakeOpenAI(reasoning="openai", tasks_per_answer=5) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="gpt-5-mini",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=10,
            concurrency=1,
            temperature=0.7,
            max_tokens=2000,
        )
        result = generate(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    assert [c.status for c in server.calls[:3]] == [400, 400, 200]  # refusals are not retried blindly
    assert all(c.status == 200 for c in server.calls[3:])
    assert "max_tokens" not in server.bodies[-1] and "temperature" not in server.bodies[-1]
    assert server.bodies[-1]["max_completion_tokens"] == 2000 and server.bodies[-1]["top_p"] == 1.0
    responses = events(tmp_path, "response")
    assert all(e["request_params"] == {"max_completion_tokens": 2000, "top_p": 1.0} for e in responses)
    assert all(e["usage"]["reasoning_tokens"] == 300 for e in responses)
    report = cost_report(tmp_path)
    assert report.reasoning_tokens == 300 * len(responses) and report.completion_tokens > report.reasoning_tokens
    price = PRICES["gpt-5-mini"]
    billed = sum(price.cost(e["usage"]["prompt_tokens"], e["usage"]["completion_tokens"]) for e in responses)
    assert report.cost_usd == pytest.approx(billed)


@pytest.mark.parametrize("style", ["deepseek", "r1"])
def test_traces_land_in_the_records_of_an_answer_run(tmp_path, prompts, style):
    with FakeOpenAI(reasoning=style) as server:
        config = AnswerConfig(source=str(prompts), base_url=server.base_url, model="teacher", samples=2, max_tokens=500)
        result = answer(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.WORK_DONE and result.accepted == 8
    records = data(tmp_path)
    assert {(r["source_id"], r["sample"]) for r in records} == {(f"q{i}", k) for i in range(4) for k in range(2)}
    for record in records:
        assert record["reasoning"].startswith("Let me think about this step by step.")
        assert record["output"].startswith("Here is my answer to: Name") and "</think>" not in record["output"]
    # the ledger keeps the answer as it came: the trace in its field, or inline in the content
    first = events(tmp_path, "response")[0]
    assert ("reasoning" in first) == (style == "deepseek") and ("</think>" in first["content"]) == (style == "r1")


def test_generate_reads_the_tasks_after_an_inline_trace(tmp_path):
    with FakeOpenAI(reasoning="r1", tasks_per_answer=5) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="r1-distill",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=10,
            concurrency=1,
            max_tokens=2000,
        )
        result = generate(config, tmp_path, progress=False)
    assert result.accepted >= 10 and result.stats["unparseable"] == 0


def test_the_cap_holds_when_max_tokens_does_not_bound_the_reasoning(tmp_path, prompts):
    """deepseek-reasoner's max_tokens has at times bounded only the answer: its reservation is
    the model's whole output, so answers that bill far more than max_tokens stay inside the cap."""
    assert completion_bound("deepseek-reasoner", 500) == 65_536 and completion_bound("gpt-5", 500) == 500
    cap = 0.05
    with FakeOpenAI(reasoning="deepseek", reasoning_tokens=20_000) as server:  # 40x max_tokens
        config = AnswerConfig(
            source=str(prompts),
            base_url=server.base_url,
            model="deepseek-reasoner",
            samples=50,
            max_tokens=500,
            max_cost=cap,
            concurrency=4,
        )
        result = answer(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.MAX_COST
    price = price_for("deepseek-reasoner")
    billed = sum(price.cost(c.usage["prompt_tokens"], c.usage["completion_tokens"]) for c in server.completed)
    assert 0 < billed <= cap and result.cost["cost_usd"] == pytest.approx(billed)
    assert all(c.usage["completion_tokens"] > 20_000 for c in server.completed)


def test_every_priced_model_has_a_worst_case_that_bounds_its_answers():
    """The cap reserves `completion_bound` per answer: the request's own limit where the
    provider counts reasoning in it, the model's whole output where it may not."""
    for model in PRICES:
        assert completion_bound(model, 1000) >= 1000
    assert completion_bound("deepseek-reasoner", 1000, override=2000) == 2000


def arithmetic(tmp_path, n=10):
    path = tmp_path / "sums.jsonl"  # beside the run directories, not in one
    rows = [
        {"question": f"What is {a} + {a + 7}?", "answer": f"{a} + {a + 7} = {2 * a + 7}\n#### {2 * a + 7}"}
        for a in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def half_wrong(prompt: str) -> str:
    a, b = map(int, re.findall(r"\d+", prompt)[:2])
    return f"Adding them gives {a + b + (a % 2)}. The answer is {a + b + (a % 2)}."  # odd a: off by one


def test_verify_math_keeps_exactly_the_right_answers(tmp_path):
    source = arithmetic(tmp_path)
    with FakeOpenAI(answer=half_wrong) as server:
        result = CliRunner().invoke(
            main,
            [
                "answer",
                str(source),
                "--out",
                str(tmp_path / "run"),
                "--base-url",
                server.base_url,
                "--model",
                "teacher",
                "--verify",
                "math",
                "--quiet",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "verified (math): 5/10 correct (50.0%)" in result.output
    kept = data(tmp_path / "run")
    assert sorted(r["source_id"] for r in kept) == [str(a) for a in range(0, 10, 2)]
    rejected = [r for _, r in read_jsonl(tmp_path / "run" / "rejected.jsonl")]
    assert {r["reason"] for r in rejected} == {"wrong_answer"} and len(rejected) == 5
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["verification"] == {"method": "math", "checked": 10, "correct": 5, "pass_rate": 0.5}


def test_an_answer_run_resumes_without_asking_again(tmp_path, prompts):
    with FakeOpenAI() as server:
        config = AnswerConfig(source=str(prompts), base_url=server.base_url, model="teacher", samples=3, max_tokens=200)
        first = answer(config, tmp_path, progress=False)
        asked = len(server.calls)
        again = answer(config, tmp_path, progress=False)
    assert asked == 12 and len(server.calls) == asked
    assert first.accepted == again.accepted == 12
    changed = AnswerConfig(
        source=str(prompts), base_url="http://127.0.0.1:9/v1", model="teacher", samples=4, max_tokens=200
    )
    with pytest.raises(Exception, match=r"samples: 3 -> 4"):
        answer(changed, tmp_path, progress=False)


def test_a_dry_run_prices_the_reasoning_worst_case(tmp_path, prompts):
    args = [
        "answer",
        str(prompts),
        "--out",
        str(tmp_path / "run"),
        "--base-url",
        "https://api.deepseek.com/v1",
        "--model",
        "deepseek-reasoner",
        "--samples",
        "5",
        "--max-tokens",
        "1000",
        "--dry-run",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "about 20 requests" in result.output
    worst = float(re.search(r"worst case .*: \$([\d.,]+)", result.output).group(1).replace(",", ""))
    assert worst >= 20 * 65_536 * 0.42 / 1e6  # the whole output of each answer, not 1,000 tokens
    assert not (tmp_path / "run").exists()
