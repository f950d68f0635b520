"""The progress bar of a whole-dataset clean (`filter`): records the rules have checked of all,
and why they were rejected so far; then the duplicate search over the records the rules kept.

    rules:  58%|#####8    | 32000/55185 [00:08<00:06, 3851.20 records/s, rej instruction_words 10412, blacklist 1650]
"""

from __future__ import annotations

from collections.abc import Mapping

from tqdm import tqdm

from ..stats import top_counts

STEP = 1000  # records the rules check between redraws: about a quarter of a second of rules


class CleanProgress:
    def __init__(self, total: int | None, enabled: bool = True):
        """`total` None: not known yet (the records are still being read)."""
        self.bar = tqdm(total=total, desc="rules", unit=" records", disable=not enabled)

    def checked(self, n: int, rejected: Mapping[str, int] | None = None) -> None:
        """`n` more records went through the rules; `rejected`: the counts per reason so far
        (None: not known here). Drawn every time: a step of the rules takes longer than a redraw."""
        self.bar.n += n
        if rejected is None:
            self.bar.refresh()
        else:
            self.bar.set_postfix_str(f"rej {top_counts(rejected)}")

    def finding_duplicates(self, candidates: int) -> None:
        self.bar.set_description(f"duplicates among {candidates:,}")

    def close(self, rejected: Mapping[str, int] | None = None) -> None:
        """The final counts, duplicates included, stay on the screen."""
        self.bar.set_description("done", refresh=False)
        if rejected is not None:
            self.bar.set_postfix_str(f"rej {top_counts(rejected)}", refresh=False)
        self.bar.close()
