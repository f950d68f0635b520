"""`answer --student` without references: a judge rates the student's and the teacher's answers,
and the teacher's well-rated answers are kept exactly where the student's are rated low; the rest
are rejected with their reason, online and through the Batch API, with both pass rates in the
records and in stats.json, and a rerun asks nobody anything twice."""

import json
import re

import pytest
import test_student_answer as student_answer
from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from test_student_answer import kept_and_rejected

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.engine.shared_cap import SharedCap
from selfinstruct.errors import SettingError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.answer import answer

# instruction number -> who answers it well: the verified mode's split
TEACHER_GOOD = student_answer.TEACHER_RIGHT
STUDENT_GOOD = student_answer.STUDENT_RIGHT
KEEP = TEACHER_GOOD - STUDENT_GOOD  # {0, 1, 4, 5}


def write_source(path, n=8):
    """Alpaca-style instructions: nothing to verify an answer against."""
    rows = [{"id": f"t{i}", "instruction": f"Task {i}: describe a river in one line.", "input": ""} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def writer(good: set[int], who: str):
    """Answers task i with a good answer when i is in `good`, else a poor one."""

    def answer(prompt: str) -> str:
        i = task_number(prompt)
        quality = "GOOD" if i in good else "POOR"
        return f"A {quality} line from the {who} about task {i}: the river runs to the sea."

    return answer


def task_number(prompt: str) -> int:
    return int(re.search(r"Task (\d+)", prompt)[1])


def rate(prompt: str):
    """The judge's rule: 5 for a good answer, 2 for a poor one (the response shown, not the instruction)."""
    response = prompt.split("[Response]")[1].split("[End of response]")[0]
    return (5, "Accurate and helpful.") if "GOOD" in response else (2, "Vague.")


def expected(n=8):
    kept = sorted(f"t{i}" for i in KEEP)
    rejected = {
        **{f"t{i}": "low_score" for i in range(n) if i not in TEACHER_GOOD},
        **{f"t{i}": "student_solves" for i in TEACHER_GOOD & STUDENT_GOOD},
    }
    return kept, rejected


def answer_args(source, out, teacher, student, judge, *extra):
    """The verified mode's command, with a judge instead of --verify math."""
    verified = student_answer.answer_args(source, out, teacher, student)
    judged = [a for a in verified if a not in ("--verify", "math")]
    return [*judged, "--judge-base-url", judge.base_url, "--judge-model", "judge", "--min-score", "4", *extra]


def asked(*servers):
    return [len(server.completed) for server in servers]


def test_judged_student_keeps_exactly_what_the_teacher_does_well_and_the_student_does_not(tmp_path):
    source = write_source(tmp_path / "tasks.jsonl")
    out = tmp_path / "hard"
    with (
        FakeOpenAI(answer=writer(TEACHER_GOOD, "teacher")) as teacher,
        FakeOpenAI(answer=writer(STUDENT_GOOD, "student")) as student,
        FakeOpenAI(rate=rate) as judge,
    ):
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student, judge))
        assert result.exit_code == 0, result.output
        assert "verified (rated by judge at 4+): 6/8 correct (75.0%)" in result.output
        assert "student (small-student): 4/8 correct (50.0%)" in result.output
        assert asked(teacher, student, judge) == [8, 8, 16]  # the judge rated each answer once

        assert kept_and_rejected(out) == expected()
        records = [r for _, r in read_jsonl(out / "data.jsonl")]
        assert all(r["student_pass_rate"] == 0.0 and r["score"] == 5 for r in records)
        assert all("from the teacher" in r["output"] and r["judge_model"] == "judge" for r in records)
        # the student's answers and their ratings, each in a run of its own beside the dataset
        assert len(list(read_jsonl(tmp_path / "hard-student" / "data.jsonl"))) == 8
        student_passed = sorted(r["source_id"] for _, r in read_jsonl(tmp_path / "hard-student-judged" / "data.jsonl"))
        assert student_passed == sorted(f"t{i}" for i in STUDENT_GOOD)
        assert len(list(read_jsonl(tmp_path / "hard-teacher" / "data.jsonl"))) == 8

        stats = json.loads((out / "stats.json").read_text())
        assert stats["verification"] | {"method": None} == {
            "method": None,
            "checked": 8,
            "correct": 6,
            "pass_rate": 0.75,
        }
        # the same figures as the verified mode's, and where the ratings are
        assert stats["student"] | {"run": None, "ratings": None} == student_answer.STUDENT_STATS | {
            "ratings": None,
            "unrated": 0,
        }
        assert stats["student"]["ratings"] == str(tmp_path / "hard-student-judged")
        assert stats["filters"]["rejected"] == {"low_score": 2, "student_solves": 2}

        # a rerun resumes all four runs from their ledgers: nobody is asked anything twice
        again = CliRunner().invoke(main, answer_args(source, out, teacher, student, judge))
        assert again.exit_code == 0, again.output
        assert asked(teacher, student, judge) == [8, 8, 16]
        assert kept_and_rejected(out) == expected()

        # another threshold re-decides every rating in the ledgers without asking again
        def with_min_score(score):
            args = answer_args(source, out, teacher, student, judge)
            args[args.index("--min-score") + 1] = score
            return args

        off_scale = CliRunner().invoke(main, with_min_score("6"))
        assert off_scale.exit_code != 0 and "--min-score" in off_scale.output  # the judge's scale is 0-5
        lenient = with_min_score("2")
        result = CliRunner().invoke(main, lenient)
        assert result.exit_code == 0, result.output
        assert asked(teacher, student, judge) == [8, 8, 16]
        # at 2 every answer is right: the student solves all, nothing is kept
        assert kept_and_rejected(out) == ([], {f"t{i}": "student_solves" for i in range(8)})


