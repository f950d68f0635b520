"""Is the output an answer to this instruction at all?

A teacher asked for 20 tasks at once loses track and gives a task the answer of another; a
shuffled batch or a mis-joined file does the same. Two rules, each content words and static
embeddings (wordllama, clean/embedding.py: microseconds); in the `semantic` preset, a
sentence model (all-MiniLM-L6-v2, clean/sentence_model.py) judges the records they cannot
clear:

`off_topic_output`: the output is not about its instruction.
1. an output of fewer than `min_output_words` words is kept: "Positive", "3", "Rust"
   carry too little meaning to judge;
2. an output that shares a content word with the instruction or input is kept, and so is
   one whose static embedding (wordllama, clean/embedding.py: microseconds) has a cosine of
   at least `screen_cosine` with them (most records: no sentence model needed);
3. else, with `sentence_model = true` (the `semantic` preset), the sentence model's cosine of
   "instruction + input" and the output decides: below `min_sentence_cosine`, off topic.
   Without it (the default preset: the sentence model costs too much CPU for `generate`'s
   pace, filters/README.md), the static cosine below `min_cosine` decides.

`answers_other_task`: the output is closer to another instruction of the same teacher answer
(the records with the same `request_id`, which `generate` writes) than to its own. Math
word problems all share one vocabulary, so a swapped solution is not "off topic" (its
cosine with any GSM8K question is 0.3-0.6), but its own question is then not the nearest:
1. the static embeddings of the answer's outputs and instructions are compared; an output
   whose own instruction is nearest, or within `screen_margin` of the nearest, is kept;
2. else the sentence model compares the output with its own instruction and that nearest
   rival: the rival closer by more than `margin`, rejected, unless the two instructions
   are alike (cosine `max_instruction_cosine` or more: either answer fits).
   With `screen = false` there is no step 1: the sentence model compares every output of
   6+ words with all the answer's instructions, and the nearest other one decides as in 2.
   The screen is what misses swaps (its static nearest is often still the wrong record's
   own instruction): without it, more are caught, at about two texts of model work a record.
With `sentence_model = false` (not in any bundled preset: filters/README.md gives its
figures), content words and static embeddings decide alone: rejected when a rival
instruction shares content words with the output while its own shares none (or `word_lead`
more than its own), is nearer by more than `static_margin`, and is not alike its own
(static cosine under `max_static_instruction_cosine`).
The rivals are all the answer's instructions, those of records an earlier rule of the preset
rejected too (`check_among`): the teacher was asked them all the same. Records without a
`request_id` (a finished file of another origin) have no siblings to compare: the first rule
alone judges them.

The thresholds were set on outputs moved between the instructions of GSM8K, self-instruct's
and T0's tasks, and the real pairs (filters/README.md has the figures and the cost).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pydantic import Field, PrivateAttr

from ..embedding import model_dir as static_model_dir
from ..sentence_model import model_dir as sentence_model_dir
from .base import Rule

# Words that say nothing about a topic: function words, and the words of asking itself
# ("write", "sentence", "following") that every instruction shares with many outputs.
_STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here hers
    him his how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with would you your yours
    yes one two three four five given following write give list make create describe explain find answer sentence
    sentences text word words question questions output input task example examples please use using based""".split()
)
# runs of [a-z0-9] of 3+ characters: a run of 3+ matches whole, a shorter one nowhere
_WORD3 = re.compile(r"[a-z0-9]{3,}")


def content_words(text: str) -> set[str]:
    """Lowercased words of 3+ characters that are not stopwords, cut to 6 characters, so that
    "planets" and "planet" meet: "List the planets." -> {"planet"}"""
    return {word[:6] for word in set(_WORD3.findall(text.lower())).difference(_STOPWORDS)}


def shares_content_word(words: set[str], text: str) -> bool:
    """`not words.isdisjoint(content_words(text))`, stopping at the first of text's content
    words in `words` (most outputs share one with their instruction early on)."""
    return any(word[:6] in words and word not in _STOPWORDS for word in _WORD3.findall(text.lower()))


def prompt_text(record: dict) -> str:
    """What the output answers: the instruction and its input."""
    return f"{record['instruction']}\n{record['input']}"


class SentenceModelRule(Rule):
    """A rule that content words and static embeddings judge, or with `sentence_model` screen
    for the sentence model, which judges the records they cannot clear."""

    # False: the static embeddings decide, microseconds a record (the default preset's
    # off_topic_output); True: the records they cannot clear go to the sentence model (55-115 ms a
    # record that reaches it; the `semantic` preset)
    sentence_model: bool = False
    min_output_words: int = Field(6, ge=1)
    max_tokens: int = Field(128, ge=8, le=512)  # word pieces of each text the sentence model reads
    model_threads: int = Field(1, ge=1)  # BLAS threads: generate's rule workers already run one per core
    _model_records: int = PrivateAttr(0)  # records that reached the sentence model in this process

    @property
    def model_records(self) -> int:
        """How many records the screen could not clear, so far (the cost's main term)."""
        return self._model_records

    def model_post_init(self, _context) -> None:
        # a missing model fails when the preset loads, with the pip command; it loads at first use
        static_model_dir()
        if self.sentence_model:
            sentence_model_dir()

    def check(self, record):
        return self.check_many([record])[0]

    def load(self) -> None:
        from ..embedding import embedder

        embedder()  # the screen's static embeddings; the sentence model stays lazy (few records reach it)

    def judged(self, record: dict) -> bool:
        return len(record["output"].split()) >= self.min_output_words

    def sentence_vectors(self, texts: list[str]) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        from ..sentence_model import sentence_model

        with threadpool_limits(self.model_threads):
            return sentence_model(self.max_tokens).embed(texts)


