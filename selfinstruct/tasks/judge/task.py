"""The judge task: a teacher rates every record of a dataset, and the best are kept.

AlpaGasus's data selection (see `rating.py`): each record of the source is asked once; its
rating becomes the record itself plus

    {score: 4.5, rationale: "...", judge_model, judge_request_id}

(the source's own fields, its `teacher_model` and `id` included, stay as they were; a source
judged before gets the new judge's fields). The `judge` preset keeps the records scored at
least `threshold` (rule `low_score`) and rejects the others with their score, so
`filter --min-score` can re-select at another threshold without asking again.

The threshold is not part of the run's identity: resuming with another `threshold` re-decides
every answer in the ledger with it (the checkpoint's rule settings no longer match, so the whole
ledger is replayed) and asks only for the records not rated yet.

    result = judge(JudgeConfig(source="outputs/run", base_url=URL, model="gpt-4o-mini"), "outputs/run-judged")
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ...clean import Preset, load_preset
from ...clean.rules.score import DEFAULT_MIN_SCORE, with_min_score
from ...engine.config import JobConfig
from ...engine.estimate import CostEstimate, estimate_item_task_cost
from ...engine.job import JobResult, StopPolicy
from ...engine.run import run_task
from ...engine.task import ItemTask, Parsed, Request
from ...errors import SettingError
from ...reasoning import split_reasoning
from ...records import read_records
from ...stats import Stats
from ..registry import TaskEntry
from .rating import PROMPT_VERSION, RatingError, build_messages, parse_rating, prompt_sha256, rating_schema

SCORE = "score"  # Parsed.counts prefix: `score/4.5` counts the records rated 4.5
ASSUMED_COMPLETION_TOKENS = 60  # a score and a sentence, for an estimate without history


class JudgeConfig(JobConfig):
    # The threshold is not in the identity (see the module's docstring); the task adds the
    # prompt's version and the source's hash to the base's (model, temperature...).
    # A rating is a score and a sentence; the limit leaves room for a reasoning model's
    # thoughts (raise --max-tokens for a model that thinks at length).
    API_DEFAULTS: ClassVar[dict] = {**JobConfig.API_DEFAULTS, "max_tokens": 1024}

    source: str = Field(description="The records to rate: a run directory or any dataset `filter` reads.")
    threshold: float = Field(
        DEFAULT_MIN_SCORE, ge=0, le=5, description="Keep the records scored at least this (0-5; AlpaGasus kept 4.5+)."
    )
    temperature: float = Field(
        0.0, ge=0, le=2, description="Sampling temperature (a judge should say the same thing twice)."
    )
    preset: str = Field(
        "judge", description="Cleaning preset name or .toml path (its low_score rule gets the threshold)."
    )


def load_source(src: str | Path) -> tuple[list[dict], str]:
    """The records of `src`, and a hash of them (the run's identity)."""
    records = read_records(src)
    if not records:
        raise SettingError(f"{src}: no records to judge", "source")
    digest = hashlib.sha256(json.dumps(records, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return records, digest


class JudgeTask(ItemTask):
    name = "judge"

    def __init__(self, config: JudgeConfig, records: list[dict], source_sha256: str, preset: Preset):
        super().__init__(list(range(len(records))))
        self.config = config
        self.records = records
        self.source_sha256 = source_sha256
        self.preset = preset.model_copy(update={"rules": with_min_score(preset.rules, config.threshold)})

    def identity(self) -> dict:
        return {
            **self.config.identity(),
            "rating_prompt": PROMPT_VERSION,
            "rating_prompt_sha256": prompt_sha256(),
            "source_sha256": self.source_sha256,
        }

    def request(self, item: int) -> Request:
        record = self.records[item]
        return Request(
            messages=lambda output_format: build_messages(record, output_format),
            schema=rating_schema,
            max_tokens=self.config.max_tokens,
            details={"source_id": record.get("id", item)},
        )

    def parse(self, request: dict, response: dict) -> Parsed:
        # a reasoning judge's trace stays in the ledger: the record keeps the verdict only
        _, answer = split_reasoning(response["content"], response.get("reasoning"))
        try:
            rating = parse_rating(answer, response["finish_reason"])
        except RatingError as e:
            return Parsed(problems=[f"record {request['source_id']}: {e}"])
        source = self.records[request["item"]]
        record = {
            "id": source.get("id", request["item"]),
            **source,
            "score": rating.score,
            "rationale": rating.rationale,
            "judge_model": response["model"],
            "judge_request_id": response["request_id"],
        }
        return Parsed([record], counts={f"{SCORE}/{rating.score:g}": 1})

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        return bool(parsed.records)  # a rating below the threshold is a finding, not a waste

    def describe(self, stats: Stats) -> dict:
        histogram = stats.group(SCORE)
        return {
            "judge": {
                "threshold": self.config.threshold,
                "scored": sum(histogram.values()),
                "kept": stats["kept"],
                "histogram": dict(sorted(histogram.items(), key=lambda item: -float(item[0]))),
            },
        }


def judge_task(config: JudgeConfig) -> JudgeTask:
    records, source_sha256 = load_source(config.source)
    return JudgeTask(config, records, source_sha256, load_preset(config.preset))


def judge(
    config: JudgeConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """Run (or resume) a judge run into the directory `out` (see `engine.run.run_job`)."""
    # the source's full path in config.json leads the dataset card to the run that made the records
    config = config.model_copy(update={"source": str(Path(config.source).resolve())})
    return run_task(judge_task, config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)


def estimate_judge_cost(config: JudgeConfig, out: str | Path | None = None) -> CostEstimate:
    """`judge --dry-run`: one request per unrated record; without history, a score and a sentence."""
    config = config.resolved()
    return estimate_item_task_cost(judge_task(config), config, out, ASSUMED_COMPLETION_TOKENS)


def score_summary(result: JobResult) -> list[str]:
    histogram = result.stats["judge"]["histogram"]
    return ["scores: " + ", ".join(f"{score}: {n}" for score, n in histogram.items())] if histogram else []


ENTRY = TaskEntry(
    "judge",
    JudgeConfig,
    judge,
    estimate_judge_cost,
    about="""Rate every record of SOURCE 0-5 with the teacher and keep the best (AlpaGasus).

    Each record gets `score` and `rationale`; those below --threshold go to rejected.jsonl
    (`filter --min-score` re-selects at another threshold without asking again). Rerunning the
    same command on the same --out resumes; with another --threshold it re-decides every rating.
    """,
    argument="source",
    default_out="{model}-judged",
    kept="records kept (score >= {threshold:g})",
    summary=score_summary,
)
