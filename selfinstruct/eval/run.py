"""`evaluate`: models under test answer an evaluation set on the job engine, and are scored.

    result = evaluate(EvalConfig(set="gsm8k-test.jsonl"), ["smollm2-135m", "students/gsm8k"], "outputs/eval-gsm8k")
    print(result.table)

Each model answers the set as an `answer` job (the model plays the teacher) in its own run
directory, so the ledger, resume, the lock, `--max-cost`, `--dry-run`, progress and `--batch`
are the engine's; a judge job, on the engine too, compares its answers with the references.
The eval directory:

    DIR/set.jsonl                the set as evaluated (unique item ids; its hash in eval.json)
    DIR/LABEL/answers/           the model's answer run (a run directory)
    DIR/LABEL/pairwise/          the judge's verdicts on its answers (a run directory)
    DIR/LABEL/pairs.jsonl        what the judge was shown: the answer and the reference, per item
    DIR/LABEL/server.log         a local checkpoint's server, while it answered
    DIR/eval.json                the scores (see `results.py`)

Scores (`metrics`, "auto" picks those the set and the models allow):
- verified: accuracy (pass@1) and pass@k with `samples` k, where the set has an `answer` /
  `solution` (math-verify or exact match, `verified.py`);
- pairwise: the win rate against the set's `output` (or a second model's answers, `against`),
  asked in both orders (`pairwise.py`); auto where the set has outputs and no answers to verify,
  or with `against`;
- imitation: a local checkpoint's NLL per token of the set's outputs (`imitation.py`).

Before scoring, the set is checked against the training data of each model (`train`, or the
dataset a checkpoint's metrics.json names) and the overlap goes into eval.json.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from ..engine.config import JobConfig
from ..engine.shared_cap import SharedCap
from ..errors import SelfInstructError, SettingError, warn
from ..records import read_json_object, read_jsonl, write_jsonl_atomic
from ..runfiles import DATA_FILE
from .pairwise import EVAL_PRESET, PROMPT_VERSION, PairwiseConfig, estimate_pairwise_cost, judge_pairs, pairwise_scores
from .results import notes, student_folders, table, update_model_card, write_eval
from .sets import EvalSet, Item, load_set, overlap
from .verified import method_of, verified_scores

if TYPE_CHECKING:
    from .models import ModelSpec

METRICS = ("verified", "pairwise", "imitation")
AUTO = "auto"
SAMPLED_TEMPERATURE = 0.8  # with --samples k: HumanEval's pass@k sampling was at 0.8 for k >= 10
# The teacher fields an eval sets for each answer job itself; the others pass on as they are, and
# the model's spec (when given) replaces base_url, model and api_key_env.
SET_BY_EVAL = ("temperature", "preset", "max_cost")


class EvalConfig(JobConfig):
    """The set, the scores, the judge; the teacher fields set how the models under test are asked
    (`base_url` and `model` name one when no spec is given)."""

    set: str = Field(description="The evaluation set: a file or run directory with `answer` / `solution` or `output`.")
    samples: int = Field(1, ge=1, le=64, description="Answers per item: accuracy is pass@1, and pass@k for k > 1.")
    temperature: float | None = Field(
        None, ge=0, le=2, description=f"Sampling temperature [0 for one sample, {SAMPLED_TEMPERATURE} for several]."
    )
    limit: int | None = Field(None, ge=1, description="Evaluate the first N items only.")
    metrics: str = Field(AUTO, description=f"Comma-separated scores among {', '.join(METRICS)}, or auto.")
    against: str | None = Field(
        None, description="Judge against this model's answers instead of the set's outputs (a model spec)."
    )
    train: str | None = Field(
        None, description="The student's training data, for the overlap check [a checkpoint's own dataset]."
    )
    judge_base_url: str | None = Field(
        None, description="The pairwise judge's OpenAI-compatible endpoint [the embedded teacher]."
    )
    judge_model: str | None = Field(None, description="The judge's model name (required with --judge-base-url).")
    judge_api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the judge's API key.")
    judge_max_tokens: int | None = Field(
        None, ge=16, description="Completion token limit per verdict [512; embedded: 256]."
    )
    # --price-in and the like price the model under test; the judge, often another provider's, has its own
    judge_price_in: float | None = Field(
        None, ge=0, description="The judge's USD per 1M prompt tokens (overrides the price table)."
    )
    judge_price_out: float | None = Field(None, ge=0, description="The judge's USD per 1M completion tokens.")
    judge_price_cached: float | None = Field(None, ge=0, description="The judge's USD per 1M cached prompt tokens.")
    preset: str = Field(EVAL_PRESET, description="Cleaning preset for the answers [eval: every answer is scored].")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in (*METRICS, AUTO)]
        if unknown or not names:
            raise ValueError(
                f"unknown score {', '.join(unknown) or value!r}; choose among {', '.join(METRICS)} or auto"
            )
        return ",".join(names)

    @model_validator(mode="after")
    def _judge_needs_model(self):
        if self.judge_base_url is not None and not self.judge_model:
            raise SettingError("{judge_model} is required with {judge_base_url}", "judge_model", "judge_base_url")
        if self.shard is not None:  # a score of part of the set, which nothing would merge
            raise SettingError("an eval scores the whole set: leave out {shard} (use --limit for a part)", "shard")
        return self

    def answer_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else SAMPLED_TEMPERATURE

    def wants(self, metric: str, default: bool) -> bool:
        """Whether to compute `metric`: named in `metrics`, or `default` under auto."""
        names = self.metrics.split(",")
        return metric in names or (AUTO in names and default)

    def check_judge_price(self) -> None:
        """With `max_cost`, the judge needs a price, and the flags to name are the judge's own."""
        judge = self.judge_config(Path(), self.max_cost).resolved()
        if self.max_cost is not None and judge.endpoint_price(None) is None:
            raise SettingError(
                f"no price is known for the judge model {judge.model!r}, so {{max_cost}} cannot be enforced: "
                "set {judge_price_in} and {judge_price_out} (USD per 1M tokens)",
                "max_cost",
                "judge_price_in",
                "judge_price_out",
            )

    def judge_config(self, pairs: Path, max_cost: float | None) -> PairwiseConfig:
        """The judge's job: its own endpoint, sharing the eval's patience (and, for an endpoint
        judge, its pace and the Batch API; the embedded teacher keeps its own defaults)."""
        passed = ("timeout", "max_attempts") + (("concurrency", "batch", "batch_poll_s") if self.judge_base_url else ())
        return PairwiseConfig(
            pairs=str(pairs),
            base_url=self.judge_base_url,
            model=self.judge_model,
            api_key_env=self.judge_api_key_env,
            max_tokens=self.judge_max_tokens,
            price_in=self.judge_price_in,
            price_out=self.judge_price_out,
            price_cached=self.judge_price_cached,
            max_cost=max_cost,
            **{name: getattr(self, name) for name in passed},
        )


