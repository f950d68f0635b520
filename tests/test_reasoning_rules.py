"""The rules for reasoning traces, on real worked solutions and on the defects they name."""

import json

import pytest
from conftest import SEED_TASKS, SHARED, USER_ORIENTED

from selfinstruct.clean import load_preset
from selfinstruct.clean.rules import RULES

GSM8K = SHARED / "gsm8k" / "train.jsonl"


def traced(reasoning, output="The answer is 12.", finish_reason="stop"):
    return {
        "instruction": "Add the prices.",
        "input": "",
        "output": output,
        "reasoning": reasoning,
        "finish_reason": finish_reason,
    }


def rejects(name, record):
    return RULES[name]().check(record)


def real_solutions() -> list[str]:
    """Worked solutions written by people: GSM8K's, and the seed and user-oriented outputs."""
    texts = [json.loads(line)["output"] for line in GSM8K.open()]
    for path in (SEED_TASKS, USER_ORIENTED):
        texts += [json.loads(line)["instances"][0]["output"] for line in path.open()]
    return texts


def test_a_trace_cut_off_or_without_an_answer_is_rejected():
    assert rejects("reasoning_cut_off", traced("First I add 5 and 7, then", "", "length")) is not None
    assert rejects("no_final_answer", traced("5 and 7 make 12.", "  ")) is not None
    for rule in ("reasoning_cut_off", "no_final_answer"):
        assert rejects(rule, traced("5 and 7 make 12.")) is None
        assert rejects(rule, {"instruction": "x", "input": "", "output": ""}) is None  # no trace: not theirs to judge


@pytest.mark.parametrize(
    "trace",
    [
        "Let me compute the total cost of the apples first, then the oranges. 所以我们需要计算苹果和橙子的总价格，然后相加得到答案。 Then the total is 12 dollars.",
        "First I add the two numbers together to get the sum. Dann multipliziere ich das Ergebnis mit drei, um die Antwort zu finden. So it is 21.",
        "Okay, the user wants a haiku about the sea. Let me count syllables. 好的，我需要写一首关于大海的俳句。",
    ],
)
def test_language_mixing_is_caught(trace):
    assert rejects("reasoning_language_switch", traced(trace)) is not None


def test_loops_are_caught():
    loop = "Wait, let me recompute the sum of the two numbers again carefully. " * 6 + "So the answer is 5."
    assert rejects("reasoning_loop", traced(loop)).startswith("ratio")


def test_real_worked_solutions_pass_every_reasoning_rule():
    """The calibration: 7,900 human-written solutions as traces, none rejected; a quoted
    foreign word is not a switch."""
    rules = [
        RULES[name]()
        for name in ("reasoning_cut_off", "no_final_answer", "reasoning_language_switch", "reasoning_loop")
    ]
    texts = real_solutions() + [
        "The French word for 'cat' is 'chat', so the sentence becomes 'le chat dort'. That is it."
    ]
    rejected = [(rule.name, text) for text in texts for rule in rules if rule.check(traced(text))]
    assert len(texts) > 7_800 and rejected == []


def test_the_answer_preset_checks_the_reasoning_first():
    names = [rule.name for rule in load_preset("answer").rules]
    assert names.index("reasoning_cut_off") < names.index("no_final_answer") < names.index("empty_output")
    assert load_preset("answer").dedup.enabled is False  # samples of one instruction are not duplicates
