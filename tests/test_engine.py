"""The job engine's policies, driven by an in-process teacher: when a run stops, and what it
does not pay for."""

import json

import pytest
from fake_teacher import FakeTeacher, tasks_answer

from selfinstruct.engine.job import JobStopped, StopPolicy, StopReason
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.client import RequestFailed


def config(**overrides) -> GenerateConfig:
    settings = dict(
        base_url="http://127.0.0.1:9/v1",
        model="fake-teacher",
        preset="alpaca",
        tasks_per_request=5,
        num_instructions=10,
        concurrency=1,
        max_tokens=400,
    )
    return GenerateConfig(**{**settings, **overrides})


def events(out, kind: str) -> list[dict]:
    return [e for _, e in read_jsonl(out / "ledger.jsonl") if e["event"] == kind]


def status(out) -> str:
    return json.loads((out / "stats.json").read_text())["status"]


def failed(_request_id):
    return RequestFailed("HTTP 503: overloaded", attempts=8, retry_errors=["HTTP 503"] * 7)


def test_a_run_of_failures_stops_the_run_and_a_success_resets_the_count(tmp_path):
    policy = StopPolicy(max_failure_streak=3)
    teacher = FakeTeacher(failed)
    with pytest.raises(JobStopped, match="failed 3 requests in a row") as stopped:
        generate(config(), tmp_path / "a", teacher=teacher, progress=False, policy=policy)
    assert stopped.value.reason is StopReason.FAILURE_STREAK
    assert teacher.calls == ["r000000", "r000001", "r000002"]
    assert len(events(tmp_path / "a", "failure")) == 3 and status(tmp_path / "a") == StopReason.FAILURE_STREAK.value

    # two failures, an answer, two failures, ...: never three in a row, so the run reaches its target
    answers = lambda request_id: failed(request_id) if int(request_id[1:]) % 3 < 2 else tasks_answer(5, request_id)  # noqa: E731
    result = generate(
        config(num_instructions=15), tmp_path / "b", teacher=FakeTeacher(answers), progress=False, policy=policy
    )
    assert result.stop_reason is StopReason.TARGET_REACHED and result.accepted == 15
    assert len(events(tmp_path / "b", "failure")) == 6


def test_answers_without_an_acceptable_record_stop_the_run(tmp_path):
    useless = json.dumps({"tasks": [{"instruction": "Hi.", "input": "", "output": "x"}]})  # 1 word < Alpaca's 4
    teacher = FakeTeacher(lambda _: useless)
    with pytest.raises(JobStopped, match="the last 4 answers gave nothing usable") as stopped:
        generate(config(), tmp_path, teacher=teacher, progress=False, policy=StopPolicy(max_barren_streak=4))
    assert stopped.value.reason is StopReason.BARREN_STREAK and len(teacher.calls) == 4
    assert len(events(tmp_path, "response")) == 4 and status(tmp_path) == StopReason.BARREN_STREAK.value
    rejected = [r for _, r in read_jsonl(tmp_path / "rejected.jsonl")]
    assert [r["reason"] for r in rejected] == ["instruction_words"] * 4  # the answers were paid for: kept as rejects


def test_the_end_of_a_run_pays_for_no_answer_it_does_not_need(tmp_path):
    """Target 100, 5 accepted per answer, 8 requests in flight: once answers arrive, no new
    request starts while those in flight are expected to reach the target. Without that
    throttle each answer would start another. A target of 20 needs no full pipe at all: before
    any answer, the assumed yield (90% of 5 tasks) says 4 requests."""
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid), delay=lambda rid: 0.01 * (1 + int(rid[1:]) % 8))
    result = generate(config(num_instructions=100, concurrency=8), tmp_path / "full", teacher=teacher, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    assert len(teacher.calls) == 20
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid), delay=lambda rid: 0.01 * (1 + int(rid[1:])))
    result = generate(config(num_instructions=20, concurrency=8), tmp_path / "small", teacher=teacher, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    assert len(teacher.calls) == 4  # the opening burst, sized from the target
    # slower teacher, one request at a time: exactly the 4 answers the target needs
    result = generate(
        config(num_instructions=20),
        tmp_path / "one",
        teacher=FakeTeacher(lambda rid: tasks_answer(5, rid)),
        progress=False,
    )
    assert result.accepted == 20 and len(events(tmp_path / "one", "request")) == 4


def test_the_throttle_lets_more_requests_go_when_answers_yield_less(tmp_path):
    """Two accepted per answer (3 of 5 rejected): 8 in flight would bring 16 < 20 missing, so
    the runner keeps the pipe full instead of waiting."""

    def answer(request_id):
        tasks = json.loads(tasks_answer(5, request_id))["tasks"]
        for t in tasks[2:]:
            t["instruction"] = "Too short."
        return json.dumps({"tasks": tasks})

    teacher = FakeTeacher(answer, delay=0.01)
    result = generate(config(num_instructions=20, concurrency=8), tmp_path, teacher=teacher, progress=False)
    assert result.accepted >= 20 and len(teacher.calls) >= 10
    assert len(teacher.calls) <= 10 + 8  # and at most one burst more than needed
