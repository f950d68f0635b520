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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..chat import SHAREGPT_ROLES, to_turns
from ..records import TEXT_FIELDS


@dataclass(frozen=True)
class Format:
    name: str
    to_row: Callable[[dict, str | None], dict]
    chat: bool  # takes a system prompt
    only_jsonl: bool = False  # a consumer that reads nothing else (OpenAI's fine-tuning API)


def provenance(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TEXT_FIELDS}


def _alpaca(record: dict, system_prompt: str | None) -> dict:
    return {field: record[field] for field in TEXT_FIELDS}


def _jsonl(record: dict, system_prompt: str | None) -> dict:
    return {**_alpaca(record, None), **provenance(record)}


def _openai_messages(record: dict, system_prompt: str | None) -> list[dict]:
    return [{"role": role, "content": text} for role, text in to_turns(record, system_prompt)]


def _sharegpt(record: dict, system_prompt: str | None) -> dict:
    turns = [{"from": SHAREGPT_ROLES[role], "value": text} for role, text in to_turns(record, system_prompt)]
    return {"conversations": turns, **provenance(record)}


def _openai(record: dict, system_prompt: str | None) -> dict:
    return {"messages": _openai_messages(record, system_prompt)}


def _messages(record: dict, system_prompt: str | None) -> dict:
    return {"messages": _openai_messages(record, system_prompt), **provenance(record)}


FORMATS: dict[str, Format] = {
    "alpaca": Format("alpaca", _alpaca, chat=False),
    "jsonl": Format("jsonl", _jsonl, chat=False),
    "sharegpt": Format("sharegpt", _sharegpt, chat=True),
    "openai": Format("openai", _openai, chat=True, only_jsonl=True),
    "messages": Format("messages", _messages, chat=True),
}
