"""`answer --student`: the student answers every instruction first, and the teacher's right
answers are kept exactly where the student's are wrong; the rest are rejected with their reason,
online and through the Batch API, with both pass rates in the records and in stats.json."""

import json
import re
from collections import Counter

from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.answer import AnswerConfig, answer

# question number -> who gets it right
TEACHER_RIGHT = {0, 1, 2, 3, 4, 5}
STUDENT_RIGHT = {2, 3, 6, 7}
KEEP = TEACHER_RIGHT - STUDENT_RIGHT  # {0, 1, 4, 5}
# stats.json's `student` section for these 8 questions (its run directory left out)
STUDENT_STATS = {
    "model": "small-student",
    "run": None,
    "samples": 1,
    "max_pass": 0.0,
    "answers": 8,
    "correct": 4,
    "pass_rate": 0.5,
    "prompts_solved": 4,
    "prompts": 8,
    "teacher_right_student_solves": 2,
    "teacher_right_student_fails": 4,
}


def question(i: int) -> str:
    return f"Question {i}: what is {i} + {10 + i}?"


def write_source(path, n=8):
    rows = [{"id": f"q{i}", "question": question(i), "answer": f"#### {2 * i + 10}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def solver(right: set[int]):
    """Answers question i right when i is in `right`, else one too high."""

    def answer(prompt: str) -> str:
        i, a, b = map(int, re.findall(r"\d+", prompt)[:3])
        total = a + b if i in right else a + b + 1
        return f"Adding {a} and {b}. The answer is {total}."

    return answer


def first_sample_right(number, answerer):
    """A student right on the first sample of each question and wrong on the second: `number(prompt)`
    is the question's number, `answerer(right)` the answer function (`solver`) right on `right`."""
    asked = Counter()

    def answer(prompt: str) -> str:
        i = number(prompt)
        asked[i] += 1
        return answerer({i} if asked[i] == 1 else set())(prompt)

    return answer


def question_number(prompt: str) -> int:
    return int(re.findall(r"\d+", prompt)[0])


def kept_and_rejected(out):
    kept = sorted(r["source_id"] for _, r in read_jsonl(out / "data.jsonl"))
    rejected = {r["source_id"]: r["reason"] for _, r in read_jsonl(out / "rejected.jsonl")}
    return kept, rejected


def expected_reasons():
    return {
        **{f"q{i}": "wrong_answer" for i in range(8) if i not in TEACHER_RIGHT},
        **{f"q{i}": "student_solves" for i in TEACHER_RIGHT & STUDENT_RIGHT},
    }


def answer_args(source, out, teacher, student, *extra):
    return [
        "answer",
        str(source),
        "--out",
        str(out),
        "--base-url",
        teacher.base_url,
        "--model",
        "teacher",
        "--verify",
        "math",
        "--student",
        f"small-student@{student.base_url}",
        "--quiet",
        *extra,
    ]


def batch_config(source, teacher, student, **settings) -> AnswerConfig:
    """The teacher through the Batch API (`teacher` a FakeBatchAPI), the student online."""
    return AnswerConfig(
        source=str(source),
        base_url=teacher.base_url,
        model="gpt-4o-mini",
        student=f"small-student@{student.base_url}",
        batch=True,
        batch_poll_s=0.01,
        max_tokens=200,
        **settings,
    )


def test_student_keeps_exactly_what_the_teacher_passes_and_the_student_fails(tmp_path):
    source = write_source(tmp_path / "questions.jsonl")
    out = tmp_path / "hard"
    with FakeOpenAI(answer=solver(TEACHER_RIGHT)) as teacher, FakeOpenAI(answer=solver(STUDENT_RIGHT)) as student:
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student))
        assert result.exit_code == 0, result.output
        assert len(teacher.completed) == len(student.completed) == 8  # each asked every question once

        kept, rejected = kept_and_rejected(out)
        assert kept == sorted(f"q{i}" for i in KEEP)
        assert rejected == expected_reasons()
        assert all(r["student_pass_rate"] == 0.0 for _, r in read_jsonl(out / "data.jsonl"))
        # the student's own run beside the teacher's: its right answers are its data
        student_kept = sorted(r["source_id"] for _, r in read_jsonl(tmp_path / "hard-student" / "data.jsonl"))
        assert student_kept == sorted(f"q{i}" for i in STUDENT_RIGHT)

        stats = json.loads((out / "stats.json").read_text())
        assert stats["verification"]["pass_rate"] == 0.75  # the teacher: 6 of 8
        assert stats["student"] | {"run": None} == STUDENT_STATS
        assert stats["filters"]["rejected"] == {"wrong_answer": 2, "student_solves": 2}

        # a rerun resumes both runs from their ledgers: nobody is asked anything twice
        again = CliRunner().invoke(main, answer_args(source, out, teacher, student))
        assert again.exit_code == 0, again.output
        assert len(teacher.completed) == len(student.completed) == 8
        assert kept_and_rejected(out) == (kept, rejected)


