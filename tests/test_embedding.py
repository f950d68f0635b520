"""The offline sentence embedding (wordllama's bundled model): wordllama's own vectors,
loaded without a download, and a clear error when the package is missing."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from selfinstruct.clean import load_preset
from selfinstruct.clean.embedding import TOKENIZER, embedder, model_dir
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_records

ROOT = Path(__file__).resolve().parents[1]
TRICKY = [
    "a  b",
    "  leading spaces",
    "tab\there",
    "lines\n\napart",
    "émoji 😀 ok",
    "code:\n    return x  # two  spaces",
    " ",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    seeds = read_records(ROOT / "seeds" / "seed_tasks.jsonl")
    return [text for r in seeds[:60] for text in (r["instruction"], r["input"], r["output"]) if text] + TRICKY


def test_token_ids_are_the_tokenizers(texts):
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(model_dir() / TOKENIZER))  # with its own normaliser
    for text in texts:
        assert embedder().token_ids(text) == reference.encode(text, add_special_tokens=False).ids, text


def test_vectors_are_wordllamas(texts, tmp_path):
    """The same vectors as wordllama's documented offline load: a cache dir whose
    tokenizers/ holds the bundled tokenizer, downloads disabled."""
    root_logging = logging.root.handlers[:], logging.root.level
    try:
        from wordllama import WordLlama

        (tmp_path / "tokenizers").mkdir()
        (tmp_path / TOKENIZER).symlink_to(model_dir() / TOKENIZER)
        theirs = WordLlama.load(cache_dir=tmp_path, disable_download=True).embed(texts, norm=True)
    finally:
        logging.root.handlers[:], _ = root_logging  # importing wordllama configures the root logger
        logging.root.setLevel(root_logging[1])
    ours = embedder().embed(texts)
    assert ours.shape == (len(texts), 256)
    assert np.allclose(ours, theirs, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


def test_empty_text_is_a_zero_vector():
    vectors = embedder().embed(["", "Name three colours."])
    assert not vectors[0].any() and vectors[1].any()


def test_loading_does_not_import_wordllama(tmp_path):
    """Importing wordllama would set up INFO logging for the user's whole process."""
    import subprocess

    code = "from selfinstruct.clean.embedding import embedder; import sys; embedder().embed(['x']); print('wordllama' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_missing_wordllama_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wordllama" else real(name, *a))
    with pytest.raises(SelfInstructError, match=r"pip install wordllama"):
        load_preset("default")
