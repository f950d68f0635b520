"""A run with a target: data.jsonl (the dataset) holds exactly the target; what the last answers
bring past it is paid for, so it is kept in surplus.jsonl, counted, and taken first when the
target is raised. The first requests are sized from the target, online and in batch."""

import json
import shutil

import pytest
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_teacher import FakeTeacher, tasks_answer

import selfinstruct.engine.job
from selfinstruct.engine.job import StopReason
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate

TASKS = 20


def config(target: int, **overrides) -> GenerateConfig:
    settings = dict(
        base_url="http://127.0.0.1:9/v1",
        model="fake-teacher",
        preset="alpaca",
        tasks_per_request=TASKS,
        concurrency=8,
        max_tokens=3072,
        num_instructions=target,
    )
    return GenerateConfig(**{**settings, **overrides})


def records(path) -> list[dict]:
    return [r for _, r in read_jsonl(path)] if path.exists() else []


def teacher(delay=0.0) -> FakeTeacher:
    return FakeTeacher(lambda rid: tasks_answer(TASKS, rid), delay=delay)


def ids(out) -> list[str]:
    """The ids of every record the run's answers gave, in ledger order (every task is kept)."""
    return [
        f"{e['request_id']}-{j}"
        for _, e in read_jsonl(out / "ledger.jsonl")
        if e["event"] == "response"
        for j in range(TASKS)
    ]


def test_a_small_target_asks_for_what_it_needs_and_keeps_what_came_past_it(tmp_path):
    asked = teacher()
    result = generate(config(30), tmp_path, teacher=asked, progress=False)
    # 30 records at the assumed 18 per answer (90% of 20): 2 requests, not the 8 the concurrency allows
    assert asked.calls == ["r000000", "r000001"]
    data, surplus = records(tmp_path / "data.jsonl"), records(tmp_path / "surplus.jsonl")
    assert len(data) == result.accepted == 30 and len(surplus) == result.stats["surplus"] == 10
    assert [r["id"] for r in data + surplus] == ids(tmp_path)  # in ledger order, nothing dropped


def test_a_batch_run_sizes_its_first_round_from_the_target(tmp_path):
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=TASKS)) as server:
        cfg = config(200, base_url=server.base_url, model="gpt-4o-mini", batch=True, batch_poll_s=0.01)
        result = generate(cfg, tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    assert [len(rids) for _, rids in server.uploads] == [13]  # 200 at 18 per answer: 12, plus 10%; not 20
    assert len(records(tmp_path / "data.jsonl")) == 200 and len(records(tmp_path / "surplus.jsonl")) == 60
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["accepted"] == 200 and stats["surplus"] == 60 and stats["responses"] == 13


def test_an_answer_far_beyond_what_is_missing_is_not_started(tmp_path):
    """45 wanted: two requests go out (2.5 at the assumed yield). The first brings 20: 25 are
    missing, 1.25 answers at that yield, and one is in flight. Another would bring ~40 for 25:
    it waits, and the one in flight (25 tasks) reaches the target."""
    answers = {"r000000": (20, 0.01), "r000001": (25, 0.2)}
    asked = FakeTeacher(
        lambda rid: tasks_answer(answers.get(rid, (20, 0))[0], rid), delay=lambda rid: answers.get(rid, (20, 0))[1]
    )
    result = generate(config(45), tmp_path, teacher=asked, progress=False)
    assert asked.calls == ["r000000", "r000001"]
    assert result.accepted == 45 and result.stats["surplus"] == 0


def resume(out, target: int) -> FakeTeacher:
    asked = teacher()
    result = generate(config(target), out, teacher=asked, progress=False)
    assert result.accepted == target == len(records(out / "data.jsonl"))
    return asked


def replays_the_same(out) -> bool:
    """A copy of `out` without its checkpoint (a replay of the whole ledger) gets the same files."""
    copy = out.parent / f"{out.name}-replayed"
    shutil.copytree(out, copy)
    (copy / "checkpoint.json").unlink()
    target = json.loads((out / "stats.json").read_text())["target"]
    assert resume(copy, target).calls == []
    same = all(
        (copy / f).read_bytes() == (out / f).read_bytes() for f in ("data.jsonl", "surplus.jsonl", "rejected.jsonl")
    )
    shutil.rmtree(copy)
    return same


def test_a_raised_target_takes_the_surplus_first_and_asks_nothing_for_it(tmp_path):
    out = tmp_path / "run"
    generate(config(30), out, teacher=teacher(), progress=False)
    assert resume(out, 38).calls == []  # 8 of the 10 in the surplus
    assert [r["id"] for r in records(out / "data.jsonl")] == ids(out)[:38] and len(records(out / "surplus.jsonl")) == 2
    assert replays_the_same(out)
    assert resume(out, 45).calls == ["r000002"]  # the last 2, then one answer for the 5 still missing
    assert [r["id"] for r in records(out / "data.jsonl") + records(out / "surplus.jsonl")] == ids(out)
    assert replays_the_same(out)


def test_a_lowered_target_moves_the_records_past_it_to_the_surplus(tmp_path):
    out = tmp_path / "run"
    generate(config(30), out, teacher=teacher(), progress=False)
    assert resume(out, 12).calls == []
    assert [r["id"] for r in records(out / "data.jsonl")] == ids(out)[:12]
    assert [r["id"] for r in records(out / "surplus.jsonl")] == ids(out)[12:]
    assert replays_the_same(out)
    assert resume(out, 40).calls == [] and records(out / "surplus.jsonl") == []


@pytest.mark.parametrize("start, target", [(30, 38), (30, 12)])
def test_a_crash_while_records_move_leaves_a_run_that_resumes_as_if_it_had_not(tmp_path, monkeypatch, start, target):
    out = tmp_path / "run"
    generate(config(start), out, teacher=teacher(), progress=False)

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:  # data.jsonl has changed, surplus.jsonl cannot be rewritten
        patched.setattr(selfinstruct.engine.job, "write_jsonl_atomic", disk_full)
        with pytest.raises(OSError):
            generate(config(target), out, teacher=teacher(), progress=False)
    assert resume(out, target).calls == []
    assert [r["id"] for r in records(out / "data.jsonl") + records(out / "surplus.jsonl")] == ids(out)
    assert len(records(out / "data.jsonl")) == target and replays_the_same(out)
