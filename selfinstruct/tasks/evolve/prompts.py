"""WizardLM's Evol-Instruct prompts (arXiv 2304.12244): rewrite an instruction, compare two.

The in-depth and in-breadth prompts are those of the WizardLM repository
(`Evol_Instruct/depth.py`, `breadth.py`), with "\\n" for its "\\r\\n" and without the tabs its
line continuations left inside the text. "Complicate the input" is the paper's fifth in-depth
operation, which the repository does not ship (the paper shows it with in-context examples):
it is the in-depth prompt with the method "add [FORMAT] format data as input data", FORMAT one
of the paper's data formats. The equality prompt is the paper's (appendix: "no information gain"
elimination).

    evolving_prompt("add_constraints", "Name three fruits.") -> "I want you act as a Prompt Rewriter..."
    read_judgement("Not Equal") -> True (the rewrite gained information); "Equal" -> False; "Hmm" -> None
"""

from __future__ import annotations

import re

PROMPT_VERSION = 1  # part of a run's identity: a reworded prompt makes other data

DEPTH = (
    "I want you act as a Prompt Rewriter.\n"
    "Your objective is to rewrite a given prompt into a more complex version to make those famous AI systems "
    "(e.g., chatgpt and GPT4) a bit harder to handle.\n"
    "But the rewritten prompt must be reasonable and must be understood and responded by humans.\n"
    "Your rewriting cannot omit the non-text parts such as the table and code in #The Given Prompt#:. "
    "Also, please do not omit the input in #The Given Prompt#. \n"
    "You SHOULD complicate the given prompt using the following method: \n"
    "{method} \n"
    "You should try your best not to make the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add "
    "10 to 20 words into #The Given Prompt#. \n"
    "'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not allowed to appear "
    "in #Rewritten Prompt#\n"
    "#The Given Prompt#: \n {instruction} \n"
    "#Rewritten Prompt#:\n"
)

BREADTH = (
    "I want you act as a Prompt Creator.\n"
    "Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt.\n"
    "This new prompt should belong to the same domain as the #Given Prompt# but be even more rare.\n"
    "The LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#.\n"
    "The #Created Prompt# must be reasonable and must be understood and responded by humans.\n"
    "'#Given Prompt#', '#Created Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in "
    "#Created Prompt#\n"
    "#Given Prompt#: \n {instruction} \n"
    "#Created Prompt#:\n"
)

# The in-depth methods, by operation name (depth.py's createConstraintsPrompt, ...).
DEPTH_METHODS = {
    "add_constraints": "Please add one more constraints/requirements into #The Given Prompt#'",
    "deepen": "If #The Given Prompt# contains inquiries about certain issues, the depth and breadth of the inquiry "
    "can be increased.",
    "concretize": "Please replace general concepts with more specific concepts.",
    "increase_reasoning": "If #The Given Prompt# can be solved with just a few simple thinking processes, you can "
    "rewrite it to explicitly request multiple-step reasoning.",
    "complicate_input": "Please add {data_format} format data as input data into #The Given Prompt#, and make the "
    "prompt use it.",
}
BREADTH_OPERATION = "breadth"
OPERATIONS = (*DEPTH_METHODS, BREADTH_OPERATION)

# The data formats of the paper's "complicate input" examples.
DATA_FORMATS = (
    "XML data",
    "SQL database",
    "Python code",
    "HTML page",
    "Shell cmd",
    "JSON data",
    "Latex",
    "Markdown",
    "C++ code",
    "Java code",
    "R code",
    "Excel table",
    "Go code",
    "Swift code",
    "Ruby code",
    "Scala code",
    "MATLAB code",
    "formula",
)

# The words of the rewriting prompts an evolved instruction must not copy (the paper's fourth
# elimination rule); lowercase, matched case-insensitively.
PROMPT_WORDS = (
    "#the given prompt#",
    "#given prompt#",
    "#rewritten prompt#",
    "#created prompt#",
    "given prompt",
    "rewritten prompt",
    "created prompt",
)

EQUALITY = (
    "Here are two Instructions to ChatGPT AI, do you think they are equal to each other, which meet the following "
    "requirements:\n"
    "1. They have same constraints and requirments.\n"
    "2. They have same depth and breadth of the inquiry.\n"
    "The First Prompt: {first}\n"
    "The Second Prompt: {second}\n"
    "Your Judgement (Just answer: Equal or Not Equal. No need to explain the reason.):"
)

_NOT_EQUAL = re.compile(r"\b(?:not\s+equal|unequal)\b", re.IGNORECASE)
_EQUAL = re.compile(r"\bequal\b", re.IGNORECASE)


def evolving_prompt(operation: str, instruction: str, data_format: str | None = None) -> str:
    """The prompt that rewrites `instruction` by `operation` (one of OPERATIONS);
    `complicate_input` needs a `data_format`."""
    if operation == BREADTH_OPERATION:
        return BREADTH.format(instruction=instruction)
    return DEPTH.format(method=DEPTH_METHODS[operation].format(data_format=data_format), instruction=instruction)


def equality_prompt(first: str, second: str) -> str:
    return EQUALITY.format(first=first, second=second)


def read_judgement(content: str) -> bool | None:
    """Whether the teacher judged the second prompt to gain over the first: True for "Not Equal",
    False for "Equal", None when it said neither (the first of them it says counts)."""
    differs, same = _NOT_EQUAL.search(content), _EQUAL.search(content)
    if differs is not None and (same is None or differs.start() <= same.start()):
        return True
    return False if same is not None else None
