"""The bootstrap task, Alpaca mode: seeds -> prompt -> teacher -> parse -> candidate records.

Request i shows k seed tasks (plus m accepted machine tasks) sampled with
`Random(f"{seed}:{i}")`, so the prompts do not depend on when a run was interrupted, and
asks for n new tasks; each task in the answer becomes a candidate record
`{id: "r000012-3", instruction, input, output, request_id, teacher_model, created}`.
The job stops when `num_instructions` records are accepted.

    result = generate(GenerateConfig(num_instructions=50), "outputs/smol")
"""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import Field

from ...clean import Preset, load_preset
from ...engine.config import JobConfig
from ...engine.job import JobResult, StopPolicy
from ...engine.run import run_task
from ...engine.task import Parsed, Request, Task
from ...errors import SettingError, warn
from ...reasoning import split_reasoning
from ...tokens import count_tokens_capped, estimate_prompt_tokens
from .parse import parse_tasks
from .prompts import build_messages, sample_examples, tasks_schema
from .seeds import SeedSet, load_seeds

# The share of the tasks asked for that a run keeps, before its own answers say: 0.898 in the 52K
# benchmark (benchmarks/cost_52k_results.json: 52,129 records from 2,904 requests of 20 tasks,
# the default preset), the yield behind the README's $4.59 for 52K on gpt-4o-mini ($2.29 in
# batch). It sizes the first requests of a run and the dry run's estimate.
ASSUMED_YIELD = 0.9
# The range the dry run prices: every task kept (the least a run can cost) down to half of them
# (a weaker teacher or a stricter preset; the yield this estimate assumed before the benchmark):
# the cost goes as 1/yield, so the top of the range is 1.8x the expected cost.
YIELD_RANGE = (0.5, 1.0)


class GenerateConfig(JobConfig):
    IDENTITY = JobConfig.IDENTITY + ("examples_per_prompt", "machine_examples_per_prompt", "tasks_per_request", "seed")
    # tasks asked for per request: Alpaca's 20 of an API teacher; a 135M model loses track of longer lists
    EMBEDDED_DEFAULTS = {**JobConfig.EMBEDDED_DEFAULTS, "tasks_per_request": 5}
    API_DEFAULTS = {**JobConfig.API_DEFAULTS, "tasks_per_request": 20}

    # The seed file is identified by its hash (in the run's config.json), not by its path.
    seeds: str | None = Field(None, description="Seed tasks (default: the bundled seeds).")
    examples_per_prompt: int = Field(3, ge=1, le=50, description="Human seed tasks shown per request (k).")
    machine_examples_per_prompt: int = Field(
        0, ge=0, le=50, description="Accepted machine tasks shown per request (m)."
    )
    tasks_per_request: int | None = Field(None, ge=1, le=100, description="New tasks asked for per request (n).")
    seed: int = Field(42, description="Makes the sampling of examples reproducible.")
    num_instructions: int = Field(100, ge=1, description="Stop at this many accepted records.")


