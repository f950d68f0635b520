"""Preference pairs for DPO from rated answers: the best and the worst answer to each prompt.

UltraFeedback's recipe, as people build DPO data from it: several answers to one prompt
(`answer --samples N`, or answer runs of several teachers on the same source), each rated by
a judge (`judge`), then one pair per prompt, the best-rated answer `chosen` and the
worst-rated `rejected`. A prompt gives no pair when

    single_answer      it has one rated answer only
    tie                all its answers got the same score
    below_margin       best and worst differ by less than `min_margin`
    identical_answers  best and worst are the same text (the judge disagreed with itself)

Answers belong to one prompt when their instruction and input are the same text, so answers
from several runs pair up whichever source each run read (a `source_id` alone is a position
in one source). Of answers with the same score, the first rated wins (a run's ratings in the
order they were asked, sources in the order given): the same files give the same pairs.

    pairs, stats = make_pairs(records, min_margin=1.0)
    stats.dropped  -> {"tie": 3, "below_margin": 5}
    stats.margins  -> {"1": 4, "2.5": 2}   # pairs by score difference
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..chat import to_turns
from ..clean.rules.score import is_score
from ..clean.stage import scored_records
from ..engine.view import RunView
from ..errors import SettingError
from ..finetune.template import alpaca_prompt
from ..records import read_records
from ..runfiles import RUN

DEFAULT_MIN_MARGIN = 1.0  # a judge's half point between two answers is too weak a preference to train on
DROP_REASONS = ("single_answer", "tie", "below_margin", "identical_answers")


@dataclass(frozen=True)
class Pair:
    chosen: dict  # the rated answer records
    rejected: dict

    @property
    def margin(self) -> float:
        return self.chosen["score"] - self.rejected["score"]


@dataclass
class PairStats:
    min_margin: float
    sources: list[str]
    answers: int = 0  # rated answers read
    prompts: int = 0
    pairs: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # prompts without a pair, by reason
    margins: dict[str, int] = field(default_factory=dict)  # pairs by score difference, largest first
    answers_per_prompt: dict[str, int] = field(default_factory=dict)  # prompts by how many answers they have
    judges: list[str] = field(default_factory=list)
    teachers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(vars(self))


def scored_answers(sources: list[str | Path]) -> list[dict]:
    """Every rated answer of `sources`, in order: a judge run's kept answers and those it rejected
    as `low_score` (a pair needs its worst answer), or any dataset whose records all have a score."""
    answers = []
    for src in map(Path, sources):
        records = scored_records(src) if _is_judge_run(src) else read_records(src)
        for number, record in enumerate(records, start=1):
            if not is_score(record.get("score")):
                raise SettingError(
                    f"{src}: record {number} (id {record.get('id', '?')!r}) has no score from 0 to 5 "
                    f"({record.get('score', 'no score field')!r}); {{format}} dpo pairs rated answers: "
                    "rate them with `selfinstruct judge` and export the judge's run",
                    "format",
                )
        answers += records
    return answers


def _is_judge_run(src: Path) -> bool:
    run = RunView(src) if src.is_dir() else None
    return run is not None and run.kind == RUN and (run.read_config() or {}).get("task") == "judge"


def make_pairs(answers: list[dict], min_margin: float, sources: list[str] = ()) -> tuple[list[Pair], PairStats]:
    """One pair per prompt from `answers` (rated records): see the module's docstring."""
    if min_margin <= 0:
        raise SettingError(f"{{min_margin}} {min_margin:g}: must be above 0 (tied answers make no pair)", "min_margin")
    by_prompt: dict[tuple[str, str], list[dict]] = {}
    for answer in answers:
        by_prompt.setdefault((answer["instruction"], answer["input"]), []).append(answer)
    stats = PairStats(min_margin, [str(s) for s in sources], answers=len(answers), prompts=len(by_prompt))
    stats.judges = sorted({a["judge_model"] for a in answers if a.get("judge_model")})
    stats.teachers = sorted({a["teacher_model"] for a in answers if a.get("teacher_model")})
    dropped, margins, sizes = Counter(), Counter(), Counter()
    pairs = []
    for group in by_prompt.values():
        sizes[len(group)] += 1
        # max/min keep the first of equal scores: the first rated wins
        pair = Pair(max(group, key=lambda a: a["score"]), min(group, key=lambda a: a["score"]))
        reason = drop_reason(group, pair, min_margin)
        if reason:
            dropped[reason] += 1
            continue
        pairs.append(pair)
        margins[f"{pair.margin:g}"] += 1
    stats.pairs = len(pairs)
    stats.dropped = {reason: dropped[reason] for reason in DROP_REASONS if dropped[reason]}
    stats.margins = dict(sorted(margins.items(), key=lambda item: -float(item[0])))
    stats.answers_per_prompt = {str(n): sizes[n] for n in sorted(sizes)}
    return pairs, stats


def drop_reason(group: list[dict], pair: Pair, min_margin: float) -> str | None:
    """Why the prompt of `group` gives no pair (see DROP_REASONS); None when it does."""
    if len(group) == 1:
        return "single_answer"
    if pair.margin == 0:
        return "tie"
    if pair.margin < min_margin:
        return "below_margin"
    if pair.chosen["output"].strip() == pair.rejected["output"].strip():
        return "identical_answers"
    return None


def pair_row(pair: Pair, chat: bool, system_prompt: str | None) -> dict:
    """trl's preference format. Standard: strings, the prompt in Alpaca's template (what
    `finetune --template alpaca` trains on), each answer to follow it. Conversational (`chat`):
    message lists, for the model's chat template. Then the scores and where the answers came from."""
    chosen, rejected = pair.chosen, pair.rejected
    if chat:
        *prompt, (_, chosen_text) = to_turns(chosen, system_prompt)
        row = {
            "prompt": [{"role": role, "content": text} for role, text in prompt],
            "chosen": [{"role": "assistant", "content": chosen_text}],
            "rejected": [{"role": "assistant", "content": rejected["output"]}],
        }
    else:
        row = {"prompt": alpaca_prompt(chosen), "chosen": chosen["output"], "rejected": rejected["output"]}
    return {
        **row,
        "score_chosen": chosen["score"],
        "score_rejected": rejected["score"],
        "source_id": str(chosen.get("source_id", chosen.get("id", ""))),
        "chosen_teacher": chosen.get("teacher_model"),
        "rejected_teacher": rejected.get("teacher_model"),
    }


def describe_drops(stats: PairStats) -> str:
    """`"12 answers to 5 prompts; no pair: tie 3, below_margin 2 (min margin 1)"`."""
    dropped = ", ".join(f"{reason} {n}" for reason, n in stats.dropped.items()) or "none"
    return (
        f"{stats.answers} rated answers to {stats.prompts} prompts, {stats.pairs} pairs; "
        f"no pair: {dropped} (min margin {stats.min_margin:g})"
    )
