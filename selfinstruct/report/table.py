"""The cost report as text for people: the run's figures, then the 52K projection."""

from __future__ import annotations

from ..engine.costs import usd
from ..pricing import ALPACA_REFERENCE
from .cost import PROJECTED_RECORDS, CostReport


def render_table(report: CostReport) -> str:
    rate = report.acceptance_rate
    spent = usd(report.cost_usd) if report.cost_usd is not None else f"unknown (no price for {report.model})"
    estimated = f", {report.estimated_responses} counted locally" if report.estimated_responses else ""
    run = [
        (
            "requests",
            f"{report.requests:,}",
            f"{report.responses:,} answered, {report.failures:,} failed"
            + (
                f"; {report.batch_responses:,} through the Batch API, at its discount" if report.batch_responses else ""
            ),
        ),
        ("prompt tokens", f"{report.prompt_tokens:,}", f"{report.cached_tokens:,} cached{estimated}"),
        (
            "completion tokens",
            f"{report.completion_tokens:,}",
            f"{report.reasoning_tokens:,} of them reasoning" if report.reasoning_tokens else "",
        ),
        ("spent", spent, ""),
        (
            "possibly billed",
            usd(report.unsettled_usd),
            f"reserved for {report.unsettled_requests:,} requests with no recorded outcome",
        ),
        (
            "accepted records",
            f"{report.accepted:,}",
            "" if rate is None else f"acceptance {rate:.1%} of {report.candidates:,} candidates",
        ),
        ("per 1,000 accepted", usd(report.usd_per_1000_accepted), ""),
    ]
    run += [(f"endpoint {name}", "", share) for name, share in report.endpoint_rows()]
    lines = [f"Cost of {report.source} (teacher: {report.model})", "", *_align(run, right=(1,))]
    per_record = report.tokens_per_record()
    if per_record is None:
        return "\n".join([*lines, "", "No accepted records yet: nothing to project."]) + "\n"
    lines += [
        "",
        f"{PROJECTED_RECORDS:,} accepted records at this run's {per_record['prompt']:,.1f} prompt "
        f"({per_record['cached']:,.1f} cached) + {per_record['completion']:,.1f} completion tokens per record:",
        "",
    ]
    rows = [("model", "standard", "batch (-50%)", "")]
    rows += [
        (p.model, usd(p.standard_usd, 2), usd(p.batch_usd, 2) if p.batch_usd is not None else "-", "")
        for p in report.projections
    ]
    alpaca = report.alpaca
    rows.append(
        (
            alpaca.model,
            usd(alpaca.standard_usd, 2),
            "-",
            f"Alpaca's teacher; Alpaca reported < ${ALPACA_REFERENCE['reported_usd']} for 52K",
        )
    )
    lines += _align(rows, right=(1, 2))
    return "\n".join(lines) + "\n"


def _align(rows: list[tuple[str, ...]], right: tuple[int, ...]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    cells = lambda row: [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]  # noqa: E731
    return ["  " + "  ".join(cells(row)).rstrip() for row in rows]
