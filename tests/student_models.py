"""Small local models for the student's tests (serving, imitation): a tiny random Llama with the
bundled SmolLM2's tokenizer, saved as an ordinary model directory, and records to train on.

    base = tiny_model_dir(tmp_path / "base")      # config.json, weights, tokenizer
"""

from __future__ import annotations

from pathlib import Path

from conftest import GSM8K

from selfinstruct.records import read_records


def gsm8k_records(start: int, n: int) -> list[dict]:
    """n GSM8K training solutions from line `start` on: the teacher's answers of these tests."""
    return read_records(GSM8K)[start : start + n]


def tiny_model_dir(folder: Path, seed: int = 0) -> Path:
    """A 1-layer, 32-wide Llama on SmolLM2's vocabulary: loads and answers in well under a second."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfinstruct.finetune.model import load_tokenizer, resolve

    tokenizer = load_tokenizer(resolve("smollm2-135m"))
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
