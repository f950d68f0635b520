"""Optional GPU kernels for training: PyTorch's own variable-length FlashAttention, Liger's Triton kernels.

`varlen` attention runs padding-free packed batches through `torch.nn.attention.varlen.varlen_attn`
(PyTorch >= 2.10 on CUDA: the FlashAttention-2 kernels PyTorch ships, so no `flash-attn` build is
needed). trl's padding-free collator already hands the model each example's boundaries
(`cu_seq_lens_q`, `max_length_q`), computed on the CPU, so each packed example attends only to
itself and no block-diagonal mask is built or computed over. Anything else (a padded batch,
generation with a cache) goes to transformers' SDPA path unchanged, with SDPA's own mask.

Nothing here is imported unless a recipe asks for it, and every check says False on a CPU, so
the CPU test machines never reach a GPU-only path.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math

import torch

log = logging.getLogger(__name__)

VARLEN = "varlen"
# Attention implementations that take padding-free batches (one row of concatenated examples).
PADDING_FREE_ATTENTION = ("flash_attention_2", "flash_attention_3", VARLEN)


def varlen_available() -> bool:
    """PyTorch's varlen FlashAttention needs a CUDA GPU of compute capability 8.0+ (Ampere or newer)."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return False
    return importlib.util.find_spec("torch.nn.attention.varlen") is not None


def liger_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None


def register_varlen_attention() -> None:
    """Make `attn_implementation="varlen"` known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(VARLEN, varlen_attention_forward)
    # SDPA's mask, for the batches that fall back to SDPA; packed batches ignore it.
    AttentionMaskInterface.register(VARLEN, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def varlen_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """transformers' attention interface: query (batch, heads, tokens, dim) -> (batch, tokens, heads, dim)."""
    cu_seq_lens = kwargs.get("cu_seq_lens_q")
    if (
        cu_seq_lens is None
        or kwargs.get("cu_seq_lens_k") is None
        or query.shape[2] != key.shape[2]  # a KV cache: not a training batch
        or kwargs.get("sliding_window") is not None
        or kwargs.get("softcap") is not None
        or (dropout and module.training)
    ):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )

    batch, heads, tokens, dim = query.shape
    # (batch, heads, tokens, dim) -> (batch * tokens, heads, dim): the examples laid end to end.
    q, k, v = (t.transpose(1, 2).reshape(batch * t.shape[2], t.shape[1], dim) for t in (query, key, value))
    max_len = kwargs.get("max_length_q") or tokens
    out = varlen_kernel(q, k, v, cu_seq_lens.to(torch.int32), int(max_len), scaling)
    return out.reshape(batch, tokens, heads, dim), None


def varlen_kernel(q, k, v, cu_seq_lens, max_len: int, scaling: float | None):
    """Causal attention within each [cu[i], cu[i+1]) span of (tokens, heads, dim) tensors."""
    from torch.nn.attention.varlen import varlen_attn

    params = _varlen_params()
    if k.shape[1] != q.shape[1]:  # grouped-query attention
        if "enable_gqa" in params:
            extra = {"enable_gqa": True}
        else:
            groups = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            extra = {}
    else:
        extra = {}
    # torch 2.10 takes is_causal; later versions take window_size=(-1, 0) for causal, and a scale.
    if "is_causal" in params:
        extra["is_causal"] = True
    else:
        extra["window_size"] = (-1, 0)
    if scaling is not None and not math.isclose(scaling, q.shape[-1] ** -0.5):
        if "scale" in params:
            extra["scale"] = scaling
        else:
            q = q * (scaling * q.shape[-1] ** 0.5)
    return varlen_attn(q, k, v, cu_seq_lens, cu_seq_lens, max_len, max_len, **extra)


_PARAMS: frozenset[str] | None = None


def _varlen_params() -> frozenset[str]:
    global _PARAMS
    if _PARAMS is None:
        from torch.nn.attention.varlen import varlen_attn

        _PARAMS = frozenset(inspect.signature(varlen_attn).parameters)
    return _PARAMS


def apply_liger(model) -> bool:
    """Liger's fused RMSNorm, RoPE and SwiGLU on a loaded model; False where not available.

    The loss stays trl's (its chunked cross-entropy already never builds the full logits)."""
    if not torch.cuda.is_available():
        log.info("liger_kernel = true in the recipe, but there is no CUDA GPU; training without it")
        return False
    if not liger_available():
        log.warning(
            "liger_kernel = true in the recipe, but liger-kernel is not installed; training without it "
            "(pip install 'selfinstruct[train-gpu]')"
        )
        return False
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(
        model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False
    )
    return True
