"""`answer --student` without references: a judge decides which answers are right.

For Alpaca-style instructions there is no reference to verify an answer against, so the judge
task (`tasks/judge/`, AlpaGasus's 0-5 rating) decides: an answer rated at least `min_score` is
right. Four runs, each an engine job in its own run directory (ledger, resume, lock), under one
`max_cost` (`engine.shared_cap`):

    OUT-student/          the student's answers, `student_samples` per instruction, all kept
    OUT-student-judged/   the judge's ratings of them: the student's pass rate per instruction
    OUT-teacher/          the teacher's answers (online or `--batch`), cleaned by the answer preset
    OUT/                  the judge's ratings of the teacher's answers: the dataset

OUT is a judge run whose rules keep a teacher answer rated at least `min_score` (else
`low_score`: the teacher fails) to an instruction the student passes at most `student_max_pass`
of the time (else `student_solves`). Each kept record is the teacher's answer with its `score`,
`rationale` and `student_pass_rate`; OUT/stats.json has both pass rates (`verification` for the
teacher's, `student` for the student's, as in the verified mode). Each step needs the previous
one done; a rerun resumes each from its ledger and asks nothing twice. The teacher answers
every instruction, and the judge rates every answer, so both pass rates are over the same
instructions. A rating the judge got wrong (unparseable) leaves its answer unrated: a student's
counts as failed, a teacher's is dropped (counted `unparseable` in its run's stats).
"""

from __future__ import annotations

from pathlib import Path

from ..clean import Preset, load_preset
from ..clean.rules.score import LowScore
from ..engine.job import JobResult, StopPolicy
from ..engine.run import run_job
from ..engine.shared_cap import SharedCap
from ..engine.task import UNPARSEABLE
from ..errors import SettingError, warn
from ..records import read_json_object
from ..runfiles import RunFiles
from ..stats import Stats
from .answer import (
    AnswerConfig,
    Prompt,
    Prompts,
    StudentResults,
    StudentSolves,
    answer_as_student,
    answer_task,
    describe_student,
    passes,
    student_dir,
)
from .judge import JudgeConfig, JudgeTask
from .judge.task import judge, load_source

JUDGE_PRESET = "judge"
# The teacher's fields a judge at an endpoint shares: its patience, pace and the Batch API (as
# eval's judge does); the embedded teacher judging keeps its own defaults.
SHARED_WITH_JUDGE = ("timeout", "max_attempts", "concurrency", "batch", "batch_poll_s")


def judged_dir(run_dir: Path) -> Path:
    """Where the ratings of the answers in `run_dir` go: RUN-judged, beside it."""
    return run_dir.with_name(f"{run_dir.name}-judged")


def teacher_dir(out: Path) -> Path:
    """Where the teacher's answers go: OUT-teacher, beside the dataset OUT."""
    return out.with_name(f"{out.name}-teacher")


def judge_config(config: AnswerConfig, source: Path, max_cost: float | None) -> JudgeConfig:
    """The judge's job on the answers in `source`: `judge_model` at `judge_base_url`, else at
    the teacher's endpoint with the teacher's key; the embedded teacher where neither is set."""
    base_url = config.judge_base_url or config.base_url
    if isinstance(base_url, list) or config.endpoints is not None and config.judge_base_url is None:
        raise SettingError(
            "the teacher has several endpoints: name the judge's one with {judge_base_url}", "judge_base_url"
        )
    shared = {name: getattr(config, name) for name in SHARED_WITH_JUDGE} if base_url else {}
    return JudgeConfig(
        source=str(source),
        threshold=config.min_score,
        base_url=base_url,
        model=config.judge_model if base_url else None,
        api_key_env=config.judge_api_key_env or config.api_key_env,
        max_tokens=config.judge_max_tokens,
        max_cost=max_cost,
        preset=JUDGE_PRESET,
        **shared,
    ).resolved()


def unrated(ratings: Path) -> int:
    """The answers whose rating in the judge run `ratings` could not be read (a student's count as wrong)."""
    return (read_json_object(RunFiles(ratings).stats) or {}).get(UNPARSEABLE, 0)


