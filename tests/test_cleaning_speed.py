"""The faster paths of the rules decide exactly as the plain per-record checks do."""

from __future__ import annotations

import random

import numpy as np
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


@pytest.mark.parametrize("workers", [1, 2])
def test_rule_workers_decide_as_in_process(workers):
    """One worker keeps the duplicate index itself; with two, the job's process keeps it and the
    workers send sketches. Either way: the in-process verdicts and counts, verdict for verdict."""
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
    checker = RuleChecker(there, workers=workers)
    try:
        checked = [future.result() for future in [checker.submit(answer) for answer in answers]]
    finally:
        checker.close()
    kept = [c for answer in checked for c in answer if c.rejection is None]
    if workers == 1:
        assert checker.keeps_index and all(c.deduplicated for c in kept)
    else:
        assert not checker.keeps_index and all(c.sketch is not None for c in kept)
    assert verdicts(there, answers, checked) == expected
    assert here.stats == there.stats


def test_rule_worker_keeping_the_index_resumes_where_the_run_stopped():
    """A resumed run's kept records and near duplicates reach the worker's index before its
    first check: the rest decides as it would have in one go, repairs included."""
    from selfinstruct.clean.cleaner import Cleaner, rejected_record
    from selfinstruct.clean.presets import load_preset
    from selfinstruct.clean.workers import RuleChecker
    from selfinstruct.stats import Stats

    answers = answers_with_duplicates()
    answers[15][0] = {**answers[15][0], "input": "<noinput>"}  # repaired by the default preset's noinput_marker
    whole = Cleaner(load_preset("default"))
    expected = verdicts(whole, answers, [whole.check_rules(answer) for answer in answers])

    first = Cleaner(load_preset("default"))
    done = [v for answer in answers[:12] for v in first.decide(first.check_rules(answer), [r["id"] for r in answer])]
    resumed = Cleaner(load_preset("default"))
    checker = RuleChecker(resumed, workers=1)
    try:
        kept = [v.record for v in done if v.kept]
        resumed.restore(kept, [rejected_record(v) for v in done if not v.kept], Stats(first.stats.to_dict()))
        checked = [future.result() for future in [checker.submit(answer) for answer in answers[12:]]]
    finally:
        checker.close()
    assert any(rule == "near_duplicate" for _, rule, _ in expected[12 * 20 :])
    assert verdicts(resumed, answers[12:], checked) == expected[12 * 20 :]
    assert resumed.stats == whole.stats
    repaired = checked[15 - 12][0]
    assert repaired.record["input"] == "" and repaired.fixed == ["noinput_marker"]


# ---------------------------------------------------------------- the faster paths of generate's rule worker


def mixed_texts(n: int) -> list[str]:
    """T0 prompts, the seed tasks and pieces that case-insensitive matching treats specially
    ('K' Kelvin sign, long s, dotted I, curly quotes), in random mixes."""
    import gzip
    import json

    from conftest import SEED_TASKS, T0_PROMPTS

    with gzip.open(T0_PROMPTS, "rt", encoding="utf-8") as f:
        t0 = [json.loads(line)["prompt"] for _, line in zip(range(n), f)]
    seeds = [json.loads(line) for line in SEED_TASKS.read_text().splitlines()]
    seeds = [f"{s['instruction']}\n{s['instances'][0]['input']}\n{s['instances'][0]['output']}" for s in seeds]
    pieces = ["As an AI language model", "AS AN AI", "I\u2019m sorry", "i'm", "DRAW", "plot", "Images", "OpenAI's"]
    pieces += [
        "KELVIN",
        "\u212a",
        "\u017f",
        "\u0130",
        "\u00e9t\u00e9",
        "\u6f22\u5b57",
        " ",
        "\n",
        "-",
        "_",
        "the the the",
        "x1",
    ]
    rng = random.Random(3)
    mixes = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(n)]
    return t0 + seeds + mixes


def test_minhash_permutations_are_datasketchs():
    from datasketch import MinHash

    from selfinstruct.clean.dedup.minhash import affine32_permutations

    for num_perm, seed in [(128, 1), (256, 7), (16, 0)]:
        a, b = MinHash(num_perm=num_perm, seed=seed).permutations
        mine = affine32_permutations(num_perm, seed)
        assert a.dtype == mine[0].dtype and np.array_equal(a, mine[0]) and np.array_equal(b, mine[1])


def test_language_codes_known_without_loading_the_model_are_the_models():
    from selfinstruct.clean.rules.language import KNOWN_CODES, identifier

    assert set(identifier().labels) == KNOWN_CODES


def test_float32_language_weights_score_as_py3langid():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from selfinstruct.clean.rules.language import identifier

    theirs = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ours = identifier()
    assert theirs.nb_ptc.dtype != ours.nb_ptc.dtype  # float16 there
    for text in mixed_texts(600):
        assert ours.rank(text) == theirs.rank(text)
        assert ours.classify(text) == theirs.classify(text)


def test_ascii_search_finds_what_ignorecase_finds():
    from selfinstruct.clean.rules.alpaca import Blacklist
    from selfinstruct.clean.rules.artefacts import TeacherArtefacts

    texts = mixed_texts(400)
    # the Kelvin sign lowercases to "k" (ASCII: the fast path), the long s stays itself (not ASCII:
    # it matches "s" ignoring case, so IGNORECASE decides)
    assert Blacklist(words=("\u017fign",))._ascii_pattern is None
    for rule in (Blacklist(), TeacherArtefacts(), Blacklist(words=("Draw", "\u212aelvin", "PLOT"))):
        plain = rule.model_copy()
        plain._ascii_pattern = None  # IGNORECASE on every text, as before
        found = 0
        for i in range(0, len(texts) - 2, 3):
            record = {"instruction": texts[i], "input": texts[i + 1], "output": texts[i + 2]}
            assert rule.check(record) == plain.check(record)
            found += rule.check(record) is not None
        assert found


def test_rewritten_text_helpers_equal_their_plain_definitions():
    import re
    from collections import Counter

    from selfinstruct.clean.rules.degenerate import word_repetition_ratio
    from selfinstruct.clean.rules.language import has_letters
    from selfinstruct.clean.rules.topic import _STOPWORDS, content_words, shares_content_word

    def plain_content_words(text):
        return {w[:6] for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3 and w not in _STOPWORDS}

    def plain_word_repetition(text, n):
        words = text.lower().split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams).values()
        return sum(c for c in counts if c > 1) / sum(counts) if len(set(grams)) < len(grams) else 0.0

    for text in mixed_texts(400):
        assert content_words(text) == plain_content_words(text)
        for other in (text[: len(text) // 2], "Name the planets of the solar system.", text[::-1]):
            assert shares_content_word(content_words(other), text) == (
                not content_words(other).isdisjoint(content_words(text))
            )
        for n in (1, 2, 3, 10):
            assert word_repetition_ratio(text, n) == plain_word_repetition(text, n)
        for n in (1, 10, 15):
            assert has_letters(text, n) == (sum(c.isalpha() for c in text) >= n)
