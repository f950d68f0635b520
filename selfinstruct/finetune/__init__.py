"""Train a student on instruction records with trl's SFTTrainer and peft (the `[train]` extra).

    from selfinstruct.finetune import finetune, load_recipe

    recipe = load_recipe("lora-7b-24gb", {"epochs": 1})
    result = finetune("runs/alpaca", "meta-llama/Llama-2-7b-hf", "students/alpaca-7b", recipe)

template: the prompt text; data: tokens and the response-only loss mask; preference: the pairs
that `method = "dpo"` trains on with trl's DPOTrainer; recipe: validated
hyperparameters; model: loading and precision; train: the run; metrics and card: what is
written beside the weights. Only `recipe` is imported here: the rest needs torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import SelfInstructError
from .recipe import DEFAULT_RECIPES, Recipe, available_recipes, load_recipe

__all__ = ["DEFAULT_RECIPES", "Recipe", "available_recipes", "finetune", "load_recipe"]

TRAIN_EXTRA = "pip install 'selfinstruct[train]'"
GPU_EXTRA = "pip install 'selfinstruct[train-gpu]'"

_TRAIN_MODULES = ("torch", "transformers", "trl", "peft", "accelerate", "gguf", "matplotlib")
_BITSANDBYTES_OPTIMIZERS = ("adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit")
_TORCHAO_OPTIMIZERS = ("adamw_torch_8bit", "adamw_torch_4bit")


def finetune(data: str | Path, model: str, out: str | Path, recipe: Recipe, merge: bool = False):
    """Fine-tune `model` on the records in `data`; write adapter, tokenizer, card, metrics to `out`.

    Returns a `train.FinetuneResult`. Under `accelerate launch` every process calls this and
    all but the main one get None.
    """
    require_modules(recipe)
    from .train import run

    return run(Path(data), model, Path(out), recipe, merge=merge)


def require_modules(recipe: Recipe) -> None:
    """Fail before any work if a package the run needs is missing, naming the pip command."""
    missing = [name for name in _TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SelfInstructError(f"fine-tuning needs {', '.join(missing)}: {TRAIN_EXTRA}")
    needs_bnb = recipe.method == "qlora" or recipe.optim in _BITSANDBYTES_OPTIMIZERS
    if needs_bnb and importlib.util.find_spec("bitsandbytes") is None:
        raise SelfInstructError(f"{recipe.source or 'the recipe'} needs bitsandbytes (4-bit or 8-bit): {GPU_EXTRA}")
    if recipe.optim in _TORCHAO_OPTIMIZERS and importlib.util.find_spec("torchao") is None:
        raise SelfInstructError(f"{recipe.source or 'the recipe'}: optim {recipe.optim} needs torchao: {GPU_EXTRA}")