def test_a_student_with_several_samples_is_judged_by_its_pass_rate(tmp_path):
    source = write_source(tmp_path / "tasks.jsonl", n=4)
    every_other = student_answer.first_sample_right(task_number, lambda good: writer(good, "student"))
    out = tmp_path / "hard"
    with (
        FakeOpenAI(answer=writer({0, 1, 2, 3}, "teacher")) as teacher,
        FakeOpenAI(answer=every_other) as student,
        FakeOpenAI(rate=rate) as judge,
    ):
        extra = ("--student-samples", "2", "--student-max-pass", "0.5")
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student, judge, *extra))
        assert result.exit_code == 0, result.output
        assert asked(teacher, student, judge) == [4, 8, 12]
        records = [r for _, r in read_jsonl(out / "data.jsonl")]
        assert len(records) == 4 and {r["student_pass_rate"] for r in records} == {0.5}  # half right: kept at 0.5
        assert json.loads((out / "stats.json").read_text())["student"]["pass_rate"] == 0.5

        # at the default 0, half right is solved: the ledgers are re-decided, nobody asked again
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student, judge, "--student-samples", "2"))
        assert result.exit_code == 0, result.output
        assert asked(teacher, student, judge) == [4, 8, 12]
        assert kept_and_rejected(out) == ([], {f"t{i}": "student_solves" for i in range(4)})


def test_judged_student_with_the_teacher_and_the_judge_through_the_batch_api(tmp_path):
    source = write_source(tmp_path / "tasks.jsonl")
    out = tmp_path / "hard"
    with (
        FakeBatchAPI(FakeOpenAI(answer=writer(TEACHER_GOOD, "teacher"))) as teacher,
        FakeOpenAI(answer=writer(STUDENT_GOOD, "student")) as student,
        FakeBatchAPI(FakeOpenAI(rate=rate)) as judge,
    ):
        config = student_answer.batch_config(
            source, teacher, student, judge_base_url=judge.base_url, judge_model="gpt-4o-mini", min_score=4
        )
        result = answer(config, out, progress=False)
        assert len(student.completed) == 8  # the student online
    assert result.stop_reason is StopReason.WORK_DONE
    assert len(teacher.uploads) == 1 and len(teacher.served) == 8  # the teacher's answers in one batch
    assert len(judge.uploads) == 2 and len(judge.served) == 16  # the student's ratings, then the teacher's
    assert kept_and_rejected(out) == expected()
    assert result.stats["student"]["pass_rate"] == 0.5 and result.stats["verification"]["pass_rate"] == 0.75


def test_the_judge_defaults_to_the_teachers_endpoint(tmp_path):
    """Without --judge-base-url, the judge model is asked at the teacher's endpoint."""
    source = write_source(tmp_path / "tasks.jsonl", n=4)
    out = tmp_path / "hard"
    with (
        FakeOpenAI(answer=writer({0, 1}, "teacher"), rate=rate) as teacher,
        FakeOpenAI(answer=writer({1}, "student")) as student,
    ):
        args = answer_args(source, out, teacher, student, teacher)
        del args[args.index("--judge-base-url") : args.index("--judge-base-url") + 2]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert asked(teacher, student) == [4 + 8, 4]  # its answers, and the ratings of both
    assert kept_and_rejected(out)[0] == ["t0"]


