"""The dataset card: README.md with the Hub's YAML header, stating how the data was made.

It names the teacher and where it ran (host only, never a URL path or key), the generation
settings, the seed set and its hash, the filter preset and its counts per rule, the dedup
figures, tokens and dollars, the dates, and whose terms of use apply to the outputs. A fact
the source did not record is written as unknown, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..engine.costs import usd
from ..engine.view import rule_counts
from ..errors import SettingError
from ..runfiles import MERGED_FROM
from .pairs import DROP_REASONS, PairStats
from .provenance import Judging, Provenance

MARKER = "<!-- Written by `selfinstruct export`: exporting again replaces this file. -->"

FORMAT_NOTES = {
    "alpaca": "Alpaca's `alpaca_data.json` fields: `instruction`, `input` (empty when the task needs none), `output`",
    "jsonl": "`instruction`, `input`, `output`, and provenance: `id`, `request_id` (the ledger entry of the "
    "answer it came from), `teacher_model`, `created`",
    "sharegpt": "ShareGPT `conversations`: `[{from: human, value}, {from: gpt, value}]` (the human turn is the "
    "instruction, then a blank line and the input), plus the provenance fields",
    "openai": "OpenAI chat fine-tuning JSONL: `messages` with user and assistant turns (the user turn is the "
    "instruction, then a blank line and the input)",
    "messages": "a `messages` column of user and assistant turns, as trl's `SFTTrainer` reads it (the user turn is "
    "the instruction, then a blank line and the input), plus the provenance fields",
    "dpo": "trl's preference format, as its `DPOTrainer` reads it: `prompt` (the instruction in Stanford Alpaca's "
    "prompt template), `chosen` and `rejected` (the two answers, each to follow the prompt), plus `score_chosen`, "
    "`score_rejected`, `source_id`, `chosen_teacher` and `rejected_teacher`",
    "dpo-chat": "trl's conversational preference format, as its `DPOTrainer` reads it: `prompt` (the user turn: "
    "the instruction, then a blank line and the input), `chosen` and `rejected` (one assistant turn each), plus "
    "`score_chosen`, `score_rejected`, `source_id`, `chosen_teacher` and `rejected_teacher`",
}

SETTINGS = [  # (config key, what the card calls it)
    ("examples_per_prompt", "seed tasks shown per request"),
    ("machine_examples_per_prompt", "generated tasks shown per request"),
    ("tasks_per_request", "new tasks asked for per request"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("max_tokens", "max tokens per answer"),
    ("response_format", "response format"),
    ("seed", "sampling seed"),
    ("num_instructions", "target records"),
]

# The Hub's buckets (its search filters use them).
SIZE_CATEGORIES = [
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
]


@dataclass(frozen=True)
class CardInfo:
    """What the export adds to the source's provenance."""

    name: str
    format: str
    load_code: str  # how to load what was written
    license: str = "other"
    language: str = "en"
    system_prompt: str | None = None
    splits: dict[str, int] | None = None
    reasoning: str | None = None  # how the records' reasoning traces were exported (None: they have none)
    pairing: PairStats | None = None  # dpo: how the preference pairs were made
    chat: bool = False  # dpo: conversational rows


REASONING_NOTES = {
    "inline": "inline at the start of each output, as `<think>\\n…\\n</think>\\n\\n` before the answer (the form "
    "open reasoning datasets are trained on)",
    "field": "in a column of its own (`reasoning`; `reasoning_content` in the assistant message of chat formats)",
    "drop": "not exported: the outputs hold the final answers only",
}


def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "1B<n<10B")


