"""Benchmark of the near-duplicate stage against Alpaca's all-pairs ROUGE-L.

    .venv/bin/python benchmarks/dedup.py            # everything, about 10 minutes on 2 cores
    .venv/bin/python benchmarks/dedup.py --only stage --data t0   # one part, one data set

Data:
- t0: the 55,185 prompts of ../shared/data/t0_prompts_50k.jsonl.gz (real T0 templates,
  many near-duplicates; long paragraphs), deduplicated on the whole prompt;
- synthetic: 1,000,000 instruction-like texts this script makes (below), with 30%
  edited copies of earlier texts, edits light to heavy so that their ROUGE-L spans the
  0.7 threshold.

Measured:
- our stage (`find_duplicates` with the default preset's settings: exact, then MinHash
  LSH + exact ROUGE-L): wall time and peak RSS, each in a fresh subprocess
  (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), beside the RSS with the texts loaded;
- Alpaca's method (ROUGE-L of each text against every earlier kept one, rouge-score's
  `_score_lcs` on pre-tokenised texts, as generate_instruction.py does): the mean cost of
  a pair over random pairs of the set, times the number of pairs it would score (the
  sum over texts of the kept texts before it, with our decisions);
- quality on subsamples of 5,000: Alpaca's exact decisions (sequential keep-first,
  ROUGE-L > 0.7, the LCS from rapidfuzz, checked equal to rouge-score on sampled pairs)
  against ours: precision and recall of "is a duplicate";
- quality at full scale: 600 random texts of each whole set, each of our decisions
  checked exactly against every text we kept before it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfinstruct.clean import load_preset  # noqa: E402
from selfinstruct.clean.dedup import DedupSettings, find_duplicates, tokenize  # noqa: E402

T0 = Path(__file__).resolve().parents[2] / "shared" / "data" / "t0_prompts_50k.jsonl.gz"
SYNTHETIC_SIZE = 1_000_000
QUALITY_SIZE = 5_000
SCALE_SAMPLE = 600
THRESHOLD = 0.7


def settings() -> DedupSettings:
    return load_preset("default").dedup


# ---------------------------------------------------------------- data


def t0_prompts() -> list[str]:
    with gzip.open(T0, "rt", encoding="utf-8") as f:
        return [json.loads(line)["prompt"] for line in f]


def synthetic(n: int, seed: int = 0) -> list[str]:
    """Instruction-like texts: a common opening ("Write a short", "Explain why") and words
    drawn with T0's word frequencies, 4-60 words; 30% are edited copies of a random
    earlier text, with 0-50% of the words substituted, dropped or inserted."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for prompt in t0_prompts()[::5]:
        for token in tokenize(prompt):
            counts[token] = counts.get(token, 0) + 1
    words = np.array(sorted(counts, key=counts.get, reverse=True)[:50_000])
    weights = np.array([counts[w] for w in words], dtype=float)
    weights /= weights.sum()
    openings = [
        "write a",
        "write a short",
        "explain why",
        "explain how",
        "give me",
        "list three",
        "list five",
        "describe the",
        "summarize the",
        "generate a list of",
        "classify the following",
        "rewrite the sentence",
        "what is the",
        "how do i",
        "translate the",
        "find the",
        "create a",
        "suggest some",
        "compare the",
        "name the",
    ]
    lengths = np.clip(rng.lognormal(2.6, 0.5, n).astype(int), 4, 60)
    draws = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    texts: list[str] = []
    position = 0
    for i in range(n):
        body = words[draws[position : position + lengths[i]]].tolist()
        position += lengths[i]
        if i > 10 and rng.random() < 0.3:
            texts.append(" ".join(_edit(texts[int(rng.integers(i))].split(), body, rng)))
        else:
            texts.append(f"{openings[int(rng.integers(len(openings)))]} {' '.join(body)}")
    return texts


def _edit(tokens: list[str], spare: list[str], rng) -> list[str]:
    rate = rng.uniform(0, 0.5)
    out = []
    for token in tokens:
        r = rng.random()
        if r < rate / 3:
            continue  # dropped
        out.append(spare[int(rng.integers(len(spare)))] if r < 2 * rate / 3 else token)  # substituted
        if rng.random() < rate / 3:
            out.append(spare[int(rng.integers(len(spare)))])  # inserted
    return out or tokens


def dataset(name: str) -> list[str]:
    return t0_prompts() if name == "t0" else synthetic(SYNTHETIC_SIZE)


# ---------------------------------------------------------------- our stage, one subprocess per run


