"""Turning a record into the text a student is trained on.

`alpaca` is Stanford Alpaca's prompt, byte for byte (`PROMPT_DICT` in tatsu-lab/stanford_alpaca
train.py), so a student trained here answers the prompts Alpaca-style tools send it. `chat`
uses the model's own chat template instead, for instruct models that already speak one.
A record with a reasoning trace is trained on `<think>\ntrace\n</think>\n\nanswer`, the
loss on the trace and the answer.
"""

from __future__ import annotations

from typing import Literal

from ..errors import SelfInstructError
from ..reasoning import inline

Template = Literal["alpaca", "chat"]

PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)


def alpaca_prompt(record: dict) -> str:
    # Alpaca tests `!= ""`, so an input of only whitespace still gets the input template.
    template = PROMPT_INPUT if record.get("input", "") != "" else PROMPT_NO_INPUT
    return template.format_map(record)


def chat_messages(record: dict) -> list[dict]:
    """The user turn: the instruction, then the input after a blank line (if any)."""
    instruction, input_ = record["instruction"], record.get("input", "")
    return [{"role": "user", "content": instruction if input_ == "" else f"{instruction}\n\n{input_}"}]


def render(record: dict, template: Template, tokenizer) -> tuple[str, str]:
    """`(prompt, prompt + response + end)`: the two texts whose token counts set the loss mask.

    The response ends with EOS (Alpaca appends `tokenizer.eos_token`); with a chat template the
    template's end-of-turn token closes it, and EOS is added only if the template omits it.
    """
    response = inline(record.get("reasoning"), record["output"])  # a trace is learned too, before the answer
    if template == "alpaca":
        prompt = alpaca_prompt(record)
        return prompt, prompt + response + tokenizer.eos_token
    messages = chat_messages(record)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": response}], tokenize=False)
    if not full.rstrip().endswith(tokenizer.eos_token):
        full += tokenizer.eos_token
    return prompt, full


def check_template(template: Template, tokenizer, model: str) -> None:
    if template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise SelfInstructError(f"{model}: the tokenizer has no chat template; use --template alpaca")
    if not tokenizer.eos_token:
        raise SelfInstructError(f"{model}: the tokenizer defines no EOS token, so a response could not end")