def render_dataset_card(facts: Provenance, info: CardInfo) -> str:
    from huggingface_hub import DatasetCardData

    header = DatasetCardData(
        license=info.license,
        language=[info.language],
        task_categories=["text-generation"],
        size_categories=[size_category(info.pairing.pairs if info.pairing else facts.records)],
        tags=[
            "selfinstruct",
            "synthetic",
            *(["dpo", "preference"] if info.pairing else ["instruction-finetuning"]),
            "alpaca",
        ],
        pretty_name=info.name,
    )
    today = datetime.now(timezone.utc).date().isoformat()
    sections = [
        f"---\n{header.to_yaml()}\n---",
        MARKER,
        f"# {info.name}",
        _summary(facts, info),
        _terms(facts, info),
        _generation(facts, today),
        _filtering(facts),
        *([_judging(facts.judging)] if facts.judging else []),
        *([_pairing(info.pairing)] if info.pairing else []),
        _cost(facts),
        *([_reasoning(facts, info)] if info.reasoning else []),
        _format(info),
        "## Limitations\n\nThe records are machine-generated and were not reviewed by people: outputs can be "
        "wrong, made up, biased or unsafe, and the instructions inherit the topics and slant of the seed tasks. "
        "Check a sample before you train on it, and evaluate the model you train.",
    ]
    return "\n\n".join(sections) + "\n"


def check_card_path(path: Path) -> None:
    """Refuse to replace a card file that an export did not write (someone's own README.md, say)."""
    if path.exists() and MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        raise SettingError(
            f"{path}: not written by selfinstruct, and the dataset card of this export goes there; "
            "move it away or choose another {to}",
            "to",
        )


def write_card(path: Path, text: str) -> None:
    check_card_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# How the records were made, by the task of the run that made them (config.json's "task").
METHODS = {
    "bootstrap": ", which expands human-written seed tasks into new tasks with a teacher model (the self-instruct / "
    "Stanford Alpaca method)",
    "answer": ": a teacher model answered given instructions (distillation), each answer one record",
    "evolve": ", by Evol-Instruct (WizardLM, arXiv 2304.12244): a teacher rewrote given instructions round after "
    "round into harder or rarer ones and answered them; rewrites that failed WizardLM's elimination step were dropped",
    "magpie": ", by Magpie (arXiv 2406.08464): the teacher wrote each instruction from its chat template's "
    "pre-query alone, then answered it",
}


def _summary(facts: Provenance, info: CardInfo) -> str:
    teacher = f"`{facts.teacher}`" if facts.teacher else "an unrecorded teacher model"
    splits = f" Splits: {', '.join(f'{k} {v:,}' for k, v in info.splits.items())}." if info.splits else ""
    method = METHODS.get((facts.config or {}).get("task"), "")
    if info.pairing:
        pairing = info.pairing
        return (
            f"{pairing.pairs:,} preference pairs (prompt, chosen, rejected) for DPO, made with selfinstruct from "
            f"{pairing.answers:,} answers to {pairing.prompts:,} prompts, each rated 0-5 by "
            f"{_names(pairing.judges, 'an unrecorded judge')}. Answers by {_names(pairing.teachers, 'an unrecorded teacher')}. "
            f"Exported as `{info.format}`{' (conversational)' if info.chat else ''}.{splits}"
        )
    return (
        f"{facts.records:,} instruction-following records (instruction, input, output) made with selfinstruct{method}. "
        f"Teacher: {teacher}.{_judged(facts.judging)} Exported as `{info.format}`.{splits}"
    )


def _judged(judging: Judging | None) -> str:
    if judging is None:
        return ""
    threshold = judging.threshold
    kept = f"; only records scored {threshold:g} or more were kept" if threshold is not None else ""
    return f" Each record was rated 0-5 by `{judging.model}` (the AlpaGasus method){kept}."


def _names(names: list[str], unknown: str) -> str:
    return ", ".join(f"`{name}`" for name in names) if names else unknown


