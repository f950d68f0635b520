"""The imitation score: how well a local student predicts held-out teacher answers.

The student's mean negative log-likelihood per token of each answer, given its prompt, in the
very text `finetune` trains on (`finetune.template.render`: Alpaca's template or the chat
template, a reasoning trace before the answer, EOS at the end) and over the very tokens whose
loss it trains (`finetune.data.encode`'s response mask). It is the distillation objective
itself, measured on answers the student never saw: no sampling, no judge, no noise from
either. Lower is better; exp(NLL) is the perplexity.

The value is the token-weighted mean (total NLL over total response tokens, as a training loss
is); n counts answers, the independent units, and the 95% interval is the ratio estimator's
(delta method, t quantile), since tokens of one answer are not independent of each other.

    score = imitation_score("students/gsm8k", held_out_records)   # Score("nll_per_token", 1.42, 1.35, 1.49, n=200)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import SelfInstructError
from ..finetune.template import Template
from .scores import Score, t_quantile

METRIC = "nll_per_token"
DEFAULT_MAX_LENGTH = 2048  # tokens per example, prompt included (finetune's recipes train at 512-4096)


@dataclass(frozen=True)
class AnswerNLL:
    """One answer's summed NLL over its `tokens` response tokens."""

    nll: float
    tokens: int


def ratio_score(answers: Sequence[AnswerNLL], name: str = METRIC) -> Score:
    """Total NLL / total tokens with the delta-method interval of a ratio of means over answers:
    `[(2.0, 1), (4.0, 2), (6.0, 3)] -> 2.0 [2.0, 2.0]` (every answer has the same per-token NLL)."""
    n = len(answers)
    if n == 0:
        raise SelfInstructError("no answer to score: the evaluation set has no record with an output")
    tokens = sum(a.tokens for a in answers)
    ratio = sum(a.nll for a in answers) / tokens
    if n == 1:
        return Score(name, ratio, ratio, ratio, 1)
    mean_tokens = tokens / n
    residual_variance = sum((a.nll - ratio * a.tokens) ** 2 for a in answers) / (n - 1)
    half = t_quantile(n - 1) * math.sqrt(residual_variance / n) / mean_tokens
    return Score(name, ratio, ratio - half, ratio + half, n)


def answer_nlls(model, tokenizer, records: Sequence[dict], template: Template, max_length: int) -> list[AnswerNLL]:
    """Each record's response NLL, one forward pass per record (no padding to get wrong)."""
    import torch

    from ..finetune.data import encode

    examples, _ = encode(list(records), tokenizer, template, max_length)
    device = next(model.parameters()).device
    nlls = []
    with torch.inference_mode():
        for example in examples:
            ids = torch.tensor([example["input_ids"]], device=device)
            logits = model(input_ids=ids).logits[0, :-1].float()
            targets = ids[0, 1:]
            mask = torch.tensor(example["completion_mask"][1:], device=device, dtype=torch.bool)
            losses = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
            nlls.append(AnswerNLL(losses.item(), int(mask.sum())))
    return nlls


def imitation_nlls(
    checkpoint: str,
    records: Sequence[dict],
    *,
    template: Template | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> list[AnswerNLL]:
    """Each answer's NLL under the local model `checkpoint` (see `eval.checkpoint`); `records`
    hold instruction, input, output, optional reasoning: the teacher's answers. `template`: the
    prompt template [the checkpoint's recipe, else its chat template]; compare a base with its
    student under the student's template, as the student was trained."""
    from .checkpoint import load_checkpoint

    scorable = [r for r in records if r.get("output")]
    if not scorable:
        raise SelfInstructError("no answer to score: the evaluation set has no record with an output")
    loaded = load_checkpoint(checkpoint, template)
    return answer_nlls(loaded.model, loaded.tokenizer, scorable, loaded.template, max_length)


def imitation_score(checkpoint: str, records: Sequence[dict], **options) -> Score:
    """The imitation score of `checkpoint` on `records` (options: see `imitation_nlls`)."""
    return ratio_score(imitation_nlls(checkpoint, records, **options))


def paired_drop(before: Sequence[AnswerNLL], after: Sequence[AnswerNLL]) -> Score:
    """How much lower `after` (a student) scores than `before` (its base) on the same answers, per
    token, with the interval of the per-answer differences: an answer's difficulty is common to
    both and cancels, so the difference is known far more precisely than two separate intervals
    suggest. `[(2.0, 1)] before, [(1.5, 1)] after -> 0.5`."""
    if [a.tokens for a in before] != [a.tokens for a in after]:
        raise SelfInstructError("a paired difference needs the same answers, tokenised alike, on both sides")
    return ratio_score([AnswerNLL(b.nll - a.nll, b.tokens) for b, a in zip(before, after)], "nll_drop_per_token")
