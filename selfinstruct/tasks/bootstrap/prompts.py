"""The bootstrap prompt: k example tasks in, n new tasks out.

The wording follows Stanford Alpaca's prompt.txt (Apache-2.0), with its numbering fixed.
Two output formats:
- "json": the teacher returns `{"tasks": [{"instruction", "input", "output"}, ...]}`,
  enforced by structured output where the endpoint supports it;
- "text": Alpaca's numbered `N. Instruction: / N. Input: / N. Output:` blocks separated
  by `###`, for endpoints without structured output.
"""

from __future__ import annotations

import json
import random

REQUIREMENTS = """\
You are asked to come up with a set of {n} diverse task instructions. These task instructions will be given to a language model and we will evaluate the model for completing the instructions.

Here are the requirements:
1. Try not to repeat the verb for each instruction to maximize diversity.
2. The language used for the instruction also should be diverse. For example, you should combine questions with imperative instructions.
3. The type of instructions should be diverse. The list should include diverse types of tasks like open-ended generation, classification, editing, etc.
4. A language model should be able to complete the instruction. For example, do not ask the assistant to create any visual or audio output. For another example, do not ask the assistant to wake you up at 5pm or set a reminder because it cannot perform any action.
5. The instructions should be in English.
6. The instructions should be 1 to 2 sentences long. Either an imperative sentence or a question is permitted.
7. You should generate an appropriate input to the instruction. The input field should contain a specific example provided for the instruction. It should involve realistic data and should not contain simple placeholders. The input should provide substantial content to make the instruction challenging but should ideally not exceed 100 words.
8. Not all instructions require input. For example, when an instruction asks about some general information, "what is the highest peak in the world", it is not necessary to provide a specific context. In this case, {no_input_rule}
9. The output should be an appropriate response to the instruction and the input. Make sure the output is less than 100 words.
"""

JSON_TAIL = """
Here are {k} example tasks as JSON:
{examples}

Now write {n} new tasks, different from the examples. Answer with a JSON object of the form {{"tasks": [{{"instruction": "...", "input": "...", "output": "..."}}, ...]}}.
"""

TEXT_TAIL = """
List of {n} tasks:
{examples}###
{next}. Instruction:"""

NO_INPUT_MARKER = "<noinput>"


def sample_examples(seeds: list[dict], machine: list[dict], k: int, m: int, rng: random.Random) -> list[dict]:
    """k human seed tasks plus up to m accepted machine tasks (self-instruct mixes both)."""
    examples = rng.sample(seeds, min(k, len(seeds)))
    examples += rng.sample(machine, min(m, len(machine)))
    rng.shuffle(examples)
    return examples


def build_messages(examples: list[dict], n: int, output_format: str) -> list[dict]:
    """The chat messages asking for n new tasks in `output_format` ("json" or "text")."""
    if output_format == "json":
        body = REQUIREMENTS.format(n=n, no_input_rule='use an empty string "" for the input.')
        body += JSON_TAIL.format(k=len(examples), n=n, examples=_json_examples(examples))
    else:
        body = REQUIREMENTS.format(n=n, no_input_rule=f'we simply put "{NO_INPUT_MARKER}" in the input field.')
        body += TEXT_TAIL.format(n=n, examples=_numbered_examples(examples), next=len(examples) + 1)
    return [{"role": "user", "content": body}]


def _json_examples(examples: list[dict]) -> str:
    return "\n".join(
        json.dumps({"instruction": e["instruction"], "input": e["input"], "output": e["output"]}, ensure_ascii=False)
        for e in examples
    )


def _numbered_examples(examples: list[dict]) -> str:
    """Alpaca's encode_prompt: `###` then `i. Instruction: / i. Input: / i. Output:`."""
    blocks = []
    for i, e in enumerate(examples, start=1):
        instruction = " ".join(e["instruction"].split()).rstrip(":")
        blocks.append(
            f"###\n{i}. Instruction: {instruction}\n{i}. Input:\n{e['input'] or NO_INPUT_MARKER}\n"
            f"{i}. Output:\n{e['output']}\n"
        )
    return "".join(blocks)


def tasks_schema(n: int, bounded: bool) -> dict:
    """JSON schema of the answer. `bounded` adds minItems/maxItems: llama.cpp's grammar
    needs minItems or a small model answers with an empty list, while OpenAI's strict
    mode does not accept them."""
    items = {
        "type": "object",
        "properties": {k: {"type": "string"} for k in ("instruction", "input", "output")},
        "required": ["instruction", "input", "output"],
        "additionalProperties": False,
    }
    tasks: dict = {"type": "array", "items": items}
    if bounded:
        tasks.update(minItems=1, maxItems=n)
    return {
        "type": "object",
        "properties": {"tasks": tasks},
        "required": ["tasks"],
        "additionalProperties": False,
    }
