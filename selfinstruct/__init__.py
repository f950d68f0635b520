"""selfinstruct: make Alpaca-style instruction datasets, clean them, export them, train on them.

The library behind each command, as the README's "From Python" uses it:

    from selfinstruct import GenerateConfig, clean_dataset, generate, read_records

    result = generate(GenerateConfig(num_instructions=50), "outputs/smol")
    cleaned = clean_dataset("outputs/smol", "outputs/smol-clean", preset="default")
    records = read_records("outputs/smol-clean")

Each name is imported when first used: the teacher jobs bring the engine and the cleaner (0.3 s
that `import selfinstruct` and the command line's other commands do without). Fine-tuning is
`from selfinstruct.finetune import finetune, load_recipe`: its name here is its package's.
"""

import importlib

__version__ = "0.1.0"

# name -> the module that defines it
API = {
    "GenerateConfig": "selfinstruct.tasks.bootstrap",
    "generate": "selfinstruct.tasks.bootstrap",
    "AnswerConfig": "selfinstruct.tasks.answer",
    "answer": "selfinstruct.tasks.answer",
    "JudgeConfig": "selfinstruct.tasks.judge",
    "judge": "selfinstruct.tasks.judge",
    "EvolveConfig": "selfinstruct.tasks.evolve",
    "evolve": "selfinstruct.tasks.evolve",
    "MagpieConfig": "selfinstruct.tasks.magpie",
    "magpie": "selfinstruct.tasks.magpie",
    "clean_dataset": "selfinstruct.clean",
    "read_records": "selfinstruct.records",
    "export_dataset": "selfinstruct.export.exporter",
    "ExportOptions": "selfinstruct.export.exporter",
    "cost_report": "selfinstruct.report.cost",
    "build_report": "selfinstruct.report.page",
    "SelfInstructError": "selfinstruct.errors",
}

__all__ = sorted(API)


def __getattr__(name: str):
    if name not in API:
        raise AttributeError(f"module 'selfinstruct' has no attribute {name!r}")
    value = getattr(importlib.import_module(API[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *API])
