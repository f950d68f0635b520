"""The row each export format makes of a record.

    alpaca    {"instruction", "input", "output"}: Alpaca's alpaca_data.json fields, nothing else
    jsonl     the record as selfinstruct keeps it: Alpaca's fields plus provenance
              (id, request_id, teacher_model, created)
    sharegpt  {"conversations": [{"from": "human", "value"}, {"from": "gpt", "value"}], ...provenance}:
              for FastChat, LLaMA-Factory, axolotl (trl keeps the roles human/gpt: give it `messages`)
    openai    {"messages": [{"role": "user", "content"}, {"role": "assistant", "content"}]}:
              OpenAI's chat fine-tuning file, which takes no other keys
    messages  {"messages": [...], ...provenance}: the conversational column trl's SFTTrainer reads

The chat formats start with a system turn when a system prompt is given (none by default:
the student then learns to answer without one, as Alpaca's did).

A record's reasoning trace (`reasoning`) is a column of its own (`reasoning`, and
`reasoning_content` in the assistant message of `openai` / `messages`, the name chat templates
read), or written inline into the output, or dropped: see `with_reasoning`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..chat import SHAREGPT_ROLES, to_turns
from ..reasoning import inline
from ..records import TEXT_FIELDS


@dataclass(frozen=True)
class Format:
    name: str
    to_row: Callable[[dict, str | None], dict]
    chat: bool  # takes a system prompt
    only_jsonl: bool = False  # a consumer that reads nothing else (OpenAI's fine-tuning API)


REASONING_MODES = ("inline", "field", "drop")


def with_reasoning(record: dict, mode: str) -> dict:
    """The record as a reasoning mode exports it: `inline` writes the trace into the output
    (`<think>…</think>` then the answer), `field` keeps it apart, `drop` leaves it out."""
    if "reasoning" not in record or mode == "field":
        return record
    rest = {k: v for k, v in record.items() if k != "reasoning"}
    return rest if mode == "drop" else {**rest, "output": inline(record["reasoning"], record["output"])}


def provenance(record: dict, *moved: str) -> dict:
    """The record's other keys: ids, teacher, dates (and `reasoning`, unless `moved` elsewhere)."""
    return {k: v for k, v in record.items() if k not in TEXT_FIELDS and k not in moved}


def _alpaca(record: dict, system_prompt: str | None) -> dict:
    reasoning = {"reasoning": record["reasoning"]} if "reasoning" in record else {}
    return {**{field: record[field] for field in TEXT_FIELDS}, **reasoning}


def _jsonl(record: dict, system_prompt: str | None) -> dict:
    return {**_alpaca(record, None), **provenance(record)}


def _openai_messages(record: dict, system_prompt: str | None) -> list[dict]:
    messages = [{"role": role, "content": text} for role, text in to_turns(record, system_prompt)]
    if "reasoning" in record:
        messages[-1]["reasoning_content"] = record["reasoning"]
    return messages


def _sharegpt(record: dict, system_prompt: str | None) -> dict:
    turns = [{"from": SHAREGPT_ROLES[role], "value": text} for role, text in to_turns(record, system_prompt)]
    return {"conversations": turns, **provenance(record, "conversation")}


def _openai(record: dict, system_prompt: str | None) -> dict:
    return {"messages": _openai_messages(record, system_prompt)}


def _messages(record: dict, system_prompt: str | None) -> dict:
    return {"messages": _openai_messages(record, system_prompt), **provenance(record, "reasoning", "conversation")}


FORMATS: dict[str, Format] = {
    "alpaca": Format("alpaca", _alpaca, chat=False),
    "jsonl": Format("jsonl", _jsonl, chat=False),
    "sharegpt": Format("sharegpt", _sharegpt, chat=True),
    "openai": Format("openai", _openai, chat=True, only_jsonl=True),
    "messages": Format("messages", _messages, chat=True),
}
