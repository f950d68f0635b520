"""What a run cost, read from its ledger, and what 52,000 records would cost elsewhere.

Every figure is summed from `ledger.jsonl` itself (its response events), not taken from
cost.json, so the report holds for a run that died before writing its reports. Requests
with no recorded outcome (the process died, or the run was cancelled with them in flight)
may have been billed: their reserved worst case is shown apart, as "possibly billed".

The projection keeps this run's tokens per *accepted* record, so rejected and unparseable
answers are paid for in it too:

    13 accepted, 3,676 prompt + 1,077 completion tokens
    -> 52,000 records = 14.7M prompt + 4.3M completion tokens, priced per model
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..engine.costs import CostSummary
from ..engine.ledger import load_ledger
from ..engine.view import RunView
from ..errors import SelfInstructError
from ..pricing import ALPACA_REFERENCE, PRICES, Price, price_for
from ..records import count_jsonl
from ..runfiles import LEDGER_FILE, RunFiles

PROJECTED_RECORDS = ALPACA_REFERENCE["records"]


@dataclass(frozen=True)
class Projection:
    model: str
    standard_usd: float
    batch_usd: float | None  # None: the provider has no batch discount


@dataclass
class CostReport(CostSummary):
    """The run's `CostSummary`, where it came from, and the 52K projection."""

    source: str = ""
    candidates: int | None = None
    projections: list[Projection] = field(default_factory=list)
    alpaca: Projection | None = None  # text-davinci-003 at this run's tokens per record

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.candidates if self.candidates else None

    def tokens_per_record(self) -> dict[str, float] | None:
        if not self.accepted:
            return None
        return {
            "prompt": self.prompt_tokens / self.accepted,
            "cached": self.cached_tokens / self.accepted,
            "completion": self.completion_tokens / self.accepted,
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            acceptance_rate=self.acceptance_rate,
            usd_per_1000_accepted=self.usd_per_1000_accepted,
            tokens_per_record=self.tokens_per_record(),
            projected_records=PROJECTED_RECORDS,
            alpaca_reported_usd=ALPACA_REFERENCE["reported_usd"],
        )
        return d


def find_ledger(src: str | Path) -> Path:
    src = Path(src)
    ledger = RunFiles(src).ledger if src.is_dir() else src
    if not ledger.is_file():
        raise SelfInstructError(
            f"{src}: no {LEDGER_FILE} here; cost reads a run directory made by a teacher job (`selfinstruct generate`, `answer` or `judge` with `--out DIR`) "
            "(for a filter output, name the run it came from)"
        )
    return ledger


def cost_report(src: str | Path) -> CostReport:
    """The report of the run in `src` (its directory, or its ledger.jsonl)."""
    ledger = find_ledger(src)
    run = RunView(ledger.parent)
    state = load_ledger(ledger)
    config = run.read_config() or {}
    if not state.requests and (not config or ledger.name != LEDGER_FILE):  # a table of zeros would say nothing
        raise SelfInstructError(
            f"{src}: not a run, no request is recorded in it; cost reads a run directory "
            "made by generate, answer or judge (or its ledger.jsonl)"
        )
    settings = config.get("config") or {}
    model = (config.get("identity") or {}).get("model") or next((r.get("model") for r in state.responses), None)
    price = (
        price_for(model, settings.get("price_in"), settings.get("price_out"), settings.get("price_cached"))
        if model
        else None
    )
    summary = CostSummary.of(
        state.totals,
        model=model,
        price=price,
        accepted=count_jsonl(run.data) + count_jsonl(run.surplus),  # what the money bought, as in cost.json
        max_cost_usd=settings.get("max_cost"),
    )
    stats = run.read_stats() or {}
    report = CostReport(**vars(summary), source=str(src), candidates=stats.get("candidates"))
    if report.accepted:
        report.projections = [_project(report, name, price) for name, price in PRICES.items()]
        report.alpaca = _project(report, ALPACA_REFERENCE["model"], ALPACA_REFERENCE["price"])
    return report


def _project(report: CostReport, model: str, price: Price) -> Projection:
    scale = PROJECTED_RECORDS / report.accepted
    standard = price.cost(report.prompt_tokens * scale, report.completion_tokens * scale, report.cached_tokens * scale)
    batch = standard * (1 - price.batch_discount) if price.batch_discount else None
    return Projection(model, standard, batch)
