"""The decontamination rule: drop records that overlap a benchmark (see selfinstruct.decontam)."""

from __future__ import annotations

from pydantic import Field, PrivateAttr

from ..decontam import BenchmarkNgrams
from .base import Rule


class Contaminated(Rule):
    """`benchmarks` come from `--decontaminate FILE` (or the preset); without any, it keeps all."""

    name = "contaminated"
    reason = "shares a long n-gram with a benchmark prompt (the benchmarks to decontaminate against)"
    benchmarks: tuple[str, ...] = ()
    ngram: int = Field(13, ge=1)
    fields: tuple[str, ...] = ("instruction", "input")
    _ngrams: BenchmarkNgrams = PrivateAttr()

    def model_post_init(self, _context) -> None:
        self._ngrams = BenchmarkNgrams.from_files(self.benchmarks, self.ngram)

    def check_many(self, records):
        if not self.benchmarks:  # nothing to overlap: no need to cut the records into n-grams
            return [None] * len(records)
        return super().check_many(records)

    def check(self, record):
        found = self._ngrams.find("\n".join(record[f] for f in self.fields))
        return f"{self.ngram}-gram {found!r}" if found is not None else None
