"""`selfinstruct eval`: a model under test answers a set on the job engine and is scored.

The models and the judge are stand-ins on loopback (tests/fake_openai.py) whose behaviour is
known item by item, so each score has an exact expected value."""

import json
import re

import pytest
from click.testing import CliRunner
from conftest import GSM8K, USER_ORIENTED, assert_no_key_in
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.eval.pairwise import pairwise_scores, parse_verdict
from selfinstruct.eval.run import EvalConfig, evaluate
from selfinstruct.eval.scores import Score, wilson
from selfinstruct.records import read_records

N = 20


def gsm8k_stand_in(right):
    """A model answering the first N GSM8K questions, right on the items `right(i)` says."""
    items = read_records(GSM8K)[:N]
    by_prompt = {r["instruction"]: (i, r["answer"]) for i, r in enumerate(items)}

    def answer(prompt):
        i, reference = by_prompt[prompt.strip()]
        value = reference if right(i) else f"{float(reference.replace(',', '')) + 1:g}"
        return f"Let me work it out step by step.\nThe answer is {value}."

    return answer


def test_accuracy_and_its_interval_on_a_model_right_half_the_time(tmp_path):
    with FakeOpenAI(answer=gsm8k_stand_in(lambda i: i % 2 == 0)) as server:
        result = evaluate(
            EvalConfig(set=str(GSM8K), limit=N), [f"stand-in@{server.base_url}"], tmp_path / "eval", progress=False
        )
        asked = len(server.completed)
    accuracy = Score.from_json(result.doc["models"]["stand-in"]["scores"]["accuracy"])
    low, high = wilson(10, 20)
    assert (accuracy.value, accuracy.n) == (0.5, N)
    assert (accuracy.low, accuracy.high) == pytest.approx((low, high))
    assert (low, high) == pytest.approx((0.2993, 0.7007), abs=1e-4)  # Wilson's 95% interval of 10/20
    assert asked == N
    assert "0.500 [0.299, 0.701]" in result.table
    assert result.doc["models"]["stand-in"]["answered"] == N
    assert "pairwise" not in result.doc["models"]["stand-in"]  # GSM8K has answers to verify: no judge by default
    assert_no_key_in(tmp_path / "eval")


def test_a_resumed_eval_asks_nothing_twice(tmp_path):
    with FakeOpenAI(answer=user_oriented_stand_in(lambda pair: "[[A]]")) as server:
        config = judged(server, limit=6)
        first = evaluate(config, [f"stand-in@{server.base_url}"], tmp_path / "eval", progress=False)
        asked = len(server.completed)
        second = evaluate(config, [f"stand-in@{server.base_url}"], tmp_path / "eval", progress=False)
        assert len(server.completed) == asked == 6 + 2 * 6  # the answers, and both orders of each pair
    assert second.doc["models"] == first.doc["models"] | {
        "stand-in": first.doc["models"]["stand-in"] | {"answers_per_s": None}
    }


def test_samples_give_pass_at_k(tmp_path):
    # each item is asked 4 times; the stand-in is right on the first answer to an item only
    asked: dict[str, int] = {}
    answer = gsm8k_stand_in(lambda i: True)

    def first_right(prompt):
        asked[prompt] = asked.get(prompt, 0) + 1
        return answer(prompt) if asked[prompt] == 1 else "I do not know."

    with FakeOpenAI(answer=first_right) as server:
        result = evaluate(
            EvalConfig(set=str(GSM8K), limit=5, samples=4, concurrency=1),
            [f"stand-in@{server.base_url}"],
            tmp_path / "eval",
            progress=False,
        )
    scores = result.doc["models"]["stand-in"]["scores"]
    assert scores["accuracy"]["value"] == pytest.approx(0.25)  # pass@1: 1 of 4 per item
    assert scores["pass@4"]["value"] == 1.0 and scores["pass@4"]["n"] == 5


# ---------------------------------------------------------------- pairwise


def judged(server, **settings) -> EvalConfig:
    """An eval of the user-oriented set, judged by the stand-in `server`."""
    return EvalConfig(set=str(USER_ORIENTED), judge_base_url=server.base_url, judge_model="judge", **settings)


def user_oriented_stand_in(judge, good=()):
    """One server for the model under test and the judge: the model answers item k with
    "answer k" ("GOOD answer k" for k in `good`); the judge's verdict is `judge(pair)`."""
    items = read_records(USER_ORIENTED, require_output=False)
    by_prompt = {
        (r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "")).strip(): k for k, r in enumerate(items)
    }

    def answer(prompt):
        if "[The Start of Assistant A's Answer]" in prompt:
            a = re.search(r"Assistant A's Answer\]\n(.*?)\n\[The End", prompt, re.DOTALL)[1]
            b = re.search(r"Assistant B's Answer\]\n(.*?)\n\[The End", prompt, re.DOTALL)[1]
            return judge({"a": a, "b": b})
        k = by_prompt[prompt.strip()]
        return f"{'GOOD ' if k in good else ''}answer {k}"

    return answer