def test_a_malformed_rating_is_counted_not_fatal(tmp_path):
    """A rating that cannot be read leaves its answer unrated: a student's counts as failed."""
    source = write_source(tmp_path / "tasks.jsonl", n=4)
    out = tmp_path / "hard"

    def garbled_for_the_student(prompt: str):
        return "no idea" if "from the student" in prompt else rate(prompt)

    with (
        FakeOpenAI(answer=writer({0, 1, 2, 3}, "teacher")) as teacher,
        FakeOpenAI(answer=writer({0, 1, 2, 3}, "student")) as student,
        FakeOpenAI(rate=garbled_for_the_student) as judge,
    ):
        result = CliRunner().invoke(main, answer_args(source, out, teacher, student, judge))
        assert result.exit_code == 0, result.output
        assert "could not be read" in result.output and asked(teacher, student, judge) == [4, 4, 8]
    assert json.loads((tmp_path / "hard-student-judged" / "stats.json").read_text())["unparseable"] == 4
    assert kept_and_rejected(out)[0] == [f"t{i}" for i in range(4)]  # no student answer rated right
    student = json.loads((out / "stats.json").read_text())["student"]
    assert student["unrated"] == 4 and student["pass_rate"] == 0.0


def test_student_without_verify_or_judge_is_refused_before_anything_is_asked(tmp_path):
    source = write_source(tmp_path / "tasks.jsonl")
    with (
        FakeOpenAI(answer=writer(TEACHER_GOOD, "teacher")) as teacher,
        FakeOpenAI(answer=writer(STUDENT_GOOD, "student")) as student,
    ):
        args = answer_args(source, tmp_path / "run", teacher, student, teacher)
        args = args[: args.index("--judge-base-url")] + args[args.index("--min-score") :]
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "--student" in result.output and "--verify" in result.output and "--judge-model" in result.output
        assert teacher.calls == [] and student.calls == []


def test_one_cost_cap_over_the_runs_of_a_student_filter(tmp_path):
    """--max-cost covers the runs together: each run's cap is what the others have not spent."""
    runs = [tmp_path / "a", tmp_path / "b"]
    for run, usd in zip(runs, (0.25, 0.5)):
        run.mkdir()
        (run / "cost.json").write_text(json.dumps({"cost_usd": usd}))
    cap = SharedCap(1.0, runs)
    assert cap.cap_for(runs[0]) == 0.5 and cap.cap_for(runs[1]) == 0.75
    assert SharedCap(None, runs).cap_for(runs[0]) is None
    spent = SharedCap(0.5, runs)
    with pytest.raises(SettingError, match="max_cost"):
        spent.cap_for(runs[0])


def test_one_cost_cap_over_the_runs_found_in_a_folder(tmp_path):
    """eval's runs (DIR/LABEL/answers, DIR/LABEL/pairwise) are found as they are made."""
    cap = SharedCap(1.0, found_in=tmp_path, pattern="*/*")
    first = tmp_path / "m1" / "answers"
    assert cap.cap_for(first) == 1.0  # nothing has run yet
    for run, usd in ((first, 0.25), (tmp_path / "m1" / "pairwise", 0.5)):
        run.mkdir(parents=True)
        (run / "cost.json").write_text(json.dumps({"cost_usd": usd}))
    assert cap.cap_for(first) == 0.5 and cap.cap_for(tmp_path / "m2" / "answers") == 0.25


def test_a_cap_with_an_unpriced_judge_is_refused_before_anything_is_asked(tmp_path):
    source = write_source(tmp_path / "tasks.jsonl")
    with (
        FakeOpenAI(answer=writer(TEACHER_GOOD, "teacher")) as teacher,
        FakeOpenAI(answer=writer(STUDENT_GOOD, "student")) as student,
        FakeOpenAI(rate=rate) as judge,
    ):
        args = answer_args(source, tmp_path / "run", teacher, student, judge, "--max-cost", "1", "--price-in", "1")
        result = CliRunner().invoke(main, [*args, "--price-out", "1"])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert "no price is known for the judge 'judge'" in result.output
        assert teacher.calls == student.calls == judge.calls == []
