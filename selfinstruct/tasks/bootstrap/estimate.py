"""`generate --dry-run`: what a run will cost, before any request is sent.

Prompt tokens come from the real prompts of the first requests (tiktoken). Completion
tokens and the yield per answer come from the run directory's ledger when it has history;
otherwise from stated assumptions. The worst case assumes every answer uses max_tokens.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from ...engine.estimate import CostEstimate
from ...engine.ledger import load_ledger
from ...engine.rundir import RunDir
from ...records import count_jsonl
from ...tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from .prompts import build_messages, sample_examples
from .seeds import load_seeds
from .task import GenerateConfig

ASSUMED_YIELD = 0.5  # accepted records per task asked for, without history (Alpaca-like teachers)
ASSUMED_TOKENS_PER_TASK = 120  # completion tokens per generated task, without history
PROMPT_SAMPLES = 20


def estimate_run_cost(config: GenerateConfig, out: str | Path | None = None) -> CostEstimate:
    config = config.resolved()
    seeds = load_seeds(config.seeds)
    n = config.tasks_per_request
    prompts = []
    for i in range(PROMPT_SAMPLES):
        examples = sample_examples(seeds.tasks, [], config.examples_per_prompt, 0, random.Random(f"{config.seed}:{i}"))
        prompts.append(build_messages(examples, n, "json"))
    prompt_tokens = round(sum(map(estimate_prompt_tokens, prompts)) / len(prompts))
    prompt_bound = max(map(prompt_tokens_upper_bound, prompts))

    run = RunDir(out) if out else None
    history = load_ledger(run.ledger) if run else None
    if history and history.totals.responses:
        totals = history.totals
        completion = round(totals.completion_tokens / totals.responses)
        accepted_count = count_jsonl(run.data)
        per_request = accepted_count / totals.responses
        basis = "ledger history"
        missing = max(config.num_instructions - accepted_count, 0)
    else:
        completion = min(config.max_tokens, n * ASSUMED_TOKENS_PER_TASK)
        per_request = n * ASSUMED_YIELD
        basis = "assumptions"
        missing = config.num_instructions
    requests = math.ceil(missing / per_request) if per_request > 0 else 0
    return CostEstimate.priced(
        config,
        records_wanted=missing,
        requests=requests,
        prompt_tokens=prompt_tokens,
        prompt_bound=prompt_bound,
        completion_tokens=completion,
        accepted_per_request=round(per_request, 3),
        basis=basis,
    )
