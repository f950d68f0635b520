"""Resuming through the checkpoint gives exactly what replaying the whole ledger gives."""

import json
import shutil

import pytest
from fake_teacher import FakeTeacher, tasks_answer

import selfinstruct.engine.job
import selfinstruct.engine.ledger
from selfinstruct.tasks.bootstrap import GenerateConfig, generate

FILES = ("data.jsonl", "surplus.jsonl", "rejected.jsonl", "ledger.jsonl")


def answer(request_id: str) -> str:
    """Five new tasks, an exact and a near copy of an earlier answer's tasks, an exact copy of
    an earlier near copy (a duplicate of a rejected text), and a reject."""
    tasks = json.loads(tasks_answer(5, request_id))["tasks"]
    index = int(request_id[1:])
    if index >= 2:
        earlier = json.loads(tasks_answer(5, f"r{index - 2:06d}"))["tasks"]
        tasks.append({**earlier[0], "instruction": earlier[0]["instruction"].upper()})
        tasks.append({**earlier[1], "instruction": "Please " + earlier[1]["instruction"]})
    if index >= 4:
        earlier = json.loads(tasks_answer(5, f"r{index - 4:06d}"))["tasks"]
        tasks.append({**earlier[1], "instruction": "PLEASE " + earlier[1]["instruction"].upper()})
    tasks.append({"instruction": "Hi.", "input": "", "output": ""})
    return json.dumps({"tasks": tasks})


def config(target: int) -> GenerateConfig:
    return GenerateConfig(
        base_url="http://127.0.0.1:9/v1",
        model="fake-teacher",
        tasks_per_request=8,
        concurrency=1,
        machine_examples_per_prompt=2,
        num_instructions=target,
        max_tokens=400,
    )


@pytest.fixture(autouse=True)
def steady_clock(monkeypatch):
    """Same timestamps in every run, and a checkpoint after every answer."""
    monkeypatch.setattr(selfinstruct.engine.ledger, "now_iso", lambda: "2026-11-22T00:00:00.000+00:00")
    monkeypatch.setattr(selfinstruct.engine.job, "REPORT_EVERY_S", 0.0)


def test_checkpoint_resume_equals_a_full_replay(tmp_path):
    run = tmp_path / "run"
    early_checkpoint = tmp_path / "checkpoint-after-3.json"

    def answer_and_keep_an_early_checkpoint(request_id):
        if request_id == "r000004":  # the checkpoint then covers answers 0-3
            shutil.copy(run / "checkpoint.json", early_checkpoint)
        return answer(request_id)

    generate(config(30), run, teacher=FakeTeacher(answer_and_keep_an_early_checkpoint), progress=False)
    assert json.loads(early_checkpoint.read_text())["responses"] == 4

    # three copies of the same stopped run: whole checkpoint, an early one (data.jsonl and
    # rejected.jsonl are cut back to it and the later answers replayed), none (full replay)
    copies = {name: tmp_path / name for name in ("late", "early", "none")}
    for path in copies.values():
        shutil.copytree(run, path)
    shutil.copy(early_checkpoint, copies["early"] / "checkpoint.json")
    (copies["none"] / "checkpoint.json").unlink()

    replayed = {}
    for name, path in copies.items():
        teacher = FakeTeacher(answer)
        result = generate(config(30), path, teacher=teacher, progress=False)  # the target is already reached
        assert teacher.calls == [] and result.accepted >= 30
        replayed[name] = json.loads((path / "stats.json").read_text())["this_session"]["replayed_responses"]
    assert replayed["late"] == 0 and replayed["early"] > 0 and replayed["none"] > replayed["early"]
    assert same_files(copies)

    # ... and running on to 80 records, every copy asks the same and keeps the same
    for path in copies.values():
        generate(config(80), path, teacher=FakeTeacher(answer), progress=False)
    assert same_files(copies)
    stats = [json.loads((path / "stats.json").read_text()) for path in copies.values()]
    assert all(s["filters"] == stats[0]["filters"] and s["accepted"] == stats[0]["accepted"] for s in stats)
    reasons = stats[0]["filters"]["rejected"]
    assert {"exact_duplicate", "near_duplicate", "instruction_words"} <= set(reasons)


def same_files(copies: dict) -> bool:
    first, *others = copies.values()
    return all((other / f).read_bytes() == (first / f).read_bytes() for other in others for f in FILES)


def test_rule_checks_in_a_worker_process_decide_the_same(tmp_path):
    """The rules may run in another process (fast teachers): the same ledger gives the same
    records, in the same order, with the same counts."""
    generate(config(40), tmp_path / "run", teacher=FakeTeacher(answer), progress=False)
    copies = {workers: tmp_path / f"workers-{workers}" for workers in (0, 1)}
    for workers, path in copies.items():
        shutil.copytree(tmp_path / "run", path)
        (path / "checkpoint.json").unlink()  # replay every answer through the rules
        generate(
            config(40).model_copy(update={"cleaning_workers": workers}),
            path,
            teacher=FakeTeacher(answer),
            progress=False,
        )
        assert json.loads((path / "stats.json").read_text())["this_session"]["replayed_responses"] > 5
    assert same_files({"run": tmp_path / "run", **copies})