def measure_stage(name: str) -> dict:
    """Runs in a fresh process: load the texts, then time find_duplicates on them."""
    texts = dataset(name)
    loaded_rss = _rss_mb()
    started = time.perf_counter()
    found = find_duplicates(texts, settings())
    seconds = time.perf_counter() - started
    kept_before = np.cumsum([d is None for d in found]) - [d is None for d in found]
    return {
        "dataset": name,
        "texts": len(texts),
        "duplicates": sum(d is not None for d in found),
        "exact": sum(d is not None and d.reason == "exact_duplicate" for d in found),
        "seconds": round(seconds, 2),
        "us_per_text": round(1e6 * seconds / len(texts), 1),
        "rss_loaded_mb": round(loaded_rss),
        "peak_rss_mb": round(_rss_mb()),
        "alpaca_pairs": int(kept_before.sum()),  # pairs Alpaca would score, given these decisions
    }


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_subprocess(function: str, name: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--call", function, name], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])


# ---------------------------------------------------------------- Alpaca's method


def alpaca_pair_rate(name: str, seconds: float = 60.0) -> dict:
    """Mean cost of rouge-score's `_score_lcs` over random pairs of the set."""
    from rouge_score import rouge_scorer

    texts = dataset(name)
    rng = random.Random(0)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tokens = {}
    pairs, spent = 0, 0.0
    while spent < seconds:
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        for k in (i, j):
            if k not in tokens:
                tokens[k] = scorer._tokenizer.tokenize(texts[k])
        started = time.perf_counter()
        rouge_scorer._score_lcs(tokens[i], tokens[j])
        spent += time.perf_counter() - started
        pairs += 1
    return {"dataset": name, "pairs_timed": pairs, "us_per_pair": round(1e6 * spent / pairs, 1)}


# ---------------------------------------------------------------- quality


def quality(name: str) -> dict:
    """Precision and recall of our decisions against Alpaca's, on QUALITY_SIZE texts."""
    from rapidfuzz.distance import LCSseq
    from rapidfuzz.process import cdist
    from rouge_score import rouge_scorer

    texts = random.Random(0).sample(t0_prompts(), QUALITY_SIZE) if name == "t0" else synthetic(QUALITY_SIZE, seed=1)
    vocabulary: dict[str, int] = {}
    ids = [[vocabulary.setdefault(t, len(vocabulary)) for t in tokenize(text)] for text in texts]
    lcs = cdist(ids, ids, scorer=LCSseq.similarity, dtype=np.int32, workers=-1)
    lengths = np.array([len(x) for x in ids])
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = lcs / lengths[None, :]  # rouge-score: prediction = the earlier text
        recall = lcs / lengths[:, None]
        f = np.nan_to_num(2 * precision * recall / (precision + recall))
    rng = random.Random(1)
    for _ in range(2000):  # the matrix is rouge-score's own numbers
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        expected = rouge_scorer._score_lcs(tokenize(texts[i]), tokenize(texts[j])).fmeasure
        assert abs(f[i, j] - expected) < 1e-12, (i, j, f[i, j], expected)

    alpaca_dup = np.zeros(len(texts), bool)
    kept: list[int] = []
    for i in range(len(texts)):
        if kept and f[i, kept].max() > THRESHOLD:
            alpaca_dup[i] = True
        else:
            kept.append(i)

    found = find_duplicates(texts, settings())
    ours = np.array([d is not None for d in found])
    our_kept = np.flatnonzero(~ours)
    # each of our decisions judged against our own kept set (no cascade from earlier misses)
    truth_given_ours = np.array(
        [bool(len(k := our_kept[our_kept < i])) and f[i, k].max() > THRESHOLD for i in range(len(texts))]
    )
    both = int((ours & alpaca_dup).sum())
    return {
        "dataset": name,
        "texts": len(texts),
        "alpaca_duplicates": int(alpaca_dup.sum()),
        "our_duplicates": int(ours.sum()),
        "precision": round(both / max(1, ours.sum()), 4),
        "recall": round(both / max(1, alpaca_dup.sum()), 4),
        "decision_precision": round(int((ours & truth_given_ours).sum()) / max(1, ours.sum()), 4),
        "decision_recall": round(int((ours & truth_given_ours).sum()) / max(1, truth_given_ours.sum()), 4),
    }


def quality_at_scale(name: str) -> dict:
    """Our decisions on the whole set, each checked exactly against the texts we kept
    before it (ROUGE-L of the sampled text against all of them), on a random sample."""
    from rapidfuzz.distance import LCSseq
    from rapidfuzz.process import cdist

    from selfinstruct.clean.dedup.rouge import Vocabulary

    texts = dataset(name)
    found = find_duplicates(texts, settings())
    ours = np.array([d is not None for d in found])
    kept = np.flatnonzero(~ours)
    sample = sorted(random.Random(2).sample(range(len(texts)), SCALE_SAMPLE))
    vocabulary = Vocabulary()
    kept_ids = [vocabulary.encode(tokenize(texts[k])) for k in kept]
    kept_lengths = np.array([len(x) for x in kept_ids])
    truth = np.zeros(len(sample), bool)
    for start in range(0, len(sample), 25):
        rows = sample[start : start + 25]
        lcs = cdist(
            [vocabulary.encode(tokenize(texts[i])) for i in rows],
            kept_ids,
            scorer=LCSseq.similarity,
            dtype=np.int32,
            workers=-1,
        )
        for r, i in enumerate(rows):
            earlier = kept < i
            m, n = len(tokenize(texts[i])), kept_lengths[earlier]
            common = lcs[r, earlier]
            with np.errstate(invalid="ignore", divide="ignore"):
                p, q = common / n, common / m
                f = np.nan_to_num(2 * p * q / (p + q))
            truth[start + r] = bool(len(f)) and f.max() > THRESHOLD
    flagged = ours[sample]
    both = int((flagged & truth).sum())
    return {
        "dataset": name,
        "texts": len(texts),
        "sample": len(sample),
        "sample_duplicates": int(truth.sum()),
        "decision_precision": round(both / max(1, flagged.sum()), 4),
        "decision_recall": round(both / max(1, truth.sum()), 4),
    }


# ---------------------------------------------------------------- report

PARTS = {"stage": "measure_stage", "alpaca": "alpaca_pair_rate", "quality": "quality", "scale": "quality_at_scale"}
DATASETS = ("t0", "synthetic")


def machine() -> dict:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(PARTS), action="append", help="parts to run (default: all)")
    parser.add_argument("--data", choices=DATASETS, action="append", help="data sets (default: both)")
    parser.add_argument("--call", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("dedup_results.json"))
    args = parser.parse_args()
    if args.call:
        function, name = args.call
        print(json.dumps(globals()[function](name)))
        return
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine()
    for part in args.only or PARTS:
        for name in args.data or DATASETS:
            results[f"{part}_{name}"] = in_subprocess(PARTS[part], name)
            print(json.dumps(results[f"{part}_{name}"]), flush=True)
    results["machine_after"] = machine()
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
