"""Rules about what a teacher puts in the input and output fields.

Each catches a kind of broken record seen in real teacher answers (SmolLM2-135M on the
embedded teacher, GPT-3 in Alpaca's data): empty or placeholder outputs, an output that
copies the input, text cut off mid-sentence, several tasks run together, placeholders
for "no input", references to pictures a text model cannot see.
"""

from __future__ import annotations

import re
import string

from pydantic import Field

from ...records import TEXT_FIELDS
from ...tokens import count_tokens
from .base import Rule

_JUNK = set(string.punctuation + string.whitespace)
_NUMBERED_LABEL = re.compile(r"(?im)^[ \t]*(?:#+[ \t]*)?\d+[ \t]*[.)][ \t]*(?:instruction|input|output)[ \t]*:")
_IMAGE = re.compile(
    r"https?://\S+\.(?:png|jpe?g|gif|bmp|svg|webp|tiff?)\b"  # a link to an image file
    r"|!\[[^\]]*\]\([^)]*\)"  # a Markdown image
    r"|<\s*(?:picture|image|photo|img)[^>]*>"  # <Picture Attached>, <img src=...>
    r"|\[\s*(?:picture|image|photo)(?:\s+attached)?\s*\]",
    re.IGNORECASE,
)


def _bare(text: str) -> str:
    """Lowercase, without surrounding spaces, brackets, quotes and a final full stop."""
    return text.strip().strip("<>[](){}\"'`").rstrip(".").strip().lower()


class NoInputMarker(Rule):
    """Teachers copy Alpaca's "<noinput>" (or invent "N/A", "None") for tasks without input."""

    name = "noinput_marker"
    reason = "input is a placeholder for 'no input' (repaired: made empty)"
    markers: tuple[str, ...] = (
        "noinput",
        "no input",
        "no-input",
        "no_input",
        "none",
        "n/a",
        "na",
        "null",
        "nil",
        "empty",
        "empty string",
        "blank",
        "nothing",
        "not applicable",
        "no input required",
        "no input needed",
        "no input is required",
        "no input is needed",
        "input",
        "-",
        "--",
        "...",
    )

    def check(self, record):
        return None

    def fix(self, record):
        if record["input"] and _bare(record["input"]) in self.markers:
            return {**record, "input": ""}
        return None


class EmptyOutput(Rule):
    name = "empty_output"
    reason = "output is empty, a placeholder such as N/A, or only punctuation (a JSON fragment)"
    placeholders: tuple[str, ...] = (
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "empty",
        "nooutput",
        "no output",
        "no-output",
        "tbd",
        "todo",
        "output",
        "answer",
        "...",
        "-",
        "--",
    )

    def check(self, record):
        output = record["output"].strip()
        if not output:
            return "empty"
        if _bare(output) in self.placeholders:
            return f"placeholder {output!r}"
        if all(c in _JUNK for c in output):
            return f"only punctuation: {output[:40]!r}"
        return None


def _spaced(text: str) -> str:
    # only case and spacing: a fix may change nothing but punctuation ('print(x' -> 'print(x)')
    return " ".join(text.split()).casefold()


class OutputCopiesInput(Rule):
    name = "output_copies_input"
    reason = "output repeats the input or the instruction"

    def check(self, record):
        output = _spaced(record["output"])
        if not output:
            return None
        for field in ("input", "instruction"):
            if output == _spaced(record[field]):
                return f"output equals the {field}"
        return None


class Truncated(Rule):
    """Text that stops where more was clearly coming: "Here are the steps:", "apples, pears,",
    an opening bracket.

    The endings differ by field because of what human-written data does: an instruction
    or an input may end with ":" ("Translate to French:"), an output with "," (an email
    signed "Looking forward to seeing you,"), code with ";". Datasets made with an output
    length limit can set `output_limit_tokens`: an output that long which ends
    mid-sentence was cut by the limit."""

    name = "truncated"
    reason = "text cut off: ends with ':', ',' or an opening bracket (or mid-sentence at the output length limit)"
    dangling: dict[str, str] = {"instruction": ",([{", "input": ",([{", "output": ":([{"}
    output_limit_tokens: int | None = Field(None, ge=1)
    sentence_ends: str = ".!?)]}\"'`*|>"

    def check(self, record):
        for field, endings in self.dangling.items():
            text = record[field].rstrip()
            if text and text[-1] in endings:
                return f"{field} ends with {text[-1]!r}"
        output = record["output"].rstrip()
        if (
            self.output_limit_tokens is not None
            and output
            and output[-1] not in self.sentence_ends
            and count_tokens(output) >= self.output_limit_tokens
        ):
            return f"output stops mid-sentence at {self.output_limit_tokens} tokens"
        return None


class MergedTasks(Rule):
    """Alpaca's numbered format ("2. Instruction: ...") leaking into a field means the
    teacher ran several tasks together; the record is a splice, not a task."""

    name = "merged_tasks"
    reason = "several tasks merged into one ('N. Instruction:' inside a field)"

    def check(self, record):
        for field in TEXT_FIELDS:
            match = _NUMBERED_LABEL.search(record[field])
            if match:
                return f"{field} contains {match.group(0).strip()!r}"
        return None


class BulletJunk(Rule):
    """Small teachers continue an instruction with stray list lines ("...case.\\n*The
    function can take..."): the instruction is no longer one task."""

    name = "instruction_bullets"
    reason = "instruction continues with bullet lines ('\\n*', '\\n+')"
    bullets: str = "*+•"

    def check(self, record):
        for line in record["instruction"].splitlines()[1:]:
            stripped = line.lstrip()
            if stripped[:1] and stripped[0] in self.bullets:
                return f"line starts with {stripped[0]!r}"
        return None


class ImageReference(Rule):
    """Alpaca's blacklist drops instructions about images; inputs that *are* an image
    link or an attachment marker slip through it."""

    name = "image_reference"
    reason = "refers to an image a text model cannot see (image link, <Picture Attached>)"
    fields: tuple[str, ...] = ("instruction", "input")

    def check(self, record):
        for field in self.fields:
            match = _IMAGE.search(record[field])
            if match:
                return f"{field} has {match.group(0)[:60]!r}"
        return None
