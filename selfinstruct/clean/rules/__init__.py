"""Named rules: each looks at one record and says why it is unfit, or nothing.

    base.py           Rule (a name, a reason, thresholds as fields, `check` and `fix`), RuleSet
    alpaca.py         Stanford Alpaca's own rules on the instruction
    output.py         broken inputs and outputs: empty, copied, cut off, merged, images
    artefacts.py      refusals and the teacher speaking of itself
    degenerate.py     repetition loops and token-length bounds
    language.py       the language of the instruction (py3langid)
    requests.py       an instruction that states instead of asking
    unseen.py         tasks about a web page, video or file the model cannot see
    placeholders.py   unfilled template slots ("[Insert answer here]", "____", TODO)
    topic.py          an output that answers another instruction (sentence embeddings)
    contamination.py  n-gram overlap with benchmark prompts
    reasoning.py      reasoning traces: cut off, no final answer, language mixing, loops
    verify.py         final answers checked against reference answers (math-verify)
    score.py          a judge's score below the threshold (`selfinstruct judge`)
    template.py       raw completions gone wrong: template tokens, an unended instruction (`magpie`)

Importing this package registers every rule, so presets can name them.
"""

from . import (  # noqa: F401  (registers the rules)
    alpaca,
    artefacts,
    contamination,
    degenerate,
    language,
    output,
    placeholders,
    reasoning,
    requests,
    score,
    template,
    topic,
    unseen,
    verify,
)
from .base import RULES, Checked, Rejection, Rule, RuleSet

__all__ = ["RULES", "Checked", "Rejection", "Rule", "RuleSet"]
