"""Decontamination against the self-instruct user-oriented eval set (252 tasks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import USER_ORIENTED

from selfinstruct.clean import Cleaner, load_preset
from selfinstruct.clean.decontam import BenchmarkNgrams
from selfinstruct.clean.rules.contamination import Contaminated
from selfinstruct.errors import SelfInstructError

EVAL = USER_ORIENTED


@pytest.fixture(scope="module")
def eval_file() -> Path:
    return EVAL


def eval_tasks() -> list[dict]:
    return [json.loads(line) for line in EVAL.read_text().splitlines()]


def test_a_leaked_eval_instruction_is_found(eval_file):
    ngrams = BenchmarkNgrams.from_files([eval_file])
    task = eval_tasks()[0]  # the Grammarly rewrite task
    paraphrase_with_leak = "Please " + task["instruction"].split(". ", 1)[1].lower() + " Thanks."
    assert ngrams.find(paraphrase_with_leak) is not None
    assert ngrams.find("Rewrite the sentence and make your writing clearer.") is None  # 8 tokens: no 13-gram


def test_every_eval_prompt_contaminates_itself_and_the_seeds_are_clean(eval_file):
    rule = Contaminated(benchmarks=(str(eval_file),))
    for task in eval_tasks():
        for instance in task["instances"]:
            assert rule.check({"instruction": task["instruction"], "input": instance["input"], "output": ""}), task[
                "id"
            ]
    from selfinstruct.records import read_records

    seeds = read_records(Path(__file__).resolve().parents[1] / "seeds" / "seed_tasks.jsonl")
    assert [s["instruction"] for s in seeds if rule.check(s)] == []


def test_short_prompts_count_whole(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"prompt": "What is the capital of Burkina Faso?"}) + "\n")
    ngrams = BenchmarkNgrams.from_files([bench], n=13)
    assert (
        ngrams.find("Quick quiz. What is the capital of Burkina Faso? Answer in one word.")
        == "what is the capital of burkina faso"
    )
    assert ngrams.find("What is the capital of France?") is None


def test_ngram_size_is_configurable(eval_file):
    loose = Contaminated(benchmarks=(str(eval_file),), ngram=5)
    record = {"instruction": "Rewrite the sentence and make it shorter.", "input": "", "output": ""}
    assert loose.check(record) == "5-gram 'rewrite the sentence and make'"
    assert Contaminated(benchmarks=(str(eval_file),)).check(record) is None


def test_cleaner_adds_the_benchmarks_to_the_presets_rule(eval_file):
    cleaner = Cleaner(load_preset("default"), decontaminate=[str(eval_file)])
    task = eval_tasks()[5]
    verdict = cleaner.check(
        {"instruction": task["instruction"], "input": task["instances"][0]["input"], "output": "x"}, "a"
    )
    assert verdict.rejection.rule == "contaminated"
    # the alpaca preset has no such rule: it is appended
    cleaner = Cleaner(load_preset("alpaca"), decontaminate=[str(eval_file)])
    assert cleaner.rules.rules[-1].name == "contaminated"


def test_bad_benchmark_files_name_file_and_line(tmp_path):
    bad = tmp_path / "bench.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"answer": 3}\n')
    with pytest.raises(SelfInstructError, match=r"bench\.jsonl:line 2: no prompt text"):
        BenchmarkNgrams.from_files([bad])
    with pytest.raises(SelfInstructError, match="no such file"):
        BenchmarkNgrams.from_files([tmp_path / "missing.jsonl"])
