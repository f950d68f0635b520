"""The answer task: a teacher answers given instructions, keeping its reasoning.

How users re-answer Alpaca-style instructions with a stronger teacher, and how they distill
a reasoning teacher (R1-style): each instruction (with its input) of the source is asked
`samples` times; each answer becomes one record, its trace in `reasoning` beside `output`:

    {id: "r000012", instruction, input, output, reasoning, source_id, sample,
     reference_answer (when the source has one), finish_reason, request_id, teacher_model, created}

The source is a run directory or any dataset `read_records` reads, outputs not needed: an
instruction file, or a JSONL of `prompt` / `question` rows (GSM8K). A source column `answer`
or `solution` is the reference answer; with `verify="math"` only the samples whose final
answer equals it are kept (rule `wrong_answer`), and stats.json reports the pass rate.

    result = answer(AnswerConfig(source="gsm8k.jsonl", base_url=URL, model="deepseek-reasoner",
                                 samples=4, verify="math"), "outputs/gsm8k-r1")
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..clean import Preset, load_preset
from ..clean.rules.verify import WrongAnswer
from ..engine.config import JobConfig
from ..engine.costs import CostEstimate
from ..engine.job import JobResult, StopPolicy
from ..engine.ledger import load_ledger
from ..engine.run import run_job
from ..engine.rundir import RunDir
from ..engine.task import Parsed, Request, Task
from ..errors import SettingError
from ..pricing import completion_bound
from ..reasoning import split_reasoning
from ..records import read_records
from ..stats import Stats
from ..tokens import estimate_prompt_tokens, prompt_tokens_upper_bound

REFERENCE_FIELDS = ("answer", "solution")  # where a source keeps the reference answer
ASSUMED_COMPLETION_SHARE = 0.25  # of max_tokens, for an estimate without history


class AnswerConfig(JobConfig):
    IDENTITY = ("samples", "system", "verify")

    source: str = Field(description="the instructions to answer: a run directory, a dataset, or a JSONL of prompts")
    samples: int = Field(1, ge=1, le=64, description="answers asked for each instruction (rejection sampling)")
    system: str | None = Field(None, description="a system prompt for every request")
    verify: Literal["math"] | None = Field(None, description="keep only answers equal to the source's reference answer")
    preset: str = "answer"


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


class AnswerTask(Task):
    name = "answer"

    def __init__(self, config: AnswerConfig, prompts: list[Prompt], source_sha256: str, preset: Preset):
        self.config = config
        self.prompts = prompts
        self.source_sha256 = source_sha256
        rules = [WrongAnswer(), *preset.rules] if config.verify == "math" else preset.rules
        self.preset = preset.model_copy(update={"rules": rules})
        self.items = [f"{i}:{k}" for i in range(len(prompts)) for k in range(config.samples)]
        self.waiting = deque(self.items)  # in order; items answered or in flight are skipped
        self.answered_items: set[str] = set()
        self.in_flight: set[str] = set()

    def identity(self) -> dict:
        return {**self.config.identity(), "source_sha256": self.source_sha256}

    def pending(self) -> int:
        return len(self.items) - len(self.answered_items)

    def _next_item(self) -> str | None:
        while self.waiting and (self.waiting[0] in self.answered_items or self.waiting[0] in self.in_flight):
            self.waiting.popleft()  # answered or in flight already: not waiting any more
        return self.waiting[0] if self.waiting else None

    def next_request(self, index: int) -> Request | None:
        item = self._next_item()
        if item is None:
            return None
        prompt = self.prompts[int(item.split(":")[0])]
        return Request(
            messages=lambda _format: self.messages(prompt),
            max_tokens=self.config.max_tokens,
            details={"item": item, "source_id": prompt.id, "sample": int(item.split(":")[1])},
        )

    def messages(self, prompt: Prompt) -> list[dict]:
        user = prompt.instruction + (f"\n\n{prompt.input}" if prompt.input else "")
        system = [{"role": "system", "content": self.config.system}] if self.config.system else []
        return [*system, {"role": "user", "content": user}]

    def sent(self, request: dict) -> None:
        self.in_flight.add(request["item"])

    def answered(self, request: dict) -> None:
        self.answered_items.add(request["item"])
        self.in_flight.discard(request["item"])

    def released(self, request: dict) -> None:
        self.in_flight.discard(request["item"])
        self.waiting.appendleft(request["item"])  # asked again soon

    def parse(self, request: dict, response: dict) -> Parsed:
        prompt = self.prompts[int(request["item"].split(":")[0])]
        reasoning, answer = split_reasoning(response["content"], response.get("reasoning"))
        record = {"id": response["request_id"], "instruction": prompt.instruction, "input": prompt.input, "output": answer}
        if reasoning is not None:
            record["reasoning"] = reasoning
        record |= {"source_id": prompt.id, "sample": request["sample"]}
        if prompt.reference is not None:
            record["reference_answer"] = prompt.reference
        record |= {"finish_reason": response["finish_reason"], "request_id": response["request_id"],
                   "teacher_model": response["model"], "created": response["time"]}  # fmt: skip
        return Parsed([record])

    def describe(self, stats: Stats) -> dict:
        figures = {"items": len(self.items), "answered_items": len(self.answered_items)}
        if self.config.verify:
            checked = sum(1 for item in self.answered_items if self.prompts[int(item.split(":")[0])].reference is not None)
            wrong = stats[f"rejected/{WrongAnswer.name}"]
            figures["verification"] = {
                "method": self.config.verify,
                "checked": checked,
                "correct": checked - wrong,
                "pass_rate": round((checked - wrong) / checked, 4) if checked else None,
            }
        return figures


def answer_task(config: AnswerConfig) -> AnswerTask:
    prompts, source_sha256 = load_prompts(config.source)
    return AnswerTask(config, prompts, source_sha256, load_preset(config.preset))


def answer(config: AnswerConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True,
           policy: StopPolicy = StopPolicy(), teacher=None) -> JobResult:  # fmt: skip
    """Run (or resume) an answer run into the directory `out` (see `engine.run.run_job`)."""
    config = config.resolved()
    return run_job(answer_task(config), config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)


def estimate_answer_cost(config: AnswerConfig, out: str | Path | None = None) -> CostEstimate:
    """`answer --dry-run`: the unanswered items' real prompts counted with tiktoken; completion
    tokens from the run's ledger when it has answers, else a quarter of max_tokens."""
    config = config.resolved()
    task = answer_task(config)
    price = config.price()
    history = load_ledger(RunDir(out).ledger) if out else None
    for response in history.responses if history else ():
        task.answered(history.requests[response["request_id"]])
    waiting = [item for item in task.items if item not in task.answered_items]
    sample = [task.messages(task.prompts[int(item.split(":")[0])]) for item in waiting[:: max(1, len(waiting) // 200)]]
    prompt_tokens = round(sum(map(estimate_prompt_tokens, sample)) / len(sample)) if sample else 0
    prompt_bound = max(map(prompt_tokens_upper_bound, sample), default=0)
    if history and history.totals.responses:
        completion, basis = round(history.totals.completion_tokens / history.totals.responses), "ledger history"
    else:
        completion, basis = math.ceil(config.max_tokens * ASSUMED_COMPLETION_SHARE), "assumptions"
    requests = len(waiting)
    worst_completion = completion_bound(config.model, config.max_tokens, config.max_output_tokens)
    return CostEstimate(
        model=config.model,
        records_wanted=requests,
        requests=requests,
        prompt_tokens_per_request=prompt_tokens,
        completion_tokens_per_request=completion,
        accepted_per_request=1.0,
        basis=basis,
        expected_usd=price.cost(requests * prompt_tokens, requests * completion, batch=config.batch) if price else None,
        worst_case_usd=price.cost(requests * prompt_bound, requests * worst_completion, batch=config.batch) if price else None,
    )
