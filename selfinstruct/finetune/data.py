"""Tokenising records for supervised fine-tuning, with the loss on the response only.

Like Alpaca's `preprocess`, the prompt and the whole example are tokenised separately and the
first `len(prompt tokens)` positions are left out of the loss. The mask travels as trl's
`completion_mask` column, which trl's packing and collators carry through to `labels = -100`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from ..errors import SelfInstructError
from .template import Template, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataStats:
    records: int
    examples: int
    truncated: int  # longer than max_length: cut at the end, still trained on
    dropped: int  # prompt alone fills max_length: nothing left to learn from
    tokens: int
    response_tokens: int

    def as_dict(self) -> dict:
        return asdict(self)


def encode(records: list[dict], tokenizer, template: Template, max_length: int) -> tuple[list[dict], DataStats]:
    """`[{"input_ids", "completion_mask"}]` for the records that keep at least one response token."""
    if not records:
        raise SelfInstructError("no records to train on")
    prompts, fulls = zip(*(render(r, template, tokenizer) for r in records))
    # Alpaca's template is plain text, so the tokenizer adds BOS as it would at inference; a
    # chat template writes its own special tokens.
    special = template == "alpaca"
    prompt_ids = tokenizer(list(prompts), add_special_tokens=special)["input_ids"]
    full_ids = tokenizer(list(fulls), add_special_tokens=special)["input_ids"]
    examples, truncated, dropped = [], 0, 0
    for prompt, full in zip(prompt_ids, full_ids):
        n_prompt = min(len(prompt), len(full))
        mask = [0] * n_prompt + [1] * (len(full) - n_prompt)
        if len(full) > max_length:
            full, mask = full[:max_length], mask[:max_length]
            if not any(mask):
                dropped += 1
                continue
            truncated += 1
        examples.append({"input_ids": full, "completion_mask": mask})
    stats = DataStats(
        records=len(records),
        examples=len(examples),
        truncated=truncated,
        dropped=dropped,
        tokens=sum(len(e["input_ids"]) for e in examples),
        response_tokens=sum(sum(e["completion_mask"]) for e in examples),
    )
    if not examples:
        raise SelfInstructError(
            f"no trainable examples: all {len(records)} prompts are {max_length}+ tokens long; raise max_length"
        )
    if dropped or truncated:
        log.warning(
            "%d of %d records exceed max_length=%d tokens: %d cut short, %d dropped (prompt alone too long)",
            truncated + dropped,
            len(records),
            max_length,
            truncated,
            dropped,
        )
    return examples, stats
