"""`generate --dry-run`: what a run will cost, before any request is sent.

Prompt tokens come from the real prompts of the first requests (tiktoken). Completion
tokens and the yield per answer come from the run directory's ledger when it has history;
otherwise from stated assumptions. The worst case assumes every answer uses max_tokens.
"""

from __future__ import annotations

import math
from pathlib import Path

from ...clean import load_preset
from ...engine.estimate import CostEstimate
from ...engine.ledger import load_ledger
from ...engine.rundir import RunDir
from ...records import count_jsonl
from ...tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from .seeds import load_seeds
from .task import BootstrapTask, GenerateConfig

ASSUMED_YIELD = 0.5  # accepted records per task asked for, without history (Alpaca-like teachers)
ASSUMED_TOKENS_PER_TASK = 120  # completion tokens per generated task, without history
PROMPT_SAMPLES = 20


def estimate_run_cost(config: GenerateConfig, out: str | Path | None = None) -> CostEstimate:
    config = config.resolved()
    task = BootstrapTask(config, load_seeds(config.seeds), load_preset(config.preset))
    n = config.tasks_per_request
    prompts = [task.next_request(i).messages("json") for i in range(PROMPT_SAMPLES)]  # the run's first prompts
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
