"""The settings each job of an eval runs with: a local checkpoint's pace, length and price where
the user set none, and the judge's own price, named by its own flags when it is missing.

A local checkpoint is played by a stand-in on loopback (the server `eval` would start is
replaced): what matters here is what the eval asks of it, not how transformers answers."""

import json

import pytest
from click.testing import CliRunner
from conftest import GSM8K, USER_ORIENTED
from fake_openai import FakeOpenAI
from test_eval import gsm8k_stand_in, user_oriented_stand_in

from selfinstruct.cli import main
from selfinstruct.errors import SettingError
from selfinstruct.eval.checkpoint import model_name
from selfinstruct.eval.run import EvalConfig, evaluate
from selfinstruct.records import read_jsonl


@pytest.fixture
def served_checkpoint(tmp_path, monkeypatch):
    """A checkpoint directory whose server is a GSM8K stand-in right on every item."""

    class StandInServer(FakeOpenAI):
        def __init__(self, spec, log_path=None):
            super().__init__(answer=gsm8k_stand_in(lambda i: True))
            self.model = model_name(spec)

    monkeypatch.setattr("selfinstruct.eval.serve.CheckpointServer", StandInServer)
    folder = tmp_path / "student"
    folder.mkdir()
    return folder


def answer_settings(eval_dir, label):
    return json.loads((eval_dir / label / "answers" / "config.json").read_text())["config"]


def test_a_local_checkpoint_is_asked_one_request_at_a_time_unless_the_user_says_otherwise(tmp_path, served_checkpoint):
    config = EvalConfig(set=str(GSM8K), limit=4, metrics="verified", max_cost=0.01)
    result = evaluate(config, [str(served_checkpoint)], tmp_path / "eval", progress=False)
    settings = answer_settings(tmp_path / "eval", "student")
    # one at a time, as the server answers; 8 in flight would queue there into the client's timeout
    assert (settings["concurrency"], settings["max_tokens"]) == (1, 1024)
    assert settings["base_url"].startswith("http://127.0.0.1:")
    # it runs on this machine: free, so --max-cost holds without --price-in (none in the price table)
    assert result.doc["models"]["student"]["cost_usd"] == 0.0
    assert result.doc["models"]["student"]["scores"]["accuracy"]["value"] == 1.0

    mine = EvalConfig(set=str(GSM8K), limit=4, metrics="verified", concurrency=3, max_tokens=64)
    evaluate(mine, [str(served_checkpoint)], tmp_path / "eval-mine", progress=False)
    settings = answer_settings(tmp_path / "eval-mine", "student")
    assert (settings["concurrency"], settings["max_tokens"]) == (3, 64)  # the user's, where given


def test_an_endpoint_keeps_an_api_teachers_pace(tmp_path):
    with FakeOpenAI(answer=gsm8k_stand_in(lambda i: True)) as server:
        evaluate(EvalConfig(set=str(GSM8K), limit=2), [f"m@{server.base_url}"], tmp_path / "eval", progress=False)
    settings = answer_settings(tmp_path / "eval", "m")
    assert (settings["concurrency"], settings["max_tokens"]) == (8, 3072)


def test_a_judge_without_a_price_is_refused_under_a_cost_cap_naming_the_judges_flags(tmp_path):
    with FakeOpenAI(answer=user_oriented_stand_in(lambda pair: "[[A]]")) as server:
        args = ["eval", str(USER_ORIENTED), f"m@{server.base_url}", "--limit", "3", "--quiet"]
        args += ["--judge-base-url", server.base_url, "--judge-model", "my-judge", "--max-cost", "1"]
        args += ["--price-in", "1", "--price-out", "2"]  # the model under test's price: not the judge's
        for dry_run in ([], ["--dry-run"]):
            refused = CliRunner().invoke(main, [*args, *dry_run, "--out", str(tmp_path / "eval")])
            assert refused.exit_code != 0
            assert (
                "no price is known for the judge model 'my-judge', so --max-cost cannot be enforced" in refused.output
            )
            assert "set --judge-price-in and --judge-price-out" in refused.output
        assert server.completed == []  # refused before anything was asked

        judge_price = ["--judge-price-in", "100", "--judge-price-out", "300"]
        result = CliRunner().invoke(main, [*args, *judge_price, "--out", str(tmp_path / "eval")])
        assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "eval" / "eval.json").read_text())
    verdicts = [
        e for _, e in read_jsonl(tmp_path / "eval" / "m" / "pairwise" / "ledger.jsonl") if e["event"] == "response"
    ]
    assert len(verdicts) == 6  # both orders of 3 pairs
    paid = sum(e["usage"]["prompt_tokens"] * 100 + e["usage"]["completion_tokens"] * 300 for e in verdicts) / 1e6
    assert doc["models"]["m"]["pairwise"]["judge_cost_usd"] == pytest.approx(paid)  # at the judge's own price


def test_the_library_names_the_judges_fields():
    config = EvalConfig(set=str(USER_ORIENTED), judge_base_url="http://127.0.0.1:9/v1", judge_model="j", max_cost=1)
    with pytest.raises(SettingError) as refused:
        config.check_judge_price()
    assert refused.value.fields == ("max_cost", "judge_price_in", "judge_price_out")
    priced = config.model_copy(update={"judge_price_in": 1.0, "judge_price_out": 2.0})
    priced.check_judge_price()
    assert priced.judge_config(USER_ORIENTED, 1.0).resolved().price().output == 2.0
