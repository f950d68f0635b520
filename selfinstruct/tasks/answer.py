"""The answer task: a teacher answers given instructions, keeping its reasoning.

How users re-answer Alpaca-style instructions with a stronger teacher, and how they distill
a reasoning teacher (R1-style): each instruction (with its input) of the source is asked
`samples` times; each answer becomes one record, its trace in `reasoning` beside `output`:

    {id: "r000012", instruction, input, output, reasoning, source_id, sample,
     reference_answer (when the source has one), finish_reason, request_id, teacher_model, created}

The source is a run directory or any dataset `read_records` reads, outputs not needed: an
instruction file, or a JSONL of `prompt` / `question` rows (GSM8K). A source column `answer`
or `solution` is the reference answer; with `verify="math"` only the samples whose final
answer equals it are kept (rule `wrong_answer`), and stats.json reports the pass rate. An
answer with no reference to check it against is rejected as `unverifiable`, and a source
without any reference math-verify can read is refused before anything is asked.

    result = answer(AnswerConfig(source="gsm8k.jsonl", base_url=URL, model="deepseek-reasoner",
                                 samples=4, verify="math"), "outputs/gsm8k-r1")

Data at the student's level (`student="students/gsm8k"`, with `verify="math"`): the student (any
model `eval.models` names: NAME@URL, embedded, or a local checkpoint served on loopback) answers
every instruction first, `student_samples` times, in its own run directory OUT-student (online,
resumable like any run). Then the teacher answers as above, and a right answer is kept only
where the student's pass rate on its instruction is at most `student_max_pass` (rule
`student_solves`; a wrong teacher answer is `wrong_answer`): the items the teacher can do and
the student cannot yet (Meta's Autodata; OpenThoughts3 found difficulty the best question
filter). Each record carries `student_pass_rate`; stats.json has both pass rates. Without
`verify`, a judge model rates the answers instead (`student_judged.py`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from ..clean import Preset, load_preset
from ..clean.rules.base import Rule
from ..clean.rules.score import DEFAULT_MIN_SCORE
from ..clean.rules.verify import Unverifiable, WrongAnswer, final_reference, reference_answer
from ..engine.config import JobConfig
from ..engine.estimate import CostEstimate, estimate_item_task_cost
from ..engine.job import JobResult, StopPolicy
from ..engine.run import run_job
from ..engine.shared_cap import SharedCap
from ..engine.task import ItemTask, Parsed, Request
from ..errors import SelfInstructError, SettingError, warn
from ..reasoning import split_reasoning
from ..records import read_jsonl, read_records
from ..runfiles import RunFiles
from ..stats import Stats
from .registry import TaskEntry

REFERENCE_FIELDS = ("answer", "solution")  # where a source keeps the reference answer
ASSUMED_COMPLETION_SHARE = 0.25  # of max_tokens, for an estimate without history


class AnswerConfig(JobConfig):
    IDENTITY = JobConfig.IDENTITY + ("samples", "system", "verify")  # the student's: see AnswerTask.identity

    source: str = Field(description="The instructions to answer: a run directory, a dataset, or a JSONL of prompts.")
    samples: int = Field(1, ge=1, le=64, description="Answers asked for each instruction (rejection sampling).")
    system: str | None = Field(None, description="A system prompt for every request.")
    verify: Literal["math"] | None = Field(
        None, description="Keep only answers equal to the source's `answer` / `solution` (math-verify)."
    )
    preset: str = Field("answer", description="Cleaning preset name or .toml path.")
    student: str | None = Field(
        None,
        description="A student that answers every instruction first (NAME@URL, embedded, or a local checkpoint "
        "directory): only the instructions the teacher gets right and the student does not are kept (right: "
        "--verify math, or rated at least --min-score by --judge-model).",
    )
    student_samples: int = Field(1, ge=1, le=64, description="Answers asked of the student for each instruction.")
    student_max_pass: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The highest share of right student answers an instruction may have and still be kept "
        "(0: the student never gets it right).",
    )

    # The judge of `--student` without `--verify` (tasks/student_judged.py); eval's judge flags.
    judge_base_url: str | None = Field(
        None, description="With --student and no --verify: the judge's OpenAI-compatible endpoint [the teacher's]."
    )
    judge_model: str | None = Field(
        None,
        description="With --student and no --verify: the judge that rates the student's and the teacher's answers.",
    )
    judge_api_key_env: str | None = Field(
        None, description="Environment variable holding the judge's API key [the teacher's]."
    )
    judge_max_tokens: int | None = Field(
        None, ge=16, description="Completion token limit per rating [the judge command's]."
    )
    min_score: float = Field(
        DEFAULT_MIN_SCORE, ge=0, le=5, description="With a judge: an answer rated at least this (0-5) is right."
    )

    @model_validator(mode="after")
    def _student_needs_a_check(self):
        if self.student is not None and self.verify is None and not self.judge_model:
            raise SettingError(
                "{student} keeps what the teacher gets right and the student gets wrong: say how an answer is "
                "found right, with {verify} math (a reference answer for each instruction) or a {judge_model} "
                "that rates the answers (at {judge_base_url}, else the teacher's endpoint)",
                "student",
                "verify",
                "judge_model",
            )
        if self.judge_base_url is not None and not self.judge_model:
            raise SettingError("{judge_model} is required with {judge_base_url}", "judge_model", "judge_base_url")
        return self

    @property
    def judged(self) -> bool:
        """A student judged by a rating model rather than verified against references."""
        return self.student is not None and self.verify is None


@dataclass(frozen=True)
class Prompt:
    id: str
    instruction: str
    input: str
    reference: str | None


def load_prompts(src: str | Path) -> tuple[list[Prompt], str]:
    """The instructions of `src`, and a hash of them (the run's identity)."""
    records = read_records(src, require_output=False)
    if not records:
        raise SettingError(f"{src}: no instructions in it", "source")
    prompts = []
    for i, record in enumerate(records):
        reference = next((str(record[f]) for f in REFERENCE_FIELDS if record.get(f) is not None), None)
        prompts.append(Prompt(str(record.get("id", i)), record["instruction"], record["input"], reference))
    digest = hashlib.sha256(json.dumps([vars(p) for p in prompts], sort_keys=True).encode()).hexdigest()
    return prompts, digest


class StudentSolves(Rule):
    name = "student_solves"
    reason = "the student already answers this instruction right (answer --student)"

    max_pass: float = 0.0

    def check(self, record):
        rate = record.get("student_pass_rate")
        if rate is None or rate <= self.max_pass:
            return None
        return f"the student answered it right in {rate:.0%} of its samples (at most {self.max_pass:.0%} kept)"


@dataclass(frozen=True)
class StudentResults:
    """What the student's run found: its right answers per prompt (by source id), of `samples` each."""

    model: str
    run_dir: Path
    samples: int
    correct: dict[str, int]

    def pass_rate(self, source_id: str) -> float:
        return self.correct.get(source_id, 0) / self.samples


class AnswerTask(ItemTask):
    name = "answer"

    def __init__(
        self,
        config: AnswerConfig,
        prompts: list[Prompt],
        source_sha256: str,
        preset: Preset,
        student: StudentResults | None = None,
    ):
        super().__init__([f"{i}:{k}" for i in range(len(prompts)) for k in range(config.samples)])
        self.config = config
        self.prompts = prompts
        self.source_sha256 = source_sha256
        self.student = student
        verification = [Unverifiable(), WrongAnswer()] if config.verify == "math" else []
        if student is not None:
            verification.append(StudentSolves(max_pass=config.student_max_pass))
        self.preset = preset.model_copy(update={"rules": [*verification, *preset.rules]})

    def identity(self) -> dict:
        """With a student, also who it is and how it is judged; without one, the identity of runs
        made before `--student` existed, so that they still resume."""
        student = {}
        if self.student is not None:
            config = self.config
            student = {"student": self.student.model, "student_samples": config.student_samples}
            student["student_max_pass"] = config.student_max_pass
        return {**self.config.identity(), "source_sha256": self.source_sha256, **student}

    def prompt_of(self, item: str) -> Prompt:
        """The prompt a work item ("PROMPT:SAMPLE", numbers) asks."""
        return self.prompts[int(item.split(":")[0])]

    def request(self, item: str) -> Request:
        prompt = self.prompt_of(item)
        return Request(
            messages=lambda _format: self.messages(prompt),
            max_tokens=self.config.max_tokens,
            details={"source_id": prompt.id, "sample": int(item.split(":")[1])},
        )

    def messages(self, prompt: Prompt) -> list[dict]:
        user = prompt.instruction + (f"\n\n{prompt.input}" if prompt.input else "")
        system = [{"role": "system", "content": self.config.system}] if self.config.system else []
        return [*system, {"role": "user", "content": user}]

    def parse(self, request: dict, response: dict) -> Parsed:
        prompt = self.prompt_of(request["item"])
        reasoning, answer = split_reasoning(response["content"], response.get("reasoning"))
        record = {
            "id": response["request_id"],
            "instruction": prompt.instruction,
            "input": prompt.input,
            "output": answer,
        }
        if reasoning is not None:
            record["reasoning"] = reasoning
        record |= {"source_id": prompt.id, "sample": request["sample"]}
        if prompt.reference is not None:
            record["reference_answer"] = prompt.reference
        if self.student is not None:
            record["student_pass_rate"] = round(self.student.pass_rate(prompt.id), 4)
        record |= {
            "finish_reason": response["finish_reason"],
            "request_id": response["request_id"],
            "teacher_model": response["model"],
            "created": response["time"],
        }
        return Parsed([record])

    def describe(self, stats: Stats) -> dict:
        if not self.config.verify:
            return {}
        # both verification rules come first: every record seen went through them
        checked = stats["seen"] - stats[f"rejected/{Unverifiable.name}"]
        wrong = stats[f"rejected/{WrongAnswer.name}"]
        described = {
            "verification": {
                "method": self.config.verify,
                "checked": checked,
                "correct": checked - wrong,
                "pass_rate": round((checked - wrong) / checked, 4) if checked else None,
            }
        }
        if self.student is not None:
            described["student"] = describe_student(self.student, self.prompts, self.config, stats, checked - wrong)
        return described


def describe_student(
    student: StudentResults, prompts: list[Prompt], config: AnswerConfig, stats: Stats, teacher_correct: int
) -> dict:
    """Both pass rates on the same instructions, and what the student filter did with the
    teacher's right answers (`teacher_correct` of them)."""
    answers = len(prompts) * student.samples
    right = sum(student.correct.get(p.id, 0) for p in prompts)
    solved = sum(student.pass_rate(p.id) > config.student_max_pass for p in prompts)
    return {
        "model": student.model,
        "run": str(student.run_dir),
        "samples": student.samples,
        "max_pass": config.student_max_pass,
        "answers": answers,
        "correct": right,
        "pass_rate": round(right / answers, 4) if answers else None,
        "prompts_solved": solved,
        "prompts": len(prompts),
        "teacher_right_student_solves": stats[f"rejected/{StudentSolves.name}"],
        "teacher_right_student_fails": teacher_correct - stats[f"rejected/{StudentSolves.name}"],
    }


Prompts = tuple[list[Prompt], str]  # a source's prompts and their hash, as `load_prompts` reads them


def checked_prompts(config: AnswerConfig) -> Prompts:
    """The prompts of `config.source`; with `verify`, its reference answers checked first, before
    anything is paid for (or a student's checkpoint is loaded and served)."""
    prompts, source_sha256 = load_prompts(config.source)
    if config.verify:
        check_references(config.source, prompts)
    return prompts, source_sha256


def answer_task(config: AnswerConfig, prompts: Prompts, student: StudentResults | None = None) -> AnswerTask:
    return AnswerTask(config, *prompts, load_preset(config.preset), student)


def check_references(source: str, prompts: list[Prompt]) -> None:
    """Before anything is paid for: refuse a source with no reference answer math-verify can
    read (every answer would be rejected as unverifiable), and warn of prompts without one."""
    fields = " or ".join(repr(f) for f in REFERENCE_FIELDS)
    references = [p.reference for p in prompts if p.reference is not None]
    if not references:
        raise SettingError(
            f"{source}: no record has a reference answer (the field {fields}), so {{verify}} has "
            "nothing to check the answers against: add the field, or run without {verify}",
            "verify",
        )
    if not any(reference_answer(reference) for reference in references):
        raise SettingError(
            f"{source}: math-verify can read none of the {len(references)} reference answers (the field "
            f"{fields}; the first: {final_reference(references[0])[:40]!r}), so {{verify}} can verify nothing",
            "verify",
        )
    if len(references) < len(prompts):
        warn(
            f"{source}: {len(prompts) - len(references)} of {len(prompts)} records have no reference answer ({fields}); "
            f"their answers will be rejected as {Unverifiable.name!r}"
        )


def answer(
    config: AnswerConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """Run (or resume) an answer run into the directory `out` (see `engine.run.run_job`); with
    `config.student`, the student's run into OUT-student first (`teacher` is the teacher's only),
    and without `verify` the judged mode of `student_judged.py`."""
    config = config.resolved()
    prompts = checked_prompts(config)  # read once for the student's, the judge's and the teacher's runs
    if config.judged:
        from .student_judged import answer_judged

        return answer_judged(
            config, Path(out), prompts, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher
        )
    student = None
    if config.student is not None:
        cap = SharedCap(config.max_cost, [student_dir(out), Path(out)])
        own = answer_as_student(config, Path(out), prompts, cap, overwrite=overwrite, progress=progress, policy=policy)
        student = StudentResults(own.model, student_dir(out), own.samples, passes(student_dir(out)))
        config = config.model_copy(update={"max_cost": cap.cap_for(Path(out))})
    return run_job(
        answer_task(config, prompts, student),
        config,
        out,
        overwrite=overwrite,
        progress=progress,
        policy=policy,
        teacher=teacher,
    )


def student_dir(out: str | Path) -> Path:
    """Where `answer --student` keeps the student's run: OUT-student, beside the teacher's."""
    out = Path(out)
    return out.with_name(f"{out.name}-student")


def student_config(config: AnswerConfig, model, max_cost: float | None) -> AnswerConfig:
    """The student's run: the same instructions and sampling settings, its own model (an
    `eval.models.OpenModel`), `student_samples` answers each, verified (if the teacher's are),
    always online. A local student gets the pace it can serve, and the run's answer limit at
    most its own. The teacher's price settings are not the student's; a local student costs
    nothing, so only an endpoint takes its share of the cap (`max_cost`)."""
    local = model.defaults()
    if "max_tokens" in local:
        local["max_tokens"] = min(local["max_tokens"], config.max_tokens)
    settings = config.model_dump(exclude={"endpoints", "price_in", "price_out", "price_cached"})
    settings |= {
        "student": None,
        "student_samples": 1,
        "student_max_pass": 0.0,
        "samples": config.student_samples,
        "batch": False,
        "max_cost": max_cost if model.spec.kind == "endpoint" else None,
        **model.job_settings(),
        **local,
    }
    return AnswerConfig(**settings).resolved()


def answer_as_student(
    config: AnswerConfig,
    out: Path,
    prompts: Prompts,
    cap: SharedCap,
    *,
    overwrite: bool,
    progress: bool,
    policy: StopPolicy,
) -> AnswerConfig:
    """Run (or resume) the student's answers into OUT-student (verified with `config.verify`, else
    all kept for a judge); the student's run config. The teacher is asked nothing until the
    student has answered every instruction."""
    from ..eval.models import open_model, parse_model_spec

    spec = parse_model_spec(config.student, "student")
    # Only the verification rules: a right answer counts as solved however it is written.
    preset = load_preset(config.preset).model_copy(update={"rules": []})
    run_dir = student_dir(out)
    log = run_dir.with_name(f"{run_dir.name}.log")  # beside, not in, a run directory that may not exist yet
    with open_model(spec, log_path=log, api_key_env=config.api_key_env) as model:
        own = student_config(config, model, cap.cap_for(run_dir))
        task = AnswerTask(own, *prompts, preset)
        result = run_job(task, own, run_dir, overwrite=overwrite, progress=progress, policy=policy)
    result.require_done("the student's run", "the teacher is asked nothing until it has done")
    return own


def passes(run_dir: Path) -> dict[str, int]:
    """The answers a run kept, per source instruction: a verified run's right ones, a judge's
    well-rated ones."""
    return dict(Counter(str(record["source_id"]) for _, record in read_jsonl(RunFiles(run_dir).data)))


def estimate_answer_cost(config: AnswerConfig, out: str | Path | None = None) -> CostEstimate:
    """`answer --dry-run`: one request per unanswered sample; without history, answers of a
    quarter of max_tokens."""
    config = config.resolved()
    assumed = math.ceil(config.max_tokens * ASSUMED_COMPLETION_SHARE)
    return estimate_item_task_cost(answer_task(config, checked_prompts(config)), config, out, assumed)


def verification_summary(result: JobResult) -> list[str]:
    """The pass rate of a verified run; an error when no answer could be verified: the run
    did not do what `verify` asks for."""
    verification = result.stats.get("verification")
    if not verification:
        return []
    method, checked, correct = verification["method"], verification["checked"], verification["correct"]
    if not checked:
        raise SelfInstructError(
            f"no answer could be verified ({method}): see the reasons in {result.out_dir / 'rejected.jsonl'}"
        )
    lines = [f"verified ({method}): {correct}/{checked} correct ({verification['pass_rate']:.1%})"]
    student = result.stats.get("student")
    if student and student["answers"]:
        lines.append(
            f"student ({student['model']}): {student['correct']}/{student['answers']} correct ({student['pass_rate']:.1%}); "
            f"kept where the teacher is right and the student is not: {student['teacher_right_student_fails']}"
        )
    return lines


ENTRY = TaskEntry(
    "answer",
    AnswerConfig,
    answer,
    estimate_answer_cost,
    about="""Answer every instruction of SOURCE with the teacher, keeping its reasoning.

    SOURCE is a run directory, a dataset (outputs not needed), or a JSONL of `prompt` /
    `question` rows. Rerunning the same command on the same --out resumes.
    """,
    argument="source",
    default_out="{model}-answers",
    kept="answers kept",
    summary=verification_summary,
)
