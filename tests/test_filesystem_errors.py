"""A directory that cannot be written or a full disk: one line naming the path and the cause, a
non-zero exit, and nothing lost.

Tests run as root, where permissions do not stop writes: an unwritable place is a path under a
regular file (NotADirectoryError, or 'File exists' from mkdir), and a full disk is an fsync that
fails with ENOSPC (as it does when the data cannot be placed) or /dev/full for a plain write.
"""

import errno
import os

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_run import write_run
from test_cli_generate import api_args
from test_resume import check_exact

from selfinstruct.cli import main

DEAD_URL = "http://127.0.0.1:9/v1"  # never reached: the run fails before it asks anything

# command line for each command that writes, given (a run to read, where it writes)
WRITERS = {
    "generate": lambda run, dest: [
        "generate",
        "--base-url",
        DEAD_URL,
        "--model",
        "gpt-4o-mini",
        "--out",
        dest,
        "--quiet",
    ],
    "filter": lambda run, dest: ["filter", run, "--out", dest],
    "export": lambda run, dest: ["export", run, "--to", f"{dest}.jsonl"],
    "report": lambda run, dest: ["report", run, "--out", f"{dest}.html"],
    "cost --plot": lambda run, dest: ["cost", run, "--plot", f"{dest}.png"],
}


def one_line_error(result) -> str:
    """The error of a failed command, checked to be one line (after any progress bar) and no traceback."""
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, OSError), "a raw OSError reached the user"
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("Error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[-1]


@pytest.mark.parametrize("command", WRITERS)
def test_an_unwritable_destination_is_one_line_naming_it(tmp_path, command):
    if command == "cost --plot":
        pytest.importorskip("matplotlib")
    run = write_run(tmp_path / "run")
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory is needed\n")
    line = one_line_error(CliRunner().invoke(main, WRITERS[command](str(run), str(blocker / "out"))))
    assert line.startswith(f"Error: {blocker}") and line.endswith(("Not a directory", "exists and is not a directory"))


@pytest.mark.parametrize("command", ["filter", "export", "report"])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_half_file(tmp_path, monkeypatch, command):
    run = write_run(tmp_path / "run")
    data = (run / "data.jsonl").read_bytes()
    dest = tmp_path / "dest"
    dest.mkdir()
    monkeypatch.setattr(os, "fsync", full_disk)
    line = one_line_error(CliRunner().invoke(main, WRITERS[command](str(run), str(dest / "out"))))
    assert line.startswith(f"Error: {dest / 'out'}") and line.endswith(": No space left on device")
    assert not list(dest.rglob("*.tmp"))  # no temporary file left behind
    assert (run / "data.jsonl").read_bytes() == data


def full_disk(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as the kernel reports it: no file name


def test_a_full_disk_while_drawing_the_cost_chart_names_the_chart(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path / "run")
    chart = tmp_path / "chart.png"
    chart.symlink_to("/dev/full")  # every write fails with ENOSPC
    line = one_line_error(CliRunner().invoke(main, ["cost", str(run), "--plot", str(chart)]))
    assert line == f"Error: {chart}: No space left on device"


def test_a_full_disk_stops_generate_in_one_line_and_the_rerun_loses_nothing(tmp_path, monkeypatch):
    target = 40
    with FakeOpenAI(tasks_per_answer=5) as server:
        cmd = api_args(server, tmp_path, "-n", str(target), "--concurrency", "1")
        real_fsync = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: full_disk(fd) if len(server.completed) >= 2 else real_fsync(fd))
        line = one_line_error(CliRunner().invoke(main, cmd))
        assert line.startswith(f"Error: {tmp_path}{os.sep}") and line.endswith(": No space left on device")
        assert len(server.completed) < target / 5

        monkeypatch.setattr(os, "fsync", real_fsync)  # space is freed
        result = CliRunner().invoke(main, cmd)
        assert result.exit_code == 0, result.output
        check_exact(server, tmp_path, target)  # nothing paid for was asked again or lost
