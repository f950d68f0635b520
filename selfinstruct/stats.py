"""Named counters that add up (datatrove's PipelineStats, flattened): every count a run reports.

The cleaner counts what it sees, keeps, rejects (per rule) and repairs; a job counts answers
and the parts of answers it could not use. `stats.json`, the progress bar and the dataset card
all read the same counters.

    stats = Stats()
    stats.add("seen"); stats.add("rejected/near_duplicate", 2)
    stats["seen"]                -> 1
    stats.group("rejected")      -> {"near_duplicate": 2}
    total = sum(parts, Stats())  # merging workers or sessions
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping


class Stats:
    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[str, int] | None = None):
        self.counts: Counter[str] = Counter(counts or {})

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    def __add__(self, other: "Stats") -> "Stats":
        merged = Stats(self.counts)
        merged.counts.update(other.counts)
        return merged

    def __eq__(self, other) -> bool:
        return isinstance(other, Stats) and +self.counts == +other.counts

    def __repr__(self) -> str:
        return f"Stats({dict(self.counts)})"

    def group(self, prefix: str) -> dict[str, int]:
        """The counters named `prefix/NAME`, as {NAME: count}, largest first."""
        start = prefix + "/"
        found = Counter({name[len(start) :]: n for name, n in self.counts.items() if name.startswith(start) and n})
        return dict(found.most_common())

    def to_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def top_counts(counts: Mapping[str, int], n: int = 3) -> str:
    """The `n` largest counts on one line, for a progress bar:
    {"blacklist": 3, "near_duplicate": 21} -> "near_duplicate 21, blacklist 3"; "none" when empty."""
    largest = sorted(counts.items(), key=lambda item: -item[1])[:n]
    return ", ".join(f"{name} {count}" for name, count in largest) or "none"


def cleaning_summary(stats: Stats) -> dict:
    """The cleaner's counts as stats.json has always written them:
    seen == kept + sum(rejected.values()); `fixed` counts repairs."""
    return {
        "seen": stats["seen"],
        "kept": stats["kept"],
        "rejected": stats.group("rejected"),
        "fixed": stats.group("fixed"),
    }