class BootstrapTask(Task):
    name = "bootstrap"

    def __init__(self, config: GenerateConfig, seeds: SeedSet, preset: Preset):
        check_prompt_room(config, seeds)
        self.config = config
        self.seeds = seeds
        self.preset = preset
        self.reference = tuple(seeds.tasks)
        self.target = config.num_instructions
        self.assumed_per_answer = config.tasks_per_request * ASSUMED_YIELD
        self.machine: list[dict] = []  # accepted records, shown as examples when m > 0

    def identity(self) -> dict:
        return {**self.config.identity(), "seeds_sha256": self.seeds.sha256}

    def examples(self, index: int) -> list[dict]:
        c = self.config
        rng = random.Random(f"{c.seed}:{index}")
        return sample_examples(
            self.seeds.tasks, self.machine, c.examples_per_prompt, c.machine_examples_per_prompt, rng
        )

    def next_request(self, index: int) -> Request:
        examples = self.examples(index)
        n, max_tokens = self.config.tasks_per_request, self.config.max_tokens
        return Request(
            messages=lambda output_format: build_messages(examples, n, output_format),
            schema=lambda bounded: tasks_schema(n, bounded),
            max_tokens=max_tokens,
            details={"examples": [e["id"] for e in examples], "tasks_requested": n, "max_tokens": max_tokens},
        )

    def parse(self, request: dict, response: dict) -> Parsed:
        # a reasoning teacher's trace (inline or in its own field) is about the whole list, not one
        # task: it stays in the ledger, and only the answer is parsed
        _, answer = split_reasoning(response["content"], response.get("reasoning"))
        parsed = parse_tasks(answer, response["finish_reason"], response["output_format"])
        request_id = response["request_id"]
        records = [
            {
                "id": f"{request_id}-{i}",
                **task,
                "request_id": request_id,
                "teacher_model": response["model"],
                "created": response["time"],
            }
            for i, task in enumerate(parsed.tasks)
        ]
        return Parsed(records, parsed.problems)

    def accept(self, records: list[dict]) -> None:
        if self.config.machine_examples_per_prompt:
            self.machine += records


def check_prompt_room(config: GenerateConfig, seeds: SeedSet) -> None:
    """Refuse, before anything is sent, seeds that make a prompt longer than the teacher's context
    leaves room for beside its answer: each seed alone (its text counted only up to that room, so a
    50 MB seed costs what a prompt does), then the k longest together, as the prompt that shows
    them. Warn when there are fewer seeds than a prompt shows."""
    n, k = config.tasks_per_request, config.examples_per_prompt
    if len(seeds.tasks) < k:
        warn(
            f"{seeds.path}: {len(seeds.tasks)} seed task(s), fewer than the {k} examples a prompt is to show: "
            "every prompt shows the same ones, so the teacher sees little variety"
        )
    room = config.context_tokens - config.max_tokens
    limits = f"{{context_tokens}} {config.context_tokens:,} less {{max_tokens}} {config.max_tokens:,}"

    def prompt_tokens(examples: list[dict]) -> int:  # in the longer of the two formats a prompt may take
        return max(estimate_prompt_tokens(build_messages(examples, n, fmt)) for fmt in ("json", "text"))

    frame = prompt_tokens([])
    if frame > room:
        raise SettingError(
            f"a prompt needs {frame:,} tokens before its examples, more than the {room:,} that {limits} leave",
            "max_tokens",
            "context_tokens",
        )
    sizes = [
        count_tokens_capped("\n".join((t["instruction"], t["input"], t["output"])), room - frame) for t in seeds.tasks
    ]
    longest = sorted(range(len(sizes)), key=lambda i: -sizes[i])[:k]
    first = longest[0]
    seed = f"{seeds.where[first]}: seed task {seeds.tasks[first]['id']!r}"
    if frame + sizes[first] > room:  # too long alone (and counted only that far)
        raise SettingError(
            f"{seed} is too long for any prompt: over {room - frame:,} tokens, where a prompt has {room:,} "
            f"({limits}), {frame:,} of them its own text: shorten the seed or take it out",
            "context_tokens",
            "max_tokens",
        )
    together = prompt_tokens([seeds.tasks[i] for i in longest])
    if together > room:
        raise SettingError(
            f"{seed} is {sizes[first]:,} tokens: a prompt that shows it with the {len(longest) - 1} next longest seeds "
            f"is {together:,}, more than the {room:,} that {limits} leave for it: shorten the seed or take it out",
            "context_tokens",
            "max_tokens",
        )


def generate(
    config: GenerateConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """Run (or resume) a bootstrap run into the directory `out` (see `engine.run.run_job`)."""
    return run_task(bootstrap_task, config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)


def bootstrap_task(config: GenerateConfig) -> BootstrapTask:
    return BootstrapTask(config, load_seeds(config.seeds), load_preset(config.preset))
