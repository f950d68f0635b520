"""A small real run for the report tests: `generate` with the default preset against an
in-process teacher whose answers are known, so the page's every section has something to
show (commands, questions, an input-less share, rejects by three rules, duplicate groups,
a priced ledger).

Each answer holds three good tasks and one bad one, in turn: an instruction too short for
Alpaca's rule, a refusal, an exact copy of the first task, a near copy of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from fake_teacher import FakeTeacher

from selfinstruct.tasks.bootstrap import GenerateConfig, generate

GOOD = [
    ("Write a short poem about the sea at night.", ""),
    ("Give me three tips for staying focused while studying.", ""),
    ("Classify the sentiment of the following review.", "The battery died after two days and support never answered."),
    ("What is the difference between weather and climate?", ""),
    (
        "Summarize the given paragraph in one sentence.",
        "Bees carry pollen between flowers, which lets many crops grow fruit.",
    ),
    ("Write a polite email declining a meeting invitation.", ""),
    ("Generate a list of five names for a bakery.", ""),
    ("Explain why the sky looks blue during the day.", ""),
    ("Rewrite the sentence in the passive voice.", "The committee approved the new budget."),
    ("Suggest a weekend plan for a family with small children.", ""),
    ("How do I convert Celsius to Fahrenheit by hand?", ""),
    ("Translate the sentence into French.", "Where is the train station?"),
    ("Create a workout routine for beginners at home.", ""),
    ("Find the largest number in the list.", "12, 45, 7, 88, 23"),
    ("Describe the taste of a ripe mango to someone who never had one.", ""),
    ("Write a story about a robot who learns to paint.", ""),
    ("Give an example of a metaphor about time.", ""),
    ("Identify the verb in the sentence.", "The children laughed loudly."),
    ("Generate a catchy slogan for a recycling campaign.", ""),
    ("Which planet in our solar system has the most moons?", ""),
    ("Write a haiku about autumn leaves.", ""),
    ("List the main causes of the French Revolution.", ""),
    ("Compose a tweet announcing a new coffee shop opening.", ""),
    ("Explain the rules of chess to a ten-year-old.", ""),
]
SMALL_RUN_RECORDS = len(GOOD)
SMALL_RUN_REQUESTS = len(GOOD) // 3
BAD_KINDS = ["instruction_words", "teacher_artefact", "exact_duplicate", "near_duplicate"]


def _task(instruction: str, input_text: str) -> dict:
    return {"instruction": instruction, "input": input_text, "output": f"A careful answer to: {instruction.lower()}"}


def _bad(index: int) -> dict:
    kind = BAD_KINDS[index % len(BAD_KINDS)]
    earlier = GOOD[0]  # every copy is of the first task: one group of 4 duplicates
    if kind == "instruction_words":
        return _task("Say hi.", "")
    if kind == "teacher_artefact":
        return {
            **_task("Write a joke about lawyers and their fees.", ""),
            "output": "As an AI language model, I cannot write jokes.",
        }
    if kind == "exact_duplicate":
        return _task(*earlier)
    return _task(earlier[0].replace(".", " please."), "")


def answer(request_id: str) -> str:
    index = int(request_id[1:])
    good = [_task(*GOOD[(index * 3 + j) % len(GOOD)]) for j in range(3)] if index < SMALL_RUN_REQUESTS else []
    return json.dumps({"tasks": [*good, _bad(index)]})


def write_small_run(out: Path) -> Path:
    config = GenerateConfig(
        base_url="http://127.0.0.1:9/v1",
        model="gpt-4o-mini",
        tasks_per_request=4,
        num_instructions=SMALL_RUN_RECORDS,
        concurrency=1,
        max_tokens=400,
    )
    generate(config, out, teacher=FakeTeacher(answer, model="gpt-4o-mini"), progress=False)
    return out
