"""An evaluation set: the items a model answers, with the references it is scored against.

Any file or run directory `answer` reads is a set when its records carry a reference:
- `answer` / `solution`: a final answer to verify (GSM8K's `#### 72`, a `\\boxed{}` solution, a label);
- `output`: a reference response for the pairwise judge and the imitation score (a held-out
  split from `export --split-test`, self-instruct's 252 user-oriented instructions).

The set is copied into the eval directory (`set.jsonl`, one row per item with a unique id), so
every model's answers, the judge's verdicts and eval.json refer to the same items by the same
ids, and its hash tells a resumed eval that the set did not change.

Before scoring, `overlap` checks the set against the student's training data with the n-gram
decontamination of `clean/decontam.py` (13-grams of the prompts, as GPT-3 and
lm-evaluation-harness do): an item whose instruction + input contains a training prompt's
13-gram was (nearly) seen in training, and its score measures memory, not skill.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import SettingError
from ..records import read_records, write_jsonl_atomic

ANSWER_FIELDS = ("answer", "solution")  # a final answer to verify, as `answer` reads it
OUTPUT_FIELD = "output"  # a reference response to judge against
SET_FILE = "set.jsonl"  # the set as evaluated, in the eval directory
OVERLAP_EXAMPLES = 5  # contaminated items named in eval.json and on the terminal


@dataclass(frozen=True)
class Item:
    id: str  # unique in the set: "e000012"
    instruction: str
    input: str
    answer: str | None  # the reference final answer (answer / solution)
    output: str | None  # the reference response
    source_id: str  # the item's id in the source file (not always unique: one per self-instruct task)

    @property
    def prompt(self) -> str:
        return self.instruction + (f"\n{self.input}" if self.input else "")


@dataclass(frozen=True)
class EvalSet:
    path: str
    items: list[Item]
    sha256: str

    @property
    def with_answer(self) -> int:
        return sum(item.answer is not None for item in self.items)

    @property
    def with_output(self) -> int:
        return sum(bool(item.output) for item in self.items)

    def describe(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "items": len(self.items),
            "with_answer": self.with_answer,
            "with_output": self.with_output,
        }

    def write(self, folder: Path) -> Path:
        """The set as evaluated, for the answer jobs to read: `answer` takes `answer` as the
        reference and keeps each row's unique id as the records' `source_id`."""
        path = folder / SET_FILE
        write_jsonl_atomic(path, (_row(item) for item in self.items))
        return path


def _row(item: Item) -> dict:
    row = {"id": item.id, "instruction": item.instruction, "input": item.input}
    if item.answer is not None:
        row["answer"] = item.answer
    if item.output is not None:
        row["output"] = item.output
    return row | {"source_id": item.source_id}


def load_set(path: str | Path, limit: int | None = None) -> EvalSet:
    """The first `limit` items (all without it) of the set at `path`; refused when no record has
    a reference to score against."""
    records = read_records(path, require_output=False)[:limit]
    if not records:
        raise SettingError(f"{path}: no items to evaluate", "set")
    items = []
    for i, record in enumerate(records):
        answer = next((str(record[f]) for f in ANSWER_FIELDS if record.get(f) is not None), None)
        output = record.get(OUTPUT_FIELD)
        items.append(
            Item(
                id=f"e{i:06d}",
                instruction=record["instruction"],
                input=record["input"],
                answer=answer,
                output=str(output) if output else None,
                source_id=str(record.get("id", i)),
            )
        )
    fields = ", ".join(repr(f) for f in (*ANSWER_FIELDS, OUTPUT_FIELD))
    if not any(item.answer is not None or item.output for item in items):
        raise SettingError(f"{path}: no record has a reference ({fields}), so there is nothing to score against", "set")
    digest = hashlib.sha256(json.dumps([asdict(item) for item in items], sort_keys=True).encode()).hexdigest()
    return EvalSet(str(path), items, digest)


def overlap(eval_set: EvalSet, train: str | Path) -> dict:
    """How many items of the set share a 13-gram with a prompt of the training data `train`:

    {"train": "data.jsonl", "n": 13, "checked": 200, "contaminated": 3, "share": 0.015,
     "examples": [{"id": "e000012", "source_id": "7", "ngram": "natalia sold clips to ..."}]}
    """
    from ..clean.decontam import BenchmarkNgrams

    # The training prompts play the benchmark's part: their n-grams are the index (a set's few
    # hundred items are then looked up in it), with decontam's own rules for short prompts.
    if not Path(train).exists():
        raise SettingError(f"{{train}} {train}: no such file or directory", "train")
    training = read_records(train, require_output=False)
    ngrams = BenchmarkNgrams(f"{r['instruction']}\n{r['input']}" for r in training)
    found = [(item, gram) for item in eval_set.items if (gram := ngrams.find(item.prompt)) is not None]
    return {
        "train": str(train),
        "n": ngrams.n,
        "checked": len(eval_set.items),
        "contaminated": len(found),
        "share": round(len(found) / len(eval_set.items), 4),
        "examples": [{"id": i.id, "source_id": i.source_id, "ngram": gram} for i, gram in found[:OVERLAP_EXAMPLES]],
    }
