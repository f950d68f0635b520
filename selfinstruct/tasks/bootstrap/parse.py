"""Turn a teacher's answer into candidate tasks.

Both parsers are lenient about the teacher and strict about the result: every candidate
has string `instruction`, `input` and `output`; anything else is reported, not guessed.

    parse_tasks('{"tasks": [{"instruction": "Name a prime.", "input": "", "output": "7"}]}', "stop", "json")
    -> ParsedTasks(tasks=[{"instruction": "Name a prime.", "input": "", "output": "7"}], problems=[])
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ...records import TEXT_FIELDS
from .prompts import NO_INPUT_MARKER


@dataclass
class ParsedTasks:
    tasks: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one entry per item we could not use


def parse_tasks(content: str, finish_reason: str, output_format: str) -> ParsedTasks:
    if output_format == "json":
        return _parse_json(content)
    return _parse_numbered(content, truncated=finish_reason == "length")


# ---------------------------------------------------------------- JSON


def _parse_json(content: str) -> ParsedTasks:
    """`{"tasks": [...]}` (or a bare list). A cut-off answer keeps its complete items:
    the items are decoded one by one and the first that does not decode ends the list."""
    result = ParsedTasks()
    try:
        doc = json.loads(content)
        items = doc.get("tasks") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            result.problems.append("answer has no 'tasks' list")
            return result
    except json.JSONDecodeError:
        items = _salvage_items(content)
        if not items:
            result.problems.append("answer is not JSON and no complete task could be recovered")
            return result
        result.problems.append("answer is not complete JSON; kept the complete items before the break")
    for i, item in enumerate(items):
        task = _clean(item)
        if task is None:
            result.problems.append(f"item {i} is not an object with string instruction/input/output")
        else:
            result.tasks.append(task)
    return result


def _salvage_items(content: str) -> list:
    start = content.find("[")
    if start < 0:
        return []
    decoder = json.JSONDecoder()
    items, pos = [], start + 1
    while True:
        while pos < len(content) and content[pos] in " \t\r\n,":
            pos += 1
        try:
            item, pos = decoder.raw_decode(content, pos)
        except json.JSONDecodeError:
            return items
        items.append(item)


# ---------------------------------------------------------------- Alpaca's numbered text

_BLOCK_SEPARATOR = re.compile(r"^\s*###\s*$", re.MULTILINE)
_FIELD_LABEL = re.compile(r"(?:^|\n)\s*\d+\s*\.\s*(Instruction|Input|Output)\s*:", re.IGNORECASE)


def _parse_numbered(content: str, truncated: bool) -> ParsedTasks:
    """Alpaca's post_process_gpt3_response: blocks split by `###`, each with
    `N. Instruction:`, `N. Input:`, `N. Output:`. The prompt ends with `K. Instruction:`,
    so the first block may start without its label. When the answer stopped at the
    length limit, the last block is likely cut and is dropped, as Alpaca does."""
    result = ParsedTasks()
    blocks = [b for b in _BLOCK_SEPARATOR.split(content) if b.strip()]
    if truncated and blocks:
        blocks.pop()
        result.problems.append("dropped the last task: the answer hit the length limit")
    for i, block in enumerate(blocks):
        if i == 0 and not _FIELD_LABEL.match(block):
            block = "1. Instruction:" + block
        parts = _FIELD_LABEL.split(block)
        labels = [p.lower() for p in parts[1::2]]
        if labels != ["instruction", "input", "output"]:
            result.problems.append(f"block {i} does not have Instruction/Input/Output in order")
            continue
        task = _clean(dict(zip(labels, parts[2::2])))
        if task is not None:
            result.tasks.append(task)
    return result


# ---------------------------------------------------------------- shared


def _clean(item) -> dict | None:
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in TEXT_FIELDS):
        return None
    task = {f: item[f].strip() for f in TEXT_FIELDS}
    if task["input"].lower() == NO_INPUT_MARKER:
        task["input"] = ""
    return task
