"""DIR/eval.json, what an eval found, and the views of it: the terminal table and the model card.

    {"format": 1, "created": "2026-12-06T11:20:00Z",
     "set": {"path", "sha256", "items", "with_answer", "with_output", "verified_by": {"math-verify": 200}},
     "judge": {"model", "prompt"} | null,           # the pairwise judge, when one judged
     "models": {"student": {"spec", "model", "samples", "answers" (its run directory), "answered", "unanswered", "cost_usd",
                            "answers_per_s", "overlap": {...} | null, "pairwise": {...} | null,
                            "scores": {"accuracy": {"name", "value", "low", "high", "n"}, ...}}}}

One eval directory holds one set: a later eval of another model into it adds its entry (and
replaces one of the same name), so `finetune --eval` and a hand-run baseline end up in one table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ..errors import SelfInstructError
from ..records import read_json_object, write_json_atomic, write_text_atomic
from .scores import Score

EVAL_FILE = "eval.json"
FORMAT = 1
# The table's columns, in this order; pass@k columns come after accuracy.
ORDER = ("accuracy", "pass@", "win_rate", "nll_per_token")
LABELS = {"accuracy": "accuracy", "win_rate": "win rate", "nll_per_token": "NLL/token"}


def read_eval(folder: str | Path) -> dict | None:
    """The eval.json of `folder`, or None when it has none; refused when written by an
    incompatible version."""
    path = Path(folder) / EVAL_FILE
    doc = read_json_object(path)
    if doc is None:
        return None
    if doc.get("format") != FORMAT:
        raise SelfInstructError(f"{path}: format {doc.get('format')!r}, this selfinstruct reads format {FORMAT}")
    return doc


def write_eval(folder: Path, eval_set: dict, models: dict[str, dict], judge: dict | None) -> dict:
    """Add the `models` (label -> entry) to the folder's eval.json, keeping the other models'
    entries of the same set, and return the whole document."""
    old = read_eval(folder)
    kept = old["models"] if old and old["set"]["sha256"] == eval_set["sha256"] else {}
    doc = {
        "format": FORMAT,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "set": eval_set,
        "judge": judge or (old or {}).get("judge"),
        "models": {**kept, **models},
    }
    write_json_atomic(folder / EVAL_FILE, doc)
    return doc


def scores_of(entry: dict) -> dict[str, Score]:
    return {name: Score.from_json(score) for name, score in entry["scores"].items()}


def metric_columns(doc: dict) -> list[str]:
    """The metrics any model has, in the table's order."""
    names = {name for entry in doc["models"].values() for name in entry["scores"]}
    return sorted((n for n in names if n.startswith(ORDER)), key=lambda n: (_rank(n), n))


def _rank(name: str) -> int:
    return next(i for i, prefix in enumerate(ORDER) if name.startswith(prefix))


def label_of(metric: str) -> str:
    return LABELS.get(metric, metric)


def cell(entry: dict, metric: str) -> str:
    score = entry["scores"].get(metric)
    return "-" if score is None else str(Score.from_json(score)).rsplit(" n=", 1)[0]


def table(doc: dict) -> str:
    """The models side by side, plain text: each score with its 95% interval, then what
    a reader weighs it with (n, answer length, the judge's ties, the overlap with training)."""
    metrics = metric_columns(doc)
    header = ["model", *map(label_of, metrics), "n", "W/T/L", "length", "overlap"]
    rows = [header]
    for label, entry in doc["models"].items():
        pairwise, overlap = entry.get("pairwise"), entry.get("overlap")
        n = max((s["n"] for s in entry["scores"].values()), default=0)
        rows.append(
            [
                label,
                *(cell(entry, m) for m in metrics),
                str(n),
                f"{pairwise['wins']}/{pairwise['ties']}/{pairwise['losses']}" if pairwise else "-",
                f"{pairwise['mean_length']:.0f}" if pairwise and pairwise["mean_length"] is not None else "-",
                f"{overlap['contaminated']}/{overlap['checked']}" if overlap else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def notes(doc: dict) -> list[str]:
    """What the table leaves out: the set, the judge, the reference's length, malformed verdicts."""
    s = doc["set"]
    lines = [f"set: {s['path']} ({s['items']} items, sha256 {s['sha256'][:12]})"]
    if doc.get("judge"):
        lines.append(f"judge: {doc['judge']['model']} ({doc['judge']['prompt']}, both orders)")
    for label, entry in doc["models"].items():
        pairwise, overlap = entry.get("pairwise"), entry.get("overlap")
        if pairwise:
            lines.append(
                f"{label}: reference answers {pairwise['reference_mean_length']:.0f} characters on average; "
                f"{pairwise['malformed']} malformed verdicts, {pairwise['left_out']} pairs left out"
            )
            if not pairwise["judged"]:
                lines.append(f"{label}: the judge gave no pair a readable verdict both ways: give a stronger judge")
        if overlap and overlap["contaminated"]:
            lines.append(
                f"{label}: {overlap['contaminated']} of {overlap['checked']} items share a {overlap['n']}-gram with "
                f"the training data {overlap['train']} (e.g. {overlap['examples'][0]['ngram']!r})"
            )
        if entry.get("unanswered"):
            lines.append(f"{label}: {entry['unanswered']} items got no answer (counted as wrong)")
    return lines


def card_lines(doc: dict) -> list[str]:
    """The model card's "Evaluation" section: a markdown table of the models evaluated with it."""
    models = doc["models"]
    metrics = metric_columns(doc)
    lines = [
        "## Evaluation",
        "",
        f"`selfinstruct eval` on `{doc['set']['path']}` ({doc['set']['items']} items); 95% intervals in brackets.",
        "",
        "| model | " + " | ".join(map(label_of, metrics)) + " | overlap with training data |",
        "|---" * (len(metrics) + 2) + "|",
    ]
    for name, entry in models.items():
        overlap = entry.get("overlap")
        seen = f"{overlap['contaminated']} of {overlap['checked']} items" if overlap else "not checked"
        lines.append(f"| {name} | " + " | ".join(cell(entry, m) for m in metrics) + f" | {seen} |")
    return lines


def student_folders(spec: str) -> list[Path]:
    """The folders `finetune` wrote that a model spec names, whose cards show its scores: OUT
    (README.md beside metrics.json), and OUT with its merged copy for OUT/merged."""
    path = Path(spec).expanduser()
    folders = [path, path.parent] if path.name == "merged" else [path]
    trained = folders[-1]
    return folders if path.is_dir() and (trained / "metrics.json").is_file() else []


def update_model_card(folder: Path, doc: dict) -> bool:
    """Put (or replace) the "Evaluation" section in the model card README.md of `folder`, before
    its "Prompt" section; False when there is no card."""
    card = folder / "README.md"
    if not card.is_file():
        return False
    lines = card.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line == "## Evaluation"), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        del lines[start:end]
    at = next((i for i, line in enumerate(lines) if line == "## Prompt"), len(lines))
    lines[at:at] = [*card_lines(doc), ""]
    write_text_atomic(card, "\n".join(lines) + "\n")
    return True
