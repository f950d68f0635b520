"""`selfinstruct report`: one self-contained HTML page that shows a dataset (or two, side by side).

    result = build_report("outputs/demo", "outputs/demo/report.html", compare="alpaca_data.json")

The page opens offline: plotly.js (about 4.8 MB) is inlined once in its head and every
figure is a `<div>` drawn by it; no file, font or script comes from anywhere else. Each
chart carries aggregated numbers only (histogram bins, the sunburst's sectors), and the
searchable table a sample of records, so a page of 52,000 records opens in seconds.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import SelfInstructError
from ..records import write_text_atomic
from ..runfiles import REJECTED_FILE, folder_of
from . import charts
from .evaluation import eval_files, evaluation_body
from .samples import records_table
from .source import Source
from .summary import Summary, summarize
from .sunburst import TOP_NOUNS, TOP_VERBS, sunburst_figure, verb_tree
from .verbs import QUESTION

ALPACA_THRESHOLD = 0.7  # Alpaca drops a new instruction with ROUGE-L above this to any earlier one
METHOD = f"""Verbs and nouns were found without a parser model (nothing is downloaded): each
instruction is read as a command. After polite openings ("Please", "Can you") and an
introductory clause ending in a comma ("Given a list, ..."), its first word is the verb when
lemminflect's bundled English lexicon knows it as a verb's base form; the object is the last
noun of the phrase that follows, before a preposition or punctuation, in the singular
("Write a short story about ..." &rarr; write / story). Questions ("What is ...", "Is there ...")
are grouped under <b>{QUESTION}</b> by their first word. The chart shows the {TOP_VERBS} most
common verbs and the {TOP_NOUNS} most common objects of each; the rest is grouped. Hover for
counts, click a verb to zoom in, click the centre to zoom out."""


@dataclass
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    records: list[int]  # per dataset
    sunburst_sectors: list[int]  # sectors drawn in each dataset's sunburst


def build_report(src, out, compare=None, seeds=None) -> ReportResult:
    """Write the report of `src` (and `compare`, side by side) to the HTML file `out`."""
    start = time.perf_counter()
    out = Path(out)
    sources = [Source.read(path, seeds) for path in ([src, compare] if compare else [src])]
    if out.resolve() in {p.resolve() for s in sources for p in s.files()}:
        raise SelfInstructError(f"{out}: that is a file the report reads; choose another --out")
    summaries = [summarize(s) for s in sources]
    page = _page(summaries)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, page)
    return ReportResult(
        out,
        out.stat().st_size,
        time.perf_counter() - start,
        [s.size for s in summaries],
        [len(verb_tree(s.verb_nouns)) for s in summaries],
    )


def default_report_path(src) -> Path:
    """Beside the source, never inside it: outputs/demo -> outputs/demo-report.html,
    alpaca_data.json -> alpaca_data-report.html, outputs/demo/data.jsonl -> outputs/demo-report.html."""
    path = Path(src)
    folder = folder_of(path)
    if folder is not None:
        return folder.parent / f"{folder.name}-report.html"
    return path.parent / f"{path.stem}-report.html"


# ---------------------------------------------------------------- the page


def _page(summaries: list[Summary]) -> str:
    from plotly.offline import get_plotlyjs

    names = " vs ".join(html.escape(s.name) for s in summaries)
    sections = [
        _verbs(summaries),
        _lengths(summaries),
        _diversity(summaries),
        _funnel(summaries),
        _cost(summaries),
        _evaluation(summaries),
        _records(summaries),
    ]
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    described = "".join(
        f"<li><b>{html.escape(s.name)}</b>: {s.size:,} records, {s.source.kind} "
        f"<code>{html.escape(str(s.source.path))}</code></li>"
        for s in summaries
    )
    shown = "".join(sections)  # a section with nothing to show (no eval.json) leaves the nav too
    nav = " · ".join(f'<a href="#{key}">{title}</a>' for key, title in SECTION_TITLES.items() if f'id="{key}"' in shown)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>selfinstruct report: {names}</title>
<style>{STYLE}</style>
<script>{get_plotlyjs()}</script>
</head><body>
<header><h1>{names}</h1><ul>{described}</ul>
<p class="muted">Made by selfinstruct {__version__} on {made}. Seeds for similarity:
<code>{html.escape(summaries[0].source.seeds.path.name)}</code> ({len(summaries[0].source.seeds.tasks)} tasks).</p>
<nav>{nav}</nav></header>
{shown}
<script>{SEARCH_SCRIPT}</script>
</body></html>
"""


