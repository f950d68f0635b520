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
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..clean import Preset, load_preset
from ..clean.rules.verify import Unverifiable, WrongAnswer, final_reference, reference_answer
from ..engine.config import JobConfig
from ..engine.estimate import CostEstimate, estimate_item_task_cost
from ..engine.job import JobResult, StopPolicy
from ..engine.run import run_job
from ..engine.task import ItemTask, Parsed, Request
from ..errors import SelfInstructError, SettingError, warn
from ..reasoning import split_reasoning
from ..records import read_records
from ..stats import Stats
from .registry import TaskEntry

REFERENCE_FIELDS = ("answer", "solution")  # where a source keeps the reference answer
ASSUMED_COMPLETION_SHARE = 0.25  # of max_tokens, for an estimate without history


class AnswerConfig(JobConfig):
    IDENTITY = JobConfig.IDENTITY + ("samples", "system", "verify")

    source: str = Field(description="The instructions to answer: a run directory, a dataset, or a JSONL of prompts.")
    samples: int = Field(1, ge=1, le=64, description="Answers asked for each instruction (rejection sampling).")
    system: str | None = Field(None, description="A system prompt for every request.")
    verify: Literal["math"] | None = Field(
        None, description="Keep only answers equal to the source's `answer` / `solution` (math-verify)."
    )
    preset: str = Field("answer", description="Cleaning preset name or .toml path.")


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
        raise SettingError(f"{src}: no instructions to answer", "source")
    prompts = []
    for i, record in enumerate(records):
        reference = next((str(record[f]) for f in REFERENCE_FIELDS if record.get(f) is not None), None)
        prompts.append(Prompt(str(record.get("id", i)), record["instruction"], record["input"], reference))
    digest = hashlib.sha256(json.dumps([vars(p) for p in prompts], sort_keys=True).encode()).hexdigest()
    return prompts, digest


class AnswerTask(ItemTask):
    name = "answer"

    def __init__(self, config: AnswerConfig, prompts: list[Prompt], source_sha256: str, preset: Preset):
        super().__init__([f"{i}:{k}" for i in range(len(prompts)) for k in range(config.samples)])
        self.config = config
        self.prompts = prompts
        self.source_sha256 = source_sha256
        rules = [Unverifiable(), WrongAnswer(), *preset.rules] if config.verify == "math" else preset.rules
        self.preset = preset.model_copy(update={"rules": rules})

    def identity(self) -> dict:
        return {**self.config.identity(), "source_sha256": self.source_sha256}

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
        return {
            "verification": {
                "method": self.config.verify,
                "checked": checked,
                "correct": checked - wrong,
                "pass_rate": round((checked - wrong) / checked, 4) if checked else None,
            }
        }


def answer_task(config: AnswerConfig) -> AnswerTask:
    prompts, source_sha256 = load_prompts(config.source)
    if config.verify:
        check_references(config.source, prompts)
    return AnswerTask(config, prompts, source_sha256, load_preset(config.preset))


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
    """Run (or resume) an answer run into the directory `out` (see `engine.run.run_job`)."""
    config = config.resolved()
    return run_job(
        answer_task(config), config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher
    )


def estimate_answer_cost(config: AnswerConfig, out: str | Path | None = None) -> CostEstimate:
    """`answer --dry-run`: one request per unanswered sample; without history, answers of a
    quarter of max_tokens."""
    config = config.resolved()
    assumed = math.ceil(config.max_tokens * ASSUMED_COMPLETION_SHARE)
    return estimate_item_task_cost(answer_task(config), config, out, assumed)


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
    return [f"verified ({method}): {correct}/{checked} correct ({verification['pass_rate']:.1%})"]


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
