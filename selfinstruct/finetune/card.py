"""The model card (README.md) written next to the trained weights.

It names the base model, the dataset and the dataset's own card (which `selfinstruct export`
writes beside a data file or inside a dataset directory), the recipe and the loss, so a
student found later on disk or on the Hub says where it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ..export.destinations import CARD_SUFFIX
from .recipe import Recipe
from .template import PROMPT_INPUT, PROMPT_NO_INPUT


def find_dataset_card(data: Path) -> Path | None:
    """The card export wrote inside a dataset directory or beside a file (FILE.README.md; a README.md
    beside it from exports that wrote that)."""
    cards = (
        [data / "README.md"] if data.is_dir() else [data.with_name(data.name + CARD_SUFFIX), data.parent / "README.md"]
    )
    return next((card for card in cards if card.is_file()), None)


def _title(card: Path) -> str | None:
    lines = card.read_text(encoding="utf-8", errors="replace").splitlines()
    return next((line[2:].strip() for line in lines if line.startswith("# ")), None)


def render_model_card(
    *,
    base_model: str,
    hub_id: str | None,
    data: Path,
    recipe: Recipe,
    metrics: dict,
    contents: Literal["adapter", "model", "merged"],
    merged: Path | None = None,
) -> str:
    """The card for a directory holding an adapter, a fully fine-tuned model, or a merged copy."""
    from huggingface_hub import ModelCardData

    card = find_dataset_card(data)
    dataset = (card and _title(card)) or data.resolve().name
    preference = recipe.method == "dpo"
    header = ModelCardData(
        base_model=hub_id,  # the Hub wants a repo id here; a local path is left out
        library_name="peft" if contents == "adapter" else "transformers",
        tags=["selfinstruct", "trl", *(["dpo", "lora"] if preference else ["sft", recipe.method])],
        pipeline_tag="text-generation",
    )
    stats, train = metrics["data"], metrics["train"]
    lora = "" if recipe.method == "full" else f", LoRA r={recipe.lora.r} alpha={recipe.lora.alpha:g}"
    lines = [
        f"---\n{header.to_yaml()}\n---",
        "",
        f"# {Path(base_model).name or base_model} fine-tuned on {dataset}",
        "",
        _preference_intro(recipe)
        if preference
        else (
            f"Trained with selfinstruct ({recipe.method}, trl's SFTTrainer) on instruction records; the loss is "
            "on the responses only. The records are machine-generated: evaluate the model before relying on it."
        ),
        "",
        "## Data",
        "",
        *(_pair_lines(data, card, stats, recipe) if preference else _record_lines(data, card, stats, recipe)),
        "",
        "## Training",
        "",
        f"- base model: `{base_model}`",
        f"- recipe: `{recipe.source or 'built in code'}`, as run with its overrides: `recipe.toml`",
        f"- method: {recipe.method}{lora}",
        (
            f"- {recipe.epochs:g} epochs (max steps: {recipe.max_steps or 'none'}), learning rate "
            f"{recipe.learning_rate:g} ({recipe.lr_scheduler}, {recipe.warmup_ratio:.0%} warmup), "
            f"{recipe.global_batch_size} rows of up to {recipe.max_length} tokens per step"
            f"{', packed' if recipe.packing else ''}"
        ),
        (
            f"- loss: {_num(metrics['first_loss'])} at the first step, {_num(metrics['last_loss'])} at the last "
            f"logged; {train.get('step', '?')} steps in {_num(train.get('train_runtime'))} s "
            "(`metrics.json`, `loss.png`)"
        ),
        *(_reward_lines(metrics) if preference else []),
        "",
        "## Prompt",
        "",
    ]
    if recipe.template == "alpaca":
        lines += [
            "Stanford Alpaca's template; the model answers and ends with EOS.",
            "",
            "```",
            PROMPT_NO_INPUT,
            "```",
            "",
            "With an input:",
            "",
            "```",
            PROMPT_INPUT,
            "```",
        ]
    else:
        lines.append(
            "The tokenizer's chat template: a user turn (the instruction, a blank line, the input), "
            "then `add_generation_prompt=True`."
        )
    lines += ["", "## Files", ""]
    if contents == "merged":
        lines += [
            "- this directory: the base model with the adapter merged in, and the tokenizer",
            "- the parent directory: the adapter, `recipe.toml`, `metrics.json`, `loss.png`",
        ]
    else:
        adapter = "the LoRA adapter (`PeftModel.from_pretrained(base, this_dir)`)"
        what = adapter if contents == "adapter" else "the model"
        lines.append(f"- this directory: {what}, the tokenizer, `recipe.toml`, `metrics.json`, `loss.png`")
    if merged:
        lines.append(f"- `{merged.name}/`: the base model with the adapter merged in")
    return "\n".join(lines) + "\n"


def _record_lines(data: Path, card: Path | None, stats: dict, recipe: Recipe) -> list[str]:
    return [
        (
            f"- dataset: `{data}`: {stats['records']} records, {stats['examples']} trained on; "
            f"{stats['truncated']} cut and {stats['dropped']} dropped at {recipe.max_length} tokens"
        ),
        f"- dataset card: `{card}`" if card else "- dataset card: none beside the data",
        f"- tokens: {stats['tokens']}, of which {stats['response_tokens']} response tokens carry the loss",
    ]


def _preference_intro(recipe: Recipe) -> str:
    dpo = recipe.dpo
    return (
        f"Trained with selfinstruct (DPO with LoRA adapters, trl's DPOTrainer, {dpo.loss_type} loss, beta "
        f"{dpo.beta:g}) on preference pairs: for each prompt the answer a judge rated best (`chosen`) and the one it "
        "rated worst (`rejected`). The reference model is the base model itself, the adapters disabled (no second "
        "copy). The answers and their ratings are machine-made: evaluate the model before relying on it."
    )


def _pair_lines(data: Path, card: Path | None, stats: dict, recipe: Recipe) -> list[str]:
    form = "conversational, through the chat template" if stats["conversational"] else "standard, trained as written"
    margins = ", ".join(f"{margin}: {n}" for margin, n in stats["margins"].items())
    made = (
        f'- how the pairs were made: the dataset card `{card}` (its "Preference pairs" section: the judge, the '
        "margin, the prompts left out and why)"
        if card
        else "- how the pairs were made: not recorded (no dataset card beside the data)"
    )
    return [
        (
            f"- dataset: `{data}`: {stats['pairs']} pairs ({form}), {stats['trained']} trained on; "
            f"{stats['truncated']} cut at {recipe.max_length} tokens, {stats['pairs'] - stats['trained']} dropped "
            "(the prompt alone that long)"
        ),
        made,
        (
            f"- score margins (`score_chosen - score_rejected`, the judge's 0-5 scale): {margins}; mean "
            f"{stats['mean_margin']:g} over {stats['scored']} scored pairs"
            if stats["scored"]
            else "- score margins: the pairs carry no `score_chosen` / `score_rejected`"
        ),
        f"- tokens: {stats['tokens']} (prompt, chosen and rejected)",
    ]


def _reward_lines(metrics: dict) -> list[str]:
    last = metrics["loss_curve"][-1] if metrics["loss_curve"] else {}
    return [
        (
            f"- at the last logged step: reward accuracy {_num(last.get('rewards/accuracies'))} (the share of pairs "
            "whose chosen answer gets the higher reward, beta x log(student / reference probability)), reward margin "
            f"{_num(last.get('rewards/margins'))}"
        )
    ]


def _num(value) -> str:
    return "?" if value is None else f"{value:.4g}"