def test_a_student_with_several_samples_is_judged_by_its_pass_rate(tmp_path):
    source = write_source(tmp_path / "questions.jsonl", n=4)
    out = tmp_path / "hard"
    every_other = first_sample_right(question_number, solver)
    with FakeOpenAI(answer=solver({0, 1, 2, 3})) as teacher, FakeOpenAI(answer=every_other) as student:
        extra = ("--student-samples", "2", "--student-max-pass", "0.5")
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student, *extra))
    assert result.exit_code == 0, result.output
    records = [r for _, r in read_jsonl(out / "data.jsonl")]
    assert len(records) == 4 and {r["student_pass_rate"] for r in records} == {0.5}  # half right: kept at 0.5

    stricter = tmp_path / "stricter"
    every_other = first_sample_right(question_number, solver)
    with FakeOpenAI(answer=solver({0, 1, 2, 3})) as teacher, FakeOpenAI(answer=every_other) as student:
        extra = ("--student-samples", "2")
        result = CliRunner().invoke(main, answer_args(source, stricter, teacher, student, *extra))
    assert result.exit_code == 0, result.output
    assert kept_and_rejected(stricter)[0] == []  # at the default 0, half right is solved
    assert json.loads((stricter / "stats.json").read_text())["student"]["pass_rate"] == 0.5


def test_student_through_the_batch_api_keeps_the_same_items(tmp_path):
    source = write_source(tmp_path / "questions.jsonl")
    out = tmp_path / "hard"
    with (
        FakeBatchAPI(FakeOpenAI(answer=solver(TEACHER_RIGHT))) as teacher,
        FakeOpenAI(answer=solver(STUDENT_RIGHT)) as student,
    ):
        result = answer(batch_config(source, teacher, student, verify="math"), out, progress=False)
        assert len(student.completed) == 8  # the student online
    assert result.stop_reason is StopReason.WORK_DONE
    assert len(teacher.uploads) == 1 and len(teacher.served) == 8  # the teacher in one batch
    assert kept_and_rejected(out) == (sorted(f"q{i}" for i in KEEP), expected_reasons())
    assert result.stats["student"]["pass_rate"] == 0.5 and result.stats["verification"]["pass_rate"] == 0.75


def test_student_without_verify_is_refused_before_anything_is_asked(tmp_path):
    source = write_source(tmp_path / "questions.jsonl")
    with FakeOpenAI(answer=solver(TEACHER_RIGHT)) as teacher, FakeOpenAI(answer=solver(STUDENT_RIGHT)) as student:
        args = [a for a in answer_args(source, tmp_path / "run", teacher, student) if a not in ("--verify", "math")]
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "--student" in result.output and "--verify" in result.output
        assert teacher.calls == [] and student.calls == []


def test_an_unknown_student_is_named_in_the_error(tmp_path):
    source = write_source(tmp_path / "questions.jsonl")
    with FakeOpenAI(answer=solver(TEACHER_RIGHT)) as teacher:
        args = answer_args(source, tmp_path / "run", teacher, teacher)
        args[args.index("--student") + 1] = str(tmp_path / "no-such-checkpoint")
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "--student" in result.output and "no-such-checkpoint" in result.output
        assert teacher.calls == []


def test_a_source_without_references_is_refused_before_the_student_is_asked(tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text("".join(json.dumps({"id": f"q{i}", "prompt": question(i)}) + "\n" for i in range(3)))
    with FakeOpenAI(answer=solver(TEACHER_RIGHT)) as teacher, FakeOpenAI(answer=solver(STUDENT_RIGHT)) as student:
        result = CliRunner().invoke(main, answer_args(source, tmp_path / "run", teacher, student))
        assert result.exit_code != 0 and "no record has a reference answer" in result.output
        assert teacher.calls == [] and student.calls == []


def test_an_answer_run_without_a_student_keeps_its_identity(tmp_path):
    """Runs made before `--student` existed resume: their identity has no student fields."""
    from selfinstruct.tasks.answer import answer_task, checked_prompts

    source = write_source(tmp_path / "questions.jsonl", n=2)
    config = AnswerConfig(source=str(source), verify="math").resolved()
    identity = answer_task(config, checked_prompts(config)).identity()
    assert not any(key.startswith("student") for key in identity)