def prefers_good_else_first(pair):
    """A judge with a position bias: it sees quality where there is some, else picks the first."""
    if "GOOD" in pair["a"]:
        return "A is better.\n[[A]]"
    if "GOOD" in pair["b"]:
        return "B is better.\n[[B]]"
    return "They look alike; the first one reads better.\n[[A]]"


def test_judging_in_both_orders_cancels_the_position_bias(tmp_path):
    stand_in = user_oriented_stand_in(prefers_good_else_first, good={0, 1, 2})
    with FakeOpenAI(answer=stand_in) as server:
        result = evaluate(judged(server, limit=8), [f"m@{server.base_url}"], tmp_path / "eval", progress=False)
    entry = result.doc["models"]["m"]
    pairwise = entry["pairwise"]
    # Asked once, model first, the biased judge would give 8 wins of 8. Both orders: the 3 better
    # answers win both times, the 5 others win once and lose once, a tie.
    assert (pairwise["wins"], pairwise["ties"], pairwise["losses"]) == (3, 5, 0)
    assert entry["scores"]["win_rate"]["value"] == pytest.approx((3 + 5 * 0.5) / 8)
    assert entry["scores"]["win_rate"]["n"] == 8
    assert pairwise["first_position_rate"] == pytest.approx(13 / 16)  # the bias, measured
    assert pairwise["mean_length"] == pytest.approx(
        sum(len(f"answer {k}") + 5 * (k < 3) for k in range(8)) / 8, abs=0.05
    )
    assert pairwise["reference_mean_length"] > pairwise["mean_length"]
    assert result.doc["judge"]["prompt"] == "mt-bench-pairwise-1"


def test_a_malformed_verdict_is_counted_not_fatal(tmp_path):
    def judge(pair):
        return "Both are fine, I think." if pair["a"] == "answer 0" else "[[B]]"

    with FakeOpenAI(answer=user_oriented_stand_in(judge)) as server:
        result = evaluate(judged(server, limit=6), [f"m@{server.base_url}"], tmp_path / "eval", progress=False)
    pairwise = result.doc["models"]["m"]["pairwise"]
    assert (pairwise["malformed"], pairwise["left_out"], pairwise["judged"]) == (1, 1, 5)
    assert (pairwise["wins"], pairwise["ties"], pairwise["losses"]) == (0, 5, 0)  # [[B]] both ways: a tie
    assert result.doc["models"]["m"]["scores"]["win_rate"]["n"] == 5
    assert "1 malformed verdicts, 1 pairs left out" in "\n".join(result.notes)


@pytest.mark.parametrize(
    "content, verdict",
    [("A is better.\n[[A]]", "A"), ("[[A]] at first, but on reflection [[C]]", "C"), ("Verdict: B", "B"), ("tie", "C")],
)
def test_verdicts_are_read(content, verdict):
    assert parse_verdict(content) == verdict


# ---------------------------------------------------------------- the command line


def test_compare_puts_the_models_in_one_table_and_eval_json(tmp_path):
    out = tmp_path / "eval"
    with (
        FakeOpenAI(answer=gsm8k_stand_in(lambda i: True)) as strong,
        FakeOpenAI(answer=gsm8k_stand_in(lambda i: i < 5)) as weak,
    ):
        args = ["eval", str(GSM8K), "--compare", f"strong@{strong.base_url}", f"weak@{weak.base_url}"]
        args += ["--limit", str(N), "--out", str(out), "--train", str(GSM8K), "--quiet"]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["model", "accuracy", "n", "W/T/L", "length", "overlap"]
    assert lines[2].split() == ["strong", "1.000", "[0.839,", "1.000]", "20", "-", "-", "20/20"]
    assert lines[3].split() == ["weak", "0.250", "[0.112,", "0.469]", "20", "-", "-", "20/20"]
    assert "20 of 20 items share a 13-gram with the training data" in result.output

    doc = json.loads((out / "eval.json").read_text())
    assert doc["format"] == 1 and list(doc["models"]) == ["strong", "weak"]
    assert doc["set"]["items"] == N and len(doc["set"]["sha256"]) == 64
    assert doc["set"]["verified_by"] == {"math-verify": N}
    weak_entry = doc["models"]["weak"]
    assert set(weak_entry["scores"]["accuracy"]) == {"name", "value", "low", "high", "n"}
    assert weak_entry["overlap"]["contaminated"] == N and weak_entry["overlap"]["n"] == 13
    assert (out / "weak" / "answers" / "ledger.jsonl").is_file()  # an engine run directory


def test_compare_needs_two_models(tmp_path):
    result = CliRunner().invoke(main, ["eval", str(GSM8K), "--compare", "embedded", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--compare needs two models or more" in result.output


def test_a_set_without_references_is_refused_before_anything_is_asked(tmp_path):
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"instruction": "Say hello.", "input": ""}) + "\n")
    result = CliRunner().invoke(main, ["eval", str(bare), "embedded", "--out", str(tmp_path / "eval")])
    assert result.exit_code != 0
    assert "no record has a reference" in result.output and str(bare) in result.output


