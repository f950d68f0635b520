"""The optional GPU kernels' plumbing, on CPU: the `varlen` attention path with its CUDA kernel
replaced by a per-example SDPA reference, Liger and the attention choice without a GPU.

The kernel itself (PyTorch's varlen FlashAttention) only runs on CUDA; `benchmarks/finetune_gpu.py
--check` compares it with fp32 SDPA there."""

import itertools

import pytest

pytest.importorskip("trl", reason="needs the [train] extra")

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling  # noqa: E402

from selfinstruct.errors import SelfInstructError  # noqa: E402
from selfinstruct.finetune import kernels, load_recipe  # noqa: E402
from selfinstruct.finetune.model import attention_kernel, choose_precision, load_model, resolve  # noqa: E402
from selfinstruct.finetune.train import sft_config  # noqa: E402


def reference_kernel(q, k, v, cu_seq_lens, max_len, scaling):
    """What the CUDA kernel computes: causal attention inside each example, (tokens, heads, dim)."""
    assert q.ndim == 3 and k.shape == v.shape and len(q) == len(k) and max_len >= int(cu_seq_lens.diff().max())
    outs = []
    for a, b in itertools.pairwise(cu_seq_lens.tolist()):
        piece = [t[a:b].transpose(0, 1) for t in (q, k, v)]
        out = torch.nn.functional.scaled_dot_product_attention(*piece, is_causal=True, scale=scaling, enable_gqa=True)
        outs.append(out.transpose(0, 1))
    return torch.cat(outs)


def tiny_llama(attention: str, kv_heads: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        attn_implementation=attention,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def varlen(monkeypatch):
    kernels.register_varlen_attention()
    monkeypatch.setattr(kernels, "varlen_kernel", reference_kernel)


@pytest.mark.parametrize("kv_heads", [4, 2])  # multi-head and grouped-query
def test_varlen_path_matches_sdpa_on_a_packed_batch(varlen, kv_heads):
    examples = [{"input_ids": list(range(1, n + 1))} for n in (5, 9, 1, 7)]
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(examples)
    assert batch["input_ids"].shape == (1, 22) and batch["cu_seq_lens_q"].tolist() == [0, 5, 14, 15, 22]
    inputs = {k: v for k, v in batch.items() if k != "labels"} | {"use_cache": False}  # as in training

    sdpa, fast = tiny_llama("sdpa", kv_heads), tiny_llama(kernels.VARLEN, kv_heads)
    with torch.no_grad():
        expected = sdpa(**inputs).logits  # block-diagonal mask built from position_ids
        got = fast(**inputs).logits
        alone = sdpa(input_ids=torch.tensor([examples[1]["input_ids"]])).logits  # one example on its own
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[:, 5:14], alone, atol=1e-5, rtol=1e-5)  # packed examples do not see each other


def test_varlen_falls_back_to_sdpa_without_boundaries(varlen, monkeypatch):
    monkeypatch.setattr(kernels, "varlen_kernel", lambda *a: pytest.fail("a padded batch reached the varlen kernel"))
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        expected = tiny_llama("sdpa")(input_ids=ids, attention_mask=mask).logits
        got = tiny_llama(kernels.VARLEN)(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, expected)


def test_without_a_gpu_auto_attention_is_sdpa_and_varlen_is_refused():
    assert not kernels.varlen_available() and not kernels.liger_available()
    assert attention_kernel(load_recipe("lora-7b-48gb")) == "sdpa"
    with pytest.raises(SelfInstructError, match="attention 'varlen' needs a CUDA GPU"):
        attention_kernel(load_recipe("lora-7b-48gb", {"attention": "varlen"}))


def test_liger_in_a_recipe_is_skipped_on_cpu(tmp_path, caplog):
    caplog.set_level("INFO", logger="selfinstruct.finetune.kernels")
    folder = tmp_path / "tiny"
    tiny_llama("sdpa").save_pretrained(folder)
    recipe = load_recipe("lora-7b-24gb", {"liger_kernel": True})
    model = load_model(resolve(str(folder)), recipe, choose_precision(recipe), "sdpa")
    assert "no CUDA GPU; training without it" in caplog.text
    assert type(model.model.norm).__name__ == "LlamaRMSNorm"  # untouched


def test_checkpoint_every_n_layers_and_padding_free_reach_trl(tmp_path):
    recipe = load_recipe(
        "full-7b-80gb", {"gradient_checkpointing": True, "checkpoint_every_n_layers": 2, "packing": False}
    )
    args = sft_config(recipe, tmp_path, choose_precision(recipe), kernels.VARLEN)
    assert args.activation_checkpointing and args.activation_checkpointing_kwargs == {"every_n_layers": 2}
    assert args.padding_free  # unpacked batches are padding-free with a varlen kernel ...
    plain = sft_config(
        recipe.model_copy(update={"checkpoint_every_n_layers": 1}), tmp_path, choose_precision(recipe), "sdpa"
    )
    assert not plain.padding_free and plain.activation_checkpointing_kwargs is None  # ... and padded with SDPA


def test_adapter_inputs_stay_16bit_under_autocast_with_the_same_numbers():
    from peft import get_peft_model

    from selfinstruct.finetune.model import lora_config
    from selfinstruct.finetune.train import keep_adapter_inputs_16bit

    def loss_and_grads(cast: bool):
        model = get_peft_model(tiny_llama("sdpa").to(torch.bfloat16), lora_config(load_recipe("lora-7b-48gb")))
        for name, param in model.named_parameters():  # B starts at zero: give it values, so the branch counts
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.02, generator=torch.Generator().manual_seed(1))
        assert {p.dtype for n, p in model.named_parameters() if "lora_" in n} == {torch.float32}
        if not cast:
            assert keep_adapter_inputs_16bit(model) == 2 * 7  # two layers of q, k, v, o, gate, up, down
        ids = torch.tensor([[3, 14, 15, 9, 2, 6, 5, 35]])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss, [p.grad for n, p in sorted(model.named_parameters()) if p.requires_grad]

    loss, grads = loss_and_grads(cast=True)
    loss16, grads16 = loss_and_grads(cast=False)
    torch.testing.assert_close(loss16, loss)
    for g16, g in zip(grads16, grads, strict=True):
        torch.testing.assert_close(g16, g)