class OffTopicOutput(SentenceModelRule):
    name = "off_topic_output"
    reason = "output is about something else: no content word in common with the instruction and input, and a low embedding cosine"
    # static: below `min_cosine`, rejected; sentence model: below `screen_cosine`, it decides
    min_cosine: float = Field(0.0, ge=-1, le=1)
    screen_cosine: float = Field(0.2, ge=-1, le=1)
    min_sentence_cosine: float = Field(0.12, ge=-1, le=1)

    def check_many(self, records):
        from ..embedding import embedder

        prompts = [prompt_text(record) for record in records]
        unsure = [
            i
            for i, (prompt, record) in enumerate(zip(prompts, records))
            if self.judged(record) and not shares_content_word(content_words(prompt), record["output"])
        ]
        details: list[str | None] = [None] * len(records)
        if unsure:
            vectors = embedder().embed([text for i in unsure for text in (prompts[i], records[i]["output"])])
            if not self.sentence_model:
                for i, cosine in zip(unsure, pair_cosines(vectors)):
                    if cosine < self.min_cosine:
                        details[i] = f"no shared word, cosine {cosine:.2f} < {self.min_cosine}"
                return details
            unsure = [i for i, cosine in zip(unsure, pair_cosines(vectors)) if cosine < self.screen_cosine]
        if unsure:
            self._model_records += len(unsure)
            vectors = self.sentence_vectors([text for i in unsure for text in (prompts[i], records[i]["output"])])
            for i, cosine in zip(unsure, pair_cosines(vectors)):
                if cosine < self.min_sentence_cosine:
                    details[i] = f"no shared word, sentence cosine {cosine:.2f} < {self.min_sentence_cosine}"
        return details


def pair_cosines(vectors: np.ndarray) -> list[float]:
    """The cosine of each pair of consecutive unit vectors: texts embedded as [a1, b1, a2, b2...]."""
    return (vectors[0::2] * vectors[1::2]).sum(axis=1).tolist()