@dataclass
class EvalResult:
    out_dir: Path
    doc: dict  # eval.json
    table: str  # the models side by side, plain text
    notes: list[str] = field(default_factory=list)


def models_to_evaluate(config: EvalConfig, specs: list[str]) -> list[tuple[str, str | None]]:
    """(label, spec) per model: the specs given, or (spec None) the endpoint the config's own
    teacher fields name. A label is short, unique and file-safe: the model's name, numbered when
    two share one."""
    from .models import parse_model_spec

    own_endpoint = config.base_url is not None or config.endpoints is not None
    if specs and own_endpoint:
        raise SettingError("name the models as specs (NAME@URL) or with {base_url} and {model}, not both", "base_url")
    if not specs and not own_endpoint:
        raise SettingError(
            "name a model to evaluate: a spec (NAME@URL, embedded, or a checkpoint directory `finetune` wrote), "
            "or {base_url} and {model}",
            "base_url",
        )
    names = [parse_model_spec(spec).model for spec in specs] if specs else [config.model]
    labels: list[str] = []
    for name in map(file_safe, names):
        labels.append(name if name not in labels else f"{name}-{len(labels) + 1}")
    return list(zip(labels, specs or [None]))


def file_safe(name: str) -> str:
    """A model name as a folder name: "Qwen/Qwen2.5-7B:latest" -> "Qwen_Qwen2.5-7B_latest"."""
    return name.replace("/", "_").replace(":", "_")


