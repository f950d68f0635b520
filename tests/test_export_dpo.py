"""Preference pairs end to end: `answer --samples 3`, `judge` rates every sample, `export --format
dpo` pairs the best and the worst answer of each prompt, with ties and small margins dropped."""

import itertools
import json
import re
import threading

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError, SettingError
from selfinstruct.export.exporter import export_dataset, make_options
from selfinstruct.export.pairs import make_pairs
from selfinstruct.finetune.template import alpaca_prompt
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.judge import JudgeConfig, judge

# The quality of each of the three answers to question i; the judge reads it back as the score.
QUALITIES = {
    0: [5, 2, 4],  # a pair, margin 3
    1: [4, 4, 4],  # a tie (three answers of the same text: the judge must still rate all three)
    2: [3, 3.5, 3],  # a margin of 0.5: below the default 1
    3: [1, 0, 5],  # a pair, margin 5
    4: [4.5, 3.5, 4.5],  # a pair, margin exactly 1
}
PAIRED = {0: (5, 2), 3: (5, 0), 4: (4.5, 3.5)}


def question(i: int) -> str:
    return f"Question {i}: what is {i} times {i}?"


def sampler(qualities: dict[int, list[float]]):
    """An answer function for FakeOpenAI: the k-th answer to question i has quality qualities[i][k]."""
    asked = {i: itertools.count() for i in qualities}
    lock = threading.Lock()

    def answer_text(prompt: str) -> str:
        i = int(re.search(r"Question (\d+)", prompt).group(1))
        with lock:
            k = next(asked[i])
        if len(set(qualities[i])) == 1:
            return f"The square is {i * i}; quality {qualities[i][0]}."  # the same text every time
        return f"Answer {k}: the square is {i * i}; quality {qualities[i][k]}."

    return answer_text


def rate(prompt: str):
    response = prompt.split("[Response]")[1]
    score = float(re.search(r"quality (\d+(?:\.\d+)?)", response).group(1))
    return score, f"It deserves {score:g}."


def read(path) -> list[dict]:
    return [row for _, row in read_jsonl(path)]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"instruction": question(i), "input": ""}) + "\n" for i in QUALITIES))
    return path


def answer_and_judge(source, out, qualities, model="teacher-a", samples=3, **answer_settings):
    with FakeOpenAI(answer=sampler(qualities), rate=rate, **answer_settings) as server:
        settings = {"base_url": server.base_url, "price_in": 0, "price_out": 0}
        answer(AnswerConfig(source=str(source), model=model, samples=samples, **settings), out, progress=False)
        judge(JudgeConfig(source=str(out), model="judge-model", **settings), f"{out}-judged", progress=False)
    return out.with_name(f"{out.name}-judged")


@pytest.fixture
def judged(source, tmp_path):
    return answer_and_judge(source, tmp_path / "answers", QUALITIES)


def test_the_judge_rates_every_sample_identical_ones_included(judged):
    kept, rejected = read(judged / "data.jsonl"), read(judged / "rejected.jsonl")
    rated = kept + [row for row in rejected if row["reason"] == "low_score"]
    assert len(rated) == 15 and not [row for row in rejected if row["reason"] != "low_score"]
    by_prompt = {}
    for record in rated:
        by_prompt.setdefault(record["source_id"], []).append(record["score"])
    assert {int(k): sorted(v) for k, v in by_prompt.items()} == {i: sorted(q) for i, q in QUALITIES.items()}
    same = [r for r in rated if r["source_id"] == "1"]
    assert len({r["output"] for r in same}) == 1 and len({r["id"] for r in same}) == 3  # not collapsed


def test_pairs_are_the_best_and_worst_answer_of_each_prompt(judged, tmp_path):
    result = export_dataset(judged, make_options(format="dpo", to=tmp_path / "pairs.jsonl"))
    rows = read(tmp_path / "pairs.jsonl")
    assert result.records == len(rows) == 3
    by_question = {int(re.search(r"Question (\d+)", row["prompt"]).group(1)): row for row in rows}
    assert {i: (row["score_chosen"], row["score_rejected"]) for i, row in by_question.items()} == PAIRED
    for i, row in by_question.items():
        assert row["score_chosen"] - row["score_rejected"] >= 1
        assert row["prompt"] == alpaca_prompt({"instruction": question(i), "input": ""})  # as finetune trains
        assert f"quality {row['score_chosen']:g}." in row["chosen"]
        assert f"quality {row['score_rejected']:g}." in row["rejected"]
        assert row["source_id"] == str(i) and row["chosen_teacher"] == row["rejected_teacher"] == "teacher-a"
    stats = result.pairing
    assert (stats.answers, stats.prompts, stats.pairs) == (15, 5, 3)
    assert stats.dropped == {"tie": 1, "below_margin": 1}
    assert stats.margins == {"5": 1, "3": 1, "1": 1} and stats.answers_per_prompt == {"3": 5}
    card = (tmp_path / "pairs.jsonl.README.md").read_text()
    assert "3 preference pairs (prompt, chosen, rejected) for DPO" in card and "`judge-model`" in card
    assert "differ by at least 1" in card and "| `tie` | 1 |" in card and "| `below_margin` | 1 |" in card
    assert "| 5 | 1 |" in card and "| 3 | 1 |" in card and "- dpo" in card.split("---")[1]


