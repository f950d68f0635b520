"""Alpaca's self-instruct bootstrap: human seed tasks in, new machine tasks out.

    seeds.py     the seed tasks (bundled, or the user's self-instruct / Alpaca file)
    prompts.py   Alpaca's prompt: k examples in, n new tasks asked for (JSON or numbered text)
    parse.py     an answer -> candidate tasks (JSON, or Alpaca's numbered blocks)
    task.py      `BootstrapTask` on the job engine, `GenerateConfig`, and `generate()`
    estimate.py  `generate --dry-run`: what a run will cost

Its entry in the task registry (`selfinstruct generate`) is here, where both are in reach.
"""

from ..registry import TaskEntry
from .estimate import estimate_run_cost
from .task import BootstrapTask, GenerateConfig, generate

ENTRY = TaskEntry(
    "generate",
    GenerateConfig,
    generate,
    estimate_run_cost,
    about="""Expand seed tasks into new instruction records with a teacher model.

    Rerunning the same command on the same --out resumes: nothing already paid for is
    requested again and nothing accepted is lost.
    """,
    files=("seeds",),
    flags={"num_instructions": ("--num-instructions", "-n"), "machine_examples_per_prompt": ("--machine-examples",)},
    kept="accepted",
)

__all__ = ["ENTRY", "BootstrapTask", "GenerateConfig", "generate"]
