"""How a run went: its funnel, acceptance over time, and dollars and tokens over time.

Times come from the ledger (each response's `time`) and from the records (`created`, or
the time of the response they came from): a filter output or a plain dataset has a funnel
at most, and no timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..engine.task import UNPARSEABLE  # answers' parts no candidate could be made of: not judged by a rule
from .source import Source

MAX_POINTS = 400  # points per line: enough for a smooth curve, small for a 52K run's page


@dataclass
class Funnel:
    candidates: int
    rejected: dict[str, int]  # per rule, largest first
    accepted: int
    unparseable: int = 0


@dataclass
class Timeline:
    """Accepted and judged candidates per time bin (bin starts in epoch seconds)."""

    starts: np.ndarray
    accepted: np.ndarray
    judged: np.ndarray


@dataclass
class Spending:
    """Running totals after each response (at most MAX_POINTS of them), in epoch seconds."""

    times: np.ndarray
    usd: np.ndarray | None  # None: the teacher has no price
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    accepted: np.ndarray  # records accepted by then


def funnel(source: Source) -> Funnel | None:
    stats = source.stats or {}
    rules = source.rule_counts
    if rules is not None:
        if "candidates" in stats:  # a run; what the cleaner kept past the target is in its surplus
            return Funnel(
                stats["candidates"], rules, stats["accepted"] + stats.get("surplus", 0), stats.get("unparseable", 0)
            )
        return Funnel(stats.get("seen", 0), rules, stats.get("kept", len(source.records)))
    if source.rejected is None:
        return None
    counts: dict[str, int] = {}
    for row in source.rejected:
        counts[row.get("reason", "unknown")] = counts.get(row.get("reason", "unknown"), 0) + 1
    unparseable = counts.pop(UNPARSEABLE, 0)
    ordered = dict(sorted(counts.items(), key=lambda item: -item[1]))
    return Funnel(len(source.records) + sum(ordered.values()), ordered, len(source.records), unparseable)


def _seconds(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def _response_times(source: Source) -> dict[str, float]:
    if source.ledger is None:
        return {}
    return {e["request_id"]: _seconds(e["time"]) for e in source.ledger.responses if e.get("time")}


def _row_times(rows: list[dict], responses: dict[str, float]) -> np.ndarray:
    times = [_seconds(r.get("created")) or responses.get(r.get("request_id")) for r in rows]
    return np.array([t for t in times if t is not None], dtype=float)


def acceptance(source: Source, bins: int = 40) -> Timeline | None:
    """Accepted and judged candidates per time bin; None without times or rejects."""
    if source.rejected is None:
        return None
    responses = _response_times(source)
    accepted = _row_times(source.records, responses)
    rejected = _row_times([r for r in source.rejected if r.get("reason") != UNPARSEABLE], responses)
    judged = np.concatenate([accepted, rejected])
    if len(judged) < 2 or judged.min() == judged.max():
        return None
    edges = np.linspace(judged.min(), judged.max(), bins + 1)
    return Timeline(edges[:-1], np.histogram(accepted, edges)[0], np.histogram(judged, edges)[0])


def spending(source: Source) -> Spending | None:
    """Dollars, tokens and accepted records after each response of the run's ledger."""
    if source.ledger is None:
        return None
    events = sorted((e for e in source.ledger.responses if e.get("time")), key=lambda e: e["time"])
    if not events:
        return None
    times = np.array([_seconds(e["time"]) for e in events])
    priced = all(e.get("cost_usd") is not None for e in events)
    usd = np.cumsum([e.get("cost_usd") or 0.0 for e in events]) if priced else None
    prompt = np.cumsum([e["usage"]["prompt_tokens"] for e in events])
    completion = np.cumsum([e["usage"]["completion_tokens"] for e in events])
    accepted_times = np.sort(_row_times(source.records, _response_times(source)))
    accepted = np.searchsorted(accepted_times, times, side="right")
    keep = np.unique(np.linspace(0, len(events) - 1, min(len(events), MAX_POINTS)).round().astype(int))
    return Spending(times[keep], None if usd is None else usd[keep], prompt[keep], completion[keep], accepted[keep])
