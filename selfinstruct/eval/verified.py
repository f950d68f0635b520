"""Verified accuracy: each answer's final answer against the item's reference answer.

A reference math-verify can read (GSM8K's `#### 72`, `\\boxed{3/4}`, `0.75`) is compared with
math-verify, as `answer --verify math` does (`clean/rules/verify.py`); any other reference (a
label, a word) by exact match after normalising case, spaces and a closing full stop, against
the whole answer or its last line ("... so the answer is:\\nPositive").

With `--samples k`, each item has k answers: accuracy is pass@1 (the mean share of correct
answers per item) and pass@k the unbiased estimate of Chen et al. 2021 (`scores.pass_at_k`).

    is_correct("48/2 = 24, so 48+24 = 72 clips.", "Natalia sold ... #### 72") -> True
    is_correct("The sentiment is:\\npositive.", "Positive") -> True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..clean.rules.verify import final_answer, final_reference, reference_answer, same_answer
from .scores import Score, pass_at_k_score, proportion


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".").strip()


def is_correct(answer: str, reference: str) -> bool:
    gold = reference_answer(reference)
    if gold:
        return same_answer(gold, final_answer(answer))
    expected = _normal(final_reference(reference))
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    return bool(expected) and (_normal(answer) == expected or bool(lines) and _normal(lines[-1]) == expected)


def method_of(reference: str) -> str:
    """How an item's answers are checked: "math-verify" or "exact match"."""
    return "math-verify" if reference_answer(reference) else "exact match"


def verified_scores(answers: Mapping[str, Sequence[str]], references: Mapping[str, str], samples: int) -> list[Score]:
    """Accuracy (and pass@k with k = `samples` > 1) over the items with a reference.

    `answers`: item id -> its answers (an item the model never answered has none, and counts
    as wrong: a model that fails to answer has not passed)."""
    counts = [
        (samples, sum(is_correct(a, reference) for a in answers.get(item, ())[:samples]))
        for item, reference in references.items()
    ]
    if samples == 1:
        return [proportion("accuracy", sum(c for _, c in counts), len(counts))]
    accuracy = pass_at_k_score(counts, 1)
    return [
        Score("accuracy", accuracy.value, accuracy.low, accuracy.high, accuracy.n),
        pass_at_k_score(counts, samples),
    ]
