"""Prices of common teacher models, in USD per 1M tokens, and how much one answer can bill.

Published list prices: the GPT-4o/4.1 and DeepSeek rows as of 2026-11 (OpenAI pricing page,
DeepSeek API docs); the reasoning rows (gpt-5, gpt-5-mini, gpt-5-nano, o3, o4-mini) checked on
2026-11-23 against OpenAI's model pages (gpt-5-nano: $0.05 in, $0.005 cached, $0.40 out,
128,000 max output) and public trackers dated 2026. They change: override with --price-in /
--price-out / --price-cached, which always win. `batch_discount` is the provider's Batch API
discount (OpenAI: 50% off input and output).

Reasoning tokens are billed as completion tokens. OpenAI's `max_completion_tokens` and vLLM's
`max_tokens` bound reasoning and answer together, so a request's worst case is its limit;
DeepSeek's reasoner has at times bounded only the final answer, so its worst case is the
model's whole output (`UNBOUNDED_REASONING`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Price:
    input: float  # per 1M uncached prompt tokens
    output: float  # per 1M completion tokens
    cached_input: float  # per 1M prompt tokens served from the provider's cache
    batch_discount: float = 0.0  # fraction off with the provider's batch API, if it has one

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, batch: bool = False) -> float:
        """USD of one answer's usage; `batch`: asked through the provider's Batch API."""
        uncached = prompt_tokens - cached_tokens
        usd = (uncached * self.input + cached_tokens * self.cached_input + completion_tokens * self.output) / 1e6
        return usd * (1 - self.batch_discount) if batch else usd

    def to_dict(self) -> dict:
        return asdict(self)


PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60, 0.075, batch_discount=0.5),
    "gpt-4o": Price(2.50, 10.00, 1.25, batch_discount=0.5),
    "gpt-4.1": Price(2.00, 8.00, 0.50, batch_discount=0.5),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10, batch_discount=0.5),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025, batch_discount=0.5),
    "gpt-5": Price(1.25, 10.00, 0.125, batch_discount=0.5),
    "gpt-5-mini": Price(0.25, 2.00, 0.025, batch_discount=0.5),
    "gpt-5-nano": Price(0.05, 0.40, 0.005, batch_discount=0.5),
    "o3": Price(2.00, 8.00, 0.50, batch_discount=0.5),
    "o4-mini": Price(1.10, 4.40, 0.275, batch_discount=0.5),
    "deepseek-chat": Price(0.28, 0.42, 0.028),
    "deepseek-reasoner": Price(0.28, 0.42, 0.028),
    "smollm2-135m-instruct": Price(0.0, 0.0, 0.0),  # the embedded teacher runs on your CPU
}

# Models whose answer limit may not bound their reasoning -> the most one answer can bill.
UNBOUNDED_REASONING = {"deepseek-reasoner": 65_536}

# What Alpaca paid: text-davinci-003 at $0.02 / 1K tokens, "less than $500" for 52K records.
ALPACA_REFERENCE = {
    "model": "text-davinci-003",
    "price": Price(20.0, 20.0, 20.0),
    "reported_usd": 500,
    "records": 52_000,
}


def price_for(
    model: str,
    price_in: float | None = None,
    price_out: float | None = None,
    price_cached: float | None = None,
) -> Price | None:
    """The price of `model` (longest known prefix, so dated snapshots such as
    gpt-4o-mini-2024-07-18 match), with any overrides applied; None when unknown."""
    name = _known_name(model, PRICES)
    known = PRICES[name] if name else None
    if known is None and (price_in is None or price_out is None):
        return None
    base = known or Price(0.0, 0.0, 0.0)
    input_price = base.input if price_in is None else price_in
    cached = (
        price_cached if price_cached is not None else (base.cached_input if known and price_in is None else input_price)
    )
    return Price(
        input=input_price,
        output=base.output if price_out is None else price_out,
        cached_input=cached,
        batch_discount=base.batch_discount,
    )


def dearest(prices: list[Price | None]) -> Price | None:
    """A price at least as high as each known one, in every part: what a request reserves when
    it may be answered at any of them (None: none is known)."""
    known = [price for price in prices if price is not None]
    if len(known) <= 1:
        return known[0] if known else None
    return Price(
        input=max(p.input for p in known),
        output=max(p.output for p in known),
        cached_input=max(p.cached_input for p in known),
        batch_discount=min(p.batch_discount for p in known),
    )


def completion_bound(model: str, max_tokens: int, override: int | None = None) -> int:
    """The completion tokens one answer can bill at most, reasoning included: `override` (the
    user knows their model), the model's whole output when its limit does not bound the
    reasoning, else `max_tokens`."""
    if override is not None:
        return override
    name = _known_name(model, UNBOUNDED_REASONING)
    return max(max_tokens, UNBOUNDED_REASONING[name]) if name else max_tokens


def _known_name(model: str, table: dict) -> str | None:
    """The table's entry for `model`: the longest known prefix, so dated snapshots such as
    gpt-4o-mini-2024-07-18 match (and gpt-4.1-mini does not take gpt-4.1's price)."""
    for name in sorted(table, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return name
    return None
