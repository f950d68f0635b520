"""The evolve task: WizardLM's Evol-Instruct on the job engine (arXiv 2304.12244).

Each instruction of the source (with its input) is rewritten by the teacher through one of the
paper's operations (`prompts.py`), drawn for it from `operations` with `seed`; the rewrite is
compared with its parent by the teacher, and answered. An evolution that fails the paper's
elimination step (`elimination.py`) is rejected with its reason; the others are kept, and the
next round evolves them, for `rounds` rounds (the paper: 4). One evolution is three requests,
each a work item of the run (`STAGE:ROOT:DEPTH`), each sent once its step before is answered:

    evolve:12:1    rewrite source instruction 12      -> fails `copied_evolving_prompt`: rejected
    compare:12:1   "Equal or Not Equal?" to its parent -> "Equal": rejected (`no_information_gain`)
    answer:12:1    the rewrite answered               -> the cleaner decides (the elimination rules first)
    evolve:12:2    the kept rewrite rewritten again, ...

A kept record is one evolved instruction and its answer:

    {id: "r000031", instruction, input: "", output, [reasoning], evol_depth: 1, operation: "deepen",
     [data_format], parent_id, root_id, parent_instruction, information_gain: true, judgement: "Not Equal",
     finish_reason, request_id, teacher_model, created}

`parent_id` is the source record's id in round 1 and the parent's `id` after; `root_id` the
source record's. The source's instructions themselves are not in data.jsonl.

Everything a step needs is in the ledger (the parent's text in the rewrite's request event,
the rewrite in its answer), so a resume rebuilds the same work items and asks nothing twice.
`rounds` and `limit` are not part of the run's identity: raising them continues a run.

    result = evolve(EvolveConfig(source="seed_tasks.jsonl", base_url=URL, model="gpt-4o-mini", rounds=2), "outputs/evol")
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from ...clean import Preset, load_preset
from ...clean.rules import RuleSet
from ...engine.config import JobConfig
from ...engine.estimate import PROMPT_SAMPLES, CostEstimate
from ...engine.job import JobResult, StopPolicy
from ...engine.ledger import load_ledger
from ...engine.run import run_task
from ...engine.task import ItemTask, Parsed, Request
from ...engine.view import RunView
from ...reasoning import split_reasoning
from ...stats import Stats
from ...tokens import estimate_prompt_tokens, prompt_tokens_upper_bound
from ..answer import Prompt, load_prompts
from ..registry import TaskEntry
from .elimination import CopiedEvolvingPrompt, eliminated, elimination_rules
from .prompts import DATA_FORMATS, OPERATIONS, PROMPT_VERSION, equality_prompt, evolving_prompt, read_judgement

EVOLVE, COMPARE, ANSWER = "evolve", "compare", "answer"  # the steps of one evolution, in order
ROUND = "round"  # Parsed.counts prefix: `round2/eliminated/refused_answer`
OPERATION = "operation"  # Parsed.counts prefix: `operation/deepen`, the evolutions decided by operation
ASSUMED_COMPLETION_SHARE = 0.25  # of max_tokens, for an estimate without history


class EvolveConfig(JobConfig):
    IDENTITY = JobConfig.IDENTITY + ("operations", "seed", "compare_max_tokens")

    source: str = Field(description="The instructions to evolve: a run directory, a dataset, or a seed file.")
    rounds: int = Field(
        4, ge=1, le=16, description="Rounds of evolution, each on the last one's survivors (WizardLM: 4)."
    )
    limit: int | None = Field(None, ge=1, description="Evolve only the first LIMIT instructions of the source.")
    operations: str = Field(
        ",".join(OPERATIONS),
        description="The operations drawn from, comma-separated: in-depth (add_constraints, deepen, concretize, "
        "increase_reasoning, complicate_input) and in-breadth (breadth).",
    )
    seed: int = Field(0, description="Seed of the operation drawn for each evolution.")
    compare_max_tokens: int = Field(
        64, ge=16, description="Completion limit of the Equal / Not Equal judgement (raise it for a reasoning teacher)."
    )
    preset: str = Field("answer", description="Cleaning preset name or .toml path (after the elimination rules).")

    @field_validator("operations")
    @classmethod
    def _known_operations(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in OPERATIONS]
        if unknown or not names:
            raise ValueError(
                f"unknown operation(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(OPERATIONS)}"
            )
        return ",".join(names)

    @property
    def operation_names(self) -> list[str]:
        return self.operations.split(",")


@dataclass
class Evolution:
    """One rewrite of one instruction, as far as its steps have gone."""

    root: int  # the source instruction's index
    depth: int  # its round
    parent_id: str
    parent_instruction: str
    operation: str
    data_format: str | None
    instruction: str = ""
    information_gain: bool | None = None
    judgement: str | None = None  # the teacher's words; None when it was not asked


def item(step: str, root: int, depth: int) -> str:
    return f"{step}:{root}:{depth}"


def read_item(key: str) -> tuple[str, int, int]:
    """ "compare:12:1" -> ("compare", 12, 1)"""
    step, root, depth = key.split(":")
    return step, int(root), int(depth)


def given_prompt(prompt: Prompt) -> str:
    """A source instruction as the rewriting prompt shows it: its input below it (as WizardLM's main.py)."""
    return f"{prompt.instruction}\n{prompt.input}" if prompt.input else prompt.instruction


def user_request(content: str, max_tokens: int, details: dict | None = None) -> Request:
    return Request(lambda _format: [{"role": "user", "content": content}], max_tokens, details=details or {})


def same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip().lower() == re.sub(r"\s+", " ", b).strip().lower()


class EvolveTask(ItemTask):
    name = "evolve"

    def __init__(self, config: EvolveConfig, prompts: list[Prompt], source_sha256: str, preset: Preset):
        super().__init__([])
        self.config = config
        self.prompts = prompts
        self.source_sha256 = source_sha256
        self.elimination = RuleSet(elimination_rules())
        self.preset = preset.model_copy(update={"rules": [*self.elimination.rules, *preset.rules]})
        self.queued: set[str] = set()
        self.evolutions: dict[tuple[int, int], Evolution] = {}  # by (root, depth), once its rewrite is answered
        self.kept: dict[tuple[int, int], dict] = {}  # the records kept: the next round's parents
        self.record_nodes: dict[str, tuple[int, int]] = {}  # a candidate record's id -> its (root, depth)
        for root in range(min(len(prompts), config.limit or len(prompts))):
            self.queue(item(EVOLVE, root, 1))

    def queue(self, key: str) -> None:
        """A work item, once: replays and recalls meet the same steps again."""
        if key not in self.queued:
            self.queued.add(key)
            self.items.append(key)

    def identity(self) -> dict:
        return {**self.config.identity(), "source_sha256": self.source_sha256, "prompt_version": PROMPT_VERSION}

    # ------------------------------------------------------------ what to ask

    def request(self, key: str) -> Request:
        step, root, depth = read_item(key)
        if step == EVOLVE:
            return self.evolve_request(root, depth)
        evolution = self.evolutions[root, depth]
        if step == COMPARE:
            content = equality_prompt(evolution.parent_instruction, evolution.instruction)
            return user_request(content, self.config.compare_max_tokens)
        return user_request(evolution.instruction, self.config.max_tokens)

    def evolve_request(self, root: int, depth: int) -> Request:
        """The rewrite of a source instruction (round 1) or of a kept evolution; the parent's text
        and id go into the ledger, so that the answer can be read without the parent at hand."""
        if depth == 1:
            parent_id, parent_instruction = self.prompts[root].id, given_prompt(self.prompts[root])
        else:
            parent = self.kept[root, depth - 1]
            parent_id, parent_instruction = parent["id"], parent["instruction"]
        rng = random.Random(f"{self.config.seed}:{root}:{depth}")  # a str seed: the same in every process
        operation = rng.choice(self.config.operation_names)
        data_format = rng.choice(DATA_FORMATS) if operation == "complicate_input" else None
        details = {
            "operation": operation,
            **({"data_format": data_format} if data_format else {}),
            "parent_id": parent_id,
            "parent_instruction": parent_instruction,
        }
        return user_request(
            evolving_prompt(operation, parent_instruction, data_format), self.config.max_tokens, details
        )

    # ------------------------------------------------------------ reading the answers

    def parse(self, request: dict, response: dict) -> Parsed:
        self.queue(request["item"])  # a step asked in an earlier session, before a lower limit or fewer rounds
        step, root, depth = read_item(request["item"])
        reasoning, content = split_reasoning(response["content"], response.get("reasoning"))
        if step == EVOLVE:
            return self.read_rewrite(request, response, root, depth, content.strip())
        evolution = self.evolutions[root, depth]
        if step == COMPARE:
            evolution.information_gain, evolution.judgement = read_judgement(content), content.strip()
            if evolution.information_gain:
                self.queue(item(ANSWER, root, depth))
                return Parsed()
            return self.decided(evolution, response, "")
        return self.decided(evolution, response, content, reasoning)

    def read_rewrite(self, request: dict, response: dict, root: int, depth: int, text: str) -> Parsed:
        evolution = Evolution(
            root,
            depth,
            request["parent_id"],
            request["parent_instruction"],
            request["operation"],
            request.get("data_format"),
            text,
        )
        self.evolutions[root, depth] = evolution
        problem = (
            "is empty" if not text else "was cut off at max_tokens" if response["finish_reason"] == "length" else None
        )
        if problem is not None:  # no instruction to go on with
            counts = {f"{ROUND}{depth}/unparseable": 1, f"{OPERATION}/{evolution.operation}": 1}
            return Parsed(problems=[f"the rewrite of {request['parent_id']} (round {depth}) {problem}"], counts=counts)
        if same_text(text, evolution.parent_instruction):  # no gain, and no need to ask
            evolution.information_gain = False
            return self.decided(evolution, response, "")
        if CopiedEvolvingPrompt().check(self.record(evolution, response, "")) is not None:  # not worth comparing
            return self.decided(evolution, response, "")
        self.queue(item(COMPARE, root, depth))
        return Parsed()

    def decided(self, evolution: Evolution, response: dict, output: str, reasoning: str | None = None) -> Parsed:
        """The evolution's last step: its record, for the cleaner to keep or reject (the
        elimination rules first), counted by round and by the elimination rule it fails."""
        record = self.record(evolution, response, output, reasoning)
        self.record_nodes[record["id"]] = (evolution.root, evolution.depth)
        prefix = f"{ROUND}{evolution.depth}"
        counts = {f"{prefix}/candidates": 1, f"{OPERATION}/{evolution.operation}": 1}
        if (rule := eliminated(self.elimination, record)) is not None:
            counts[f"{prefix}/eliminated/{rule}"] = 1
        return Parsed([record], counts=counts)

    def record(self, evolution: Evolution, response: dict, output: str, reasoning: str | None = None) -> dict:
        record = {"id": response["request_id"], "instruction": evolution.instruction, "input": "", "output": output}
        if reasoning is not None:
            record["reasoning"] = reasoning
        record |= {
            "evol_depth": evolution.depth,
            "operation": evolution.operation,
            **({"data_format": evolution.data_format} if evolution.data_format else {}),
            "parent_id": evolution.parent_id,
            "root_id": self.prompts[evolution.root].id,
            "parent_instruction": evolution.parent_instruction,
        }
        if evolution.information_gain is not None or evolution.judgement is not None:
            record |= {"information_gain": evolution.information_gain, "judgement": evolution.judgement}
        return record | {
            "finish_reason": response["finish_reason"],
            "request_id": response["request_id"],
            "teacher_model": response["model"],
            "created": response["time"],
        }

    def recall(self, request: dict, response: dict) -> None:
        self.parse(request, response)  # for the steps it leads to; its record is in the files already

    def accept(self, records: list[dict]) -> None:
        for record in records:
            root, depth = self.record_nodes[record["id"]]
            self.kept[root, depth] = record
            if depth < self.config.rounds:
                self.queue(item(EVOLVE, root, depth + 1))

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        """A step that leads to the next one moved the work on; an evolution that ended without
        a kept record was not worth its money (a run of them stops the run)."""
        return bool(kept) or not (parsed.records or parsed.problems)

    def describe(self, stats: Stats) -> dict:
        rounds = {}
        for depth in range(1, max((d for _, d in self.evolutions), default=0) + 1):
            prefix = f"{ROUND}{depth}"
            candidates, eliminations = stats[f"{prefix}/candidates"], stats.group(f"{prefix}/eliminated")
            kept = sum(1 for _, d in self.kept if d == depth)
            decided = candidates + stats[f"{prefix}/unparseable"]
            rounds[str(depth)] = {
                "evolved": sum(1 for _, d in self.evolutions if d == depth),
                "decided": decided,
                "eliminated": eliminations,
                "unparseable": stats[f"{prefix}/unparseable"],
                "rejected_by_preset": candidates - sum(eliminations.values()) - kept,
                "kept": kept,
                "eliminated_share": round(sum(eliminations.values()) / decided, 4) if decided else None,
            }
        kept_by_operation = Stats()
        for record in self.kept.values():
            kept_by_operation.add(record["operation"])
        operations = {
            name: {"decided": n, "kept": kept_by_operation[name]} for name, n in stats.group(OPERATION).items()
        }
        return {"evolve": {"rounds": rounds, "operations": operations}}


def evolve_task(config: EvolveConfig) -> EvolveTask:
    prompts, source_sha256 = load_prompts(config.source)
    return EvolveTask(config, prompts, source_sha256, load_preset(config.preset))


def evolve(
    config: EvolveConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """Run (or resume) an evolve run into the directory `out` (see `engine.run.run_job`)."""
    return run_task(evolve_task, config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)


def estimate_evolve_cost(config: EvolveConfig, out: str | Path | None = None) -> CostEstimate:
    """`evolve --dry-run`: the most the run can ask, every evolution of every round surviving
    to be asked its three steps (less what the run directory's ledger has answered). Prompts
    are the first round's real ones, the comparison and the answer counted on the parent (a
    rewrite adds 10 to 20 words); answers from the ledger's history, or without one a rewrite
    as long as its parent, a one-word judgement and an answer of a quarter of max_tokens."""
    config = config.resolved()
    task = evolve_task(config)
    history = load_ledger(RunView(out).ledger) if out else None
    sample = [task.request(key) for key in task.items[:: max(1, len(task.items) // PROMPT_SAMPLES)]]
    parents = [request.details["parent_instruction"] for request in sample]
    steps = [
        [request.messages("text") for request in sample],
        [user_request(equality_prompt(parent, parent), 0).messages("text") for parent in parents],
        [user_request(parent, 0).messages("text") for parent in parents],
    ]
    evolutions = len(task.items) * config.rounds
    requests = max(3 * evolutions - (history.totals.responses if history else 0), 0)
    if history and history.totals.responses:
        completion, basis = round(history.totals.completion_tokens / history.totals.responses), "ledger history"
    else:
        rewrite = sum(estimate_prompt_tokens(m) for m in steps[2]) / max(len(sample), 1)
        answer = min(math.ceil(config.max_tokens * ASSUMED_COMPLETION_SHARE), config.max_tokens)
        completion, basis = round((rewrite + 2 + answer) / 3), "assumptions"
    prompt = sum(estimate_prompt_tokens(m) for messages in steps for m in messages) / max(3 * len(sample), 1)
    return CostEstimate.priced(
        config,
        records_wanted=math.ceil(requests / 3),
        prompt_tokens=round(prompt),
        prompt_bound=max((prompt_tokens_upper_bound(m) for messages in steps for m in messages), default=0),
        completion_tokens=completion,
        accepted_per_request=1 / 3,
        basis=basis,
        yield_note="every evolution surviving every round: the most the run asks (WizardLM's elimination drops "
        "about half)",
    )


def round_summary(result: JobResult) -> list[str]:
    """One line per round: what the elimination step dropped, by rule, and what was kept."""
    lines = []
    for depth, figures in result.stats["evolve"]["rounds"].items():
        by_count = sorted(figures["eliminated"].items(), key=lambda item: (-item[1], item[0]))
        eliminated = ", ".join(f"{rule} {n}" for rule, n in by_count) or "none"
        others = [f"{figures[name]} {name.replace('_', ' ')}" for name in ("unparseable", "rejected_by_preset")]
        lines.append(
            f"round {depth}: {figures['decided']} evolutions decided, {sum(figures['eliminated'].values())} "
            f"eliminated ({eliminated}), {', '.join(others)}, {figures['kept']} kept"
        )
    return lines


ENTRY = TaskEntry(
    "evolve",
    EvolveConfig,
    evolve,
    estimate_evolve_cost,
    about="""Evolve every instruction of SOURCE with the teacher, round after round (WizardLM's Evol-Instruct).

    Each round rewrites the last round's survivors by an in-depth operation (add constraints,
    deepen, concretize, increase reasoning, complicate the input) or in breadth, answers them,
    and drops those that fail the paper's elimination step (no information gain, a refusal,
    an answer of stop words, the rewriting prompt's words copied) with their reason.
    Rerunning the same command on the same --out resumes; a higher --rounds continues.
    """,
    argument="source",
    default_out="{model}-evolved",
    kept="evolved instructions kept",
    summary=round_summary,
)
