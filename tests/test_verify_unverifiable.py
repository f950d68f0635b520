"""`answer --verify math` keeps only verified answers: an answer with no reference to check is
rejected as `unverifiable` and counted, and a source with nothing to verify against is refused
before any request is paid for."""

import json
import re

from click.testing import CliRunner
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.pricing import price_for
from selfinstruct.records import read_jsonl
from selfinstruct.tokens import prompt_tokens_upper_bound


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def right_sum(prompt: str) -> str:
    a, b = map(int, re.findall(r"\d+", prompt)[:2])
    return f"Adding them gives {a + b}. The answer is {a + b}."


def run_answer(source, out, server):
    args = [
        "answer",
        str(source),
        "--out",
        str(out),
        "--base-url",
        server.base_url,
        "--model",
        "teacher",
        "--verify",
        "math",
        "--quiet",
    ]
    return CliRunner().invoke(main, args)


def test_answers_without_a_reference_are_rejected_as_unverifiable(tmp_path):
    rows = [{"id": f"q{a}", "question": f"What is {a} + {a + 7}?", "answer": f"#### {2 * a + 7}"} for a in range(4)]
    rows += [{"id": "none1", "question": "What is 1 + 8?"}, {"id": "none2", "question": "What is 2 + 9?"}]
    rows += [{"id": "unreadable", "question": "What is 3 + 10?", "answer": "#### see the teacher's notes"}]
    source = write_rows(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "run"
    with FakeOpenAI(answer=right_sum) as server:
        result = run_answer(source, out, server)
    assert result.exit_code == 0, result.output
    assert "2 of 7 records have no reference answer" in result.output
    assert "verified (math): 4/4 correct (100.0%)" in result.output

    assert sorted(r["source_id"] for _, r in read_jsonl(out / "data.jsonl")) == ["q0", "q1", "q2", "q3"]
    rejected = {r["source_id"]: r for _, r in read_jsonl(out / "rejected.jsonl")}
    assert {k: r["reason"] for k, r in rejected.items()} == {
        "none1": "unverifiable",
        "none2": "unverifiable",
        "unreadable": "unverifiable",
    }
    assert "math-verify can read" in rejected["unreadable"]["detail"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["filters"]["rejected"] == {"unverifiable": 3}
    assert stats["verification"] == {"method": "math", "checked": 4, "correct": 4, "pass_rate": 1.0}


def test_a_source_without_references_is_refused_before_any_request(tmp_path):
    source = write_rows(tmp_path / "prompts.jsonl", [{"id": f"q{i}", "prompt": f"What is {i} + 7?"} for i in range(5)])
    with FakeOpenAI(answer=right_sum) as server:
        result = run_answer(source, tmp_path / "run", server)
    assert result.exit_code != 0
    assert f"{source}: no record has a reference answer (the field 'answer' or 'solution')" in result.output
    assert "--verify" in result.output and "Traceback" not in result.output
    assert server.calls == [] and not (tmp_path / "run").exists()


def test_references_math_verify_cannot_read_are_refused_before_any_request(tmp_path):
    rows = [{"question": f"Describe {i} clouds.", "solution": "Any vivid description will do."} for i in range(3)]
    source = write_rows(tmp_path / "essays.jsonl", rows)
    with FakeOpenAI(answer=right_sum) as server:
        result = run_answer(source, tmp_path / "run", server)
    assert result.exit_code != 0
    assert f"{source}: math-verify can read none of the 3 reference answers" in result.output
    assert server.calls == []


def test_a_run_that_verified_nothing_fails(tmp_path):
    """The one readable reference is last, and the cap pays for one answer: the run ends with
    nothing verified, and the command says so instead of exiting 0."""
    rows = [{"id": f"none{i}", "question": f"What is {i} + 7?"} for i in range(3)]
    rows.append({"id": "q", "question": "What is 1 + 8?", "answer": "9"})
    source = write_rows(tmp_path / "late.jsonl", rows)
    one_request = price_for("gpt-4o-mini").cost(
        prompt_tokens_upper_bound([{"role": "user", "content": "What is 0 + 7?"}]), 100
    )
    args = [
        "answer",
        str(source),
        "--out",
        str(tmp_path / "run"),
        "--model",
        "gpt-4o-mini",
        "--verify",
        "math",
        "--quiet",
        "--max-tokens",
        "100",
        "--concurrency",
        "1",
        "--max-cost",
        str(one_request * 1.001),
    ]
    with FakeOpenAI(answer=right_sum) as server:
        result = CliRunner().invoke(main, [*args, "--base-url", server.base_url])
    assert len(server.completed) == 1, result.output
    assert result.exit_code != 0
    assert (
        f"no answer could be verified (math): see the reasons in {tmp_path / 'run' / 'rejected.jsonl'}" in result.output
    )
