"""Against the real embedded teacher: SmolLM2-135M-Instruct served by llama.cpp on loopback."""

import json
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.embedded import MODEL_ALIAS, EmbeddedTeacher

pytestmark = pytest.mark.slow


def events(out: Path) -> list[dict]:
    return [e for _, e in read_jsonl(out / "ledger.jsonl")]


def test_generate_with_the_embedded_teacher_then_resume(tmp_path):
    config = GenerateConfig(num_instructions=3, preset="alpaca")
    result = generate(config, tmp_path, progress=False)

    assert result.accepted >= 3 and result.stop_reason == "target reached"
    for name in ("config.json", "data.jsonl", "rejected.jsonl", "ledger.jsonl", "stats.json", "cost.json"):
        assert (tmp_path / name).exists(), name
    record = next(r for _, r in read_jsonl(tmp_path / "data.jsonl"))
    assert {"instruction", "input", "output", "request_id", "teacher_model", "created"} <= set(record)
    assert record["teacher_model"] == MODEL_ALIAS
    response = next(e for e in events(tmp_path) if e["event"] == "response")
    assert response["usage"]["prompt_tokens"] > 0 and response["usage"]["estimated"] is False
    assert response["response_format"] == "json_object"  # llama.cpp's schema-constrained JSON
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["cost_usd"] == 0.0 and cost["responses"] == result.stats["responses"]

    requests_before = len(events(tmp_path))
    again = generate(config, tmp_path, progress=False)
    assert len(events(tmp_path)) == requests_before  # the resume asked nothing new
    assert again.accepted == result.accepted


def test_answer_with_the_embedded_teacher_then_resume(tmp_path):
    source = tmp_path / "questions.jsonl"
    questions = ["What is the capital of France?", "Name a fruit that is yellow.", "How many legs does a spider have?"]
    source.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(questions)))
    config = AnswerConfig(source=str(source), max_tokens=96, preset=str(keep_all_preset(tmp_path)))
    result = answer(config, tmp_path / "run", progress=False)

    assert result.stop_reason == "all work done" and result.stats["answered_items"] == 3
    records = [r for _, r in read_jsonl(tmp_path / "run" / "data.jsonl")]
    assert sorted(r["source_id"] for r in records) == ["q0", "q1", "q2"]
    assert all(r["output"].strip() and r["instruction"] in questions for r in records)
    asked = len(events(tmp_path / "run"))
    again = answer(config, tmp_path / "run", progress=False)
    assert len(events(tmp_path / "run")) == asked and again.accepted == 3  # the resume asked nothing new


def keep_all_preset(folder: Path) -> Path:
    """The 135M teacher's answers are poor; this test is about the job, so it keeps them all."""
    path = folder / "keep-all.toml"
    path.write_text('description = "keep every answer"\n[dedup]\nenabled = false\n')
    return path


def _server_pids_of(parent_pid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--parent-pid" in cmdline and cmdline[cmdline.index(b"--parent-pid") + 1] == str(parent_pid).encode():
                pids.append(int(proc.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_the_teacher_never_outlives_a_killed_generate(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "selfinstruct", "generate", "--out", str(tmp_path), "-n", "1000", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not (tmp_path / "ledger.jsonl").exists() or not _server_pids_of(process.pid):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    servers = _server_pids_of(process.pid)

    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while any(map(_alive, servers)):
        assert time.monotonic() < deadline, f"teacher {servers} outlived its generate"
        time.sleep(0.2)


def test_embedded_teacher_serves_the_openai_api(tmp_path):
    with EmbeddedTeacher(log_path=tmp_path / "teacher.log") as teacher:
        client = openai.OpenAI(base_url=teacher.base_url, api_key="none")
        assert [m.id for m in client.models.list().data] == [MODEL_ALIAS]
        answer = client.chat.completions.create(
            model=MODEL_ALIAS, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=8
        )
        assert answer.choices[0].message.content and answer.usage.completion_tokens > 0
        pid = teacher.process.pid
    assert not _alive(pid)


def test_teacher_serve_command_runs_standalone():
    port = EmbeddedTeacher().port  # a free port
    process = subprocess.Popen(
        [sys.executable, "-m", "selfinstruct", "teacher", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert client.models.list().data[0].id == MODEL_ALIAS
                break
            except openai.APIConnectionError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert "Serving smollm2-135m-instruct" in process.stderr.read()


def test_the_installed_llama_cpp_is_the_portable_build():
    """`make install` builds llama.cpp without -march=native: a wheel that runs on any x86-64
    with AVX2 (and not ggml's AMX kernels, which GCC 12 miscompiles), even where pip's cache
    holds a native build of the same version."""
    from importlib.metadata import distribution

    files = distribution("llama-cpp-python").files
    config = next(f for f in files if str(f).endswith("ggml/ggml-config.cmake"))
    settings = config.read_text()
    assert 'set(GGML_NATIVE "OFF")' in settings
    assert 'set(GGML_AMX_INT8 "OFF")' in settings


def test_teacher_check_command_answers_and_times_a_prompt():
    result = CliRunner().invoke(main, ["teacher", "check"])
    assert result.exit_code == 0, result.output
    assert "llama.cpp: CPU :" in result.output and "AMX_INT8 = 1" not in result.output
    tokens = int(result.output.split("embedded teacher: OK, ")[1].split(" tokens")[0])
    assert tokens > 0