def evaluate(
    config: EvalConfig, specs: list[str], out: str | Path, *, progress: bool = True, overwrite: bool = False
) -> EvalResult:
    """Evaluate each model of `specs` (see `eval.models`; none: the config's own endpoint) on the
    set into the directory `out`; rerunning resumes (nothing answered or judged is asked again)."""
    from .models import parse_model_spec

    out = Path(out)
    models, eval_set, plan = prepare(config, specs)
    out.mkdir(parents=True, exist_ok=True)
    set_path = eval_set.write(out)
    spend = SharedCap(config.max_cost, found_in=out, pattern="*/*")  # DIR/LABEL/answers, DIR/LABEL/pairwise
    references = {i.id: i.output for i in eval_set.items if i.output}
    if plan.pairwise and config.against is not None:
        label = f"against-{file_safe(parse_model_spec(config.against).model)}"
        against = _answer(config, config.against, label, set_path, out, spend, progress, overwrite)
        references = {item: answers[0] for item, answers in against.answers.items() if answers}
    template = _shared_template([spec for _, spec in models if spec is not None])
    judge, overlaps = None, {}
    described = eval_set.describe()
    if plan.verified:  # how the answers were checked: math-verify where it reads the reference
        described["verified_by"] = dict(Counter(map(method_of, plan.answers.values())))
    for label, spec in models:
        answered = _answer(config, spec, label, set_path, out, spend, progress, overwrite)
        entry = answered.entry(eval_set) | {"overlap": _overlap(config, spec, eval_set, overlaps)}
        scores = []
        if plan.verified:
            scores += verified_scores(answered.answers, plan.answers, config.samples)
        if plan.pairwise:
            pair_scores, entry["pairwise"], judge = _pairwise(
                config, eval_set, answered.answers, references, out / label, spend, progress, overwrite
            )
            scores += pair_scores
        if plan.imitation and answered.local:
            scores += _imitation(spec, eval_set, template)
        elif plan.imitation and config.wants("imitation", False):
            warn(f"{label}: the imitation score needs a local checkpoint (its weights), so it has none")
        entry["scores"] = {s.name: s.to_json() for s in scores}
        # written model by model: a long --compare that fails later keeps what it measured
        doc = write_eval(out, described, {label: entry}, judge)
    for _, spec in models:  # a student's card says how it scored
        for folder in student_folders(spec) if spec is not None else ():
            update_model_card(folder, doc)
    return EvalResult(out, doc, table(doc), notes(doc))


def prepare(config: EvalConfig, specs: list[str]) -> tuple[list[tuple[str, str | None]], EvalSet, Plan]:
    """The models, the set and the plan of an eval (or of its estimate), each checked before
    anything is served or asked."""
    models = models_to_evaluate(config, specs)
    eval_set = load_set(config.set, config.limit)
    return models, eval_set, Plan.of(config, eval_set)


@dataclass(frozen=True)
class Plan:
    """Which scores an eval computes, decided before anything is asked."""

    verified: bool
    pairwise: bool
    imitation: bool
    answers: dict[str, str]  # item id -> reference answer, for the verified score

    @classmethod
    def of(cls, config: EvalConfig, eval_set: EvalSet) -> Plan:
        answers = {i.id: i.answer for i in eval_set.items if i.answer is not None}
        outputs = eval_set.with_output > 0 or config.against is not None
        plan = cls(
            verified=config.wants("verified", bool(answers)),
            # by default the judge runs where there is no answer to verify: it costs a judge's tokens
            pairwise=config.wants("pairwise", outputs and (not answers or config.against is not None)),
            imitation=config.wants("imitation", eval_set.with_output > 0),
            answers=answers,
        )
        if plan.verified and not answers:
            raise SettingError(f"{config.set}: no item has an `answer` or `solution` to verify", "metrics")
        if plan.pairwise and not outputs:
            raise SettingError(
                f"{config.set}: no item has an `output` to judge against: add one, or judge against a model with {{against}}",
                "metrics",
                "against",
            )
        if plan.imitation and not eval_set.with_output:
            raise SettingError(f"{config.set}: no item has an `output` (a teacher answer) to score", "metrics")
        if plan.pairwise:
            config.check_judge_price()
        return plan