def _pairing(pairing: PairStats) -> str:
    """How the pairs were made, what was dropped and why, and the score margins."""
    sources = ", ".join(f"`{source}`" for source in pairing.sources)
    per_prompt = ", ".join(f"{prompts:,} with {n} answers" for n, prompts in pairing.answers_per_prompt.items())
    lines = [
        "## Preference pairs",
        "",
        (
            f"The rated answers of {sources} ({pairing.answers:,}, the ones a judge scored below its threshold "
            "included) were grouped by prompt (the same instruction and input), "
            f"{pairing.prompts:,} prompts ({per_prompt}). For each prompt the best-rated answer is `chosen` and the "
            f"worst-rated `rejected`, when their scores differ by at least {pairing.min_margin:g} (of answers rated "
            "the same, the first rated is taken); the UltraFeedback way of making DPO pairs from ratings. "
            f"{pairing.pairs:,} prompts gave a pair."
        ),
        "",
        "Prompts without a pair:",
        "",
        *_md_table(("reason", "prompts"), [(f"`{r}`", f"{pairing.dropped.get(r, 0):,}") for r in DROP_REASONS]),
        "",
        "Score margins (`score_chosen - score_rejected`):",
        "",
        *_md_table(("margin", "pairs"), [(margin, f"{n:,}") for margin, n in pairing.margins.items()]),
    ]
    return "\n".join(lines)


def _terms(facts: Provenance, info: CardInfo) -> str:
    teacher = f"`{facts.teacher}`" if facts.teacher else "a teacher model that the source did not record"
    host = f" served by {facts.host}" if facts.host else ""
    return (
        "## Provenance and terms of use\n\n"
        f"This data was generated by {teacher}{host}. The terms of use of that model and of the provider that "
        "served it apply to its outputs, and so to this dataset: read them before you train on it or release a "
        "model trained on it (some providers forbid using outputs to build competing models; Stanford Alpaca's "
        "data, made with text-davinci-003, is licensed for non-commercial use for that reason). "
        + (
            f"The ratings (`score`, `rationale`) were made by `{facts.judging.model}`, whose terms apply to them too. "
            if facts.judging
            else ""
        )
        + f"The `license: {info.license}` above is the exporter's choice and does not override those terms."
    )


def _generation(facts: Provenance, today: str) -> str:
    dates = f"between {facts.created[0]} and {facts.created[1]}" if facts.created else "on unrecorded dates"
    lines = ["## Generation", ""]
    if facts.config is None:
        source = facts.judging.config.get("config", {}).get("source") if facts.judging else facts.source
        lines.append(
            f"Not recorded: `{source}` is not a selfinstruct run directory, so the teacher's settings, "
            "seed set and cost are unknown (export with `--run-dir RUN` to name the run the records came from)."
        )
    else:
        rows = [("teacher model", f"`{facts.teacher}`"), ("provider host", facts.host or "unknown")]
        rows += [(label, f"`{facts.settings.get(key)}`") for key, label in SETTINGS if key in facts.settings]
        seeds_name, seeds_sha = facts.seeds()
        rows.append(("seed set", f"{seeds_name}, sha256 `{seeds_sha}`"))
        lines += _md_table(("setting", "value"), rows)
    lines += ["", f"Records generated {dates} (UTC); exported on {today}."]
    shards = (facts.generation_stats or {}).get("shards") if facts.config and MERGED_FROM in facts.config else None
    if shards:
        lines += [
            "",
            f"Made by {len(shards)} workers of one run (`--shard i/N`), merged with `selfinstruct merge`, which "
            "removed the records of a later shard that repeat an earlier one's:",
            "",
            *_md_table(
                ("shard", "records", "surplus", "duplicates of other shards removed", "cost (USD)"),
                [
                    (
                        label,
                        f"{f['records']:,}",
                        f"{f['surplus']:,}",
                        f"{f['duplicate_across_shards']:,}",
                        usd(f["cost_usd"]) if f.get("cost_usd") is not None else "unknown",
                    )
                    for label, f in shards.items()
                ],
            ),
        ]
    return "\n".join(lines)