def test_verifying_a_set_without_answers_is_refused(tmp_path):
    result = CliRunner().invoke(
        main, ["eval", str(USER_ORIENTED), "embedded", "--metrics", "verified", "--out", str(tmp_path / "eval")]
    )
    assert result.exit_code != 0
    assert "no item has an `answer` or `solution` to verify" in result.output


def test_against_judges_the_answers_against_a_second_models(tmp_path):
    # the second model answers every item well ("GOOD answer k"), the model under test plainly
    with (
        FakeOpenAI(answer=user_oriented_stand_in(prefers_good_else_first)) as server,
        FakeOpenAI(answer=user_oriented_stand_in(prefers_good_else_first, good=range(8))) as rival,
    ):
        config = judged(server, limit=4, against=f"rival@{rival.base_url}")
        result = evaluate(config, [f"m@{server.base_url}"], tmp_path / "eval", progress=False)
        assert len(rival.completed) == 4  # the rival only answers; the one judge judges
    pairwise = result.doc["models"]["m"]["pairwise"]
    assert (pairwise["wins"], pairwise["ties"], pairwise["losses"]) == (0, 0, 4)
    assert pairwise["reference_mean_length"] == pytest.approx(len("GOOD answer 0"))
    assert (tmp_path / "eval" / "against-rival" / "answers" / "ledger.jsonl").is_file()


def test_a_cost_cap_stops_the_eval_and_a_rerun_goes_on_without_paying_twice(tmp_path):
    priced = {"set": str(GSM8K), "limit": 10, "concurrency": 1, "max_tokens": 100, "price_in": 1000, "price_out": 1000}
    with FakeOpenAI(answer=gsm8k_stand_in(lambda i: True)) as server:
        spec = [f"stand-in@{server.base_url}"]
        with pytest.raises(SelfInstructError, match="max cost reached before every item was done"):
            evaluate(EvalConfig(**priced, max_cost=0.5), spec, tmp_path / "eval", progress=False)
        paid = len(server.completed)
        assert 0 < paid < 10 and not (tmp_path / "eval" / "eval.json").exists()
        result = evaluate(EvalConfig(**priced, max_cost=5.0), spec, tmp_path / "eval", progress=False)
        assert len(server.completed) == 10  # the first run's answers were kept, not asked again
    assert result.doc["models"]["stand-in"]["scores"]["accuracy"]["value"] == 1.0


def test_the_model_under_test_can_answer_through_the_batch_api(tmp_path):
    with FakeBatchAPI(FakeOpenAI(answer=gsm8k_stand_in(lambda i: i % 2 == 0))) as server:
        config = EvalConfig(set=str(GSM8K), limit=N, batch=True, batch_poll_s=0.01, max_tokens=100)
        result = evaluate(config, [f"gpt-4o-mini@{server.base_url}"], tmp_path / "eval", progress=False)
    entry = result.doc["models"]["gpt-4o-mini"]
    assert entry["scores"]["accuracy"]["value"] == 0.5 and entry["scores"]["accuracy"]["n"] == N
    assert sum(len(ids) for _, ids in server.uploads) == N  # one batch line per item
    assert entry["cost_usd"] > 0  # priced at the batch price of gpt-4o-mini


def test_a_judge_without_one_readable_verdict_gives_no_rate_rather_than_zero():
    scores, details = pairwise_scores([{"id": "e0", "output": "a", "reference": "b"}], [], malformed=2)
    assert scores == [] and (details["judged"], details["malformed"], details["left_out"]) == (0, 2, 1)


def test_the_model_can_be_named_by_base_url_and_model(tmp_path):
    with FakeOpenAI(answer=gsm8k_stand_in(lambda i: i < 3)) as server:
        args = ["eval", str(GSM8K), "--base-url", server.base_url, "--model", "org/m:1", "--limit", "6"]
        result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "eval"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2].split()[:2] == ["org_m_1", "0.500"]  # a file-safe label
    assert (tmp_path / "eval" / "org_m_1" / "answers" / "data.jsonl").is_file()


def test_a_reference_math_verify_cannot_read_is_matched_exactly(tmp_path):
    rows = [
        {"instruction": f"Classify the sentiment of review {k}.", "input": "", "answer": "Positive"} for k in range(4)
    ]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in rows))
    replies = {
        f"Classify the sentiment of review {k}.": ["The sentiment is:\npositive.", "Negative"][k % 2] for k in range(4)
    }
    with FakeOpenAI(answer=lambda prompt: replies[prompt.strip()]) as server:
        result = evaluate(EvalConfig(set=str(labels)), [f"m@{server.base_url}"], tmp_path / "eval", progress=False)
    assert result.doc["set"]["verified_by"] == {"exact match": 4}
    assert result.doc["models"]["m"]["scores"]["accuracy"]["value"] == 0.5
