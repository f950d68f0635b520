"""The searchable table: a sample of accepted and rejected records with the cleaner's verdict."""

from __future__ import annotations

import html

from .summary import SAMPLE_ACCEPTED, SAMPLE_REJECTED, Summary

MAX_CHARS = 400  # per cell: the table shows what a record is, the dataset holds all of it


def records_table(summaries: list[Summary]) -> str:
    compare = len(summaries) > 1
    rows = [_row(s.name, record, compare) for s in summaries for record in s.sample]
    header = "".join(
        f"<th>{h}</th>"
        for h in (["dataset"] if compare else [])
        + ["verdict", "instruction", "input", "output", "verb / object", "detail"]
    )
    return f"""<p class="muted">A random sample: up to {SAMPLE_ACCEPTED} accepted and {SAMPLE_REJECTED} rejected records
per dataset, each rejected one with the rule that rejected it. Type to search every column.</p>
<input id="search" type="search" placeholder="Search instructions, outputs, verdicts..." aria-label="search records">
<span class="muted"><span id="shown">{len(rows)}</span> of {len(rows)} rows</span>
<div class="scroll"><table id="records-table"><thead><tr>{header}</tr></thead><tbody>
{"".join(rows)}
</tbody></table></div>"""


def _row(name: str, record: dict, compare: bool) -> str:
    verb, noun = record.get("verb"), record.get("noun")
    verb_object = " / ".join(x for x in (verb, noun) if x) or "-"
    cells = ([name] if compare else []) + [record["verdict"]]
    cells = [f"<td>{html.escape(c)}</td>" for c in cells]
    cells += [f'<td class="text">{_cut(record.get(field, ""))}</td>' for field in ("instruction", "input", "output")]
    cells += [f"<td>{html.escape(verb_object)}</td>", f'<td class="text">{_cut(str(record.get("detail") or ""))}</td>']
    kind = "accepted" if record["verdict"] == "accepted" else "rejected"
    return f'<tr class="{kind}">{"".join(cells)}</tr>\n'


def _cut(text: str) -> str:
    return html.escape(text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " […]")
