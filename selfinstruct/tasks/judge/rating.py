"""The rating prompt and its answers: one record in, a 0-5 score and a one-line rationale out.

The wording follows AlpaGasus (Chen et al. 2023, "AlpaGasus: Training a Better Alpaca with
Fewer Data", Fig. 3), which rated Alpaca's 52K records by the accuracy of the response with
ChatGPT and trained a better model on the 9K rated 4.5 or more. Two output formats, as for
the bootstrap prompt:
- "json": `{"score": 4.5, "rationale": "..."}`, enforced by structured output where the
  endpoint supports it;
- "text": AlpaGasus's own form, the score alone on the first line and the explanation on the
  next (here one sentence, not a "comprehensive" one: it is kept in every record).

The parser is lenient about the teacher (code fences, "Score: 4.5/5", bold markdown, JSON in
a text answer) and strict about the result: a score is a number from 0 to 5, or the answer
is unusable and says why.

    parse_rating('{"score": 4.5, "rationale": "Correct and complete."}', "stop")
    -> Rating(score=4.5, rationale="Correct and complete.")
    parse_rating("Score: 4/5\\nCorrect, but terse.", "stop") -> Rating(score=4.0, rationale="Correct, but terse.")
    parse_rating("8/10", "stop")  -> raises RatingError("the score 8/10 is not on the 0-5 scale")
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

PROMPT_VERSION = "alpagasus-1"  # change with the wording: a run's identity holds it and the wording's hash

SYSTEM = (
    "We would like to request your feedback on the performance of an AI assistant in response to the "
    "instruction and the given input displayed below."
)

RECORD = """[Instruction]
{instruction}

[Input]
{input}

[Response]
{output}

[End of response]

Please rate the accuracy and helpfulness of the response to the instruction and the input. The response receives a score on a scale of 0 to 5, where a higher score indicates a more accurate and helpful response; half points are allowed. """

JSON_TAIL = (
    'Answer with a JSON object of the form {"score": <number from 0 to 5>, "rationale": "<one sentence>"}: '
    "the score, then a one-sentence explanation of your evaluation, avoiding any potential bias."
)

TEXT_TAIL = (
    "Please first output a single line containing only the score. In the subsequent line, please provide a "
    "one-sentence explanation of your evaluation, avoiding any potential bias."
)

NO_INPUT = "(none)"
MAX_RATIONALE_CHARS = 400  # the schema's bound for grammar-constrained servers: one sentence, not an essay


def prompt_sha256() -> str:
    """The wording's hash, part of a run's identity: a resumed run must rate the same way."""
    wording = json.dumps([SYSTEM, RECORD, JSON_TAIL, TEXT_TAIL, NO_INPUT])
    return hashlib.sha256(wording.encode()).hexdigest()


def build_messages(record: dict, output_format: str) -> list[dict]:
    """The chat messages asking for a rating of `record` in `output_format` ("json" or "text")."""
    body = RECORD.format(instruction=record["instruction"], input=record["input"] or NO_INPUT, output=record["output"])
    body += JSON_TAIL if output_format == "json" else TEXT_TAIL
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def rating_schema(bounded: bool) -> dict:
    """JSON schema of the answer. `bounded` (llama.cpp's grammar) also bounds the rationale's
    length, which OpenAI's strict mode does not accept; the score's range is checked on
    parsing either way (not every server enforces `minimum` / `maximum` on numbers)."""
    rationale: dict = {"type": "string"}
    if bounded:
        rationale["maxLength"] = MAX_RATIONALE_CHARS
    return {
        "type": "object",
        "properties": {"score": {"type": "number"}, "rationale": rationale},
        "required": ["score", "rationale"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Rating:
    score: float
    rationale: str


class RatingError(ValueError):
    """An answer that holds no usable rating; the message says what was wrong with it."""


def parse_rating(content: str, finish_reason: str) -> Rating:
    """The rating in an answer, in either form whichever was asked for (a server may ignore the
    requested format); raises RatingError saying what is wrong with an unusable one."""
    if not content.strip():
        raise RatingError("empty answer")
    if finish_reason == "length":
        raise RatingError(f"the answer hit the length limit before the rating was complete: {_quote(content[-60:])}")
    looks_json = content.lstrip().startswith(("{", "```"))
    first, second = (_from_json, _from_text) if looks_json else (_from_text, _from_json)
    try:
        return first(content)
    except RatingError as error:
        try:
            return second(content)  # a teacher that answered in the other form
        except RatingError:
            raise error from None


# ---------------------------------------------------------------- JSON

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def _from_json(content: str) -> Rating:
    text = _FENCE.sub("", content.strip())
    start = text.find("{")
    if start < 0:
        raise RatingError(f"the answer is not a JSON object: {_quote(content)}")
    try:
        doc, _ = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError:
        raise RatingError(f"the answer is not valid JSON: {_quote(content)}") from None
    if not isinstance(doc, dict) or "score" not in doc:
        raise RatingError(f"the answer has no 'score': {_quote(content)}")
    rationale = doc.get("rationale", "")
    if not isinstance(rationale, str):
        raise RatingError(f"the rationale is not a string: {_quote(json.dumps(rationale))}")
    score = doc["score"]
    if isinstance(score, str) and _NUMBER.fullmatch(score.strip()):
        score = float(score)  # "4.5": a number in quotes is still the number
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise RatingError(f"the score is not a number: {_quote(json.dumps(score))}")
    return Rating(_checked(float(score), str(score)), _one_line(rationale))


# ---------------------------------------------------------------- AlpaGasus's text

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SCORE_LINE = re.compile(
    r"^(?:(?:overall\s+|final\s+)?(?:score|rating)s?\s*(?:[:=-]|is)?\s*)?"  # an optional label
    r"(?P<score>[+-]?(?:\d+(?:\.\d+)?|\.\d+))"
    r"(?:\s*(?:/|out\s+of)\s*(?P<scale>\d+(?:\.\d+)?))?"  # "/5", "out of 5"
    r"(?P<rest>.*)$",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^(?:rationale|explanation|reason(?:ing)?)\s*:\s*", re.IGNORECASE)


def _from_text(content: str) -> Rating:
    lines = [_plain(line) for line in content.strip().splitlines()]
    lines = [line for line in lines if line]
    match = _SCORE_LINE.match(lines[0]) if lines else None
    if match is None or match["rest"][:1].isalnum():  # "4th", "5x": not a score
        raise RatingError(f"the first line is not a score: {_quote(lines[0] if lines else content)}")
    if match["scale"] is not None and float(match["scale"]) != 5:
        raise RatingError(f"the score {match['score']}/{match['scale']} is not on the 0-5 scale")
    score = _checked(float(match["score"]), match["score"])
    rest = match["rest"].strip().lstrip("-:.,;)\u2013\u2014 ").strip()  # "4.5 - Accurate." puts both on one line
    rationale = rest or " ".join(lines[1:])
    return Rating(score, _one_line(_LABEL.sub("", rationale)))


def _plain(line: str) -> str:
    """A line without markdown emphasis and headings: "**Score: 4**" -> "Score: 4"."""
    return line.replace("**", "").replace("__", "").strip().lstrip("#>").strip().strip("*_`").strip()


# ---------------------------------------------------------------- shared


def _checked(score: float, as_written: str) -> float:
    if not math.isfinite(score) or not 0 <= score <= 5:
        raise RatingError(f"the score {as_written} is not on the 0-5 scale")
    return score


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= 60 else text[:57] + "...")
