"""The 52K projection as a PNG bar chart, with Alpaca's reported cost as a reference line."""

from __future__ import annotations

from pathlib import Path

from ..errors import SelfInstructError
from ..pricing import ALPACA_REFERENCE
from ..records import naming
from .cost import PROJECTED_RECORDS, CostReport


def plot_projection(report: CostReport, path: str | Path) -> Path:
    if not report.projections:
        raise SelfInstructError(f"{report.source}: no accepted records yet, so there is nothing to plot")
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise SelfInstructError("the cost chart needs matplotlib: pip install 'selfinstruct[plot]'") from None

    bars = [*report.projections, report.alpaca]
    positions = range(len(bars))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 2))
    standard = ax.barh([y - 0.2 for y in positions], [p.standard_usd for p in bars], height=0.4, label="standard")
    ax.barh([y + 0.2 for y in positions], [p.batch_usd or 0 for p in bars], height=0.4, label="batch API (-50%)")
    ax.bar_label(standard, labels=[f"${p.standard_usd:,.2f}" for p in bars], padding=3, fontsize=8)
    reported = ALPACA_REFERENCE["reported_usd"]
    ax.axvline(reported, color="grey", linestyle="--", label=f'Alpaca reported "< ${reported}"')
    ax.set_xlim(0, 1.25 * max(reported, *(p.standard_usd for p in bars)))
    ax.set_yticks(list(positions), [p.model for p in bars])
    ax.invert_yaxis()
    ax.set_xlabel("USD")
    ax.set_title(
        f"{PROJECTED_RECORDS:,} accepted records at the tokens per record of this run\n(teacher: {report.model})"
    )
    ax.legend(loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path):  # a full disk fails in a write that names no file
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
