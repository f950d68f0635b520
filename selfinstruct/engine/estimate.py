"""What a run will cost, before any request is sent (`--dry-run`), at standard or batch prices.

Each task estimates its tokens per request (`tasks/*/estimate`); this module prices them, and
estimates the tasks with work items (answer, judge) whole: their unanswered items' real prompts
counted with tiktoken, completion tokens from the run's ledger when it has answers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..pricing import Price, completion_bound
from ..tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from .config import JobConfig
from .ledger import load_ledger
from .task import ItemTask
from .view import RunView
from .work import WorkItems

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
    yield_note: str | None = None  # where an assumed accepted_per_request comes from
    accepted_per_request_range: tuple[float, float] | None = None  # (least, most) when it is assumed
    expected_usd_range: tuple[float, float] | None = None  # the expected cost at the most, and at the least
    max_cost_usd: float | None = None
    records_within_cap: int | None = None  # what max_cost pays for, when it is below the expected cost
    cap_short_below: float | None = None  # accepted per request under which max_cost cuts the run short
    # Over several endpoints: the expected cost if every request went to each one, at its own price
    # (routing follows free capacity, so the split is not known before the run; the figures above
    # are at the dearest endpoint's price, as the cost cap reserves).
    endpoint_usd: dict[str, float | None] | None = None

    @classmethod
    def priced(
        cls,
        config: JobConfig,
        *,
        records_wanted: int,
        prompt_tokens: int,
        prompt_bound: int,
        completion_tokens: int,
        accepted_per_request: float,
        basis: str,
        yield_note: str | None = None,
        accepted_per_request_range: tuple[float, float] | None = None,
    ) -> "CostEstimate":
        """Expected: the estimated tokens, one request per `accepted_per_request` records wanted;
        worst case: every prompt at its byte bound and every answer at its completion bound; both
        at the batch price with `config.batch`. The cost goes as the requests, so as 1/yield: a
        cost cap cuts the run short below the yield at which the expected cost reaches it."""
        price = config.price()
        worst_completion = completion_bound(config.model, config.max_tokens, config.max_output_tokens)

        def requests(per_request: float) -> int:
            return math.ceil(records_wanted / per_request) if per_request > 0 else 0

        def cost(per_request: float, prompt: int, completion: int, at: Price | None = price) -> float | None:
            n = requests(per_request)
            return at.cost(n * prompt, n * completion, batch=config.batch) if at else None

        expected = cost(accepted_per_request, prompt_tokens, completion_tokens)
        spread = None
        if accepted_per_request_range and price:
            least, most = accepted_per_request_range
            spread = (cost(most, prompt_tokens, completion_tokens), cost(least, prompt_tokens, completion_tokens))
        cap, within, short_below = config.max_cost, None, None
        if cap is not None and expected:
            if cap < expected:
                within = math.floor(records_wanted * cap / expected)
            elif spread and cap < spread[1]:
                short_below = accepted_per_request * expected / cap
        return cls(
            model=config.model,
            records_wanted=records_wanted,
            requests=requests(accepted_per_request),
            prompt_tokens_per_request=prompt_tokens,
            completion_tokens_per_request=completion_tokens,
            accepted_per_request=round(accepted_per_request, 3),
            basis=basis,
            expected_usd=expected,
            worst_case_usd=cost(accepted_per_request, prompt_bound, worst_completion),
            yield_note=yield_note,
            accepted_per_request_range=accepted_per_request_range,
            expected_usd_range=spread,
            max_cost_usd=cap,
            records_within_cap=within,
            cap_short_below=None if short_below is None else round(short_below, 1),
            endpoint_usd={
                spec.label: cost(accepted_per_request, prompt_tokens, completion_tokens, config.endpoint_price(spec))
                for spec in config.endpoint_specs()
            }
            if len(config.endpoint_specs()) > 1
            else None,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_item_task_cost(
    task: ItemTask, config: JobConfig, out: str | Path | None, assumed_completion: int
) -> CostEstimate:
    """One request per unanswered item; `assumed_completion` tokens per answer without history."""
    history = load_ledger(RunView(out).ledger) if out else None
    work = WorkItems(task)
    for request in history.answered_requests() if history else ():
        work.answered(request)
    waiting = work.unanswered()
    sample = []
    for item in waiting[:: max(1, len(waiting) // PROMPT_SAMPLES)]:
        request = work.request(item)
        sample.append(request.messages(request.output_formats[0]))
    if history and history.totals.responses:
        completion, basis = round(history.totals.completion_tokens / history.totals.responses), "ledger history"
    else:
        completion, basis = min(assumed_completion, config.max_tokens), "assumptions"
    return CostEstimate.priced(
        config,
        records_wanted=len(waiting),
        prompt_tokens=round(sum(map(estimate_prompt_tokens, sample)) / len(sample)) if sample else 0,
        prompt_bound=max(map(prompt_tokens_upper_bound, sample), default=0),
        completion_tokens=completion,
        accepted_per_request=1.0,
        basis=basis,
    )
