"""The embedded teacher's process management against a stand-in that dies as llama.cpp does
where its kernels were miscompiled (tests/fake_teacher_server.py): a crash is named (signal,
log) at start-up before any request, a crash mid-run restarts the teacher once and the run
resumes from its ledger, and a second crash stops the run with every answer kept."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher import embedded
from selfinstruct.teacher.embedded import EmbeddedTeacher, TeacherDied

SERVER = Path(__file__).parent / "fake_teacher_server.py"


def stand_in(*die_at: int | None):
    """A `command` for EmbeddedTeacher: the k-th start dies at completion `die_at[k]` (None: never)."""
    starts = []

    def command(port: int, n_ctx: int) -> list[str]:
        cue = die_at[len(starts)] if len(starts) < len(die_at) else None
        starts.append(cue)
        return [sys.executable, str(SERVER), str(port), *(["--die-at", str(cue)] if cue else [])]

    command.starts = starts
    return command


def ledger(out: Path) -> list[dict]:
    return [event for _, event in read_jsonl(out / "ledger.jsonl")]


def test_a_teacher_that_crashes_on_its_first_real_prompt_is_named_at_start_up(tmp_path):
    log = tmp_path / "teacher.log"
    with pytest.raises(TeacherDied) as caught:
        with EmbeddedTeacher(log_path=log, command=stand_in(1)):
            pytest.fail("a teacher that cannot complete a prompt must not be handed to a run")
    message = str(caught.value)
    assert "was killed by SIGSEGV at its first completion" in message
    # its log from faulthandler's report on: the stack of the thread that crashed
    assert "Fatal Python error: Segmentation fault" in message and "in do_POST" in message
    assert "GGML_NATIVE=OFF" in message and "resumes" in message  # the fix, and that nothing is lost


def test_a_healthy_teacher_passes_the_probe_and_is_watched(tmp_path):
    import asyncio

    with EmbeddedTeacher(log_path=tmp_path / "teacher.log", command=stand_in(None)) as teacher:
        teacher.check_alive()
        teacher.process.kill()
        with pytest.raises(TeacherDied, match="was killed by SIGKILL during the run"):
            asyncio.run(asyncio.wait_for(teacher.watch(), timeout=30))


def embedded_config(**overrides) -> GenerateConfig:
    return GenerateConfig(preset="alpaca", num_instructions=12, tasks_per_request=5, **overrides)


def test_a_teacher_that_dies_mid_run_is_restarted_once_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    command = stand_in(3)  # the probe, one answer, then SIGSEGV at the run's second request
    monkeypatch.setattr(embedded, "server_command", command)
    result = generate(embedded_config(), tmp_path / "run", progress=False)

    assert command.starts == [3, None]
    assert result.stop_reason == "target reached" and result.accepted >= 12
    warning = capsys.readouterr().err
    assert "killed by SIGSEGV during the run" in warning and "Restarting the embedded teacher once" in warning
    events = ledger(tmp_path / "run")
    answered = [e["request_id"] for e in events if e["event"] == "response"]
    assert len(answered) == len(set(answered))  # no request was answered (paid) twice
    assert (tmp_path / "run" / "teacher.log").read_text().count("Fatal Python error: Segmentation fault") == 1


def test_a_crash_at_start_up_stops_the_run_before_any_request_and_is_not_retried(tmp_path, monkeypatch):
    command = stand_in(1, 1)
    monkeypatch.setattr(embedded, "server_command", command)
    with pytest.raises(TeacherDied, match="SIGSEGV at its first completion"):
        generate(embedded_config(), tmp_path / "run", progress=False)
    assert command.starts == [1]
    assert ledger(tmp_path / "run") == [] or all(e["event"] == "run" for e in ledger(tmp_path / "run"))


def test_a_second_death_stops_the_run_and_a_rerun_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "server_command", stand_in(3, 3))
    with pytest.raises(TeacherDied, match="died again after a restart"):
        generate(embedded_config(), tmp_path / "run", progress=False)
    kept = [e for e in ledger(tmp_path / "run") if e["event"] == "response"]
    assert len(kept) == 2  # one answer from each teacher before it died

    monkeypatch.setattr(embedded, "server_command", stand_in(None))
    result = generate(embedded_config(), tmp_path / "run", progress=False)
    assert result.stop_reason == "target reached"
    events = ledger(tmp_path / "run")
    assert [e for e in events if e["event"] == "response"][:2] == kept  # the rerun kept and did not re-ask them


def test_teacher_check_names_the_crash_and_fails(monkeypatch):
    monkeypatch.setattr(embedded, "server_command", stand_in(1))
    result = CliRunner().invoke(main, ["teacher", "check"])
    assert result.exit_code == 1
    assert "was killed by SIGSEGV at its first completion" in result.output
