"""Pairwise judging: a judge model says which of two answers to an instruction is better.

Alpaca was evaluated this way (against text-davinci-003 on self-instruct's 252 user-oriented
instructions), and AlpacaEval automated it: the win rate of the model under test against a
reference (`output` of the set, or a second model's answers with `--against`), ties counted as
half a win. Judges prefer the answer shown first (or second) and the longer one (Zheng et al.
2023, "Judging LLM-as-a-Judge"; Dubois et al. 2024, length-controlled AlpacaEval), so:

- each pair is asked in both orders, model first ("ab") and reference first ("ba"), and an
  item's outcome is the mean of the two: a judge that always picks the first answer gives one
  win and one loss, a tie, whatever the answers; a verdict it holds in both orders is a win or
  a loss;
- the answers' mean lengths are reported beside the rates.

The prompt is MT-Bench's pairwise one in substance (explanation first, then `[[A]]`, `[[B]]`
or `[[C]]` for a tie). A verdict that cannot be read is counted as malformed, not fatal; an
item with a malformed verdict in either order is left out of the rates (with only one order,
the position bias would be back).

    parse_verdict("B is more accurate.\\n[[B]]") -> "B"
    outcome(["model", "reference"]) -> 0.5     # one win each way: a tie
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..clean import load_preset
from ..engine.config import JobConfig
from ..engine.estimate import CostEstimate, estimate_item_task_cost
from ..engine.job import JobResult
from ..engine.run import run_task
from ..engine.task import ItemTask, Parsed, Request
from ..reasoning import split_reasoning
from ..records import read_jsonl
from ..stats import Stats
from .scores import Score, proportion

PROMPT_VERSION = "mt-bench-pairwise-1"  # change with the wording: the judge run's identity holds it
ORDERS = ("ab", "ba")  # the model's answer first, then the reference first
VERDICT = "verdict"  # Parsed.counts prefix: verdict/model, verdict/reference, verdict/tie, verdict/malformed
MALFORMED = "malformed"
ASSUMED_COMPLETION_TOKENS = 80  # a sentence and the verdict, for an estimate without history
EVAL_PRESET = "eval"  # every record kept: a verdict (or an answer) is a measurement, not a candidate

SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user instruction displayed below. Choose the assistant that follows the instruction and answers it "
    "better: consider helpfulness, relevance, accuracy, depth and level of detail. Avoid any position bias: the "
    "order in which the responses are presented must not influence your decision. Do not let the length of the "
    "responses influence your evaluation, and be as objective as possible."
)

PAIR = """[Instruction]
{instruction}

[Input]
{input}

