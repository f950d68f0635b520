"""What a run will cost, before any request is sent (`--dry-run`), at standard or batch prices.

Each task estimates its tokens per request (`tasks/*/estimate`); this module prices them, and
estimates the tasks with work items (answer, judge) whole: their unanswered items' real prompts
counted with tiktoken, completion tokens from the run's ledger when it has answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..pricing import completion_bound
from ..tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from .config import JobConfig
from .ledger import load_ledger
from .rundir import RunDir
from .task import ItemTask

PROMPT_SAMPLES = 200  # prompts counted, evenly spread over the unanswered items


@dataclass
class CostEstimate:
    model: str
    records_wanted: int
    requests: int
    prompt_tokens_per_request: int
    completion_tokens_per_request: int
    accepted_per_request: float
    basis: str  # "ledger history" or "assumptions"
    expected_usd: float | None
    worst_case_usd: float | None

    @classmethod
    def priced(cls, config: JobConfig, *, records_wanted: int, requests: int, prompt_tokens: int, prompt_bound: int,
               completion_tokens: int, accepted_per_request: float, basis: str) -> "CostEstimate":  # fmt: skip
        """Expected: the estimated tokens; worst case: every prompt at its byte bound and every
        answer at its completion bound; both at the batch price with `config.batch`."""
        price = config.price()
        worst_completion = completion_bound(config.model, config.max_tokens, config.max_output_tokens)

        def cost(prompt: int, completion: int) -> float | None:
            return price.cost(requests * prompt, requests * completion, batch=config.batch) if price else None

        return cls(
            model=config.model,
            records_wanted=records_wanted,
            requests=requests,
            prompt_tokens_per_request=prompt_tokens,
            completion_tokens_per_request=completion_tokens,
            accepted_per_request=accepted_per_request,
            basis=basis,
            expected_usd=cost(prompt_tokens, completion_tokens),
            worst_case_usd=cost(prompt_bound, worst_completion),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_item_task_cost(task: ItemTask, config: JobConfig, out: str | Path | None, assumed_completion: int) -> CostEstimate:
    """One request per unanswered item; `assumed_completion` tokens per answer without history."""
    history = load_ledger(RunDir(out).ledger) if out else None
    for request in history.answered_requests() if history else ():
        task.answered(request)
    waiting = task.unanswered()
    sample = []
    for item in waiting[:: max(1, len(waiting) // PROMPT_SAMPLES)]:
        request = task.request(item)
        sample.append(request.messages(request.output_formats[0]))
    if history and history.totals.responses:
        completion, basis = round(history.totals.completion_tokens / history.totals.responses), "ledger history"
    else:
        completion, basis = min(assumed_completion, config.max_tokens), "assumptions"
    return CostEstimate.priced(
        config,
        records_wanted=len(waiting),
        requests=len(waiting),
        prompt_tokens=round(sum(map(estimate_prompt_tokens, sample)) / len(sample)) if sample else 0,
        prompt_bound=max(map(prompt_tokens_upper_bound, sample), default=0),
        completion_tokens=completion,
        accepted_per_request=1.0,
        basis=basis,
    )
