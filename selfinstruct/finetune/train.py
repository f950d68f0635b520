"""One fine-tuning run: records -> tokenised examples -> trl's SFTTrainer -> files in --out;
with method dpo, preference pairs -> trl's DPOTrainer (LoRA; the adapter disabled is the reference).

OUT/adapter_model.safetensors, adapter_config.json   LoRA / QLoRA (a full run: the model)
OUT/tokenizer files
OUT/README.md      model card
OUT/recipe.toml    the recipe as run, flags applied (pass it to --recipe to repeat the run)
OUT/metrics.json   loss curve and run summary;  OUT/loss.png
OUT/merged/        with --merge: the base model with the adapter folded in
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from ..errors import SelfInstructError
from ..records import read_records
from .card import render_model_card
from .data import encode
from .kernels import PADDING_FREE_ATTENTION
from .metrics import write_metrics
from .model import (
    Precision,
    attention_kernel,
    choose_precision,
    fsdp_enabled,
    load_model,
    load_tokenizer,
    lora_config,
    merge_adapter,
)
from .model import resolve as resolve_model
from .preference import check_pairs, describe_pairs, read_pairs
from .recipe import Recipe
from .template import check_template


@dataclass(frozen=True)
class FinetuneResult:
    out: Path
    steps: int
    first_loss: float | None
    last_loss: float | None
    merged: Path | None


def training_args(recipe: Recipe, out: Path, precision: Precision) -> dict:
    """The settings SFTConfig and DPOConfig share (both are transformers' TrainingArguments)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return dict(
        output_dir=str(out),
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps or -1,
        per_device_train_batch_size=recipe.per_device_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps(world_size),
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_ratio,  # below 1: a fraction of all steps
        weight_decay=recipe.weight_decay,
        max_grad_norm=recipe.max_grad_norm,
        optim=recipe.optim,
        optim_args=recipe.optim_args,
        bf16=precision.bf16,
        fp16=precision.fp16,
        activation_checkpointing=recipe.gradient_checkpointing and not _fsdp_checkpoints_activations(),
        activation_checkpointing_kwargs=(
            {"every_n_layers": recipe.checkpoint_every_n_layers} if recipe.checkpoint_every_n_layers > 1 else None
        ),
        logging_steps=recipe.logging_steps,
        logging_first_step=True,  # a loss before any update, however short the run
        save_strategy="no",
        report_to="none",
        seed=recipe.seed,
    )


def sft_config(recipe: Recipe, out: Path, precision: Precision, attention: str):
    from trl import SFTConfig

    return SFTConfig(
        **training_args(recipe, out, precision),
        # Packed rows are max_length long. Unpacked examples were already cut to max_length by
        # `encode`, and trl refuses a max_length with padding-free batches.
        max_length=recipe.max_length if recipe.packing else None,
        packing=recipe.packing,
        packing_strategy="bfd",  # best-fit decreasing: whole examples, never split across rows
        # Packing implies padding-free in trl (position ids mark where examples start). Without
        # packing, padding-free pays off only with variable-length attention kernels.
        padding_free=recipe.packing or attention in PADDING_FREE_ATTENTION,
        completion_only_loss=True,
    )


def dpo_config(recipe: Recipe, out: Path, precision: Precision):
    from trl import DPOConfig

    return DPOConfig(
        **training_args(recipe, out, precision),
        max_length=recipe.max_length,  # prompt + answer; trl cuts the end, and drops prompts this long
        beta=recipe.dpo.beta,
        loss_type=[recipe.dpo.loss_type],
        label_smoothing=recipe.dpo.label_smoothing,
    )


class ShortRunLogging(TrainerCallback):
    """Log the loss at least ten times a run, and at its last step: a 5-step run logging every
    10 steps would log its first step only, and report that loss as its last one too. On a long
    run the recipe's `logging_steps` stands."""

    def on_train_begin(self, args, state, control, **kwargs):
        # state.logging_steps is args.logging_steps, resolved once max_steps is known
        state.logging_steps = min(state.logging_steps, max(1, state.max_steps // 10))

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True


def _fsdp_checkpoints_activations() -> bool:
    # `accelerate launch` with fsdp_activation_checkpointing already recomputes activations, and
    # transformers refuses that together with its own gradient checkpointing.
    return fsdp_enabled() and os.environ.get("FSDP_ACTIVATION_CHECKPOINTING") == "true"


def build_trainer(
    model,
    tokenizer,
    examples: list[dict],
    recipe: Recipe,
    out: Path,
    precision: Precision,
    attention: str,
    callbacks=(),
):
    """The SFTTrainer for already-encoded examples (see `data.encode`)."""
    import datasets
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=sft_config(recipe, out, precision, attention),
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=None if recipe.method == "full" else lora_config(recipe),
        callbacks=[ShortRunLogging(), *callbacks],
    )
    if precision.bf16 or precision.fp16:
        keep_adapter_inputs_16bit(trainer.model)
    return trainer


def build_dpo_trainer(
    model, tokenizer, pairs: list[dict], recipe: Recipe, out: Path, precision: Precision, callbacks=()
):
    """The DPOTrainer for preference rows (see `preference.py`). Given a peft config and no
    reference model, trl wraps the model in LoRA adapters and computes the reference's log
    probabilities with the adapters disabled: one copy of the weights, not two."""
    import datasets
    from trl import DPOTrainer

    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=dpo_config(recipe, out, precision),
        train_dataset=datasets.Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(recipe),
        callbacks=[ShortRunLogging(), *callbacks],
    )
    if precision.bf16 or precision.fp16:
        keep_adapter_inputs_16bit(trainer.model)
    return trainer