@dataclass
class Answered:
    spec: str
    model: str
    local: bool
    answers: dict[str, list[str]]  # item id -> the answers, by sample
    run_dir: Path
    stats: dict
    cost_usd: float | None
    samples: int

    def entry(self, eval_set: EvalSet) -> dict:
        session = self.stats.get("this_session", {})
        return {
            "spec": self.spec,
            "model": self.model,
            "samples": self.samples,
            "answers": str(self.run_dir),
            "answered": sum(1 for item in eval_set.items if self.answers.get(item.id)),
            "unanswered": sum(1 for item in eval_set.items if not self.answers.get(item.id)),
            "cost_usd": self.cost_usd,
            "answers_per_s": session.get("requests_per_s") if session.get("responses") else None,  # this session's
        }


def job_settings(config: EvalConfig, spec: ModelSpec | None, endpoint: dict) -> dict:
    """An answer job's teacher fields: the eval's; where the user left one unset, what the model
    `spec` can serve (`ModelSpec.defaults`: one request at a time for a local checkpoint); and
    the `endpoint` fields that send the requests to it."""
    settings = {name: getattr(config, name) for name in JobConfig.model_fields if name not in SET_BY_EVAL}
    defaults = spec.defaults() if spec is not None else {}
    return (
        settings
        | {name: value for name, value in defaults.items() if settings[name] is None}
        | endpoint
        | {"temperature": config.answer_temperature(), "preset": config.preset}
    )


def _answer(
    config: EvalConfig,
    spec: str | None,
    label: str,
    set_path: Path,
    out: Path,
    spend: SharedCap,
    progress: bool,
    overwrite: bool,
) -> Answered:
    """The model answers the set (or resumes doing so) in DIR/LABEL/answers."""
    from ..tasks.answer import AnswerConfig, answer
    from .models import open_model

    run_dir = out / label / "answers"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    serving = (
        open_model(spec, log_path=out / label / "server.log", api_key_env=config.api_key_env) if spec else nullcontext()
    )
    with serving as model:
        endpoint = model.job_settings() if model is not None else {}
        answer_config = AnswerConfig(
            source=str(set_path),
            samples=config.samples,
            max_cost=spend.cap_for(run_dir),
            **job_settings(config, model.spec if model is not None else None, endpoint),
        )
        result = answer(answer_config, run_dir, overwrite=overwrite, progress=progress).require_done(label)
    answers: dict[str, list[str]] = {}
    for _, record in sorted(read_jsonl(run_dir / DATA_FILE), key=lambda r: r[1]["sample"]):
        answers.setdefault(record["source_id"], []).append(record["output"])
    return Answered(
        spec or answer_config.model,
        answer_config.model,
        model is not None and model.spec.local,
        answers,
        run_dir,
        result.stats,
        result.cost.get("cost_usd"),
        config.samples,
    )


def _pairwise(
    config: EvalConfig,
    eval_set: EvalSet,
    answers: dict[str, list[str]],
    references: dict[str, str],
    folder: Path,
    spend: SharedCap,
    progress: bool,
    overwrite: bool,
):
    """The judge compares each item's first answer with its reference, in both orders."""
    pairs = [
        pair(item, answers.get(item.id, [""])[0], references[item.id])
        for item in eval_set.items
        if item.id in references
    ]
    pairs_path = folder / "pairs.jsonl"
    write_jsonl_atomic(pairs_path, pairs)
    run_dir = folder / "pairwise"
    judge_config = config.judge_config(pairs_path, spend.cap_for(run_dir))
    result = judge_pairs(judge_config, run_dir, overwrite=overwrite, progress=progress).require_done(
        f"{folder.name}'s judge"
    )
    verdicts = [verdict for _, verdict in read_jsonl(run_dir / DATA_FILE)]
    malformed = result.stats["pairwise"].get("malformed", 0)
    scores, details = pairwise_scores(pairs, verdicts, malformed)
    judge = {"model": judge_config.resolved().model, "prompt": PROMPT_VERSION}
    return scores, details | {"judge_cost_usd": result.cost.get("cost_usd")}, judge


