"""What a run cost, summed from its ledger: the one summary behind `cost.json`, the `cost`
command, the dataset card and the progress bar.

Requests with no recorded outcome (the process died, or the run stopped with them in flight)
may have been billed: their reserved worst case is shown apart, as "possibly billed".
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ..pricing import Price
from .ledger import EndpointTotals, LedgerTotals


def usd(value: float | None, digits: int = 4) -> str:
    """usd(0.01234) -> "$0.0123"; None (no price known) -> "unknown"."""
    return "unknown" if value is None else f"${value:,.{digits}f}"


@dataclass
class CostSummary:
    model: str | None
    price: Price | None
    requests: int
    responses: int
    batch_responses: int  # answered through the Batch API, at its discount
    failures: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int  # reasoning tokens included: they are billed as completion tokens
    reasoning_tokens: int
    estimated_responses: int  # responses whose usage was counted locally, not by the provider
    cost_usd: float | None  # None when some response had no price
    unsettled_requests: int
    unsettled_usd: float  # possibly billed: reserved for requests with no recorded outcome
    latency_s: float
    accepted: int
    max_cost_usd: float | None = None
    endpoints: dict[str, EndpointTotals] = field(default_factory=dict)  # each endpoint's share, by name

    @classmethod
    def of(
        cls,
        totals: LedgerTotals,
        *,
        model: str | None,
        price: Price | None,
        accepted: int,
        max_cost_usd: float | None = None,
    ) -> "CostSummary":
        """The ledger's figures as they are, the money rounded: unknown when a response had no price."""
        figures = {f.name: getattr(totals, f.name) for f in fields(cls) if hasattr(totals, f.name)}
        figures.update(
            cost_usd=None if totals.unpriced_responses else round(totals.cost_usd, 8),
            unsettled_usd=round(totals.unsettled_usd, 8),
            latency_s=round(totals.latency_s, 3),
            endpoints={name: replace(share) for name, share in totals.endpoints.items()},
        )
        return cls(**figures, model=model, price=price, accepted=accepted, max_cost_usd=max_cost_usd)

    @property
    def usd_per_1000_accepted(self) -> float | None:
        return 1000 * self.cost_usd / self.accepted if self.cost_usd is not None and self.accepted else None

    def endpoint_rows(self) -> list[tuple[str, str]]:
        """Each endpoint's share in a line, for a run that had several (`cost`, the card):
        ("gpu0", "1,200 answered, 2 failed, 9 errors; 310,000 + 95,000 tokens; $0.1000")."""
        if len(self.endpoints) < 2:
            return []
        return [
            (
                name,
                f"{share.responses:,} answered, {share.failures:,} failed, {share.errors:,} errors; "
                f"{share.prompt_tokens:,} prompt + {share.completion_tokens:,} completion tokens; "
                f"{usd(share.to_dict()['cost_usd'])}",
            )
            for name, share in self.endpoints.items()
        ]

    def cost_json(self) -> dict:
        """cost.json, with the keys it has always had."""
        per_1000 = self.usd_per_1000_accepted
        return {
            "model": self.model,
            "price_per_1m_tokens": self.price.to_dict() if self.price else None,
            "requests": self.requests,
            "responses": self.responses,
            "batch_responses": self.batch_responses,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated_responses": self.estimated_responses,
            "cost_usd": self.cost_usd,
            "unsettled_usd": self.unsettled_usd,
            "latency_s": self.latency_s,
            "usd_per_1000_accepted": None if per_1000 is None else round(per_1000, 6),
            "max_cost_usd": self.max_cost_usd,
            "usage_estimated": self.estimated_responses > 0,
            "endpoints": {name: share.to_dict() for name, share in self.endpoints.items()},
        }
