"""Everything the page shows about one dataset, computed once: the charts only draw it.

Arrays (token lengths, ROUGE-L per record) stay here in Python; the charts turn them into
histograms, so a page of 52,000 records carries a few hundred numbers per chart, not the
records. The table gets a sample.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..records import TEXT_FIELDS
from ..tokens import count_tokens
from .diversity import Cluster, duplicate_clusters, first_words, rouge_to_nearest_seed
from .source import Source
from .timeline import Funnel, Spending, Timeline, acceptance, funnel, spending
from .verbs import QUESTION, VerbNoun, verb_noun

CLUSTERS_SHOWN = 8
SAMPLE_ACCEPTED = 300
SAMPLE_REJECTED = 200


@dataclass
class Summary:
    source: Source
    verb_nouns: list[VerbNoun]  # one per record
    lengths: dict[str, np.ndarray]  # tokens of instruction, input, output per record
    rouge_to_seed: np.ndarray  # ROUGE-L F to the most similar seed, per record
    first_words: Counter
    clusters: list[Cluster]
    funnel: Funnel | None
    acceptance: Timeline | None
    spending: Spending | None
    sample: list[dict]  # table rows: records with `verdict`, `detail` and their verb and noun

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def size(self) -> int:
        return len(self.source.records)

    def verb_counts(self) -> Counter:
        """Records per kind of opening: "verb" (a command), QUESTION, or None."""
        return Counter("verb" if vn.verb not in (None, QUESTION) else vn.verb for vn in self.verb_nouns)

    def with_input(self) -> int:
        return int((self.lengths["input"] > 0).sum())

    def input_lengths(self) -> np.ndarray:
        """Tokens of the inputs there are (an empty input is no input, not a short one)."""
        return self.lengths["input"][self.lengths["input"] > 0]


def summarize(source: Source) -> Summary:
    records = source.records
    instructions = [r["instruction"] for r in records]
    verb_nouns = [verb_noun(text) for text in instructions]
    return Summary(
        source=source,
        verb_nouns=verb_nouns,
        lengths={field: token_lengths([r[field] for r in records]) for field in TEXT_FIELDS},
        rouge_to_seed=rouge_to_nearest_seed(instructions, [s["instruction"] for s in source.seeds.tasks]),
        first_words=first_words(instructions),
        clusters=duplicate_clusters(source.rejected or [], records, source.seeds.tasks, CLUSTERS_SHOWN),
        funnel=funnel(source),
        acceptance=acceptance(source),
        spending=spending(source),
        sample=_sample(source, verb_nouns),
    )


def token_lengths(texts: list[str]) -> np.ndarray:
    """Tokens of each text in cl100k_base (tiktoken's offline copy). One at a time: tiktoken's
    batch call makes a thread-pool task per text, 5x slower for short texts."""
    return np.fromiter(map(count_tokens, texts), dtype=np.int32, count=len(texts))


def _sample(source: Source, verb_nouns: list[VerbNoun]) -> list[dict]:
    rng = random.Random(0)
    accepted = rng.sample(range(len(source.records)), min(SAMPLE_ACCEPTED, len(source.records)))
    rows = [
        {
            **source.records[i],
            "verdict": "accepted",
            "detail": "",
            "verb": verb_nouns[i].verb,
            "noun": verb_nouns[i].noun,
        }
        for i in sorted(accepted)
    ]
    rejected = source.rejected or []
    for i in sorted(rng.sample(range(len(rejected)), min(SAMPLE_REJECTED, len(rejected)))):
        row = rejected[i]
        vn = verb_noun(row["instruction"]) if row.get("instruction") else VerbNoun(None, None)
        rows.append({**row, "verdict": row.get("reason", "rejected"), "verb": vn.verb, "noun": vn.noun})
    return rows
