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
from ...engine.run import run_job
from ...engine.task import Parsed, Request, Task
from ...reasoning import split_reasoning
from .parse import parse_tasks
from .prompts import build_messages, sample_examples, tasks_schema
from .seeds import SeedSet, load_seeds


class GenerateConfig(JobConfig):
    IDENTITY = ("examples_per_prompt", "machine_examples_per_prompt", "tasks_per_request", "seed")
    EMBEDDED_DEFAULTS = {"tasks_per_request": 5}  # a 135M model loses track of longer lists
    API_DEFAULTS = {"tasks_per_request": 20}  # Alpaca's

    # The seed file is identified by its hash (in the run's config.json), not by its path.
    seeds: str | None = Field(None, description="seed file; None = the bundled seeds")
    examples_per_prompt: int = Field(3, ge=1, le=50, description="k human seed tasks shown per request")
    machine_examples_per_prompt: int = Field(0, ge=0, le=50, description="m accepted machine tasks shown per request")
    tasks_per_request: int | None = Field(None, ge=1, le=100, description="n new tasks asked for per request")
    seed: int = 42
    num_instructions: int = Field(100, ge=1, description="stop when this many records are accepted")


class BootstrapTask(Task):
    name = "bootstrap"

    def __init__(self, config: GenerateConfig, seeds: SeedSet, preset: Preset):
        self.config = config
        self.seeds = seeds
        self.preset = preset
        self.reference = tuple(seeds.tasks)
        self.target = config.num_instructions
        self.machine: list[dict] = []  # accepted records, shown as examples when m > 0

    def identity(self) -> dict:
        return {**self.config.identity(), "seeds_sha256": self.seeds.sha256}

    def examples(self, index: int) -> list[dict]:
        c = self.config
        rng = random.Random(f"{c.seed}:{index}")
        return sample_examples(self.seeds.tasks, self.machine, c.examples_per_prompt, c.machine_examples_per_prompt, rng)

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
            {"id": f"{request_id}-{i}", **task, "request_id": request_id, "teacher_model": response["model"], "created": response["time"]}
            for i, task in enumerate(parsed.tasks)
        ]  # fmt: skip
        return Parsed(records, parsed.problems)

    def accept(self, records: list[dict]) -> None:
        if self.config.machine_examples_per_prompt:
            self.machine += records


def generate(config: GenerateConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True,
             policy: StopPolicy = StopPolicy(), teacher=None) -> JobResult:  # fmt: skip
    """Run (or resume) a bootstrap run into the directory `out` (see `engine.run.run_job`)."""
    config = config.resolved()
    task = BootstrapTask(config, load_seeds(config.seeds), load_preset(config.preset))
    return run_job(task, config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)