SECTION_TITLES = {
    "verbs": "Verbs and objects",
    "lengths": "Lengths",
    "diversity": "Diversity",
    "funnel": "Funnel",
    "cost": "Cost",
    "evaluation": "Evaluation",
    "records": "Records",
}


def _section(key: str, body: str) -> str:
    return f'<section id="{key}"><h2>{SECTION_TITLES[key]}</h2>{body}</section>\n'


def _figure(figure, div_id: str) -> str:
    """The figure's div ("chart-" + div_id: never a section's id) and the script that draws it."""
    # include_plotlyjs=False: the page's head holds the one copy of plotly.js all figures share
    return figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{div_id}",
        config={"displaylogo": False, "responsive": True},
    )


def _row(cells: list[str]) -> str:
    return '<div class="row">' + "".join(f'<div class="cell">{c}</div>' for c in cells) + "</div>"


def _facts(summary: Summary, facts: list[tuple[str, str]]) -> str:
    items = "".join(f"<li><b>{value}</b> {label}</li>" for label, value in facts)
    return f'<div class="facts"><h3>{html.escape(summary.name)}</h3><ul>{items}</ul></div>'


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _verbs(summaries: list[Summary]) -> str:
    cells = []
    for i, s in enumerate(summaries):
        kinds = s.verb_counts()
        facts = [
            ("of instructions open with a command verb", _pct(kinds["verb"], s.size)),
            ("are questions", _pct(kinds[QUESTION], s.size)),
            ("neither (no verb found)", _pct(kinds[None], s.size)),
        ]
        cells.append(
            _facts(s, facts) + _figure(sunburst_figure(s.verb_nouns, f"Verbs and objects: {s.name}"), f"sunburst-{i}")
        )
    return _section("verbs", f'<p class="method">{METHOD}</p>' + _row(cells))


def _lengths(summaries: list[Summary]) -> str:
    facts = _row(
        [
            _facts(
                s,
                [
                    (
                        f"median {field} tokens",
                        f"{_median(s.input_lengths() if field == 'input' else s.lengths[field]):.0f}",
                    )
                    for field in charts.LENGTH_FIELDS
                ]
                + [("have an input", _pct(s.with_input(), s.size))],
            )
            for s in summaries
        ]
    )
    body = (
        facts
        + _figure(charts.length_histograms(summaries), "lengths")
        + _figure(charts.input_share(summaries), "input-share")
    )
    return _section(
        "lengths", '<p class="muted">Tokens in tiktoken\'s cl100k_base; inputs counted where there is one.</p>' + body
    )


def _median(values) -> float:
    return float(np.median(values)) if len(values) else 0.0


def _diversity(summaries: list[Summary]) -> str:
    cells = []
    for s in summaries:
        above = int((s.rouge_to_seed > ALPACA_THRESHOLD).sum())
        facts = [
            ("median ROUGE-L to the most similar seed", f"{_median(s.rouge_to_seed):.2f}"),
            (f"above {ALPACA_THRESHOLD} (what Alpaca's filter calls a near-copy)", _pct(above, s.size)),
            ("distinct first words", f"{len(s.first_words):,} ({_pct(len(s.first_words), s.size)} of records)"),
        ]
        cells.append(_facts(s, facts) + _clusters(s))
    body = (
        _figure(charts.rouge_histogram(summaries), "rouge")
        + _row(cells)
        + _figure(charts.first_words_chart(summaries), "first-words")
    )
    return _section("diversity", body)


def _clusters(summary: Summary) -> str:
    if summary.source.rejected is None:
        return f'<p class="muted">No {REJECTED_FILE} here: which duplicates were removed is not known.</p>'
    if not summary.clusters:
        return '<p class="muted">The cleaner removed no duplicates.</p>'
    items = []
    for c in summary.clusters:
        examples = "".join(
            f'<li>{html.escape(r.get("instruction", ""))} <span class="muted">({r["reason"]})</span></li>'
            for r in c.removed[:3]
        )
        more = f'<li class="muted">and {len(c.removed) - 3:,} more</li>' if len(c.removed) > 3 else ""
        items.append(
            f'<li><b>{html.escape(c.original)}</b> <span class="muted">({html.escape(c.original_id)}, '
            f"{html.escape(c.status)}; {len(c.removed):,} removed)</span><ul>{examples}{more}</ul></li>"
        )
    return f'<h4>The largest groups of duplicates removed</h4><ol class="clusters">{"".join(items)}</ol>'


