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

Subclasses register themselves by `name`, so presets refer to rules by that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

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

    def fix(self, record: dict) -> dict | None:
        """A repaired copy of `record`, or None when there is nothing to repair."""
        return None


@dataclass
class Rejection:
    rule: str
    detail: str


@dataclass
class Checked:
    record: dict  # after the rules' repairs
    rejection: Rejection | None
    fixed: list[str]  # names of the rules that repaired it


class RuleSet:
    """Rules applied in order; the first one that fails decides the rejection reason."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._repairs = [type(rule).fix is not Rule.fix for rule in rules]  # most rules never repair

    def check(self, record: dict) -> Checked:
        fixed = []
        for rule, repairs in zip(self.rules, self._repairs):
            if repairs and (repaired := rule.fix(record)) is not None:
                record = repaired
                fixed.append(rule.name)
            detail = rule.check(record)
            if detail is not None:
                return Checked(record, Rejection(rule.name, detail), fixed)
        return Checked(record, None, fixed)
