"""WizardLM's elimination step: the four ways an evolution fails, as cleaning rules.

The paper (section 3.3) drops an evolved instruction when
  1. it gains no information over its parent: the teacher, asked with the equality prompt,
     says "Equal" (`no_information_gain`; an answer that says neither is no proof of gain);
  2. its answer says "sorry" and is short, under 80 words: the teacher struggled with it
     (`refused_answer`);
  3. its answer is only punctuation and stop words (`stop_words_only`);
  4. it copies the rewriting prompt's words, "#Rewritten Prompt#", "given prompt"...
     (`copied_evolving_prompt`).
The evolve task runs them first, before its preset's rules, in the order the evolution meets
them: an instruction that fails 4 is not compared, one that fails 1 is not answered (their
answers would be paid for and thrown away). Each rejection keeps its reason in rejected.jsonl,
and stats.json counts them per rule and per round.

    NoInformationGain().check({"information_gain": False, "judgement": "Equal", ...}) -> "the teacher judged ..."
"""

from __future__ import annotations

import re

from ...clean.rules import Rule, RuleSet
from .prompts import PROMPT_WORDS

# NLTK's English stop words: the words that carry no content of their own.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
    himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
    that that'll these those am is are was were be been being have has had having do does did doing a an the and but
    if or because as until while of at by for with about against between into through during before after above
    below to from up down in out on off over under again further then once here there when where why how all any
    both each few more most other some such no nor not only own same so than too very s t can will just don don't
    should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn
    hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn
    wasn't weren weren't won won't wouldn wouldn't""".split()
)
_WORD = re.compile(r"[\w']+")
_SORRY = re.compile(r"\bsorry\b", re.IGNORECASE)


class CopiedEvolvingPrompt(Rule):
    name = "copied_evolving_prompt"
    reason = "the evolved instruction copies the rewriting prompt's words ('#Rewritten Prompt#', 'given prompt')"

    def check(self, record):
        text = record["instruction"].lower()
        copied = next((words for words in PROMPT_WORDS if words in text), None)
        return None if copied is None else f"the instruction says {copied!r}"


class NoInformationGain(Rule):
    name = "no_information_gain"
    reason = "the teacher judged the evolved instruction equal to its parent (WizardLM's equality prompt)"

    def check(self, record):
        gain = record.get("information_gain", True)  # a record that was never compared passes
        if gain:
            return None
        judgement = record.get("judgement")
        if judgement is None:
            return "identical to its parent"
        if gain is None:
            return f"the judgement says neither Equal nor Not Equal: {judgement[:60]!r}"
        return f"judged equal to its parent: {judgement[:60]!r}"


class RefusedAnswer(Rule):
    name = "refused_answer"
    reason = "the answer says 'sorry' in few words: the teacher could not answer the evolved instruction"
    max_words: int = 80  # the paper's "relatively short"

    def check(self, record):
        words = len(record["output"].split())
        if _SORRY.search(record["output"]) and words < self.max_words:
            return f"'sorry' in a {words}-word answer"
        return None


class StopWordsOnly(Rule):
    name = "stop_words_only"
    reason = "the answer holds nothing but punctuation and stop words"

    def check(self, record):
        output = record["output"]
        if any(word not in STOP_WORDS for word in _WORD.findall(output.lower())):
            return None
        return f"the answer is {output.strip()[:60]!r}"


def elimination_rules() -> list[Rule]:
    """The four rules, in the order an evolution meets them."""
    return [CopiedEvolvingPrompt(), NoInformationGain(), RefusedAnswer(), StopWordsOnly()]


def eliminated(rules: RuleSet, candidate: dict) -> str | None:
    """The name of the first elimination rule `candidate` fails, or None."""
    rejection = rules.check(candidate).rejection
    return None if rejection is None else rejection.rule