def _filtering(facts: Provenance) -> str:
    during, after = facts.generation_stats, facts.filter_stats
    paragraphs = ["## Filtering and deduplication"]
    if not during and not after:
        return "\n\n".join(
            [*paragraphs, "Not recorded: the source has no stats.json, so filter and dedup counts are unknown."]
        )
    if during:
        seen, kept = during.get("candidates"), (during.get("filters") or {}).get("kept")
        rate = f" ({kept / seen:.1%})" if seen and kept is not None else ""
        paragraphs.append(
            f"During generation, filter preset `{facts.identity.get('preset', during.get('preset'))}` (sha256 "
            f"`{facts.identity.get('preset_sha256', 'unknown')}`) saw {seen} candidate records and kept {kept}{rate} "
            f"(answer parts that could not be parsed as tasks: {during.get('unparseable', 0)}). "
            "Rejections per rule:\n\n" + _counts_table(rule_counts(during))
        )
    if after:
        against = ", ".join(f"`{Path(b).name}`" for b in after.get("decontaminated_against") or [])
        paragraphs.append(
            f"Then `selfinstruct filter` with preset `{after.get('preset', 'unknown')}`"
            + (f", decontaminating against {against}," if against else "")
            + f" saw {after.get('seen', 'an unrecorded number of')} records and kept {after.get('kept', 'some')}. "
            "Rejections per rule:\n\n" + _counts_table(rule_counts(after))
        )
    return "\n\n".join([*paragraphs, _dedup_line(facts)])


def _dedup_line(facts: Provenance) -> str:
    removed = {}
    for stats in (facts.generation_stats, facts.filter_stats):
        for rule, count in (rule_counts(stats) or {}).items():
            if "duplicate" in rule:
                removed[rule] = removed.get(rule, 0) + count
    figures = f"{sum(removed.values()):,} records" + "".join(f", `{rule}` {n:,}" for rule, n in removed.items())
    dedup = facts.dedup_settings()
    if dedup is None:
        return f"Deduplication removed: {figures}."
    settings = ", ".join(f"{k} = {v}" for k, v in dedup.items()) or "all at their defaults"
    return (
        f"Deduplication removed: {figures}. Near-duplicates are found with MinHash LSH and decided by ROUGE-L "
        f"against earlier records, seed tasks included; the preset's `[dedup]` settings: {settings}."
    )


def _judging(judging: Judging) -> str:
    """How the records were rated and selected: the judge, the threshold, the score distribution, its cost."""
    figures, settings = judging.figures, judging.config.get("config", {})
    identity = judging.config.get("identity", {})
    how = (
        f"Every record was rated by `{judging.model}` ({judging.host}, temperature {settings.get('temperature', 'unknown')}) "
        'with AlpaGasus\'s prompt (Chen et al. 2023, "AlpaGasus: Training a Better Alpaca with Fewer Data"): the accuracy '
        "and helpfulness of the response to the instruction and input, on a scale of 0 to 5, with a one-sentence "
        f"rationale (prompt `{identity.get('rating_prompt', 'unknown')}`). Each record carries its `score`, `rationale`, "
        "`judge_model` and `judge_request_id` (the formats with provenance fields keep them)."
    )
    lines = ["## Judging", "", how]
    if not figures:
        return "\n".join([*lines, "", "The judge's counts were not recorded (no stats.json)."])
    unparseable = (judging.stats or {}).get("unparseable", 0)
    selection = (
        f"{figures.get('scored', 0):,} records were scored ({unparseable:,} answers held no usable rating); "
        f"the judge kept the {figures.get('kept', 0):,} scored {figures.get('threshold', 0):g} or more."
    )
    after = judging.after
    if after and after.get("min_score") is not None:
        selection += (
            f" Then `selfinstruct filter --min-score {after['min_score']:g}` re-selected {after.get('kept', 0):,} "
            f"of the {after.get('seen', 0):,} scored records, without rating them again."
        )
    elif after:
        selection += (
            f" Then `selfinstruct filter` (preset `{after.get('preset', 'unknown')}`) kept {after.get('kept', 0):,} "
            f"of the {after.get('seen', 0):,} judged records."
        )
    lines += ["", selection]
    threshold = judging.threshold
    rows = [
        (f"{score}", f"{n:,}" + (" (kept)" if threshold is not None and float(score) >= threshold else ""))
        for score, n in figures.get("histogram", {}).items()
    ]
    lines += ["", "Score distribution:", "", *_md_table(("score", "records"), rows or [("(none)", "0")])]
    cost = judging.cost
    if cost is not None:
        lines += [
            "",
            (
                f"Judging cost: {usd(cost.cost_usd)} for {cost.responses:,} answers ({cost.prompt_tokens:,} prompt and "
                f"{cost.completion_tokens:,} completion tokens); the cost below is the generation's."
            ),
        ]
    return "\n".join(lines)


