"""Alpaca's self-instruct bootstrap: human seed tasks in, new machine tasks out.

    seeds.py     the seed tasks (bundled, or the user's self-instruct / Alpaca file)
    prompts.py   Alpaca's prompt: k examples in, n new tasks asked for (JSON or numbered text)
    parse.py     an answer -> candidate tasks (JSON, or Alpaca's numbered blocks)
    task.py      `BootstrapTask` on the job engine, `GenerateConfig`, and `generate()`
    estimate.py  `generate --dry-run`: what a run will cost
"""

from .task import BootstrapTask, GenerateConfig, generate

__all__ = ["BootstrapTask", "GenerateConfig", "generate"]
