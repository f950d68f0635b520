"""Fine-tune configuration: recipes, templates and the CLI's error paths. No torch needed."""

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.finetune import available_recipes, load_recipe
from selfinstruct.finetune.template import PROMPT_INPUT, PROMPT_NO_INPUT, alpaca_prompt, render

# ---------------------------------------------------------------- Alpaca's template


def test_prompts_are_alpacas_strings_byte_for_byte():
    # PROMPT_DICT in tatsu-lab/stanford_alpaca train.py
    assert PROMPT_INPUT == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
    )
    assert PROMPT_NO_INPUT == (
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Response:"
    )


def test_alpaca_prompt_picks_the_template_like_alpaca():
    no_input = alpaca_prompt({"instruction": "Name a colour {x}.", "input": "", "output": "Red"})
    assert no_input.endswith("### Instruction:\nName a colour {x}.\n\n### Response:")
    assert "### Input:" not in no_input
    with_input = alpaca_prompt({"instruction": "Add.", "input": "2, 3", "output": "5"})
    assert with_input.endswith("### Instruction:\nAdd.\n\n### Input:\n2, 3\n\n### Response:")
    # Alpaca tests `input != ""`: whitespace still counts as an input.
    assert "### Input:\n \n" in alpaca_prompt({"instruction": "Add.", "input": " ", "output": "5"})


def test_alpaca_response_is_the_output_then_eos():
    class Tokenizer:
        eos_token = "</s>"

    prompt, full = render({"instruction": "Add.", "input": "", "output": "5"}, "alpaca", Tokenizer())
    assert full == prompt + "5</s>"


# ---------------------------------------------------------------- recipes


def test_every_shipped_recipe_validates():
    names = available_recipes()
    assert {"lora-7b-24gb", "qlora-7b-16gb", "alpaca-full-fsdp", "lora-7b-48gb", "lora-7b-80gb", "full-7b-80gb"} <= set(
        names
    )
    methods = {name: load_recipe(name).method for name in names}
    assert methods["lora-7b-24gb"] == "lora" and methods["qlora-7b-16gb"] == "qlora"


def test_single_gpu_recipes_carry_the_settings_measured_fastest():
    # benchmarks/RESULTS.md, "Fine-tune": measured on an H100, 2026-11-22
    recipes = {
        name: load_recipe(name)
        for name in ("lora-7b-24gb", "lora-7b-48gb", "lora-7b-80gb", "qlora-7b-16gb", "full-7b-80gb")
    }
    assert all(r.liger_kernel and r.attention == "auto" and r.packing for r in recipes.values())
    assert [name for name, r in recipes.items() if r.gradient_checkpointing] == ["lora-7b-24gb", "qlora-7b-16gb"]
    rows = {name: r.per_device_batch_size for name, r in recipes.items()}
    assert rows == {"lora-7b-24gb": 16, "lora-7b-48gb": 8, "lora-7b-80gb": 16, "qlora-7b-16gb": 16, "full-7b-80gb": 8}
    assert load_recipe("alpaca-full-fsdp").liger_kernel is False  # not measured under FSDP


def test_alpaca_full_recipe_has_alpacas_hyperparameters():
    r = load_recipe("alpaca-full-fsdp")
    assert (r.method, r.learning_rate, r.epochs, r.global_batch_size) == ("full", 2e-5, 3, 128)
    assert (r.max_length, r.warmup_ratio, r.lr_scheduler, r.weight_decay) == (512, 0.03, "cosine", 0.0)
    assert r.gradient_accumulation_steps(world_size=4) == 8
    assert r.gradient_accumulation_steps(world_size=8) == 4
    with pytest.raises(SelfInstructError, match="alpaca-full-fsdp.toml: global_batch_size 128 .* 3 processes"):
        r.gradient_accumulation_steps(world_size=3)


def test_accelerate_config_asks_for_fsdp_full_shard():
    text = (Path(load_recipe("alpaca-full-fsdp").source).parent / "accelerate_fsdp.yaml").read_text()
    assert "distributed_type: FSDP" in text
    assert "fsdp_reshard_after_forward: true" in text  # FULL_SHARD
    assert "mixed_precision: bf16" in text


def test_method_picks_the_default_recipe():
    assert load_recipe(None).source.endswith("lora-7b-24gb.toml")
    assert load_recipe(None, {"method": "qlora"}).source.endswith("qlora-7b-16gb.toml")
    assert load_recipe(None, {"method": "full"}).source.endswith("alpaca-full-fsdp.toml")


def test_overrides_win_over_the_file():
    r = load_recipe("lora-7b-24gb", {"learning_rate": 1e-4, "lora.r": 64, "method": "qlora"})
    assert (r.learning_rate, r.lora.r, r.method) == (1e-4, 64, "qlora")
    assert r.lora.alpha == 32  # the rest of the table is kept


def test_recipe_round_trips_through_toml(tmp_path):
    r = load_recipe("full-7b-80gb", {"max_steps": 7})
    path = tmp_path / "as-run.toml"
    path.write_text(r.to_toml())
    assert load_recipe(str(path)).model_dump() == r.model_dump()


@pytest.mark.parametrize(
    "text, message",
    [
        ("lerning_rate = 1e-4\n", r"field 'lerning_rate': unknown field"),
        ('method = "ppo"\n', r"field 'method': Input should be 'lora', 'qlora', 'full' or 'dpo'"),
        ('[lora]\nr = "big"\n', r"field 'lora.r': Input should be a valid integer"),
        ("[lora]\nrank = 8\n", r"field 'lora.rank': unknown field"),
        ("per_device_batch_size = 3\nglobal_batch_size = 32\n", r"global_batch_size \(32\) must be a multiple"),
        ("learning_rate = \n", r"not valid TOML"),
    ],
)
def test_recipe_errors_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(SelfInstructError, match=message) as info:
        load_recipe(str(path))
    assert str(info.value).startswith(f"{path}:")


def test_bad_override_says_it_came_from_the_command_line():
    with pytest.raises(
        SelfInstructError, match=r"lora-7b-24gb.toml: field 'learning_rate' \(set on the command line\)"
    ):
        load_recipe("lora-7b-24gb", {"learning_rate": -1.0})


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(SelfInstructError, match="no such recipe; shipped recipes: alpaca-full-fsdp, "):
        load_recipe("llama-70b")


# ---------------------------------------------------------------- CLI error paths (before any training)


def _invoke(*args):
    return CliRunner().invoke(main, ["finetune", *args])


def test_cli_reports_a_recipe_error_in_one_line(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi"}\n')
    (tmp_path / "bad.toml").write_text("epochs = 0\n")
    result = _invoke(
        "--data", str(data), "--model", "m", "--out", str(tmp_path / "o"), "--recipe", str(tmp_path / "bad.toml")
    )
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'bad.toml'}: field 'epochs': Input should be greater than 0" in result.output


def test_cli_names_the_pip_command_when_the_train_extra_is_missing(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real_find_spec(name, *a)
    )
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi"}\n')
    result = _invoke("--data", str(data), "--model", "smollm2-135m", "--out", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "Error: fine-tuning needs trl: pip install 'selfinstruct[train]'" in result.output


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_cli_qlora_without_bitsandbytes_names_the_gpu_extra(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi"}\n')
    result = _invoke("--data", str(data), "--model", "m", "--out", str(tmp_path / "o"), "--method", "qlora")
    assert result.exit_code == 1
    assert "needs bitsandbytes" in result.output and "pip install 'selfinstruct[train-gpu]'" in result.output