def test_a_larger_margin_drops_more_and_a_smaller_one_keeps_more(judged, tmp_path):
    strict = export_dataset(judged, make_options(format="dpo", to=tmp_path / "a.jsonl", min_margin=3))
    assert strict.pairing.dropped == {"tie": 1, "below_margin": 2} and strict.records == 2
    loose = export_dataset(judged, make_options(format="dpo", to=tmp_path / "b.jsonl", min_margin=0.5))
    assert loose.pairing.dropped == {"tie": 1} and loose.records == 4  # a tie never makes a pair
    widest = export_dataset(judged, make_options(format="dpo", to=tmp_path / "c.jsonl", min_margin=5))
    assert widest.records == 1 and widest.pairing.margins == {"5": 1}  # 5 - 0 still counts at a margin of 5


def test_a_rated_file_pairs_too_and_no_pair_at_all_is_an_error(tmp_path):
    rated = tmp_path / "rated.jsonl"
    rows = [{"instruction": f"Q{i}", "input": "", "output": "A.", "score": 4} for i in range(3)]
    rated.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        SelfInstructError, match=r"no preference pairs: 3 rated answers to 3 prompts, 0 pairs; no pair: single_answer 3"
    ):
        export_dataset(rated, make_options(format="dpo", to=tmp_path / "p.jsonl"))
    assert not (tmp_path / "p.jsonl").exists()


def test_answers_of_two_teachers_pair_up(judged, source, tmp_path):
    # teacher-b answers question 2 better than any of teacher-a's answers, and question 0 worst of all
    better = {0: [1], 1: [4], 2: [5], 3: [3], 4: [4]}
    judged_b = answer_and_judge(source, tmp_path / "answers-b", better, model="teacher-b", samples=1)
    result = export_dataset([judged, judged_b], make_options(format="dpo", to=tmp_path / "pairs.jsonl"))
    rows = {int(re.search(r"Question (\d+)", row["prompt"]).group(1)): row for row in read(tmp_path / "pairs.jsonl")}
    assert result.pairing.answers == 20 and result.pairing.teachers == ["teacher-a", "teacher-b"]
    assert (rows[2]["score_chosen"], rows[2]["chosen_teacher"], rows[2]["rejected_teacher"]) == (
        5,
        "teacher-b",
        "teacher-a",
    )
    assert (rows[0]["score_rejected"], rows[0]["rejected_teacher"]) == (1, "teacher-b")
    assert set(rows) == {0, 2, 3, 4} and result.pairing.dropped == {"tie": 1}


def test_conversational_rows_and_a_system_prompt(judged, tmp_path):
    export_dataset(judged, make_options(format="dpo", chat=True, system_prompt="Be brief.", to=tmp_path / "p.jsonl"))
    row = read(tmp_path / "p.jsonl")[0]
    assert row["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert row["prompt"][1]["role"] == "user" and row["prompt"][1]["content"].startswith("Question ")
    assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]
    assert "quality" in row["chosen"][0]["content"]
    card = (tmp_path / "p.jsonl.README.md").read_text()
    assert "conversational preference format" in card


def test_reasoning_goes_inline_or_is_refused(source, tmp_path):
    judged = answer_and_judge(source, tmp_path / "answers", QUALITIES, reasoning="deepseek")
    with pytest.raises(
        SettingError,
        match="carry a reasoning trace, and trl's preference rows have no field for it: set 'reasoning' to inline",
    ):
        export_dataset(judged, make_options(format="dpo", to=tmp_path / "p.jsonl"))
    export_dataset(judged, make_options(format="dpo", reasoning="inline", to=tmp_path / "p.jsonl"))
    rows = read(tmp_path / "p.jsonl")
    assert all(r["chosen"].startswith("<think>\n") and "\n</think>\n\n" in r["rejected"] for r in rows)


def test_unrated_answers_and_misplaced_options_are_refused(source, tmp_path, judged):
    answers = tmp_path / "answers"  # the answer run itself: not judged
    with pytest.raises(SettingError, match=r"answers: record 1 \(id 'r\d+'\) has no score .*selfinstruct judge"):
        export_dataset(answers, make_options(format="dpo", to=tmp_path / "p.jsonl"))
    with pytest.raises(SettingError, match="min_margin.*dpo only"):
        make_options(format="jsonl", to=tmp_path / "p.jsonl", min_margin=2)
    with pytest.raises(SettingError, match="2 sources: only"):
        export_dataset([judged, judged], make_options(format="jsonl", to=tmp_path / "p.jsonl"))
    with pytest.raises(SettingError, match="system_prompt"):
        make_options(format="dpo", system_prompt="Hi.", to=tmp_path / "p.jsonl")


def test_identical_best_and_worst_answers_make_no_pair():
    answers = [
        {"instruction": "Q", "input": "", "output": "Same.", "score": 5},
        {"instruction": "Q", "input": "", "output": " Same.", "score": 2},
        {"instruction": "R", "input": "", "output": "Only one.", "score": 5},
    ]
    pairs, stats = make_pairs(answers, 1.0)
    assert pairs == [] and stats.dropped == {"single_answer": 1, "identical_answers": 1}


def test_the_export_command_pools_judged_runs(judged, tmp_path):
    out = tmp_path / "pairs"
    args = ["export", str(judged), str(judged), "--format", "dpo", "--chat", "--min-margin", "2", "--to", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # the same run twice: each prompt has its answers twice, the pairs are the same
    assert "30 rated answers to 5 prompts, 2 pairs; no pair: tie 1, below_margin 2 (min margin 2)" in result.output
    assert "2 records in dpo rows" in result.output and (out / "README.md").is_file()
    result = CliRunner().invoke(main, ["export", str(judged), "--format", "jsonl", "--chat", "--to", str(out)])
    assert result.exit_code != 0 and "--chat applies to --format dpo only" in result.output