def pair(item: Item, output: str, reference: str) -> dict:
    """What the judge is shown of an item: its instruction and input, the answer and the reference."""
    return {
        "id": item.id,
        "instruction": item.instruction,
        "input": item.input,
        "output": output,
        "reference": reference,
    }


def _imitation(spec: str, eval_set: EvalSet, template) -> list:
    from .imitation import imitation_score

    records = [{"instruction": i.instruction, "input": i.input, "output": i.output} for i in eval_set.items if i.output]
    return [imitation_score(spec, records, template=template)]


def _shared_template(specs: list[str]):
    """The prompt template the first trained checkpoint among `specs` was trained with: every
    model's imitation score is measured under it (a base and its student on the same text)."""
    from .checkpoint import trained_template

    return next((t for t in map(trained_template, specs) if t is not None), None)


def _overlap(config: EvalConfig, spec: str | None, eval_set: EvalSet, done: dict[str, dict]) -> dict | None:
    """The set checked against what the model was trained on: `train`, or the dataset a
    checkpoint's metrics.json names (`finetune` records it); `done` keeps the checks made, by
    training data, for the other models."""
    train = config.train
    if train is None and spec is not None and Path(spec).expanduser().is_dir():
        metrics = read_json_object(Path(spec).expanduser() / "metrics.json") or {}
        train = metrics.get("data", {}).get("path")
        if train is not None and not Path(train).exists():
            warn(f"{spec}: its training data {train} is gone, so the set's overlap with it is not checked")
            train = None
    if train is None:
        return None
    if train not in done:
        try:
            done[train] = overlap(eval_set, train)
        except SelfInstructError as e:
            if config.train is not None:  # named by the user: theirs to fix
                raise
            warn(f"{spec}: its training data cannot be read as records ({e}), so the overlap is not checked")
            return None
    return done[train]


def estimate_eval_cost(config: EvalConfig, specs: list[str], out: str | Path) -> list[tuple[str, object]]:
    """`eval --dry-run`: each model's answer job, and its judge job with the reference standing in
    for the answers not given yet: (what, CostEstimate) pairs. Nothing is served or asked."""
    from ..tasks.answer import AnswerConfig, estimate_answer_cost
    from .models import parse_model_spec

    out = Path(out)
    models, eval_set, plan = prepare(config, specs)
    estimates = []
    with tempfile.TemporaryDirectory(prefix="selfinstruct-eval-") as folder:
        scratch = Path(folder)
        set_path = eval_set.write(scratch)
        for label, spec in models:
            parsed = parse_model_spec(spec) if spec is not None else None
            endpoint = {"base_url": parsed.base_url, "model": parsed.model} if parsed is not None else {}
            answer_config = AnswerConfig(
                source=str(set_path),
                samples=config.samples,
                max_cost=config.max_cost,
                **job_settings(config, parsed, endpoint),
            )
            estimates.append(
                (f"{label}: answers", estimate_answer_cost(answer_config, _existing(out / label / "answers")))
            )
            if plan.pairwise:
                pairs = [pair(item, item.output, item.output) for item in eval_set.items if item.output]
                pairs_path = scratch / f"{label}-pairs.jsonl"
                write_jsonl_atomic(pairs_path, pairs)
                judge = config.judge_config(pairs_path, config.max_cost)
                estimates.append(
                    (f"{label}: judge", estimate_pairwise_cost(judge, _existing(out / label / "pairwise")))
                )
    return estimates


def _existing(run_dir: Path) -> Path | None:
    return run_dir if run_dir.exists() else None