def _cost(facts: Provenance) -> str:
    cost = facts.cost
    if cost is None:
        return "## Cost\n\nNot recorded: no ledger of the run that made these records."
    rows = [
        (
            "requests",
            f"{cost.requests:,} ({cost.responses:,} answered, {cost.failures:,} failed"
            + (f"; {cost.batch_responses:,} through the Batch API, at its discount)" if cost.batch_responses else ")"),
        ),
        ("prompt tokens", f"{cost.prompt_tokens:,} ({cost.cached_tokens:,} cached)"),
        (
            "completion tokens",
            f"{cost.completion_tokens:,}"
            + (
                f" ({cost.reasoning_tokens:,} reasoning, {cost.completion_tokens - cost.reasoning_tokens:,} answers)"
                if cost.reasoning_tokens
                else ""
            ),
        ),
        ("spent (USD, at the run's prices)", usd(cost.cost_usd)),
        (f"per 1,000 records accepted during generation ({cost.accepted:,})", usd(cost.usd_per_1000_accepted)),
        ("possibly billed (requests with no recorded outcome)", usd(cost.unsettled_usd)),
    ]
    rows += [(f"endpoint `{name}`", share) for name, share in cost.endpoint_rows()]  # a run over several endpoints
    return "\n".join(["## Cost", "", *_md_table(("", "run total"), rows)])


def _reasoning(facts: Provenance, info: CardInfo) -> str:
    """A reasoning teacher's records: where the traces went, what they cost, how many were checked."""
    lines = [
        f"## Reasoning\n\nThe teacher is a reasoning model: the records carry its reasoning traces, exported "
        f"{REASONING_NOTES[info.reasoning]}."
    ]
    cost = facts.cost
    if cost is not None and cost.reasoning_tokens:
        answers = cost.completion_tokens - cost.reasoning_tokens
        lines.append(
            f"Completion tokens: {cost.reasoning_tokens:,} on reasoning ({cost.reasoning_tokens / cost.completion_tokens:.0%}) "
            f"and {answers:,} on answers."
        )
    verification = (facts.generation_stats or {}).get("verification")
    if verification and verification.get("checked"):
        lines.append(
            f"Answers were verified ({verification['method']}, against the source's reference answers): "
            f"{verification['correct']:,} of {verification['checked']:,} correct ({verification['pass_rate']:.1%}); "
            "only verified answers were kept."
        )
    return " ".join(lines)


def _format(info: CardInfo) -> str:
    system = f"Each chat starts with the system prompt: {info.system_prompt!r}." if info.system_prompt else ""
    return "\n".join(
        [
            "## Format",
            "",
            f"`{info.format}`: {FORMAT_NOTES[info.format + ('-chat' if info.chat else '')]}. {system}".rstrip(),
            "",
            "```python",
            info.load_code,
            "```",
        ]
    )


def _counts_table(counts: dict[str, int] | None) -> str:
    if not counts:
        return "(no rejections)"
    return "\n".join(_md_table(("rule", "rejected"), [(f"`{rule}`", f"{n:,}") for rule, n in counts.items()]))


def _md_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(map(str, row)) + " |" for row in (head, ("---",) * len(head), *rows)]
