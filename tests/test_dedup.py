"""Duplicate removal: Alpaca's ROUGE-L numbers, datasketch's MinHashes, and the same
decisions from the one-at-a-time index and the whole-dataset path, with MinHash or with
sentence embeddings."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import T0_PROMPTS
from datasketch import LeanMinHash, MinHash, MinHashLSH
from rouge_score import rouge_scorer

from selfinstruct.clean import Cleaner, load_preset
from selfinstruct.clean.dedup import (
    EXACT_DUPLICATE,
    NEAR_DUPLICATE,
    DedupSettings,
    Duplicate,
    DuplicateIndex,
    SemanticIndex,
    find_duplicates,
)
from selfinstruct.clean.dedup.minhash import MinHasher, shingle_hash
from selfinstruct.clean.dedup.rouge import Vocabulary, exact_key, exceeds, rouge_l, tokenize
from selfinstruct.errors import SettingError
from selfinstruct.records import read_records

T0 = T0_PROMPTS
SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "seed_tasks.jsonl"


def t0_prompts(n: int) -> list[str]:
    with gzip.open(T0, "rt", encoding="utf-8") as f:
        return [json.loads(line)["prompt"] for _, line in zip(range(n), f)]


def seed_instructions() -> list[str]:
    return [r["instruction"] for r in read_records(SEEDS)]


def test_tokenize_is_rouge_scores_tokenizer():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for text in [*seed_instructions()[:50], "Café au lait: 3½ cups — 'quoted' (x_y) Über-CAPS 42nd"]:
        assert tokenize(text) == scorer._tokenizer.tokenize(text)


def test_rouge_l_is_rouge_scores_number_to_the_last_bit():
    texts = seed_instructions() + t0_prompts(300)
    rng = random.Random(0)
    for _ in range(500):
        a, b = tokenize(rng.choice(texts)), tokenize(rng.choice(texts))
        assert rouge_l(a, b) == rouge_scorer._score_lcs(a, b).fmeasure
    # pairs exactly at the threshold: 7 common of 10 and 10 tokens is F = 0.7, not > 0.7
    a = "a b c d e f g h i j".split()
    b = "a b c d e f g x y z".split()
    assert rouge_l(a, b) == rouge_scorer._score_lcs(a, b).fmeasure
    assert not exceeds(a, b, 0.7)
    assert exceeds(a, "a b c d e f g h x y".split(), 0.7)


def test_exceeds_agrees_with_rouge_l_on_real_pairs():
    vocabulary = Vocabulary()
    ids = [vocabulary.encode(tokenize(t)) for t in t0_prompts(400)]
    rng = random.Random(1)
    for _ in range(3000):
        a, b = rng.choice(ids), rng.choice(ids)
        assert exceeds(a, b, 0.7) == (rouge_l(a, b) > 0.7)


def test_signatures_are_datasketchs_minhashes():
    """The vectorised signatures equal MinHash.bulk over (token, repeat) shingles."""
    texts = seed_instructions()[:40] + t0_prompts(40) + ["", "the the the the cat"]
    vocabulary = Vocabulary()
    ids = [vocabulary.encode(tokenize(t)) for t in texts]
    hasher = MinHasher(num_perm=128, seed=1)
    hasher.CHUNK_SHINGLES = 64  # many small chunks, and texts longer than one chunk
    signatures = hasher.signatures(ids, vocabulary.hashes)

    def multiset(tokens):
        seen: dict[str, int] = {}
        for token in tokens:
            seen[token] = seen.get(token, 0) + 1
            yield token, seen[token] - 1

    expected = MinHash.bulk([list(multiset(tokenize(t))) for t in texts], num_perm=128, seed=1, hashfunc=shingle_hash)
    for signature, minhash in zip(signatures, expected):
        assert np.array_equal(signature, minhash.hashvalues)
    # and they index in datasketch's own LSH
    lsh = MinHashLSH(num_perm=128, params=(32, 4))
    lsh.insert("a", LeanMinHash(seed=1, hashvalues=signatures[0], scheme="affine32"))
    assert lsh.query(expected[0]) == ["a"]


def test_exact_key_is_alpacas_tokens():
    """Exact duplicates are texts with the same tokens (ROUGE-L 1.0): case, spacing and
    punctuation do not count; texts without [a-z0-9] tokens compare their own words."""
    assert exact_key("Give  three tips, for staying HEALTHY!") == exact_key("give three tips for staying healthy")
    assert exact_key("Name a prime") != exact_key("Name a primate")
    assert exact_key("请列出三种 编程语言") == exact_key("请列出三种  编程语言 ") != exact_key("请列出四种编程语言")


def test_index_keeps_first_and_names_the_earliest_duplicate():
    index = DuplicateIndex(DedupSettings())
    index.add([("seed_0", "Give three tips for staying healthy.")])
    assert index.check("a", "Give three tips for staying healthy!") == Duplicate(EXACT_DUPLICATE, "seed_0")
    assert index.check("b", "Give me three good tips for staying healthy.") == Duplicate(NEAR_DUPLICATE, "seed_0")
    assert index.check("c", "Describe the water cycle to a ten year old.") is None
    assert index.check("d", "Describe the water cycle to a ten year old child.") == Duplicate(NEAR_DUPLICATE, "c")
    assert index.check("e", "Write a haiku about the sea at night.") is None
    assert len(index) == 3  # seed_0, c, e: duplicates are not indexed


def test_recheck_of_an_indexed_key_is_kept_again():
    """A resumed run replays its records: the same key with the same text stays kept."""
    index = DuplicateIndex(DedupSettings())
    assert index.check("a", "Describe the water cycle to a ten year old.") is None
    assert index.check("a", "Describe the water cycle to a ten year old.") is None
    assert len(index) == 1


def test_near_duplicates_are_alpacas_decisions_on_the_seeds():
    """Seeds against copies with light and heavy edits: LSH + ROUGE-L decide as all-pairs does."""
    rng = random.Random(2)
    seeds = seed_instructions()
    texts = []
    for text in seeds[:120]:
        words = text.split()
        for rate in (0.1, 0.25, 0.5):
            texts.append(" ".join(w for w in words if rng.random() > rate))
    reference = [tokenize(t) for t in seeds]
    found = find_duplicates(texts, DedupSettings(exact=False), reference=seeds)
    kept: list[list[str]] = list(reference)
    expected = []
    for text in texts:
        tokens = tokenize(text)
        duplicate = any(rouge_scorer._score_lcs(tokens, other).fmeasure > 0.7 for other in kept)
        expected.append(duplicate)
        if not duplicate:
            kept.append(tokens)
    assert [d is not None for d in found] == expected
    assert 100 < sum(expected) < len(texts)  # both kinds of decision are exercised


def test_whole_dataset_path_decides_like_the_index():
    """find_duplicates (numpy, all at once) == DuplicateIndex.check one by one, on real
    T0 prompts full of near-duplicates, with seed texts as reference."""
    seeds = seed_instructions()[:30]
    texts = t0_prompts(1500) + seeds[:5] + [s.upper() for s in seeds[5:10]]
    settings = DedupSettings(max_bucket=8)  # small enough that the bucket cap matters here
    found = find_duplicates(texts, settings, reference=seeds)
    index = DuplicateIndex(settings)
    index.add([(f"s{i}", seed) for i, seed in enumerate(seeds)])
    one_by_one = [index.check(str(i), text) for i, text in enumerate(texts)]

    def public(d):
        if d is None:
            return None
        return Duplicate(d.reason, f"s{-1 - d.of}" if d.of < 0 else str(d.of))

    assert [public(d) for d in found] == one_by_one
    reasons = {d.reason for d in one_by_one if d}
    assert reasons == {EXACT_DUPLICATE, NEAR_DUPLICATE}


def test_batches_and_a_restored_index_decide_as_one_by_one():
    """check_many == check in order; an index restored from what the first half kept (and
    found near-duplicate) decides the second half exactly as the original index does."""
    texts = t0_prompts(1200)
    texts += [t.upper() for t in texts[:300]]  # exact copies of texts the first half kept or rejected
    settings = DedupSettings(max_bucket=8)
    one_by_one = DuplicateIndex(settings)
    expected = [one_by_one.check(str(i), text) for i, text in enumerate(texts)]

    batched = DuplicateIndex(settings)
    half = len(texts) // 2
    first = [
        d
        for start in range(0, half, 20)
        for d in batched.check_many([(str(i), texts[i]) for i in range(start, min(start + 20, half))])
    ]
    assert first == expected[:half]

    restored = DuplicateIndex(settings)
    restored.restore(
        [(str(i), texts[i]) for i in range(half) if expected[i] is None],
        [(str(i), texts[i]) for i in range(half) if expected[i] is not None and expected[i].reason == NEAR_DUPLICATE],
    )
    assert restored.check_many([(str(i), texts[i]) for i in range(half, len(texts))]) == expected[half:]
    assert {d.reason for d in expected[half:] if d} == {EXACT_DUPLICATE, NEAR_DUPLICATE}


def test_settings_reject_more_bands_than_permutations():
    with pytest.raises(ValueError, match="more than num_perm"):
        DedupSettings(num_perm=64, bands=32, rows=4)


# ---------------------------------------------------------------- semantic near-duplicates

SEMANTIC = DedupSettings(method="embedding")


def test_semantic_index_keeps_first_and_catches_what_rouge_misses():
    index = SemanticIndex(SEMANTIC)
    index.add([("seed_0", "Give three tips for staying healthy.")])
    assert index.check("a", "Give three tips for staying healthy!") == Duplicate(EXACT_DUPLICATE, "seed_0")
    reworded = "How can I stay healthy? Give three tips."  # ROUGE-L 0.43: not a duplicate for Alpaca
    assert rouge_l(tokenize(reworded), tokenize("Give three tips for staying healthy.")) < 0.7
    assert DuplicateIndex(DedupSettings()).check("x", reworded) is None
    assert index.check("b", reworded) == Duplicate(NEAR_DUPLICATE, "seed_0")
    assert index.check("c", "Describe the water cycle to a ten year old.") is None
    assert index.check("d", "Write a haiku about the sea at night.") is None
    assert index.check("c", "Describe the water cycle to a ten year old.") is None  # a resumed run's replay
    assert len(index) == 3  # seed_0, c, d


def test_semantic_paths_decide_alike():
    """find_duplicates (all at once, blocks of cosines) == SemanticIndex one by one, in
    batches, and restored half way, on real T0 prompts with seed texts as reference."""
    seeds = seed_instructions()[:30]
    texts = t0_prompts(1200) + seeds[:5] + [s.upper() for s in seeds[5:10]]
    settings = DedupSettings(method="embedding", cosine_threshold=0.97)
    found = find_duplicates(texts, settings, reference=seeds)
    index = SemanticIndex(settings)
    index.add([(f"s{i}", seed) for i, seed in enumerate(seeds)])
    one_by_one = [index.check(str(i), text) for i, text in enumerate(texts)]
    assert [
        d if d is None else Duplicate(d.reason, f"s{-1 - d.of}" if d.of < 0 else str(d.of)) for d in found
    ] == one_by_one
    assert {d.reason for d in one_by_one if d} == {EXACT_DUPLICATE, NEAR_DUPLICATE}

    batched = SemanticIndex(settings)
    batched.add([(f"s{i}", seed) for i, seed in enumerate(seeds)])
    half = len(texts) // 2
    assert [
        d
        for start in range(0, half, 20)
        for d in batched.check_many([(str(i), texts[i]) for i in range(start, min(start + 20, half))])
    ] == one_by_one[:half]
    restored = SemanticIndex(settings)
    restored.add([(f"s{i}", seed) for i, seed in enumerate(seeds)])
    restored.restore(
        [(str(i), texts[i]) for i in range(half) if one_by_one[i] is None],
        [
            (str(i), texts[i])
            for i in range(half)
            if one_by_one[i] is not None and one_by_one[i].reason == NEAR_DUPLICATE
        ],
    )
    assert restored.check_many([(str(i), texts[i]) for i in range(half, len(texts))]) == one_by_one[half:]


def test_semantic_method_from_a_preset_and_not_with_a_shared_index(tmp_path):
    (tmp_path / "semantic.toml").write_text('[dedup]\nmethod = "embedding"\ncosine_threshold = 0.9\n')
    preset = load_preset(str(tmp_path / "semantic.toml"))
    cleaner = Cleaner(preset)
    first, second = (
        {"instruction": text, "input": "", "output": "ok"}
        for text in ("Give three tips for staying healthy.", "Give 3 tips to stay healthy.")
    )
    assert cleaner.check(first, "a").kept
    assert cleaner.check(second, "b").duplicate_of == "a"
    with pytest.raises(SettingError, match="method = 'embedding' keeps its index in memory"):
        Cleaner(preset, lsh_storage="redis://127.0.0.1:6379")
