"""`finetune --eval SET`: the student just trained, beside its base where the base is on this
machine, evaluated on SET at the end of the run (into OUT/eval); `evaluate` adds the scores to
the model card, so a student found later says what it learned as well as how it was trained.

    result = evaluate_finetuned(Path("students/gsm8k"), "smollm2-135m", "gsm8k-test.jsonl")
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import is_local_model
from .run import EvalConfig, EvalResult, evaluate

EVAL_DIR = "eval"


def evaluate_finetuned(
    out: Path, base_model: str, eval_set: str, *, merged: Path | None = None, progress: bool = True
) -> EvalResult:
    """Evaluate the student in `out` (its merged copy when there is one) and its base on `eval_set`;
    a base that is not on this machine (a hub id) is left out rather than downloaded."""
    student = str(merged or out)
    specs = [base_model, student] if is_local_model(base_model) else [student]
    return evaluate(EvalConfig(set=eval_set), specs, out / EVAL_DIR, progress=progress)
