"""Magpie (arXiv 2406.08464): instructions from an aligned model given only its chat template's
pre-query, then answered by the same model, turn after turn.

A conversation is a chain of requests, each in the ledger with what it asks:

    instruction  the raw prompt `template.before_user(system + history)` to /completions,
                 stopped at the template's end-of-turn token: the model writes a user's request
    answer       the conversation so far, as chat messages, to /chat/completions

Each instruction is checked by the preset's leading instruction rules before its answer is paid
for; from the second turn on, each answered turn by all the preset's rules. A turn that fails
goes to the cleaner as a record of its own, which rejects it for the same reason, counted and
written to rejected.jsonl; the conversation ends there. A conversation of `turns` answered
turns becomes one record:

    {id, instruction, input: "", output,            the first turn, as every export writes it
     conversation: [{role, content}, ...],           with --turns 2 or more: every turn
     system, conversation_id, turns, finish_reason, request_id, teacher_model, created}

A request's ledger event holds its conversation so far (`history`), so the conversations under
way come back from the ledger on a resume: `parse` on the answers it replays, `recall` on those
the checkpoint holds.

    result = magpie(MagpieConfig(target=20), "outputs/magpie")
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from pydantic import Field, model_validator

from ...chat_template import ChatTemplate, read_chat_template
from ...clean import Preset, load_preset
from ...clean.rules import RuleSet
from ...clean.rules.base import with_rule
from ...clean.rules.template import TemplateTokens
from ...engine.config import JobConfig
from ...engine.estimate import CostEstimate
from ...engine.job import JobResult, StopPolicy
from ...engine.ledger import load_ledger
from ...engine.run import run_task
from ...engine.task import Parsed, Request, Task
from ...engine.view import RunView
from ...errors import SettingError
from ...records import count_jsonl
from ...resources import bundled_gguf
from ...stats import Stats
from ...tokens import estimate_prompt_tokens, prompt_tokens_upper_bound

INSTRUCTION, ANSWER = "instruction", "answer"  # a request's step
# The rules that read only the instruction: those leading the preset are run on each new
# instruction, before its answer is asked for.
INSTRUCTION_RULES = frozenset(
    {
        "template_tokens",
        "instruction_cut_off",
        "instruction_words",
        "blacklist",
        "write_a_program",
        "leading_punctuation",
        "non_ascii_start",
        "not_a_task",
        "language",
    }
)
# Conversations kept per conversation started, before a run's own answers say: 20 of 23 in
# SmolLM2-135M's `magpie -n 20` of the README (2026-12-06: one instruction not a request, one cut
# off, one answer refusing); it sizes the first requests of a run and the dry run's estimate.
ASSUMED_YIELD = 0.87
ASSUMED_ANSWER_SHARE = 0.25  # of max_tokens, an answer's length for the estimate without history


class MagpieConfig(JobConfig):
    IDENTITY = JobConfig.IDENTITY + ("turns", "system", "instructions_only", "instruction_tokens", "seed")

    target: int = Field(100, ge=1, description="Stop at this many conversations kept.")
    turns: int = Field(1, ge=1, le=20, description="User turns per conversation (2 or more: multi-turn data).")
    system: str | None = Field(
        None, description="A system prompt before every conversation: steers the topic (Magpie's issue 5)."
    )
    chat_template: str | None = Field(
        None,
        description="The teacher's chat template: its .gguf, its tokenizer_config.json, or a folder with one "
        "(default: the embedded teacher's GGUF).",
    )
    instructions_only: bool = Field(
        False,
        description="Keep the instructions unanswered, to answer with another model (`selfinstruct answer RUN`).",
    )
    instruction_tokens: int = Field(256, ge=16, description="Token limit of an instruction (--max-tokens: answers).")
    seed: int = Field(42, description="Seeds each request's sampling with its number: another seed, other data.")
    preset: str = Field("magpie", description="Cleaning preset name or .toml path.")

    @model_validator(mode="after")
    def _fits_magpie(self):
        if self.instructions_only and self.turns > 1:
            raise SettingError(
                "{turns} above 1 needs answers: a later instruction follows the answer before it; "
                "drop {instructions_only} or {turns}",
                "turns",
                "instructions_only",
            )
        if self.batch:
            raise SettingError(
                "magpie sends its requests online: each turn waits for the answer before it, and raw prompts "
                "are not sent through the Batch API; drop {batch}",
                "batch",
            )
        if self.base_url is not None and self.chat_template is None:
            raise SettingError(
                f"magpie needs the chat template of {self.model!r} to find the text before a user's message: "
                "give {chat_template} (the model's .gguf, or its tokenizer_config.json or the folder holding it)",
                "chat_template",
            )
        return self


def load_template(config: MagpieConfig) -> ChatTemplate:
    """The teacher's chat template: the file given, or the embedded teacher's GGUF."""
    if config.chat_template is not None and not Path(config.chat_template).exists():
        raise SettingError(
            f"{{chat_template}} {config.chat_template}: no such file or folder (give the model's .gguf, "
            "its tokenizer_config.json, or the folder holding it)",
            "chat_template",
        )
    return read_chat_template(config.chat_template or bundled_gguf())


def request_seed(seed: int, index: int) -> int:
    """The sampling seed of request `index`: a server asked the same pre-query samples from one
    sequence started with the server (llama.cpp's), so each (re)start would ask for the same
    instructions again; a seed per request makes each its own, and a run reproducible."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "big") >> 1


def step(conversation: str, turn: int, kind: str, history: list[dict]) -> dict:
    """One request of a conversation: its `kind` (INSTRUCTION or ANSWER) in user turn `turn`,
    after the messages `history` (the system prompt left out: it is the config's)."""
    return {"conversation": conversation, "turn": turn, "step": kind, "history": history}


def step_key(details: dict) -> tuple[str, int, str]:
    return details["conversation"], details["turn"], details["step"]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


class MagpieTask(Task):
    name = "magpie"

    def __init__(self, config: MagpieConfig, template: ChatTemplate, preset: Preset):
        self.config = config
        self.template = template
        rules = with_rule(preset.rules, TemplateTokens, lambda _rule: TemplateTokens(tokens=template.special_tokens))
        leading = next((i for i, rule in enumerate(rules) if rule.name not in INSTRUCTION_RULES), len(rules))
        if config.instructions_only:  # nothing to check but the instruction
            rules = rules[:leading]
        self.preset = preset.model_copy(update={"rules": rules})
        self.instruction_rules = RuleSet(rules[:leading])
        self.turn_rules = RuleSet(rules)
        self.system = [{"role": "system", "content": config.system}] if config.system else []
        self.target = config.target
        requests = 1 if config.instructions_only else 2 * config.turns  # per conversation
        self.assumed_per_answer = ASSUMED_YIELD / requests
        # Steps ready to ask, oldest first: each conversation's next, once the step before it is
        # answered and passed. A step in flight is in none of them, and comes back on a resume.
        self.ready: dict[tuple, dict] = {}
        self.answered: set[tuple] = set()
        self.planned: tuple[int, Request] | None = None  # the last request asked for, by its index

    def identity(self) -> dict:
        template = "\0".join([self.template.template, *self.template.special_tokens])
        return {**self.config.identity(), "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest()}

    @property
    def pre_query(self) -> str:
        """The raw prompt of a conversation's first instruction."""
        return self.template.before_user(self.system)

    def recall(self, request: dict, response: dict) -> None:
        """An answer a resume takes from the checkpoint: its conversation's next step is read
        from it as from any answer (the records it gave are in the run's files already)."""
        self.parse(request, response)

    # ------------------------------------------------------------ asking

    def next_request(self, index: int) -> Request:
        """A conversation's next step (those under way first, so that they end), else a new
        conversation named after the index that starts it."""
        if self.planned is not None and self.planned[0] == index:  # held back by the cost cap: asked again
            return self.planned[1]
        if self.ready:
            next_step = self.ready.pop(next(iter(self.ready)))
        else:
            next_step = step(f"c{index:06d}", 1, INSTRUCTION, [])
        request = self.request(next_step, request_seed(self.config.seed, index))
        self.planned = (index, request)
        return request

    def request(self, details: dict, seed: int) -> Request:
        """The request of a step: its details (`step`) go into the ledger's request event."""
        messages = [*self.system, *details["history"]]
        if details["step"] == INSTRUCTION:
            prompt = self.template.before_user(messages)
            return Request.raw(prompt, self.template.stops, self.config.instruction_tokens, details, seed)
        return Request(lambda _format: messages, self.config.max_tokens, details=details, seed=seed)

    def released(self, request: dict) -> None:
        """A step given up or cancelled is asked again: its conversation goes on."""
        self._queue(step(request["conversation"], request["turn"], request["step"], request["history"]))

    def _queue(self, details: dict) -> None:
        if step_key(details) not in self.answered:
            self.ready[step_key(details)] = details

    # ------------------------------------------------------------ reading the answers

    def parse(self, request: dict, response: dict) -> Parsed:
        key = step_key(request)
        self.answered.add(key)
        self.ready.pop(key, None)
        text = response["content"].strip()
        history = request["history"]
        if request["step"] == INSTRUCTION:
            cut = {"instruction_finish_reason": response["finish_reason"]}  # what `instruction_cut_off` reads
            if self.config.instructions_only:  # the cleaner runs the instruction rules
                return Parsed([self._record(request, response, [user(text)]) | cut])
            turn = {"instruction": text, "input": "", "output": "", **cut}
            if self.instruction_rules.check(turn).rejection is not None:
                return Parsed([self._turn_record(request, response, turn)])
            self._queue(step(request["conversation"], request["turn"], ANSWER, [*history, user(text)]))
            return Parsed(counts={"magpie/instructions": 1})
        conversation = [*history, assistant(text)]
        if self.config.turns > 1:
            turn = {"instruction": history[-1]["content"], "input": "", "output": text}
            if self.turn_rules.check(turn).rejection is not None:
                return Parsed([self._turn_record(request, response, turn)])
        if request["turn"] == self.config.turns:
            return Parsed([self._record(request, response, conversation)])
        self._queue(step(request["conversation"], request["turn"] + 1, INSTRUCTION, conversation))
        return Parsed(counts={"magpie/turns_continued": 1})

    def _turn_record(self, request: dict, response: dict, turn: dict) -> dict:
        """A turn that failed a rule, as a record the cleaner rejects for that rule."""
        ids = {"conversation_id": request["conversation"], "turn": request["turn"]}
        return {"id": response["request_id"], **turn, **ids, "request_id": response["request_id"]}

    def _record(self, request: dict, response: dict, conversation: list[dict]) -> dict:
        answer = conversation[1]["content"] if len(conversation) > 1 else ""
        record = {
            "id": response["request_id"],
            "instruction": conversation[0]["content"],
            "input": "",
            "output": answer,
        }
        if self.config.turns > 1:
            record["conversation"] = [*self.system, *conversation]
        if self.config.system:
            record["system"] = self.config.system
        return record | {
            "conversation_id": request["conversation"],
            "turns": self.config.turns,
            "finish_reason": response["finish_reason"],
            "request_id": response["request_id"],
            "teacher_model": response["model"],
            "created": response["time"],
        }

    def useful(self, parsed: Parsed, kept: list[dict]) -> bool:
        """An answer that moved a conversation on was worth its money, as was one kept."""
        return bool(kept) or bool(parsed.counts)

    def describe(self, stats: Stats) -> dict:
        return {
            "magpie": {
                "chat_template": self.template.source,
                "pre_query": self.pre_query,
                "stops": list(self.template.stops),
                "instructions_passed": stats["magpie/instructions"],
                "turns_continued": stats["magpie/turns_continued"],
            }
        }


def magpie_task(config: MagpieConfig) -> MagpieTask:
    return MagpieTask(config, load_template(config), load_preset(config.preset))


def magpie(
    config: MagpieConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    policy: StopPolicy = StopPolicy(),
    teacher=None,
) -> JobResult:
    """Run (or resume) a Magpie run into the directory `out` (see `engine.run.run_job`)."""
    return run_task(magpie_task, config, out, overwrite=overwrite, progress=progress, policy=policy, teacher=teacher)


def estimate_magpie_cost(config: MagpieConfig, out: str | Path | None = None) -> CostEstimate:
    """`magpie --dry-run`: per conversation, `turns` instructions and answers; each prompt the
    pre-query and the turns before it, each answer a quarter of max_tokens and each instruction
    half its limit without history; the yield `ASSUMED_YIELD` without history."""
    config = config.resolved()
    task = magpie_task(config)
    answer_tokens = math.ceil(config.max_tokens * ASSUMED_ANSWER_SHARE)
    instruction_tokens = config.instruction_tokens // 2
    pre_query = [{"role": "user", "content": task.pre_query}]
    steps = 1 if config.instructions_only else 2 * config.turns
    turn_tokens = instruction_tokens + (0 if config.instructions_only else answer_tokens)
    # the k-th request of a conversation sees the k-1 messages before it, about half a turn each
    prompt = estimate_prompt_tokens(pre_query) + round(turn_tokens * (steps - 1) / 4)
    completion = round((instruction_tokens + (0 if config.instructions_only else answer_tokens)) / min(steps, 2))
    per_request, basis = ASSUMED_YIELD / steps, "assumptions"
    run = RunView(out) if out else None
    totals = load_ledger(run.ledger).totals if run else None
    kept = count_jsonl(run.data) + count_jsonl(run.surplus) if run else 0
    if kept and totals.responses:
        per_request, basis = kept / totals.responses, "ledger history"
        completion = round(totals.completion_tokens / totals.responses)
        prompt = round(totals.prompt_tokens / totals.responses)
    return CostEstimate.priced(
        config,
        records_wanted=max(config.target - kept, 0),
        prompt_tokens=prompt,
        prompt_bound=prompt_tokens_upper_bound(pre_query)
        + config.turns * (config.instruction_tokens + config.max_tokens),
        completion_tokens=completion,
        accepted_per_request=per_request,
        basis=basis,
        yield_note=None if kept else f"{ASSUMED_YIELD:.0%} of conversations kept, as SmolLM2-135M's in the README",
    )
