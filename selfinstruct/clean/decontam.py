"""Decontamination: find records that share a long n-gram with a benchmark's prompts.

As in GPT-3 (appendix C) and lm-evaluation-harness: texts are lowercased and split into
words (here rouge-score's alphanumeric tokens), and a record is contaminated when its
instruction + input contains any 13-gram of a benchmark prompt; a prompt shorter than
13 tokens counts as one n-gram of its own length. 13 is long enough that common phrasing
("what is the capital of") does not match by chance.

    ngrams = BenchmarkNgrams.from_files(["user_oriented_instructions.jsonl"], n=13)
    ngrams.find("Please rewrite the sentence and make your writing clearer by keeping it concise. Whenever possible...")
    -> "rewrite the sentence and make your writing clearer by keeping it concise whenever"
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..errors import SelfInstructError, SettingError
from ..records import read_jsonl
from .dedup import tokenize

# Where benchmark files keep their prompt text: self-instruct / Alpaca records, or
# single-field prompt files.
PROMPT_FIELDS = ("instruction", "input", "prompt", "question", "query", "text")


def benchmark_prompts(path: Path) -> Iterable[str]:
    """Every prompt of a JSONL / JSON file: instruction + input, once per instance."""
    path = Path(path)
    if not path.is_file():
        raise SettingError(f"{{decontaminate}} {path}: no such file", "decontaminate")
    if path.suffix.lower() == ".json" and path.read_text(encoding="utf-8").lstrip().startswith("["):
        items = [(f"item {i}", obj) for i, obj in enumerate(json.loads(path.read_text(encoding="utf-8")))]
    else:
        items = [(f"line {number}", obj) for number, obj in read_jsonl(path)]
    for where, obj in items:
        prompts = _prompts(obj)
        if not prompts:
            raise SelfInstructError(
                f"{path}:{where}: no prompt text (expected one of the fields {', '.join(PROMPT_FIELDS)})"
            )
        yield from prompts


def _prompts(obj) -> list[str]:
    if not isinstance(obj, dict):
        return []
    base = "\n".join(v for k in PROMPT_FIELDS if isinstance(v := obj.get(k), str) and v)
    instances = obj.get("instances")
    if isinstance(instances, list) and instances:
        return [f"{base}\n{i.get('input', '')}" if isinstance(i, dict) else base for i in instances]
    return [base] if base else []


class BenchmarkNgrams:
    def __init__(self, prompts: Iterable[str], n: int = 13):
        self.n = n
        self._ngrams: set[tuple[str, ...]] = set()
        self._short: dict[int, set[tuple[str, ...]]] = {}  # whole prompts shorter than n, by length
        for prompt in prompts:
            tokens = tokenize(prompt)
            if len(tokens) >= n:
                self._ngrams.update(_windows(tokens, n))
            elif tokens:
                self._short.setdefault(len(tokens), set()).add(tuple(tokens))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], n: int = 13) -> "BenchmarkNgrams":
        return cls((p for path in paths for p in benchmark_prompts(Path(path))), n)

    def __len__(self) -> int:
        return len(self._ngrams) + sum(map(len, self._short.values()))

    def find(self, text: str) -> str | None:
        """The first benchmark n-gram found in `text`, or None."""
        tokens = tokenize(text)
        for size, grams in [(self.n, self._ngrams), *self._short.items()]:
            for window in _windows(tokens, size):
                if window in grams:
                    return " ".join(window)
        return None


def _windows(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
