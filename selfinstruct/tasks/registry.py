"""The teacher jobs, by command name: what `selfinstruct NAME` runs.

A task's module defines its entry, `ENTRY = TaskEntry(...)`, and has its line in `MODULES`;
the command line builds the command from the entry: an option for each field of the config
(its default and help from the field), `--out`, `--dry-run`, `--batch`, resume, and the
line that sums up the run. So a new teacher job is one module under `tasks/` and one line here:

    ENTRY = TaskEntry("translate", TranslateConfig, translate, estimate_translate_cost,
                      about="Translate every instruction of SOURCE.", argument="source",
                      default_out="{model}-translated", kept="translations kept")

A module is imported only when its command runs (or `--help` lists the commands): a task
brings the engine and the cleaner, a fifth of a second that `selfinstruct filter` does without.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.config import JobConfig
    from ..engine.estimate import CostEstimate
    from ..engine.job import JobResult

MODULES = {
    "generate": "selfinstruct.tasks.bootstrap",
    "answer": "selfinstruct.tasks.answer",
    "judge": "selfinstruct.tasks.judge",
    "magpie": "selfinstruct.tasks.magpie",
    "evolve": "selfinstruct.tasks.evolve",
}


@dataclass(frozen=True)
class TaskEntry:
    """A teacher job as the command line offers it."""

    name: str  # the command: `selfinstruct NAME`
    config: type[JobConfig]  # its settings: one option for each field
    run: Callable[..., JobResult]  # run(config, out, *, overwrite, progress): run or resume
    estimate: Callable[[JobConfig, Path | None], CostEstimate]  # estimate(config, run directory or None): --dry-run
    about: str  # the command's help
    argument: str | None = None  # the field given as the command's argument, an existing path (SOURCE)
    files: tuple[str, ...] = ()  # the fields that name an existing file
    flags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # a field's flags where not --field-name
    default_out: str = "{model}"  # the run directory under outputs/ without --out
    kept: str = "records kept"  # what the summing-up calls the records kept, formatted with the config's fields
    # more lines after it (a SelfInstructError fails the command)
    summary: Callable[[JobResult], list[str]] | None = None


def task_entry(name: str) -> TaskEntry:
    return importlib.import_module(MODULES[name]).ENTRY
