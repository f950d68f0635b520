"""The faster paths of the rules decide exactly as the plain per-record checks do."""

from __future__ import annotations

import random

import pytest

from selfinstruct.clean.rules import Rule
from selfinstruct.clean.rules.contamination import Contaminated
from selfinstruct.clean.rules.degenerate import CharRepetition, char_repetition_bounds, char_repetition_ratio

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "this",
    "are",
    "or",
    "from",
    "at",
    "which",
    "an",
    "they",
]
LOOPS = ["la la la ", "abcdefghij", "the cat sat on the mat. ", "x", "Ünïcödé 漢字 ", "\ud800abc ", "ab", "🙂 ok "]


def texts(rng: random.Random) -> list[str]:
    """Plain prose, prose with a loop in it, loops alone, and texts shorter than an n-gram."""
    prose = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 120)))
    loop = rng.choice(LOOPS) * rng.randint(0, 60)
    return [prose, prose[: rng.randint(0, 30)] + loop + prose[:40], loop, prose[: rng.randint(0, 12)], ""]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    rng = random.Random(7)
    out = []
    for _ in range(300):
        instruction, *rest = rng.sample(texts(rng), 3)
        out.append({"instruction": instruction, "input": rest[0], "output": rest[1]})
    return out


def test_char_repetition_bounds_are_upper_bounds(records):
    all_texts = [record[field] for record in records for field in ("instruction", "input", "output")]
    for n in (1, 3, 10, 25):
        bounds = char_repetition_bounds(all_texts, n).tolist()
        exact = [char_repetition_ratio(text, n) if len(text) >= n else 0.0 for text in all_texts]
        assert all(bound >= ratio - 1e-12 for bound, ratio in zip(bounds, exact))
        # and tight where nothing repeats: the bound of a text of distinct n-grams is about 1/sqrt(T)
        assert any(bound < 0.5 for bound in bounds)


@pytest.mark.parametrize(
    "settings", [{}, {"n": 3, "max_ratio": 0.2}, {"n": 1, "max_ratio": 0.05}, {"n": 20, "max_ratio": 0.9}]
)
def test_char_repetition_batches_decide_as_single_checks(records, settings):
    rule = CharRepetition(**settings)
    for size in (1, 7, 20, 300):
        batched = [detail for i in range(0, len(records), size) for detail in rule.check_many(records[i : i + size])]
        assert batched == Rule.check_many(rule, records)
    if not settings:  # the default rule catches the loops and keeps the prose
        details = rule.check_many(records)
        assert any(detail is not None for detail in details) and any(detail is None for detail in details)


def test_contaminated_without_benchmarks_keeps_everything_at_once():
    rule = Contaminated()
    records = [{"instruction": "Translate the sentence.", "input": "Bonjour", "output": "Hello"}] * 3
    assert rule.check_many(records) == [None, None, None] == Rule.check_many(rule, records)


def test_contaminated_with_benchmarks_still_checks(tmp_path):
    prompt = "what is the capital city of france and why did it become the capital of the country"
    bench = tmp_path / "bench.jsonl"
    bench.write_text(f'{{"instruction": "{prompt}"}}\n')
    rule = Contaminated(benchmarks=(str(bench),))
    records = [
        {"instruction": prompt, "input": "", "output": "Paris"},
        {"instruction": "Name a colour.", "input": "", "output": "Red"},
    ]
    assert rule.check_many(records) == Rule.check_many(rule, records)
    assert rule.check_many(records)[0] is not None and rule.check_many(records)[1] is None


def answers_with_duplicates() -> list[list[dict]]:
    """Answers of 20 tasks where later tasks copy or reword earlier ones (and some break rules)."""
    rng = random.Random(11)
    made: list[dict] = []
    answers = []
    for a in range(30):
        answer = []
        for t in range(20):
            if made and rng.random() < 0.3:
                earlier = rng.choice(made)
                words = earlier["instruction"].split()
                words[rng.randrange(len(words))] = rng.choice(WORDS)  # a light edit, or none: an exact copy
                task = {**earlier, "instruction": " ".join(words) if rng.random() < 0.7 else earlier["instruction"]}
            else:
                topic = " ".join(
                    rng.choice(WORDS + ["river", "planet", "recipe", "poem"]) for _ in range(rng.randint(3, 12))
                )
                task = {
                    "instruction": f"Write about {topic}.",
                    "input": "",
                    "output": f"Here is {topic}, told plainly.",
                }
            task = {**task, "id": f"r{a:06d}-{t}", "request_id": f"r{a:06d}"}
            made.append(task)
            answer.append(task)
        answers.append(answer)
    return answers


def verdicts(cleaner, answers, checked_answers) -> list[tuple]:
    return [
        (v.kept, v.rejection and v.rejection.rule, v.duplicate_of)
        for answer, checked in zip(answers, checked_answers)
        for v in cleaner.decide(checked, [record["id"] for record in answer])
    ]


def test_sketches_made_in_a_rule_worker_decide_as_in_process():
    from selfinstruct.clean.cleaner import Cleaner
    from selfinstruct.clean.presets import load_preset
    from selfinstruct.clean.workers import RuleChecker

    answers = answers_with_duplicates()
    here = Cleaner(load_preset("alpaca"))
    expected = verdicts(here, answers, [here.check_rules(answer) for answer in answers])
    assert {rule for _, rule, _ in expected} >= {
        None,
        "near_duplicate",
    }  # Alpaca's preset: copies are near duplicates too

    there = Cleaner(load_preset("alpaca"))
    checker = RuleChecker(there, workers=1)
    try:
        checked = [future.result() for future in [checker.submit(answer) for answer in answers]]
    finally:
        checker.close()
    assert all(c.sketch is not None for answer in checked for c in answer if c.rejection is None)
    assert verdicts(there, answers, checked) == expected
    assert here.stats == there.stats
