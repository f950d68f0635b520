"""The report's "Evaluation" section: what `selfinstruct eval` measured of the students of a run.

Shown when the run directory holds an eval.json, or a folder of it does (`eval --out
outputs/run/eval`): the models side by side, each score with its 95% interval as a point and a
bar in one chart per metric, and the table with n, the judge's wins / ties / losses, the answers'
length and the set's overlap with the training data.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..eval.results import EVAL_FILE, cell, label_of, metric_columns, notes, read_eval
from ..runfiles import folder_of


def eval_files(path: Path) -> list[Path]:
    """The eval.json files of a run: in its folder, or in a folder of it."""
    folder = folder_of(Path(path))
    if folder is None:
        return []
    return [p for p in [folder / EVAL_FILE, *sorted(folder.glob(f"*/{EVAL_FILE}"))] if p.is_file()]


def evaluation_body(paths: list[Path], figure) -> str:
    """The section's HTML for the eval.json files `paths`; `figure(fig, div_id)` draws a plotly figure."""
    parts = []
    for i, path in enumerate(paths):
        doc = read_eval(path.parent)
        metrics = metric_columns(doc)
        head = "".join(f"<th>{html.escape(label_of(m))}</th>" for m in metrics)
        rows = "".join(_row(label, entry, metrics) for label, entry in doc["models"].items())
        found = "".join(f"<li>{html.escape(line)}</li>" for line in notes(doc))
        parts.append(
            f"<h3><code>{html.escape(str(path))}</code></h3>"
            f'<table class="eval"><thead><tr><th>model</th>{head}<th>n</th><th>wins / ties / losses</th>'
            f"<th>answer length</th><th>overlap with training data</th></tr></thead><tbody>{rows}</tbody></table>"
            f'<ul class="muted">{found}</ul>'
            + "".join(figure(_interval_chart(doc, m), f"eval-{i}-{j}") for j, m in enumerate(metrics))
        )
    return "".join(parts)


def _row(label: str, entry: dict, metrics: list[str]) -> str:
    pairwise, overlap = entry.get("pairwise"), entry.get("overlap")
    n = max((s["n"] for s in entry["scores"].values()), default=0)
    cells = [
        html.escape(label),
        *(html.escape(cell(entry, m)) for m in metrics),
        str(n),
        f"{pairwise['wins']} / {pairwise['ties']} / {pairwise['losses']}" if pairwise else "-",
        f"{pairwise['mean_length']:.0f} chars (reference {pairwise['reference_mean_length']:.0f})" if pairwise else "-",
        f"{overlap['contaminated']} of {overlap['checked']} items" if overlap else "not checked",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _interval_chart(doc: dict, metric: str):
    """One metric, each model's value with its 95% interval as error bars."""
    import plotly.graph_objects as go

    labels, values, below, above = [], [], [], []
    for label, entry in doc["models"].items():
        score = entry["scores"].get(metric)
        if score is not None:
            labels.append(label)
            values.append(score["value"])
            below.append(score["value"] - score["low"])
            above.append(score["high"] - score["value"])
    bars = go.Bar(x=labels, y=values, error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below})
    figure = go.Figure(bars)
    figure.update_layout(title=f"{label_of(metric)} (95% interval)", height=320, margin={"t": 40, "b": 40})
    return figure
