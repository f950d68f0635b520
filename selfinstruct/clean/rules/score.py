"""A judge's threshold: keep the records a teacher rated at least `min_score` (0-5).

`selfinstruct judge` writes each record's `score` (AlpaGasus's 0-5 scale of accuracy and
helpfulness); AlpaGasus kept Alpaca's records rated 4.5 or more. The judge job sets
`min_score` from `--threshold`, and `filter --min-score` from its flag (see
`with_min_score`). A record without a score passes: there is nothing to compare (like a
record without a reference answer under `wrong_answer`).

    LowScore(min_score=4.5).check({"score": 4.0, ...})  -> "score 4 < 4.5"
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from .base import Rule, with_rule

DEFAULT_MIN_SCORE = 4.5  # AlpaGasus's threshold: about 9K of Alpaca's 52K records


def is_score(value) -> bool:
    """A number on the judge's 0-5 scale (bools are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 5


class LowScore(Rule):
    name = "low_score"
    reason = "a judge rated it below the threshold (`selfinstruct judge`, `filter --min-score`)"
    min_score: float = Field(DEFAULT_MIN_SCORE, ge=0, le=5)

    def check(self, record):
        if "score" not in record or record["score"] is None:
            return None
        score = record["score"]
        if not is_score(score):
            return f"score {score!r} is not a number from 0 to 5"
        return f"score {score:g} < {self.min_score:g}" if score < self.min_score else None


def with_min_score(rules: Sequence[Rule], min_score: float) -> list[Rule]:
    """The rules with the threshold set to `min_score`: the preset's `low_score` rule takes it
    where it stands, or one is appended (last, so that a record rejected as `low_score` passed
    every other rule, and re-selecting it at a lower threshold is sound)."""
    return with_rule(rules, LowScore, lambda _preset_rule: LowScore(min_score=min_score))
