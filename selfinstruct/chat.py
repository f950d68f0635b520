"""An instruction record as a chat: one user turn and one assistant turn.

The user turn is the instruction, then a blank line and the input when there is one, the
usual way Alpaca data is turned into chat data:

    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"}
    -> [("user", "Translate to French.\\n\\nGood morning"), ("assistant", "Bonjour")]

Reading back splits the user turn at its first blank line. Inputs (passages, lists, code)
hold blank lines far more often than one-line instructions do, so this gives back the
original fields; an instruction that itself holds a blank line comes back with its second
part moved into the input, the text the model sees being the same.

`chat_fields` reads both chat shapes, ShareGPT `conversations` ({from: human|gpt, value})
and OpenAI `messages` ({role: user|assistant, content}), so every export reads back
through `records.read_records`; an assistant turn's `reasoning_content` (or `reasoning`)
becomes the record's `reasoning`.
"""

from __future__ import annotations

from .errors import SelfInstructError

SEPARATOR = "\n\n"

# ShareGPT's names for the roles; readers also meet "user"/"assistant" in ShareGPT files.
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant", "system": "system"}


def to_turns(record: dict, system_prompt: str | None = None) -> list[tuple[str, str]]:
    """`[(role, text)]` with roles system (when given), user, assistant; a multi-turn record
    (`conversation`, `selfinstruct magpie --turns`) gives all its turns, its own system turn first."""
    system = [("system", system_prompt)] if system_prompt else []
    if record.get("conversation"):
        turns = [(turn["role"], turn["content"]) for turn in record["conversation"]]
        return turns if turns[0][0] == "system" else [*system, *turns]
    user = record["instruction"] + (SEPARATOR + record["input"] if record["input"] else "")
    return [*system, ("user", user), ("assistant", record["output"])]


def chat_fields(raw: dict, where: str) -> dict | None:
    """The record in `raw` (a `conversations` or `messages` row) as instruction/input/output
    plus its other keys; None when `raw` holds neither key."""
    if "conversations" in raw:
        key, role_key, text_key = "conversations", "from", "value"
    elif "messages" in raw:
        key, role_key, text_key = "messages", "role", "content"
    else:
        return None
    turns = raw[key]
    if not isinstance(turns, list):
        raise SelfInstructError(f"{where}: field '{key}' must be a list of turns")
    dialogue, reasoning = [], {}
    for i, turn in enumerate(turns):
        role = ROLE_ALIASES.get(turn.get(role_key)) if isinstance(turn, dict) else None
        text = turn.get(text_key) if isinstance(turn, dict) else None
        if role is None or not isinstance(text, str):
            raise SelfInstructError(
                f"{where}: field '{key}[{i}]' must be an object with '{role_key}' "
                f"(one of {', '.join(ROLE_ALIASES)}) and a string '{text_key}'"
            )
        if role != "system":
            dialogue.append((role, text))
        trace = turn.get("reasoning_content") or turn.get("reasoning")
        if role == "assistant" and isinstance(trace, str):
            reasoning = {"reasoning": trace}
    if [role for role, _ in dialogue] != ["user", "assistant"]:
        raise SelfInstructError(
            f"{where}: field '{key}' must hold one user turn then one assistant turn (after an optional "
            f"system turn), got {[role for role, _ in dialogue]}; multi-turn chats are not instruction records"
        )
    instruction, _, input_text = dialogue[0][1].partition(SEPARATOR)
    others = {k: v for k, v in raw.items() if k != key}
    return {**others, "instruction": instruction, "input": input_text, "output": dialogue[1][1], **reasoning}
