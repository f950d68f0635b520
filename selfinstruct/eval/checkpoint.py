"""A local model to evaluate: what `finetune` wrote, or the base it started from, loaded offline.

`finetune --out DIR` leaves one of three things, and each loads differently:

    DIR/adapter_config.json   a LoRA adapter: its base (`base_model_name_or_path`) + the adapter
    DIR/merged/config.json    with --merge: the base with the adapter folded in (a plain model)
    DIR/config.json           a full fine-tune, or any transformers model directory

A base given as `smollm2-135m` or a `.gguf` file (finetune's `--model` forms) is dequantised by
transformers. Nothing is downloaded: a hub id that is not in the local cache is refused. The
prompt template is the one the checkpoint was trained with (DIR/recipe.toml); a model without
a recipe is prompted with its own chat template when it has one.

    loaded = load_checkpoint("students/gsm8k")   # -> LoadedModel(model, tokenizer, template, name)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SelfInstructError
from ..finetune.template import Template

if TYPE_CHECKING:
    from ..finetune.model import ModelSource

ADAPTER_CONFIG = "adapter_config.json"
RECIPE = "recipe.toml"


@dataclass
class LoadedModel:
    model: object  # a transformers causal LM (a peft model for an adapter), in eval mode
    tokenizer: object
    template: Template
    name: str  # for messages and as the served model's name


def shortcuts() -> tuple[str, ...]:
    """finetune's names for bundled models (`smollm2-135m`); imported when asked for: it brings torch."""
    from ..finetune.model import SHORTCUTS

    return tuple(SHORTCUTS)


def is_local_model(spec: str) -> bool:
    """Whether `spec` names a model on this machine: a directory, a .gguf file, or a bundled shortcut."""
    return Path(spec).expanduser().exists() or spec in shortcuts()


def model_name(spec: str) -> str:
    """`students/gsm8k` -> "gsm8k"; `students/gsm8k/merged` -> "gsm8k-merged"; a shortcut as it is."""
    path = Path(spec).expanduser().resolve()
    if not path.exists():  # a shortcut
        return spec
    if path.name == "merged":
        return f"{path.parent.name}-merged"
    return path.stem


def checkpoint_source(spec: str) -> tuple[ModelSource, Path | None]:
    """(the model to load, the adapter directory or None) for a local model spec."""
    from ..finetune.model import resolve

    if not is_local_model(spec):
        raise SelfInstructError(
            f"{spec}: no such local model (a directory `finetune` wrote, a .gguf file, or one of "
            f"{', '.join(shortcuts())}); models are not downloaded at evaluation time"
        )
    path = Path(spec).expanduser()
    if (path / ADAPTER_CONFIG).is_file():
        return adapter_base(path), path
    if path.is_dir() and not (path / "config.json").is_file():
        raise SelfInstructError(f"{path}: neither a model (config.json) nor an adapter ({ADAPTER_CONFIG})")
    return resolve(spec), None


def adapter_base(adapter_dir: Path) -> ModelSource:
    """The base an adapter was trained on. peft records the directory or hub id `finetune` loaded;
    a GGUF base (the bundled SmolLM2) is recorded as the directory holding the file, which is
    then the one .gguf in it."""
    from ..finetune.model import resolve

    try:
        base = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (json.JSONDecodeError, KeyError) as e:
        raise SelfInstructError(f"{adapter_dir / ADAPTER_CONFIG}: no base model recorded ({e})") from None
    where = Path(base)
    if where.is_dir() and not (where / "config.json").is_file():
        ggufs = sorted(where.glob("*.gguf"))
        if len(ggufs) != 1:
            raise SelfInstructError(
                f"{adapter_dir / ADAPTER_CONFIG}: the base {base} holds {len(ggufs)} .gguf files, "
                "so which one the adapter was trained on is unknown"
            )
        return resolve(str(ggufs[0]))
    return resolve(base)


def trained_template(spec: str) -> Template | None:
    """The template the model was trained with: its recipe.toml's, or its parent's for
    DIR/merged; None for a model `finetune` did not write."""
    path = Path(spec).expanduser()
    for candidate in (path / RECIPE, path.parent / RECIPE) if path.is_dir() else ():
        if candidate.is_file():
            from ..finetune.recipe import load_recipe

            return load_recipe(str(candidate)).template
    return None


def checkpoint_template(spec: str, tokenizer) -> Template:
    """The template the model was trained with; else the tokenizer's chat template, else Alpaca's."""
    trained = trained_template(spec)
    if trained is not None:
        return trained
    return "chat" if getattr(tokenizer, "chat_template", None) else "alpaca"


def load_checkpoint(spec: str, template: Template | None = None) -> LoadedModel:
    """The model, its tokenizer and its prompt template, in fp32 on the CPU (bf16 on a GPU)."""
    import torch

    from ..finetune.model import ModelSource, from_pretrained, load_tokenizer

    source, adapter = checkpoint_source(spec)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = from_pretrained(source, dtype=dtype, local_files_only=True)
    tokenizer = load_tokenizer(source if adapter is None else ModelSource(spec, str(adapter)))
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    return LoadedModel(model, tokenizer, template or checkpoint_template(spec, tokenizer), model_name(spec))
