"""Training recipes: TOML files of hyperparameters, validated once when loaded.

    method = "lora"
    learning_rate = 2e-4
    per_device_batch_size = 8
    global_batch_size = 32
    [lora]
    r = 16

`--recipe NAME` finds `recipes/NAME.toml` among the shipped recipes; a path to a .toml file
works too. Command-line flags override single fields before validation, so a bad flag is
reported like a bad field. Unset fields take the defaults below.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..errors import SelfInstructError
from ..resources import read_shipped_toml, shipped_names
from .template import Template

# "dpo": trl's DPOTrainer on preference pairs, with LoRA adapters (the [lora] table) whose
# disabled state is the reference model; the others train on records with trl's SFTTrainer.
Method = Literal["lora", "qlora", "full", "dpo"]

# With no --recipe, each method starts from the recipe for its usual hardware.
DEFAULT_RECIPES: dict[str, str] = {
    "lora": "lora-7b-24gb",
    "qlora": "qlora-7b-16gb",
    "full": "alpaca-full-fsdp",
    "dpo": "dpo-7b-24gb",
}

Optimizer = Literal[
    "adamw_torch",
    "adamw_torch_fused",
    "adafactor",
    "adamw_bnb_8bit",
    "paged_adamw_8bit",
    "paged_adamw_32bit",  # bitsandbytes
    "adamw_torch_8bit",
    "adamw_torch_4bit",  # torchao
]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup", "inverse_sqrt"]


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    # "all-linear": every linear layer but the output head, as QLoRA found necessary to match a full fine-tune.
    target_modules: str | list[str] = "all-linear"


class DpoSettings(BaseModel):
    """The [dpo] table: what trl's DPOConfig takes beyond the usual training settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 0.1: the DPO paper's and trl's default; lower lets the student move further from the reference
    beta: float = Field(0.1, gt=0, description="how far the student may move from the reference model")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust", "apo_zero", "apo_down", "sigmoid_norm"] = Field(
        "sigmoid", description="sigmoid = the DPO paper's loss; ipo, hinge (SLiC), robust, apo_* as in trl"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="robust DPO: the share of pairs assumed flipped")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "lora"
    template: Template = "alpaca"
    max_length: int = Field(512, ge=16, description="tokens per example; with packing, per packed row")
    packing: bool = True
    epochs: float = Field(3, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs)")
    learning_rate: float = Field(2e-4, gt=0, lt=1)
    lr_scheduler: Scheduler = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    per_device_batch_size: int = Field(4, ge=1, description="rows per GPU per forward pass")
    global_batch_size: int = Field(32, ge=1, description="rows per optimizer step, over all GPUs")
    gradient_checkpointing: bool = True
    checkpoint_every_n_layers: int = Field(
        1, ge=1, description="with checkpointing, recompute only every n-th decoder layer (more memory, less compute)"
    )
    bf16: bool = Field(True, description="bf16 mixed precision where the GPU has it (fp16 on older GPUs, fp32 on CPU)")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="weights as loaded; auto = fp32 master weights for full, 16-bit frozen base for (q)lora"
    )
    # auto: flash-attn's kernels if installed, else PyTorch's varlen FlashAttention on CUDA, else SDPA
    attention: Literal["auto", "flash_attention_3", "flash_attention_2", "varlen", "sdpa", "eager"] = "auto"
    liger_kernel: bool = Field(
        False, description="Liger's fused RMSNorm, RoPE and SwiGLU (CUDA with liger-kernel; ignored elsewhere)"
    )
    optim: Optimizer = "adamw_torch_fused"
    optim_args: str | None = Field(None, description="extra optimizer arguments, 'key=value,key=value'")
    lora: LoraSettings = LoraSettings()
    dpo: DpoSettings = DpoSettings()
    logging_steps: int = Field(10, ge=1)
    seed: int = 42

    _source: str = PrivateAttr("")

    @model_validator(mode="after")
    def _batch_divides(self) -> Recipe:
        if self.global_batch_size % self.per_device_batch_size:
            raise ValueError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of "
                f"per_device_batch_size ({self.per_device_batch_size})"
            )
        if self.method == "dpo" and self.packing:
            raise ValueError("method dpo trains on whole pairs, which trl does not pack: set packing = false")
        return self

    @property
    def source(self) -> str:
        """The recipe file this came from ("" when built in code)."""
        return self._source

    def gradient_accumulation_steps(self, world_size: int) -> int:
        per_step = self.per_device_batch_size * world_size
        if self.global_batch_size % per_step:
            raise SelfInstructError(
                f"{self.source or 'recipe'}: global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size} x {world_size} processes; "
                "change --global-batch-size or --batch-size"
            )
        return self.global_batch_size // per_step

    def to_toml(self) -> str:
        """The recipe as TOML that `load_recipe` reads back (None fields are left out)."""
        data = self.model_dump(exclude_none=True)
        lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
        for table in ("lora", "dpo") if self.method == "dpo" else ("lora",):
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in data[table].items()]
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # JSON strings, numbers and lists of strings are valid TOML.
    return json.dumps(value)


def available_recipes() -> list[str]:
    return shipped_names("recipes")


def load_recipe(name_or_path: str | None = None, overrides: dict | None = None) -> Recipe:
    """Read a recipe (the method's default one when None), apply overrides, validate.

    `overrides` maps field names to values, with dots for nested ones ("lora.r"); a
    "method" override also picks the default recipe when no recipe is named.
    """
    overrides = dict(overrides or {})
    if name_or_path is None:
        name_or_path = DEFAULT_RECIPES[overrides.get("method") or "lora"]
    path, data = read_shipped_toml("recipes", "recipe", name_or_path)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        table = data
        for parent in parents:
            table = table.setdefault(parent, {})
        table[leaf] = value
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as e:
        raise SelfInstructError(f"{path}: {_describe(e, overrides)}") from None
    recipe._source = str(path)
    return recipe


def _describe(error: ValidationError, overrides: dict) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        origin = " (set on the command line)" if field in overrides else ""
        problems.append(f"field '{field}'{origin}: {message}" if field else message)
    return "; ".join(problems)
