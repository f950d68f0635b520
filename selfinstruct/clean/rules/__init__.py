"""Named rules: each looks at one record and says why it is unfit, or nothing.

    base.py           Rule (a name, a reason, thresholds as fields, `check` and `fix`), RuleSet
    alpaca.py         Stanford Alpaca's own rules on the instruction
    output.py         broken inputs and outputs: empty, copied, cut off, merged, images
    artefacts.py      refusals and the teacher speaking of itself
    degenerate.py     repetition loops and token-length bounds
    language.py       the language of the instruction (py3langid)
    contamination.py  n-gram overlap with benchmark prompts
    reasoning.py      reasoning traces: cut off, no final answer, language mixing, loops
    verify.py         final answers checked against reference answers (math-verify)
    score.py          a judge's score below the threshold (`selfinstruct judge`)

Importing this package registers every rule, so presets can name them.
"""

from . import alpaca, artefacts, contamination, degenerate, language, output, reasoning, score, verify  # noqa: F401  (registers the rules)
from .base import RULES, Checked, Rejection, Rule, RuleSet

__all__ = ["RULES", "Checked", "Rejection", "Rule", "RuleSet"]
