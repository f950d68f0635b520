"""Verified answers: keep only the samples whose final answer equals the reference, as
DeepSeek-R1's distillation data was filtered (`answer --verify math`).

The reference is the record's `reference_answer` (the source's `answer` or `solution`
column); GSM8K writes its worked solution then `#### 72`, and only what follows `####` is
compared. Both sides go through Hugging Face's `math-verify` (a parser for LaTeX and plain
expressions: `\\boxed{3/4}`, `0.75` and "the answer is 3/4" are the same answer).

An answer that cannot be checked (no reference, or one math-verify cannot read) is not a
verified answer: `answer --verify math` runs `unverifiable` first, which rejects it under its
own reason. On its own (in a filter preset), `wrong_answer` passes a record without a reference.
"""

from __future__ import annotations

import functools

from .base import Rule


@functools.cache
def _math_verify():
    try:
        from math_verify import parse, verify
    except ImportError:
        from ...errors import SelfInstructError

        raise SelfInstructError("verifying answers needs math-verify: pip install 'math-verify>=0.9'") from None
    return parse, verify


def final_reference(reference: str) -> str:
    """The answer part of a reference: GSM8K's `#### 72`, else the whole text."""
    return reference.rsplit("####", 1)[-1].strip()


@functools.lru_cache(maxsize=4096)
def reference_answer(reference: str) -> list:
    """math-verify's reading of a reference's final answer; empty when it reads none. Cached:
    `unverifiable` and `wrong_answer` both read each record's, and `--samples` repeats it."""
    parse, _ = _math_verify()
    return parse(final_reference(reference))


def final_answer(output: str) -> list:
    """What math-verify reads as the final answer of `output` (empty: nothing it can read)."""
    parse, _ = _math_verify()
    return parse(output)


def same_answer(gold: list, answer: list) -> bool:
    """Whether `answer` (from `final_answer`) is the reference answer `gold` (from `reference_answer`)."""
    _, verify = _math_verify()
    return bool(answer) and verify(gold, answer)


def unreadable(reference: str) -> str:
    return f"the reference {final_reference(reference)[:40]!r} has no answer math-verify can read"


class Unverifiable(Rule):
    name = "unverifiable"
    reason = "no reference answer math-verify can read, so the answer cannot be verified"

    def check(self, record):
        reference = record.get("reference_answer")
        if reference is None:
            return "the source has no reference answer for this instruction"
        return None if reference_answer(str(reference)) else unreadable(str(reference))


class WrongAnswer(Rule):
    name = "wrong_answer"
    reason = "the final answer is not the reference answer (math-verify)"

    def check(self, record):
        reference = record.get("reference_answer")
        if reference is None:
            return None
        gold = reference_answer(str(reference))
        if not gold:
            return unreadable(str(reference))
        answer = final_answer(record["output"])
        if not same_answer(gold, answer):
            found = answer[-1] if answer else "nothing"
            return f"answered {str(found)[:40]!r}, reference {str(gold[-1])[:40]!r}"
        return None