[The Start of Assistant A's Answer]
{a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{b}
[The End of Assistant B's Answer]

First explain your choice in one or two sentences. Then output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie."""

NO_INPUT = "(none)"
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_BARE = re.compile(r"^(?:final\s+)?(?:verdict\s*[:=-]?\s*)?\W*(A|B|C|tie)\W*$", re.IGNORECASE)


class VerdictError(ValueError):
    """An answer that holds no readable verdict; the message says what it held."""


def prompt_sha256() -> str:
    return hashlib.sha256(json.dumps([SYSTEM, PAIR, NO_INPUT]).encode()).hexdigest()


def build_messages(pair: dict, order: str) -> list[dict]:
    first, second = (pair["output"], pair["reference"]) if order == "ab" else (pair["reference"], pair["output"])
    body = PAIR.format(instruction=pair["instruction"], input=pair["input"] or NO_INPUT, a=first, b=second)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


def parse_verdict(content: str) -> str:
    """ "A", "B" or "C" (a tie): the last `[[X]]` of the answer, or a last line that is only
    the letter; raises VerdictError otherwise."""
    found = _VERDICT.findall(content)
    if found:
        return found[-1]
    lines = [line.strip() for line in content.strip().splitlines() if line.strip()]
    bare = _BARE.match(lines[-1]) if lines else None
    if bare:
        letter = bare[1].upper()
        return "C" if letter == "TIE" else letter
    text = " ".join(content.split())
    raise VerdictError(f"no verdict [[A]], [[B]] or [[C]] in {text[:60]!r}" if text else "empty answer")


def winner(letter: str, order: str) -> str:
    """Who a verdict letter names: "model", "reference" or "tie"."""
    if letter == "C":
        return "tie"
    model_letter = "A" if order == "ab" else "B"
    return "model" if letter == model_letter else "reference"


POINTS = {"model": 1.0, "tie": 0.5, "reference": 0.0}


def outcome(winners: list[str]) -> float:
    """The model's points on one item, the mean over both orders: 1 win, 0.5 tie, 0 loss."""
    return sum(POINTS[w] for w in winners) / len(winners)


class PairwiseConfig(JobConfig):
    """The judge's settings: an endpoint (or the embedded teacher) like any teacher job's."""

    API_DEFAULTS: ClassVar[dict] = {**JobConfig.API_DEFAULTS, "max_tokens": 512}
    EMBEDDED_DEFAULTS: ClassVar[dict] = {**JobConfig.EMBEDDED_DEFAULTS, "max_tokens": 256}

    pairs: str = Field(description="The pairs to judge: a JSONL of instruction, input, output and reference.")
    temperature: float = Field(0.0, ge=0, le=2, description="A judge should say the same thing twice.")
    preset: str = Field(EVAL_PRESET, description="Cleaning preset: none, a verdict is kept whatever it says.")


class PairwiseTask(ItemTask):
    """Each pair asked in both orders (items "PAIR:ab", "PAIR:ba"); a verdict becomes

    {id, pair_id, order, verdict: "A"|"B"|"C", winner: "model"|"reference"|"tie", judge_model, judge_request_id}
    """

    name = "eval-pairwise"

    def __init__(self, config: PairwiseConfig, pairs: list[dict], pairs_sha256: str):
        super().__init__([f"{i}:{order}" for i in range(len(pairs)) for order in ORDERS])
        self.config = config
        self.pairs = pairs
        self.pairs_sha256 = pairs_sha256
        self.preset = load_preset(config.preset)

    def identity(self) -> dict:
        return {
            **self.config.identity(),
            "pairwise_prompt": PROMPT_VERSION,
            "pairwise_prompt_sha256": prompt_sha256(),
            "pairs_sha256": self.pairs_sha256,
        }

    def request(self, item: str) -> Request:
        index, order = item.split(":")
        pair = self.pairs[int(index)]
        return Request(
            messages=lambda _format: build_messages(pair, order),
            max_tokens=self.config.max_tokens,
            details={"pair_id": pair["id"], "order": order},
        )

    def parse(self, request: dict, response: dict) -> Parsed:
        _, answer = split_reasoning(response["content"], response.get("reasoning"))
        try:
            letter = parse_verdict(answer)
        except VerdictError as e:
            return Parsed(
                problems=[f"pair {request['pair_id']} ({request['order']}): {e}"], counts={f"{VERDICT}/{MALFORMED}": 1}
            )
        who = winner(letter, request["order"])
        record = {
            "id": f"{request['pair_id']}-{request['order']}",
            "pair_id": request["pair_id"],
            "order": request["order"],
            "verdict": letter,
            "winner": who,
            "judge_model": response["model"],
            "judge_request_id": response["request_id"],
        }
        return Parsed([record], counts={f"{VERDICT}/{who}": 1})

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        return True  # a malformed verdict is a finding about the judge, counted in the scores

    def describe(self, stats: Stats) -> dict:
        return {"pairwise": dict(sorted(stats.group(VERDICT).items()))}


def pairwise_task(config: PairwiseConfig) -> PairwiseTask:
    pairs = [pair for _, pair in read_jsonl(config.pairs)]
    digest = hashlib.sha256(json.dumps(pairs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return PairwiseTask(config, pairs, digest)


def judge_pairs(
    config: PairwiseConfig, out: str | Path, *, overwrite: bool = False, progress: bool = True, teacher=None
) -> JobResult:
    """Run (or resume) the judge over the pairs into the run directory `out`."""
    return run_task(pairwise_task, config, out, overwrite=overwrite, progress=progress, teacher=teacher)


def estimate_pairwise_cost(config: PairwiseConfig, out: str | Path | None = None) -> CostEstimate:
    config = config.resolved()
    return estimate_item_task_cost(pairwise_task(config), config, out, ASSUMED_COMPLETION_TOKENS)


def pairwise_scores(pairs: list[dict], verdicts: list[dict], malformed: int) -> tuple[list[Score], dict]:
    """Win / tie / loss rates over the pairs judged in both orders, and beside them the counts,
    the `malformed` verdicts, how often the judge picked the first answer, and the answers'
    mean lengths (characters, as AlpacaEval reports them)."""
    winners: dict[str, dict[str, str]] = {}
    for verdict in verdicts:
        winners.setdefault(verdict["pair_id"], {})[verdict["order"]] = verdict["winner"]
    points = [outcome(list(w.values())) for w in winners.values() if len(w) == len(ORDERS)]
    n = len(points)
    wins, ties = sum(p > 0.5 for p in points), sum(p == 0.5 for p in points)
    # no pair judged both ways (a judge that never gives a readable verdict): no rate, not a rate of 0
    scores = (
        [
            proportion("win_rate", sum(points), n),  # AlpacaEval's: a tie is half a win
            proportion("wins", wins, n),
            proportion("ties", ties, n),
            proportion("losses", n - wins - ties, n),
        ]
        if n
        else []
    )
    first = sum(w.get("ab") == "model" for w in winners.values()) + sum(
        w.get("ba") == "reference" for w in winners.values()
    )
    details = {
        "pairs": len(pairs),
        "judged": n,  # in both orders
        "wins": wins,
        "ties": ties,
        "losses": n - wins - ties,
        "malformed": malformed,
        "left_out": len(pairs) - n,  # a malformed or missing verdict in either order
        # how often the judge picked the answer shown first: about 0.5 for a judge without position bias
        "first_position_rate": round(first / len(verdicts), 4) if verdicts else None,
        "mean_length": _mean_length(p["output"] for p in pairs),
        "reference_mean_length": _mean_length(p["reference"] for p in pairs),
    }
    return scores, details


def _mean_length(texts) -> float | None:
    lengths = [len(t) for t in texts]
    return round(sum(lengths) / len(lengths), 1) if lengths else None
