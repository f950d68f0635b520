"""`generate --dry-run`: what a run will cost, before any request is sent.

Prompt tokens come from the real prompts of the first requests (tiktoken). Completion
tokens and the yield per answer come from the run directory's ledger when it has history;
otherwise from the 52K benchmark's (`task.ASSUMED_YIELD`), with the range `task.YIELD_RANGE`.
The worst case assumes every answer uses max_tokens.
"""

from __future__ import annotations

from pathlib import Path

from ...engine.estimate import CostEstimate
from ...engine.ledger import load_ledger
from ...engine.view import RunView
from ...records import count_jsonl
from ...tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from .task import ASSUMED_YIELD, YIELD_RANGE, GenerateConfig, bootstrap_task

# completion tokens per task asked for, without history: 2,476 per answer of 20 tasks in the 52K
# benchmark (benchmarks/cost_52k_results.json), tasks with the token lengths of self-instruct's seeds
ASSUMED_TOKENS_PER_TASK = 124
PROMPT_SAMPLES = 20


def estimate_run_cost(config: GenerateConfig, out: str | Path | None = None) -> CostEstimate:
    config = config.resolved()
    task = bootstrap_task(config)
    n = config.tasks_per_request
    prompts = [task.next_request(i).messages("json") for i in range(PROMPT_SAMPLES)]  # the run's first prompts
    prompt_tokens = round(sum(map(estimate_prompt_tokens, prompts)) / len(prompts))
    prompt_bound = max(map(prompt_tokens_upper_bound, prompts))

    run = RunView(out) if out else None
    totals = load_ledger(run.ledger).totals if run else None
    kept = count_jsonl(run.data) + count_jsonl(run.surplus) if run else 0  # a raised target takes the surplus first
    if kept and totals.responses:
        return CostEstimate.priced(
            config,
            records_wanted=max(config.num_instructions - kept, 0),
            prompt_tokens=prompt_tokens,
            prompt_bound=prompt_bound,
            completion_tokens=round(totals.completion_tokens / totals.responses),
            accepted_per_request=kept / totals.responses,
            basis="ledger history",
        )
    return CostEstimate.priced(
        config,
        records_wanted=config.num_instructions,
        prompt_tokens=prompt_tokens,
        prompt_bound=prompt_bound,
        completion_tokens=min(config.max_tokens, n * ASSUMED_TOKENS_PER_TASK),
        accepted_per_request=n * ASSUMED_YIELD,
        basis="assumptions",
        yield_note=f"{ASSUMED_YIELD:.0%} of the {n} tasks asked for, as in the 52K benchmark",
        accepted_per_request_range=(n * YIELD_RANGE[0], n * YIELD_RANGE[1]),
    )