def siblings(records: Sequence[dict]) -> list[list[int]]:
    """The indexes of the records of each teacher answer (same `request_id`) with 2+ records."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        if request_id := record.get("request_id"):
            groups[request_id].append(i)
    return [group for group in groups.values() if len(group) > 1]


class AnswersOtherTask(SentenceModelRule):
    name = "answers_other_task"
    reason = "output answers another instruction of the same teacher answer: it is closer to that one than to its own"
    # differences of two cosines (-2 to 2): the static gap that sends a record to the sentence
    # model, and the sentence model's that rejects it
    screen_margin: float = Field(0.1, ge=-2, le=2)
    margin: float = Field(0.15, ge=-2, le=2)
    # a rival instruction this close to the record's own asks nearly the same thing ("What causes
    # the ocean tides?", "What causes the moon tides?"): either answer fits, no verdict
    max_instruction_cosine: float = Field(0.6, ge=-1, le=1)
    # without the sentence model: content words a rival instruction must share with the output
    # beyond its own's, the static gap that rejects, and the static cosine of alike instructions
    word_lead: int = Field(2, ge=1)
    static_margin: float = Field(0.1, ge=-2, le=2)
    max_static_instruction_cosine: float = Field(0.8, ge=-1, le=1)
    # with the sentence model, false: no static screen, every judged record of an answer is
    # compared with the instruction the sentence model finds nearest (better recall, about
    # two texts of model work a record instead of the screen's few; filters/README.md)
    screen: bool = True

    def check_many(self, records):
        return self.check_among(records, range(len(records)))

    def check_among(self, records, standing):
        """Verdicts on the records at `standing`, each compared with every instruction of its
        answer, those of records an earlier rule rejected too: they were asked all the same,
        and an output may be the answer to one of them."""
        standing = list(standing)
        to_judge = set(standing)
        groups = [group for group in siblings(records) if to_judge.intersection(group)]
        if self.sentence_model and not self.screen:
            rejected = [rival for group in groups for rival in self._model_rivals(records, group, to_judge)]
        else:
            suspects = [suspect for group in groups for suspect in self._suspects(records, group, to_judge)]
            rejected = self._confirmed(records, suspects) if self.sentence_model else suspects
        measure = "sentence cosine" if self.sentence_model else "cosine"
        details = {i: _closer_to(records[j], gap, measure) for i, j, gap in rejected}
        return [details.get(i) for i in standing]

    def _model_rejects(self, gap: float, alike: float) -> bool:
        """The sentence model's verdict: the rival instruction nearer the output than its own by
        more than `margin`, and not asking nearly the same thing."""
        return gap > self.margin and alike < self.max_instruction_cosine

    def _confirmed(
        self, records: Sequence[dict], suspects: list[tuple[int, int, float]]
    ) -> list[tuple[int, int, float]]:
        """The screen's suspects that the sentence model rejects, with its gap."""
        if not suspects:
            return []
        self._model_records += len(suspects)
        texts = [
            text
            for i, j, _ in suspects
            for text in (records[i]["output"], prompt_text(records[i]), prompt_text(records[j]))
        ]
        vectors = self.sentence_vectors(texts)
        outputs, own, rival = vectors[0::3], vectors[1::3], vectors[2::3]
        gaps = (outputs * rival).sum(axis=1) - (outputs * own).sum(axis=1)
        alike = (own * rival).sum(axis=1)
        return [
            (i, j, gap)
            for (i, j, _), gap, similar in zip(suspects, gaps.tolist(), alike.tolist())
            if self._model_rejects(gap, similar)
        ]

    def _rows(self, records: Sequence[dict], group: list[int], to_judge: set[int]) -> list[int]:
        """The positions in `group` of the records to judge whose output is long enough."""
        return [row for row, i in enumerate(group) if i in to_judge and self.judged(records[i])]

    def _suspects(self, records: Sequence[dict], group: list[int], to_judge: set[int]) -> list[tuple[int, int, float]]:
        """(record, the sibling whose instruction its output seems to answer, the static gap) for
        the records to judge of one answer that the screen does not clear (see the module docstring)."""
        from ..embedding import embedder

        prompts = [prompt_text(records[i]) for i in group]
        rows = self._rows(records, group, to_judge)
        if not self.sentence_model:
            prompt_words = [content_words(prompt) for prompt in prompts]
            rows = [row for row in rows if self._rival_shares_more_words(records[group[row]], prompt_words, row)]
        if not rows:
            return []
        prompt_vectors = embedder().embed(prompts)
        output_vectors = embedder().embed([records[group[row]]["output"] for row in rows])
        suspects = []
        for row, rival, gap in nearest_rivals(output_vectors, prompt_vectors, rows):
            if self.sentence_model:
                if gap > self.screen_margin:
                    suspects.append((group[row], group[rival], gap))
            elif (
                gap > self.static_margin
                and float(prompt_vectors[row] @ prompt_vectors[rival]) < self.max_static_instruction_cosine
            ):
                suspects.append((group[row], group[rival], gap))
        return suspects

    def _model_rivals(
        self, records: Sequence[dict], group: list[int], to_judge: set[int]
    ) -> list[tuple[int, int, float]]:
        """(record, the sibling whose instruction its output answers, the gap) for the records
        to judge of one answer that the sentence model rejects, each compared (`screen = false`)."""
        rows = self._rows(records, group, to_judge)
        if not rows:
            return []
        self._model_records += len(rows)
        vectors = self.sentence_vectors(
            [prompt_text(records[i]) for i in group] + [records[group[row]]["output"] for row in rows]
        )
        prompt_vectors = vectors[: len(group)]
        return [
            (group[row], group[rival], gap)
            for row, rival, gap in nearest_rivals(vectors[len(group) :], prompt_vectors, rows)
            if self._model_rejects(gap, float(prompt_vectors[row] @ prompt_vectors[rival]))
        ]

    def _rival_shares_more_words(self, record: dict, prompt_words: list[set[str]], row: int) -> bool:
        """Another instruction of the answer (its content words: `prompt_words`, the record's own
        at `row`) shares content words with the output while its own shares none, or shares
        `word_lead` more than its own."""
        output_words = content_words(record["output"])
        shared = [len(words & output_words) for words in prompt_words]
        own = shared.pop(row)
        rival = max(shared)
        return (own == 0 and rival > 0) or rival >= own + self.word_lead


def nearest_rivals(
    output_vectors: np.ndarray, prompt_vectors: np.ndarray, rows: list[int]
) -> list[tuple[int, int, float]]:
    """(row, the other prompt nearest to its output, that cosine minus the own prompt's) for
    the outputs of `rows` (output_vectors in that order) against all prompts of the answer."""
    cosines = output_vectors @ prompt_vectors.T
    out = []
    for cosine, row in zip(cosines, rows):
        own = cosine[row]
        cosine[row] = -np.inf
        rival = int(cosine.argmax())
        out.append((row, rival, float(cosine[rival] - own)))
    return out


def _closer_to(rival: dict, gap: float, measure: str) -> str:
    """The detail of an answers_other_task rejection."""
    return f"closer to the instruction of {rival.get('id', 'another record')} by {gap:.2f} ({measure})"
