"""WizardLM's Evol-Instruct: instructions rewritten round after round, the failed rewrites eliminated.

prompts.py       the paper's in-depth, in-breadth and equality prompts, and the judgement's reader
elimination.py   the paper's four elimination rules, as cleaning rules with reasons
task.py          `EvolveTask` on the job engine, `EvolveConfig`, `evolve()`, its `--dry-run` estimate and its entry
"""

from .task import ENTRY, EvolveConfig, EvolveTask, estimate_evolve_cost, evolve

__all__ = ["ENTRY", "EvolveConfig", "EvolveTask", "estimate_evolve_cost", "evolve"]