def trained_pairs(trainer, max_length: int) -> dict:
    """What trl made of the pairs: how many it kept (a prompt of max_length tokens leaves no
    answer to learn from), how many it cuts short, and their tokens."""
    rows = trainer.train_dataset
    lengths = [
        (len(p) + max(len(c), len(r)), len(p) + len(c) + len(r))
        for p, c, r in zip(rows["prompt_ids"], rows["chosen_ids"], rows["rejected_ids"])
    ]
    return {
        "trained": len(lengths),
        "truncated": sum(longest > max_length for longest, _ in lengths),
        "tokens": sum(total for _, total in lengths),
    }


def keep_adapter_inputs_16bit(model) -> int:
    """Stop peft from copying every adapted layer's input to fp32 (the adapters' dtype) under autocast.

    peft casts the input of each LoRA branch to the adapter weights' dtype; with fp32 adapters on
    a 16-bit base that is an fp32 copy of every activation entering an adapted layer, which
    autocast then casts straight back to 16 bits for the matmul: same numbers, two extra passes
    over the activations (and their gradients) for each of a layer's seven adapted projections.
    The adapter weights stay fp32 for the optimizer. Returns the number of layers changed."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    changed = 0
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.cast_input_dtype_enabled = False  # read by BaseTunerLayer._cast_input_dtype
            changed += 1
    return changed


def run(data: Path, model: str, out: Path, recipe: Recipe, merge: bool = False) -> FinetuneResult | None:
    """Train and write everything to `out`; None on the processes other than the main one."""
    if merge and recipe.method == "full":
        raise SelfInstructError("--merge is for lora and qlora; a full fine-tune already writes the whole model")
    preference = recipe.method == "dpo"
    if preference:
        pairs = read_pairs(data)
        check_pairs(pairs, recipe.template, str(data))  # before the model is loaded
    else:
        records = read_records(data)
    source = resolve_model(model)
    tokenizer = load_tokenizer(source)
    check_template(recipe.template, tokenizer, source.name)
    if not preference:
        examples, stats = encode(records, tokenizer, recipe.template, recipe.max_length)
    precision = choose_precision(recipe)
    attention = attention_kernel(recipe)
    student = load_model(source, recipe, precision, attention)
    if preference:
        trainer = build_dpo_trainer(student, tokenizer, pairs, recipe, out, precision)
        data_stats = {**describe_pairs(pairs), **trained_pairs(trainer, recipe.max_length)}
    else:
        trainer = build_trainer(student, tokenizer, examples, recipe, out, precision, attention)
        data_stats = stats.as_dict()
    trainer.train()
    trainer.save_model(str(out))  # every process: it gathers FSDP shards
    if not trainer.is_world_process_zero():
        return None

    (out / "recipe.toml").write_text(recipe.to_toml(), encoding="utf-8")
    # the dataset's path: `eval` checks an evaluation set against what the student saw
    metrics = write_metrics(trainer.state.log_history, out, {**data_stats, "path": str(Path(data).resolve())})
    about = {"base_model": source.name, "hub_id": source.hub_id, "data": data, "recipe": recipe, "metrics": metrics}
    merged = None
    if merge:
        merged = merge_adapter(source, out, tokenizer, precision)
        (merged / "README.md").write_text(render_model_card(**about, contents="merged"), encoding="utf-8")
    contents = "model" if recipe.method == "full" else "adapter"
    (out / "README.md").write_text(render_model_card(**about, contents=contents, merged=merged), encoding="utf-8")
    return FinetuneResult(out, trainer.state.global_step, metrics["first_loss"], metrics["last_loss"], merged)
