"""Progress a user can watch: the answer and judge bars end at every item answered, `filter`
shows records checked of all and why they were rejected, and a short fine-tune logs enough
steps for its first and last losses to be two measurements."""

import json
import random
import re

import pytest
from click.testing import CliRunner
from fake_openai import make_task
from fake_teacher import FakeTeacher

from selfinstruct.cli import main
from selfinstruct.tasks.answer import AnswerConfig, answer
from selfinstruct.tasks.judge import JudgeConfig, judge

ITEMS = 40


def frames(stderr: str) -> list[str]:
    """The states a tqdm bar was drawn in, in order."""
    return [frame.strip() for frame in re.split(r"[\r\n]", stderr) if "|" in frame]


def counts(frame: str) -> tuple[int, int]:
    done, total = re.search(r"\| *(\d+)/(\d+) ", frame).groups()
    return int(done), int(total)


def test_the_answer_and_judge_bars_end_at_every_item(tmp_path, capsys):
    """A fast teacher answers all 40 well within the bar's redraw interval: the bar must still
    end at 40/40, and never show a total other than the 40 items."""
    source = tmp_path / "prompts.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"Name {i} sea animals."}) + "\n" for i in range(ITEMS))
    )
    teacher = FakeTeacher(lambda request_id: f"Here are the animals you asked for ({request_id}).")
    answer(
        AnswerConfig(source=str(source), base_url="http://in-process/v1", model="teacher", concurrency=8),
        tmp_path / "answers",
        teacher=teacher,
    )
    answered = frames(capsys.readouterr().err)

    rater = FakeTeacher(lambda request_id: json.dumps({"score": 5, "rationale": "Correct."}))
    judge(
        JudgeConfig(source=str(tmp_path / "answers"), base_url="http://in-process/v1", model="teacher", concurrency=8),
        tmp_path / "judged",
        teacher=rater,
    )
    judged = frames(capsys.readouterr().err)

    for bar in (answered, judged):
        assert counts(bar[-1]) == (ITEMS, ITEMS), bar[-1]
        assert {counts(frame)[1] for frame in bar} == {ITEMS}


def test_filter_shows_records_checked_of_all_and_the_reasons(tmp_path, monkeypatch):
    monkeypatch.setattr("selfinstruct.clean.cleaner.PROGRESS_STEP", 100)  # a redraw every 100 records
    rng = random.Random(7)
    records = [make_task(rng) for _ in range(250)]
    for record in records[::5]:
        record["instruction"] = "Do it."  # instruction_words: fewer than 3 words
    src = tmp_path / "records.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))

    result = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "clean")])
    assert result.exit_code == 0, result.output
    bar = frames(result.stderr)
    assert [counts(frame) for frame in bar if frame.startswith("rules")] == [
        (0, 250),
        (100, 250),
        (200, 250),
        (250, 250),
    ]
    assert "rej instruction_words 20" in next(frame for frame in bar if counts(frame) == (100, 250))
    assert bar[-1].startswith("done") and "rej instruction_words 50" in bar[-1]

    quiet = CliRunner().invoke(main, ["filter", str(src), "--out", str(tmp_path / "quiet"), "--quiet"])
    assert quiet.exit_code == 0 and frames(quiet.stderr) == []


# ---------------------------------------------------------------- finetune: a tiny model, a few steps

RECIPE = """
method = "lora"
max_length = 64
packing = false
max_steps = {steps}
learning_rate = 1e-2
lr_scheduler = "constant"
warmup_ratio = 0.0
per_device_batch_size = 2
global_batch_size = 2
gradient_checkpointing = false
optim = "adamw_torch"

[lora]
r = 4
alpha = 8
dropout = 0.0
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A two-layer Llama of a few thousand parameters, with a word-level tokenizer: built here, so
    nothing is downloaded and a step takes milliseconds."""
    pytest.importorskip("trl", reason="needs the [train] extra")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from selfinstruct.finetune.template import alpaca_prompt

    folder = tmp_path_factory.mktemp("tiny-model")
    text = " ".join(alpaca_prompt(r) + " " + r["output"] for r in RECORDS)
    vocabulary = ["[UNK]", "<pad>", "</s>", *sorted(set(re.findall(r"\w+|[^\w\s]", text)))]
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocabulary)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="<pad>", eos_token="</s>"
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        pad_token_id=1,
        eos_token_id=2,
        bos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


RECORDS = [
    {"instruction": "Give the capital of France.", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Add the two numbers.", "input": "2 and 3", "output": "2 + 3 = 5."},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
    {"instruction": "Reverse the word.", "input": "stressed", "output": "desserts"},
]


@pytest.mark.parametrize("steps, logged", [(5, [1, 2, 3, 4, 5]), (25, [1, *range(2, 25, 2), 25])])
def test_a_short_finetune_logs_enough_steps_for_first_and_last_losses(tiny_model, tmp_path, steps, logged):
    """The recipe logs every 10 steps: a 5-step run logs each step, a 25-step run every 2nd and
    its last, so the first and last losses are two measurements."""
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE.format(steps=steps))
    out = tmp_path / "student"
    args = ["finetune", "--data", str(data), "--model", str(tiny_model), "--out", str(out), "--recipe", str(recipe)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output

    curve = json.loads((out / "metrics.json").read_text())["loss_curve"]
    assert [point["step"] for point in curve] == logged
    first, last = re.search(rf"{steps} steps; loss ([\d.]+) -> ([\d.]+)", result.output).groups()
    assert (float(first), float(last)) == (round(curve[0]["loss"], 4), round(curve[-1]["loss"], 4))
    assert float(last) < float(first)  # lr 1e-2 on four records: the loss falls
