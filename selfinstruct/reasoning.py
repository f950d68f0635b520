"""Reasoning traces: where a teacher puts them, and the form students are trained on.

Teachers hand the trace back three ways:
- in a field beside the answer: `reasoning_content` (DeepSeek's reasoner, vLLM's reasoning
  parsers) or `reasoning` (other OpenAI-compatible servers);
- inline, before the answer: `<think>…</think>answer`;
- inline without the opening tag, which R1-distilled models served by vLLM produce:
  `…</think>answer`.

    split_reasoning("<think>2+2 is 4</think>\\n\\nFour.", None) -> ("2+2 is 4", "Four.")
    split_reasoning("2+2 is 4</think>Four.", None)             -> ("2+2 is 4", "Four.")
    split_reasoning("Four.", "2+2 is 4")                       -> ("2+2 is 4", "Four.")
    split_reasoning("<think>2+2 is", None)                     -> ("2+2 is", "")   (cut off)

`inline` writes the form open reasoning datasets train on: `<think>\\n…\\n</think>\\n\\nanswer`.
"""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


def split_reasoning(content: str, reasoning: str | None) -> tuple[str | None, str]:
    """(trace or None, answer) of one answer's content and its reasoning field."""
    if reasoning:
        return reasoning.strip(), content.split(CLOSE, 1)[-1].strip() if CLOSE in content else content.strip()
    text = content.lstrip()
    if CLOSE in text:
        trace, answer = text.split(CLOSE, 1)
        return trace.removeprefix(OPEN).strip(), answer.strip()
    if text.startswith(OPEN):  # the trace never ended: the answer hit its length limit
        return text.removeprefix(OPEN).strip(), ""
    return None, content.strip()


def inline(reasoning: str | None, answer: str) -> str:
    """The answer with its trace inline, as reasoning SFT data has it; the answer alone without one."""
    return f"{OPEN}\n{reasoning}\n{CLOSE}\n\n{answer}" if reasoning else answer