def _funnel(summaries: list[Summary]) -> str:
    cells = []
    for i, s in enumerate(summaries):
        if s.funnel is None:
            cells.append(
                f'<p class="muted">{html.escape(s.name)}: a plain dataset, so no record of what was rejected.</p>'
            )
            continue
        parts = [_figure(charts.funnel_chart(s), f"funnel-{i}")]
        if s.funnel.unparseable:
            parts.append(
                f'<p class="muted">Besides: {s.funnel.unparseable:,} parts of answers could not be read as tasks.</p>'
            )
        if s.acceptance is not None:
            parts.append(_figure(charts.acceptance_chart(s), f"acceptance-{i}"))
        cells.append("".join(parts))
    return _section("funnel", _row(cells))


def _cost(summaries: list[Summary]) -> str:
    from ..engine.costs import usd

    cells = []
    for i, s in enumerate(summaries):
        cost = s.source.cost
        if cost is None:
            cells.append(f'<p class="muted">{html.escape(s.name)}: not a run directory, so no ledger and no cost.</p>')
            continue
        per_record = cost.tokens_per_record()
        facts = [
            (
                "spent",
                usd(cost.cost_usd)
                if cost.cost_usd is not None
                else f"unknown (no price for {html.escape(str(cost.model))})",
            ),
            ("per 1,000 accepted records", usd(cost.usd_per_1000_accepted)),
            ("tokens", f"{cost.prompt_tokens:,} prompt + {cost.completion_tokens:,} completion"),
            (
                "tokens per accepted record",
                "n/a"
                if per_record is None
                else f"{per_record['prompt']:,.0f} prompt + {per_record['completion']:,.0f} completion",
            ),
            ("requests", f"{cost.requests:,} ({cost.failures:,} failed)"),
        ]
        parts = [_facts(s, facts)]
        if s.spending is not None:
            parts.append(_figure(charts.spending_chart(s), f"spending-{i}"))
        if cost.projections:
            parts.append(_figure(charts.projection_chart(s), f"projection-{i}"))
        cells.append("".join(parts))
    return _section("cost", _row(cells))


def _evaluation(summaries: list[Summary]) -> str:
    """What `selfinstruct eval` measured of students trained on these records, where a run holds eval.json."""
    paths = [path for s in summaries for path in eval_files(s.source.path)]
    return _section("evaluation", evaluation_body(paths, _figure)) if paths else ""


def _records(summaries: list[Summary]) -> str:
    return _section("records", records_table(summaries))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1500px; padding: 0 24px; color: #222; }
header { border-bottom: 1px solid #ddd; } h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #eee; padding-top: 12px; }
nav a { margin-right: 6px; } .muted { color: #777; } code { font-size: 90%; }
.method { max-width: 1000px; line-height: 1.45; }
.row { display: flex; gap: 24px; flex-wrap: wrap; } .cell { flex: 1 1 600px; min-width: 0; }
.facts ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 8px 24px; } .facts h3 { margin-bottom: 0; }
.clusters li { margin-bottom: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; } td, th { border-bottom: 1px solid #eee; padding: 4px 6px;
  vertical-align: top; text-align: left; } td.text { white-space: pre-wrap; max-width: 420px; }
.scroll { max-height: 720px; overflow: auto; border: 1px solid #eee; } thead th { position: sticky; top: 0; background: #fafafa; }
tr.rejected td:first-child { color: #b03030; } #search { width: 420px; padding: 6px; font-size: 14px; margin: 8px 0; }
"""

# Hand-written on purpose, and only this: it hides the table rows that do not contain the
# search text. Every chart is plotly's.
SEARCH_SCRIPT = """
document.getElementById("search").addEventListener("input", function (event) {
  var query = event.target.value.toLowerCase(), shown = 0;
  document.querySelectorAll("#records-table tbody tr").forEach(function (row) {
    var match = row.textContent.toLowerCase().indexOf(query) !== -1;
    row.style.display = match ? "" : "none";
    shown += match ? 1 : 0;
  });
  document.getElementById("shown").textContent = shown;
});
"""