class StudentFilterTask(JudgeTask):
    """The judge's ratings of the teacher's answers, which keep those rated right (`low_score`
    first: every rated answer goes through it, and its rejections are the teacher's failures)
    to the instructions the student does not solve (`student_solves`)."""

    def __init__(
        self,
        config: JudgeConfig,
        answers: list[dict],
        answers_sha256: str,
        preset: Preset,
        student: StudentResults,
        answer_config: AnswerConfig,
        prompts: list[Prompt],
    ):
        others = [rule for rule in preset.rules if rule.name not in (LowScore.name, StudentSolves.name)]
        rules = [LowScore(min_score=config.threshold), StudentSolves(max_pass=answer_config.student_max_pass), *others]
        super().__init__(config, answers, answers_sha256, preset.model_copy(update={"rules": rules}))
        self.student = student
        self.student_ratings = judged_dir(student.run_dir)
        self.student_unrated = unrated(self.student_ratings)
        self.answer_config = answer_config
        self.prompts = prompts

    def identity(self) -> dict:
        """The judge's, and who the student is: its pass rates are in the records. The thresholds
        are rule settings: changing them re-decides the ledger without asking again."""
        return {**super().identity(), "student": self.student.model, "student_samples": self.student.samples}

    def parse(self, request, response):
        parsed = super().parse(request, response)
        for record in parsed.records:
            record["student_pass_rate"] = round(self.student.pass_rate(str(record["source_id"])), 4)
        return parsed

    def describe(self, stats: Stats) -> dict:
        rated = stats["seen"]  # low_score comes first: every rated answer went through it
        right = rated - stats[f"rejected/{LowScore.name}"]
        student = describe_student(self.student, self.prompts, self.answer_config, stats, right)
        return {
            **super().describe(stats),
            "verification": {
                "method": f"rated by {self.config.model} at {self.config.threshold:g}+",
                "checked": rated,
                "correct": right,
                "pass_rate": round(right / rated, 4) if rated else None,
            },
            "student": student | {"ratings": str(self.student_ratings), "unrated": self.student_unrated},
        }


def answer_judged(
    config: AnswerConfig,
    out: Path,
    prompts: Prompts,
    *,
    overwrite: bool,
    progress: bool,
    policy: StopPolicy,
    teacher=None,
) -> JobResult:
    """Run (or resume) the four runs above, each once the one before is done; the result is the
    dataset's (OUT). `teacher` is the teacher's only."""
    student_run, teacher_run = student_dir(out), teacher_dir(out)
    cap = SharedCap(config.max_cost, [student_run, judged_dir(student_run), teacher_run, out])
    run = {"overwrite": overwrite, "progress": progress, "policy": policy}
    # a judge the flags cannot reach, or whose price a cap needs and nobody knows, is refused
    # before the student is asked anything
    rater = judge_config(config, student_run, None)
    if config.max_cost is not None and rater.price() is None:
        raise SettingError(
            f"no price is known for the judge {rater.model!r}, so {{max_cost}} cannot be enforced over its "
            "ratings: leave out {max_cost}, or judge with a model the price table has",
            "max_cost",
            "judge_model",
        )

    own = answer_as_student(config, out, prompts, cap, **run)
    student_ratings = judged_dir(student_run)
    judge(judge_config(config, student_run, cap.cap_for(student_ratings)), student_ratings, **run).require_done(
        "the judge's ratings of the student", "the teacher is asked nothing until they are done"
    )
    student = StudentResults(own.model, student_run, own.samples, passes(student_ratings))
    if unrated(student_ratings):
        warn(
            f"the judge's rating of {unrated(student_ratings)} of the student's answers could not be read (see "
            f"{RunFiles(student_ratings).rejected}): they count as wrong"
        )

    teacher_config = config.model_copy(update={"student": None, "max_cost": cap.cap_for(teacher_run)})
    run_job(answer_task(teacher_config, prompts), teacher_config, teacher_run, teacher=teacher, **run).require_done(
        "the teacher's run", "its answers are rated once they are all in"
    )

    ratings = judge_config(config, teacher_run, cap.cap_for(out))
    ratings = ratings.model_copy(update={"source": str(teacher_run.resolve())})  # as `judge` records it
    answers, answers_sha256 = load_source(teacher_run)
    preset = load_preset(JUDGE_PRESET)
    task = StudentFilterTask(ratings, answers, answers_sha256, preset, student, config, prompts[0])
    return run_job(task, ratings, out, **run)
