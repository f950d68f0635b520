"""Magpie (arXiv 2406.08464): instructions an aligned model writes when given only the text its
chat template puts before a user's message, answered by the same model (`task.py`); the
template is read from the model's own files (`selfinstruct.chat_template`).

Its entry in the task registry (`selfinstruct magpie`) is here.
"""

from ..registry import TaskEntry
from .task import MagpieConfig, MagpieTask, estimate_magpie_cost, magpie

ENTRY = TaskEntry(
    "magpie",
    MagpieConfig,
    magpie,
    estimate_magpie_cost,
    about="""Make instruction data with Magpie: the teacher writes the instructions itself.

    The teacher is given only what its chat template writes before a user's message (read from
    the model's GGUF or tokenizer_config.json), sent as a raw prompt to /v1/completions; the
    instruction it writes is then answered by it. --turns N makes multi-turn conversations;
    --system steers the topic. Rerunning the same command on the same --out resumes.
    """,
    flags={"target": ("--target", "-n")},
    default_out="{model}-magpie",
    kept="conversations kept",
)

__all__ = ["ENTRY", "MagpieConfig", "MagpieTask", "magpie"]
