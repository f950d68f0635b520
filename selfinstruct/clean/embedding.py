"""Sentence embeddings that need no download: wordllama's static token vectors, averaged.

`pip install wordllama` ships, inside its wheel, a 256-dimension embedding for each of the
32,000 tokens of Llama 2's tokenizer (16 MB) and that tokenizer. A text's vector is the
mean of its tokens' vectors, exactly what `WordLlama.load().embed(texts)` computes (the
tests check that they agree), scaled to length 1 so that a dot product is the cosine.

The two bundled files are read here rather than through `WordLlama.load()`, because in
wordllama 0.4:
- `load()` looks for the tokenizer under `wordllama/tokenizer/` while the wheel has it
  under `wordllama/tokenizers/`, and then downloads it (the workaround is a cache dir with
  a copy and `disable_download=True`: more moving parts than opening the file);
- importing `wordllama` calls `logging.basicConfig(level=INFO)`, which would make every
  library in the user's process log at INFO (httpx would print each request);
- `embed` pads each batch of 64 texts to its longest; summing each text's own tokens
  wastes nothing on batches of mixed lengths.

    vectors = embedder().embed(["Name three colours.", "Red, green and blue."])   # (2, 256)
    float(vectors[0] @ vectors[1])                                                # cosine
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SelfInstructError

PACKAGE = "wordllama"
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
INSTALL_HINT = "pip install wordllama"


def bundled_dir(package: str, files: Sequence[str], needed_for: str, install_hint: str) -> Path:
    """The folder of an installed package that ships a model in its wheel, checked to hold
    `files`, found without importing the package (importing wordllama or the MiniLM package
    has side effects: logging set up, torch imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SelfInstructError(f"{needed_for}, which is not installed: {install_hint}")
    root = Path(spec.submodule_search_locations[0])
    missing = [name for name in files if not (root / name).is_file()]
    if missing:
        raise SelfInstructError(
            f"{root}: {package} is installed without {', '.join(missing)}; reinstall it: {install_hint} --force-reinstall"
        )
    return root


def model_dir() -> Path:
    """Where wordllama's bundled files are (see the module docstring)."""
    return bundled_dir(
        PACKAGE, (WEIGHTS, TOKENIZER), "sentence embeddings need wordllama's bundled model", INSTALL_HINT
    )


# Llama 2's tokenizer joins the words with "▁" and runs BPE over the whole text, and
# its merges never cross a word boundary (checked on 16,000 texts of the calibration sets
# and the T0 prompts: identical ids). So a text's tokens are those of its "▁word" pieces,
# and a piece tokenized once is looked up after: 4-5x faster than tokenizing each text.
_PIECE = re.compile("▁+[^▁]*|[^▁]+")
_CACHE_SIZE = 200_000  # pieces (a 52K-record run has fewer distinct words)


class Embedder:
    """Mean token vectors of texts, each of length 1 (an empty text gets zeros)."""

    def __init__(self, root: Path):
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(root / TOKENIZER))
        self.tokenizer.normalizer = None  # pieces come normalised: "▁" for spaces, one in front
        with safe_open(str(root / WEIGHTS), framework="np") as f:
            self.vectors = np.ascontiguousarray(f.get_tensor("embedding.weight"), dtype=np.float32)
        self._pieces: dict[str, list[int]] = {}

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def token_ids(self, text: str) -> list[int]:
        """The ids Llama 2's tokenizer gives `text`, without the start token."""
        if not text:
            return []
        pieces = self._pieces
        if len(pieces) > _CACHE_SIZE:
            pieces.clear()
        ids: list[int] = []
        for piece in _PIECE.findall("▁" + text.replace(" ", "▁")):
            found = pieces.get(piece)
            if found is None:
                found = pieces[piece] = self.tokenizer.encode(piece, add_special_tokens=False).ids
            ids += found
        return ids

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(out, texts):
            # text by text: gathering the token vectors of many texts into one array and
            # summing with np.add.reduceat was 7x slower (a large temporary, a slow reduceat)
            if ids := self.token_ids(text):
                row[:] = self.vectors[ids].sum(axis=0)  # the mean's direction; its length goes next
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


@functools.cache
def embedder() -> Embedder:
    """The model, loaded once per process at first use (about 0.3 s)."""
    return Embedder(model_dir())
