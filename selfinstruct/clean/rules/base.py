"""Named filter rules with reasons and counters.

A rule is a small pydantic model: its fields are its thresholds (validated once when a
preset is loaded), `name` is the stable reason string written to rejected.jsonl and
counted in stats.json, and `check(record)` returns None to keep the record or a short
detail saying why it fails:

    class InstructionWords(Rule):
        name = "instruction_words"
        min: int = 4
        def check(self, record):
            n = len(record["instruction"].split())
            return f"{n} words" if n < self.min else None

A rule may also repair a record before it is checked (`fix` returns the repaired copy),
e.g. a "<noinput>" left in the input becomes an empty input; repairs are counted too.

A rule that is cheaper on many records at once (one call to an embedding model rather
than one per record) overrides `check_many`; `RuleSet.check_many` hands each rule all
the records still standing, and decides exactly as `check` on each record would.

Subclasses register themselves by `name`, so presets refer to rules by that name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo

from ...resources import data_dir

RULES: dict[str, type["Rule"]] = {}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    reason: ClassVar[str]  # one line for humans: what a rejected record did wrong

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            RULES[cls.name] = cls

    def check(self, record: dict) -> str | None:
        raise NotImplementedError

    def check_many(self, records: Sequence[dict]) -> list[str | None]:
        """`check` on each record."""
        return [self.check(record) for record in records]

    def check_among(self, records: Sequence[dict], standing: Sequence[int]) -> list[str | None]:
        """`check_many` on the records at `standing` (those no earlier rule rejected); a rule that
        compares a record with the rest of its teacher answer sees them all."""
        return self.check_many([records[i] for i in standing])

    def fix(self, record: dict) -> dict | None:
        """A repaired copy of `record`, or None when there is nothing to repair."""
        return None

    def load(self) -> None:
        """Load now what `check` loads at its first use (a model): a rule worker does it as it
        starts, while the job starts too, rather than when the first answer waits for it."""


def with_rule(rules: Sequence[Rule], kind: type[Rule], make: Callable[[Rule | None], Rule]) -> list[Rule]:
    """The rules with the first `kind` rule replaced, where it stands, by `make(that rule)`;
    without one, `make(None)` appended (last: it judges what every other rule passed)."""
    rules = list(rules)
    for i, rule in enumerate(rules):
        if isinstance(rule, kind):
            rules[i] = make(rule)
            return rules
    return [*rules, make(None)]


def filter_file(path: Path, info: ValidationInfo) -> Path:
    """A rule's word or phrase list: relative to the preset's folder, else among the shipped
    filter files (a validator: `field_validator("phrases_file")(filter_file)`)."""
    preset_dir = (info.context or {}).get("preset_dir")
    for candidate in ([preset_dir / path] if preset_dir and not path.is_absolute() else []) + [
        data_dir("filters") / path
    ]:
        if candidate.is_file():
            return candidate
    raise ValueError(f"file {path} not found (looked beside the preset and in {data_dir('filters')})")


def read_lines(path: Path) -> list[str]:
    """The entries of a list file: one a line, '#' starts a comment."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


@dataclass
class Rejection:
    rule: str
    detail: str


@dataclass
class Checked:
    record: dict  # after the rules' repairs
    rejection: Rejection | None
    fixed: list[str]  # names of the rules that repaired it
    sketch: object = None  # a kept record's dedup.TextSketch, when a rule worker made it (clean/workers.py)
    # the duplicate check, made where the rules ran (a rule worker keeping the index): `duplicate`
    # is its answer (a dedup.Duplicate or None) when `deduplicated`
    deduplicated: bool = False
    duplicate: object = None


class RuleSet:
    """Rules applied in order; the first one that fails decides the rejection reason."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._repairs = [type(rule).fix is not Rule.fix for rule in rules]  # most rules never repair

    def check(self, record: dict) -> Checked:
        return self.check_many([record])[0]

    def load(self) -> None:
        """`Rule.load` of each rule."""
        for rule in self.rules:
            rule.load()

    def check_many(self, records: Sequence[dict]) -> list[Checked]:
        """`check` on each record, rule by rule: each rule sees at once the records that
        passed the rules before it, repaired."""
        records = list(records)
        fixed: list[list[str]] = [[] for _ in records]
        rejections: list[Rejection | None] = [None] * len(records)
        standing = list(range(len(records)))
        for rule, repairs in zip(self.rules, self._repairs):
            if not standing:
                break
            if repairs:
                for i in standing:
                    if (repaired := rule.fix(records[i])) is not None:
                        records[i] = repaired
                        fixed[i].append(rule.name)
            details = rule.check_among(records, standing)
            for i, detail in zip(standing, details):
                if detail is not None:
                    rejections[i] = Rejection(rule.name, detail)
            standing = [i for i in standing if rejections[i] is None]
        return [Checked(*checked) for checked in zip(records, rejections, fixed)]
