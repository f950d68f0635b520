"""The cleaning decision for records: a preset's rules, then duplicate removal.

A teacher job checks the candidates of each answer as it arrives: the rules (`check_rules`,
perhaps in a worker process: `workers.RuleChecker`), then `Cleaner.decide` in ledger order;
the `filter` command calls `Cleaner.check_all` on a whole dataset, which makes the same
decisions with the MinHashes computed for all records at once. Reference texts (the seed
tasks) are indexed first, so that copies of them are caught too.

Every decision is counted in `stats` (see `selfinstruct.stats`): `seen`, `kept`,
`rejected/RULE` and `fixed/RULE` (repairs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..stats import Stats
from .dedup import NEAR_DUPLICATE, Duplicate, DuplicateIndex, SemanticIndex, check_storage, find_duplicates, open_index
from .presets import Preset
from .progress import STEP as PROGRESS_STEP
from .progress import CleanProgress
from .rules import Checked, Rejection, Rule, RuleSet
from .rules.base import with_rule
from .rules.contamination import Contaminated


@dataclass
class Verdict:
    record: dict  # after the preset's repairs (e.g. "<noinput>" -> "")
    rejection: Rejection | None
    duplicate_of: object | None = None

    @property
    def kept(self) -> bool:
        return self.rejection is None


def rejected_record(verdict: Verdict) -> dict:
    """A line of rejected.jsonl: the record, why, and which record it duplicates."""
    rejection = verdict.rejection
    duplicate = {"duplicate_of": verdict.duplicate_of} if verdict.duplicate_of is not None else {}
    return {**verdict.record, "reason": rejection.rule, "detail": rejection.detail, **duplicate}


def with_benchmarks(rules: Sequence[Rule], benchmarks: Sequence[str]) -> list[Rule]:
    """The rules with `benchmarks` added to the decontamination rule (appended if absent)."""
    if not benchmarks:
        return list(rules)
    added = tuple(map(str, benchmarks))

    def extended(old: Contaminated | None) -> Contaminated:
        if old is None:
            return Contaminated(benchmarks=added)
        return Contaminated(**{**old.model_dump(), "benchmarks": (*old.benchmarks, *added)})

    return with_rule(rules, Contaminated, extended)


class Cleaner:
    """Rules then duplicates, with counts.

    `lsh_storage` (a redis:// URL) shares the duplicate index with other workers;
    `namespace` then tells this run's keys from theirs (see DuplicateIndex)."""

    def __init__(
        self,
        preset: Preset,
        reference: Sequence[dict] = (),
        *,
        decontaminate: Sequence[str] = (),
        lsh_storage: str | None = None,
        namespace: str = "",
    ):
        self.preset = preset
        self.decontaminate = tuple(map(str, decontaminate))
        self.rules = RuleSet(with_benchmarks(preset.rules, self.decontaminate))
        self.stats = Stats()
        self.settings = preset.dedup
        check_storage(self.settings, lsh_storage)  # before a run pays for any request
        self.reference = list(reference)
        self.lsh_storage = lsh_storage
        self.namespace = namespace
        self._index: DuplicateIndex | SemanticIndex | None = None
        self._restored: tuple[Sequence[dict], Sequence[dict]] = ((), ())

    @property
    def dedup(self) -> DuplicateIndex | SemanticIndex | None:
        """The duplicate index, built at first use: a resumed run that has nothing left to do
        never pays for it."""
        if self._index is None and self.settings.enabled:
            self._index = open_index(self.settings, self.lsh_storage, self.namespace)
            self._index.add(self.reference_items())
            restored = self.take_restored()
            if not self.shared_index:  # a shared index already holds them
                self._index.restore(*restored)
        return self._index

    def reference_items(self) -> list[tuple[str, str]]:
        """The (key, text) pairs indexed before any check: the reference texts."""
        return [(item["id"], self.settings.text(item)) for item in self.reference]

    def take_restored(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """What `restore` left for the duplicate index, as (key, text) pairs, handed over once
        (to `dedup`, or to the rule worker that keeps the index): the records kept, and the
        rejected rows that were near duplicates."""
        kept, rejected = self._restored
        self._restored = ((), ())
        text = self.settings.text
        return (
            [(record["id"], text(record)) for record in kept],
            [(row["id"], text(row)) for row in rejected if row.get("reason") == NEAR_DUPLICATE],
        )

    @property
    def shared_index(self) -> bool:
        """The duplicate index lives outside this process (Redis) and outlives it."""
        return self.lsh_storage is not None

    def check(self, record: dict, key: str) -> Verdict:
        """Decide on `record`; a kept record is indexed under `key` for later checks."""
        return self.decide(self.check_rules([record]), [key])[0]

    def check_rules(self, records: Sequence[dict]) -> list[Checked]:
        """The rules alone: pure, so they may run anywhere (see `workers.RuleChecker`)."""
        return self.rules.check_many(records)

    def decide(self, checked: Sequence[Checked], keys: Sequence[str]) -> list[Verdict]:
        """Duplicates among the records the rules passed (unless the rule worker that keeps the
        index found them: `Checked.deduplicated`), then the verdicts, counted. In order: each
        decision depends on the ones before it."""
        duplicates: list[Duplicate | None] = [c.duplicate for c in checked]
        survivors = [i for i, c in enumerate(checked) if c.rejection is None and not c.deduplicated]
        if self.dedup is not None and survivors:
            items = [(keys[i], self.settings.text(checked[i].record)) for i in survivors]
            sketches = [checked[i].sketch for i in survivors]
            if isinstance(self.dedup, DuplicateIndex) and None not in sketches:  # made beside the rules, elsewhere
                found = self.dedup.check_many(items, sketches)
            else:
                found = self.dedup.check_many(items)
            for i, duplicate in zip(survivors, found):
                duplicates[i] = duplicate
        return [self._decide(c, d) for c, d in zip(checked, duplicates)]

    def check_all(self, records: Sequence[dict], keys: Sequence[str], *, progress: bool = False) -> list[Verdict]:
        """`check` on each record in order, the duplicates found for all of them at once;
        `progress` shows a bar (see `CleanProgress`).

        Only on a fresh cleaner with the in-memory index (a shared index is queried
        record by record, as other workers change it meanwhile)."""
        bar = CleanProgress(len(records), enabled=progress)
        try:
            verdicts = self._check_all(records, keys, bar)
        finally:
            bar.close(self.stats.group("rejected"))
        return verdicts

    def _check_all(self, records: Sequence[dict], keys: Sequence[str], bar: CleanProgress) -> list[Verdict]:
        if self.dedup is None or self.shared_index:
            return self.decide(self._check_rules(records, bar), keys)
        if self.stats["seen"]:
            raise RuntimeError("check_all needs a fresh Cleaner: this one has checked records already")
        checked = self._check_rules(records, bar)
        survivors = [i for i, c in enumerate(checked) if c.rejection is None]
        bar.finding_duplicates(len(survivors))
        found = find_duplicates(
            [self.settings.text(checked[i].record) for i in survivors],
            self.settings,
            reference=[self.settings.text(item) for item in self.reference],
        )
        duplicates: list[Duplicate | None] = [None] * len(records)
        for i, duplicate in zip(survivors, found):
            if duplicate is not None:
                of = duplicate.of
                key = self.reference[-1 - of]["id"] if of < 0 else keys[survivors[of]]
                duplicates[i] = Duplicate(duplicate.reason, key)
        return [self._decide(c, d) for c, d in zip(checked, duplicates)]

    def _check_rules(self, records: Sequence[dict], bar: CleanProgress) -> list[Checked]:
        """`check_rules` a step at a time, so that the bar moves: the same decisions, as the
        rules judge each record on its own."""
        checked: list[Checked] = []
        rejected: Counter[str] = Counter()
        for start in range(0, len(records), PROGRESS_STEP):
            part = self.check_rules(records[start : start + PROGRESS_STEP])
            rejected.update(c.rejection.rule for c in part if c.rejection is not None)
            checked += part
            bar.checked(len(part), rejected)
        return checked

    def restore(self, kept: Sequence[dict], rejected: Sequence[dict], stats: Stats) -> None:
        """Take up where earlier checks left off (a resumed run), without checking again: the
        records they kept and the rejected.jsonl rows they wrote (keyed by their `id`), in order,
        and their counts."""
        if self._index is not None:
            raise RuntimeError("restore needs a fresh Cleaner: this one has checked records already")
        self.stats = stats
        self._restored = (kept, rejected)

    def verdict(self, checked: Checked, duplicate: Duplicate | None) -> Verdict:
        """The verdict on a record whose rules and duplicates were found elsewhere (the Ray
        engine: clean/ray_engine.py), counted like the others. In record order."""
        return self._decide(checked, duplicate)

    def _decide(self, checked: Checked, duplicate: Duplicate | None) -> Verdict:
        for rule in checked.fixed:
            self.stats.add(f"fixed/{rule}")
        if duplicate is not None:
            verdict = Verdict(checked.record, Rejection(duplicate.reason, f"duplicate of {duplicate.of}"), duplicate.of)
        else:
            verdict = Verdict(checked.record, checked.rejection)
        self.stats.add("seen")
        self.stats.add("kept" if verdict.kept else f"rejected/{verdict.rejection.rule}")
        return verdict
