"""Turning teacher answers into candidate tasks."""

import json

from selfinstruct.tasks.bootstrap.parse import parse_tasks
from selfinstruct.tasks.bootstrap.prompts import build_messages, tasks_schema

TASKS = [
    {"instruction": "Name the capital of France.", "input": "", "output": "Paris."},
    {"instruction": "Sort these numbers.", "input": "3, 1, 2", "output": "1, 2, 3"},
    {"instruction": "Translate to Spanish.", "input": "Good morning", "output": "Buenos dias"},
]


def test_json_answer():
    parsed = parse_tasks(json.dumps({"tasks": TASKS}), "stop", "json")
    assert parsed.tasks == TASKS and parsed.problems == []


def test_truncated_json_keeps_complete_items():
    text = json.dumps({"tasks": TASKS})
    parsed = parse_tasks(text[: text.index("Translate") + 5], "length", "json")
    assert parsed.tasks == TASKS[:2]
    assert "not complete JSON" in parsed.problems[0]


def test_json_items_with_wrong_types_are_reported_not_guessed():
    answer = {"tasks": [TASKS[0], {"instruction": "x", "input": {"a": 1}, "output": "y"}, "junk"]}
    parsed = parse_tasks(json.dumps(answer), "stop", "json")
    assert parsed.tasks == [TASKS[0]] and len(parsed.problems) == 2


def test_no_input_marker_becomes_empty():
    answer = {"tasks": [{**TASKS[0], "input": "<noinput>"}]}
    assert parse_tasks(json.dumps(answer), "stop", "json").tasks[0]["input"] == ""


ALPACA_TEXT = """ Name the capital of France.
4. Input:
<noinput>
4. Output:
Paris.
###
5. Instruction: Sort these numbers.
5. Input:
3, 1, 2
5. Output:
1, 2, 3
###
6. Instruction: Translate to Spanish.
6. Input:
Good morning
6. Output:
Buenos"""


def test_alpaca_numbered_text_continues_the_prompt():
    # The prompt ends with "4. Instruction:", so the answer starts mid-block, as with Alpaca.
    parsed = parse_tasks(ALPACA_TEXT.replace("Buenos", "Buenos dias"), "stop", "text")
    assert parsed.tasks == TASKS


def test_alpaca_text_at_the_length_limit_drops_the_last_block():
    parsed = parse_tasks(ALPACA_TEXT, "length", "text")
    assert parsed.tasks == TASKS[:2] and "length limit" in parsed.problems[0]


def test_prompts_show_the_examples_and_ask_for_n():
    examples = [{"id": "s1", **TASKS[0]}, {"id": "s2", **TASKS[1]}]
    text = build_messages(examples, 7, "text")[0]["content"]
    assert "set of 7 diverse task instructions" in text and "1. Input:\n<noinput>" in text
    assert text.endswith("###\n3. Instruction:")
    as_json = build_messages(examples, 7, "json")[0]["content"]
    assert '"tasks"' in as_json and json.dumps(TASKS[1]["input"]) in as_json
    assert tasks_schema(7, bounded=True)["properties"]["tasks"]["maxItems"] == 7
    assert "maxItems" not in tasks_schema(7, bounded=False)["properties"]["tasks"]
