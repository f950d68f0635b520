"""A damaged run directory resumes from its ledger, the source of truth, and nothing paid for is lost:
not after a power cut that empties checkpoint.json or config.json, not after config.json is deleted,
and not when following an error message (`--overwrite` keeps the old ledger aside)."""

import json
import os

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_teacher import FakeTeacher, tasks_answer
from test_cli_generate import api_args
from test_rundir import config

from selfinstruct.cli import main
from selfinstruct.errors import SettingError
from selfinstruct.records import read_jsonl, write_json_atomic
from selfinstruct.tasks.bootstrap import generate

DAMAGE = {  # what a power cut, a full disk or a stray edit leaves
    "empty": b"",
    "zeroed": b"\0" * 512,
    "torn": b'{"format_version": 2, "task": "boot',
    "not UTF-8": b"\xff\xfe{}",
    "not an object": b"[]",
}


def first_run(out, teacher, **overrides):
    result = generate(config(num_instructions=10, **overrides), out, teacher=teacher, progress=False)
    assert result.accepted == 10 and len(teacher.calls) == 2
    return (out / "data.jsonl").read_bytes(), (out / "ledger.jsonl").read_bytes()


def resume(out, teacher, **overrides):
    return generate(config(num_instructions=10, **overrides), out, teacher=teacher, progress=False)


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_checkpoint_falls_back_to_replaying_the_whole_ledger(tmp_path, capsys, damage):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    data, _ = first_run(tmp_path, teacher)
    (tmp_path / "checkpoint.json").write_bytes(DAMAGE[damage])

    result = resume(tmp_path, teacher)
    assert result.accepted == 10 and len(teacher.calls) == 2  # rebuilt from the ledger: nothing asked again
    assert (tmp_path / "data.jsonl").read_bytes() == data
    assert f"{tmp_path / 'checkpoint.json'}:" in capsys.readouterr().err  # warned, naming the file
    assert json.loads((tmp_path / "checkpoint.json").read_text())["responses"] == 2  # written whole again


def test_write_text_atomic_puts_the_data_on_the_disk_before_the_rename(tmp_path, monkeypatch):
    """Without the fsync a power cut after the rename can leave an empty checkpoint.json or config.json."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    write_json_atomic(tmp_path / "checkpoint.json", {"responses": 2})
    assert calls == ["fsync", "replace"]
    assert json.loads((tmp_path / "checkpoint.json").read_text()) == {"responses": 2}


@pytest.mark.parametrize("damage", [*DAMAGE, "deleted"])
def test_a_run_whose_config_is_damaged_or_deleted_resumes_from_its_ledger(tmp_path, capsys, damage):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    data, ledger = first_run(tmp_path, teacher)
    saved = json.loads((tmp_path / "config.json").read_text())
    if damage == "deleted":
        (tmp_path / "config.json").unlink()
    else:
        (tmp_path / "config.json").write_bytes(DAMAGE[damage])

    result = resume(tmp_path, teacher)
    assert result.accepted == 10 and len(teacher.calls) == 2  # nothing bought again
    assert (tmp_path / "data.jsonl").read_bytes() == data
    assert (tmp_path / "ledger.jsonl").read_bytes().startswith(ledger)
    assert json.loads((tmp_path / "config.json").read_text()) == saved  # written again
    err = capsys.readouterr().err
    assert str(tmp_path / "config.json") in err and f"first line of {tmp_path / 'ledger.jsonl'}" in err
    header = next(read_jsonl(tmp_path / "ledger.jsonl"))[1]  # what the settings were recovered from
    assert header["event"] == "run" and header["task"] == "bootstrap" and header["identity"] == saved["identity"]


def test_settings_recovered_from_the_ledger_are_still_checked(tmp_path):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    first_run(tmp_path, teacher)
    (tmp_path / "config.json").unlink()
    with pytest.raises(SettingError, match=r"made with different settings \(seed: 42 -> 7\)") as refused:
        resume(tmp_path, teacher, seed=7)
    assert "kept aside" in str(refused.value)  # the way out it offers says what happens to the paid answers
    assert len(teacher.calls) == 2


def strip_header(ledger_path):
    """What a ledger written before the `run` event was recorded looks like."""
    lines = ledger_path.read_text().splitlines(keepends=True)
    assert json.loads(lines[0])["event"] == "run"
    ledger_path.write_text("".join(lines[1:]))


def test_an_old_ledger_without_settings_resumes_when_its_checkpoint_vouches_for_the_command(tmp_path, capsys):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    data, _ = first_run(tmp_path, teacher)
    strip_header(tmp_path / "ledger.jsonl")
    (tmp_path / "config.json").unlink()

    with pytest.raises(SettingError, match="too old to record the run's settings"):
        resume(tmp_path, teacher, seed=7)  # another command: the checkpoint does not vouch for it
    result = resume(tmp_path, teacher)
    assert result.accepted == 10 and len(teacher.calls) == 2
    assert (tmp_path / "data.jsonl").read_bytes() == data
    assert f"{tmp_path / 'checkpoint.json'} shows that this command's settings made the run" in capsys.readouterr().err


def test_an_old_ledger_without_settings_or_checkpoint_is_refused_with_a_way_that_keeps_the_answers(tmp_path):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    first_run(tmp_path, teacher)
    strip_header(tmp_path / "ledger.jsonl")
    (tmp_path / "config.json").write_bytes(b"")
    (tmp_path / "checkpoint.json").unlink()
    with pytest.raises(SettingError) as refused:
        resume(tmp_path, teacher)
    message = refused.value.render(lambda field: f"--{field}")
    assert message.startswith(f"{tmp_path / 'config.json'}: not valid JSON")
    assert (
        "put back a copy of config.json" in message
        and "--overwrite to start over (the old ledger is kept aside" in message
    )
    assert len(teacher.calls) == 2


def test_overwrite_keeps_the_paid_answers_of_the_old_ledger_aside(tmp_path, capsys):
    teacher = FakeTeacher(lambda rid: tasks_answer(5, rid))
    _, ledger = first_run(tmp_path, teacher)
    generate(config(num_instructions=10, seed=7), tmp_path, teacher=teacher, progress=False, overwrite=True)
    _, second = (tmp_path / "data.jsonl").read_bytes(), (tmp_path / "ledger.jsonl").read_bytes()
    generate(config(num_instructions=10, seed=8), tmp_path, teacher=teacher, progress=False, overwrite=True)

    kept = sorted(tmp_path.glob("ledger-*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    assert [p.read_bytes() for p in kept] == [ledger, second]  # two overwrites in the same second: both kept
    err = capsys.readouterr().err
    assert all(f"kept as {p}" in err for p in kept)
    assert next(read_jsonl(tmp_path / "ledger.jsonl"))[1]["identity"]["seed"] == 8  # the new run, with its header


def test_the_cli_resumes_a_run_whose_config_json_is_corrupt_without_asking_again(tmp_path):
    with FakeOpenAI(tasks_per_answer=5) as server:
        cmd = api_args(server, tmp_path, "-n", "10", "--concurrency", "1")
        assert CliRunner().invoke(main, cmd).exit_code == 0
        asked = len(server.calls)
        (tmp_path / "config.json").write_text('{"format_ver')  # the corrupt file

        result = CliRunner().invoke(main, cmd)
        assert result.exit_code == 0, result.output
        assert len(server.calls) == asked
        assert f"{tmp_path / 'config.json'}: not valid JSON" in result.stderr  # warned
        assert "--overwrite" not in result.output
