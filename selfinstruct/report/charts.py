"""The page's plotly figures, drawn from `Summary` objects (one, or two to compare).

Histograms are counted here with numpy and drawn as bars of shares (% of records), so two
datasets of different sizes compare, and a page carries bins rather than raw values.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np

from ..pricing import ALPACA_REFERENCE
from .cost import PROJECTED_RECORDS
from .summary import Summary

COLORS = ["#4c78a8", "#f58518"]  # one per dataset, the same in every chart
LENGTH_FIELDS = ("instruction", "input", "output")
LENGTH_BINS = 40
TOP_FIRST_WORDS = 20


def _go():
    import plotly.graph_objects as go

    return go


def _subplots(**kwargs):
    from plotly.subplots import make_subplots

    return make_subplots(**kwargs)


def _layout(figure, title: str, height: int = 380):
    figure.update_layout(
        title=title,
        height=height,
        barmode="group",
        margin={"t": 60, "l": 60, "r": 20, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def _share(counts: np.ndarray, total: int) -> np.ndarray:
    return 100 * counts / max(1, total)


def length_histograms(summaries: list[Summary]):
    """Tokens of instruction, input (records that have one) and output; shares of records."""
    go = _go()
    figure = _subplots(rows=1, cols=3, subplot_titles=[f"{f} (tokens)" for f in LENGTH_FIELDS])
    for col, field in enumerate(LENGTH_FIELDS, start=1):
        values = [s.input_lengths() if field == "input" else s.lengths[field] for s in summaries]
        everything = np.concatenate(values) if any(len(v) for v in values) else np.zeros(1)
        top = max(1.0, float(np.percentile(everything, 99)))  # the last bin holds the longest 1%
        edges = np.linspace(0, top, LENGTH_BINS + 1)
        for i, (summary, v) in enumerate(zip(summaries, values)):
            counts = np.histogram(np.clip(v, 0, top), edges)[0]
            figure.add_trace(
                go.Bar(
                    x=(edges[:-1] + edges[1:]) / 2,
                    y=_share(counts, len(v)),
                    width=edges[1] - edges[0],
                    name=summary.name,
                    marker_color=COLORS[i],
                    opacity=0.75,
                    showlegend=col == 1,
                    hovertemplate="%{x:.0f} tokens: %{y:.1f}%<extra>" + summary.name + "</extra>",
                ),
                row=1,
                col=col,
            )
    figure.update_yaxes(title_text="% of records", col=1)
    return _layout(figure, "Lengths", height=360).update_layout(barmode="overlay")


def input_share(summaries: list[Summary]):
    go = _go()
    figure = go.Figure()
    for i, s in enumerate(summaries):
        with_input = s.with_input()
        figure.add_trace(
            go.Bar(
                x=["with input", "without input"],
                y=_share(np.array([with_input, s.size - with_input]), s.size),
                name=s.name,
                marker_color=COLORS[i],
                texttemplate="%{y:.1f}%",
            )
        )
    return _layout(figure, "Records with and without an input", height=320).update_yaxes(title_text="% of records")


def rouge_histogram(summaries: list[Summary]):
    go = _go()
    edges = np.linspace(0, 1, 21)
    figure = go.Figure()
    for i, s in enumerate(summaries):
        counts = np.histogram(s.rouge_to_seed, edges)[0]
        figure.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2,
                y=_share(counts, s.size),
                width=0.05,
                name=s.name,
                marker_color=COLORS[i],
                opacity=0.75,
                hovertemplate="ROUGE-L %{x:.3f}: %{y:.1f}%<extra>" + s.name + "</extra>",
            )
        )
    figure.update_xaxes(title_text="ROUGE-L F with the most similar seed instruction", range=[0, 1])
    figure.update_yaxes(title_text="% of records")
    return _layout(figure, "Similarity to the seed tasks").update_layout(barmode="overlay")


def first_words_chart(summaries: list[Summary]):
    go = _go()
    figure = go.Figure()
    total = Counter()
    for s in summaries:
        total.update(s.first_words)
    top = [w for w, _ in total.most_common(TOP_FIRST_WORDS)]
    for i, s in enumerate(summaries):
        shares = _share(np.array([s.first_words[w] for w in top]), s.size)
        figure.add_trace(go.Bar(x=top, y=shares, name=s.name, marker_color=COLORS[i]))
    return _layout(figure, f"The {TOP_FIRST_WORDS} most common first words").update_yaxes(title_text="% of records")


def funnel_chart(summary: Summary):
    go = _go()
    f = summary.funnel
    stages, values = ["candidates"], [f.candidates]
    for rule, count in f.rejected.items():
        stages.append(f"− {rule} ({count:,})")
        values.append(values[-1] - count)
    stages.append("accepted")
    values.append(f.accepted)
    figure = go.Figure(go.Funnel(y=stages, x=values, textinfo="value+percent initial", marker_color=COLORS[0]))
    return _layout(figure, f"Funnel: {summary.name}", height=120 + 40 * len(stages))


def acceptance_chart(summary: Summary):
    go = _go()
    t = summary.acceptance
    x = [_when(s) for s in t.starts]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(t.judged > 0, 100 * t.accepted / t.judged, np.nan)
    figure = _subplots(specs=[[{"secondary_y": True}]])  # the rate on the second axis is drawn over the bars
    figure.add_trace(go.Bar(x=x, y=t.judged, name="judged candidates", marker_color="#d9d9d9"))
    figure.add_trace(
        go.Scatter(x=x, y=rate, name="accepted %", mode="lines+markers", marker_color=COLORS[0]), secondary_y=True
    )
    figure.update_yaxes(title_text="candidates per bin", secondary_y=False)
    figure.update_yaxes(title_text="accepted, % of judged", range=[0, 105], secondary_y=True)
    return _layout(figure, f"Acceptance over time: {summary.name}")


def spending_chart(summary: Summary):
    go = _go()
    sp = summary.spending
    x = [_when(t) for t in sp.times]
    figure = _subplots(rows=1, cols=3, subplot_titles=["dollars", "tokens", "dollars per accepted record"])
    if sp.usd is not None:
        figure.add_trace(go.Scatter(x=x, y=sp.usd, name="USD", marker_color=COLORS[0]), row=1, col=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_record = np.where(sp.accepted > 0, sp.usd / sp.accepted, np.nan)
        figure.add_trace(
            go.Scatter(x=x, y=per_record, name="USD per accepted", marker_color=COLORS[0], showlegend=False),
            row=1,
            col=3,
        )
    figure.update_yaxes(tickformat="$.2~r", col=1)
    figure.update_yaxes(tickformat="$.2~r", col=3)
    figure.add_trace(go.Scatter(x=x, y=sp.prompt_tokens, name="prompt tokens", marker_color="#54a24b"), row=1, col=2)
    figure.add_trace(
        go.Scatter(x=x, y=sp.completion_tokens, name="completion tokens", marker_color="#e45756"), row=1, col=2
    )
    return _layout(
        figure, f"Spending over time: {summary.name}" + ("" if sp.usd is not None else " (no price: tokens only)")
    )


def projection_chart(summary: Summary):
    go = _go()
    cost = summary.source.cost
    bars = [*cost.projections, cost.alpaca]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            y=[p.model for p in bars],
            x=[p.standard_usd for p in bars],
            name="standard",
            orientation="h",
            marker_color=COLORS[0],
            texttemplate="$%{x:,.2f}",
            textposition="outside",
        )
    )
    figure.add_trace(
        go.Bar(
            y=[p.model for p in bars],
            x=[p.batch_usd or 0 for p in bars],
            name="batch API",
            orientation="h",
            marker_color="#72b7b2",
        )
    )
    reported = ALPACA_REFERENCE["reported_usd"]
    figure.add_vline(
        x=reported, line_dash="dash", line_color="grey", annotation_text=f'Alpaca reported "< ${reported}"'
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_xaxes(
        title_text="USD", tickprefix="$", range=[0, 1.3 * max(reported, *(p.standard_usd for p in bars))]
    )
    title = f"{PROJECTED_RECORDS:,} records at this run's tokens per accepted record: {summary.name}"
    return _layout(figure, title, height=140 + 28 * len(bars))


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)
