"""Is the output an answer to this instruction at all?

A teacher asked for 20 tasks at once loses track and gives a task the answer of another.
Such an output shares no content word with its instruction and input, and its sentence
embedding points elsewhere. Both are checked, the cheap one first:

1. an output of fewer than `min_output_words` words is kept: "Positive", "3", "Rust"
   carry too little meaning to judge;
2. an output that shares a content word with the instruction or input is kept (most
   records: no embedding needed);
3. else the cosine of the embeddings (wordllama, see clean/embedding.py) of
   "instruction + input" and of the output decides: below `min_cosine`, off topic.

Static embeddings know words, not the world: "Suggest shows like Squid Game" -> "Hellbound,
Sweet Home" has a cosine near 0. So `min_cosine` is set just below what real answers
reach: on the four human-written sets of filters/README.md, 0 rejects about 1% of them and
about a quarter of outputs moved to another instruction of the same set.
"""

from __future__ import annotations

import re

from pydantic import Field

from ..embedding import model_dir
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
_WORD = re.compile(r"[a-z0-9]+")


def content_words(text: str) -> set[str]:
    """Lowercased words of 3+ characters that are not stopwords, cut to 6 characters, so that
    "planets" and "planet" meet: "List the planets." -> {"planet"}"""
    return {word[:6] for word in _WORD.findall(text.lower()) if len(word) >= 3 and word not in _STOPWORDS}


class OffTopicOutput(Rule):
    name = "off_topic_output"
    reason = "output is about something else: no content word in common with the instruction and input, and a low embedding cosine"
    min_cosine: float = Field(0.0, ge=-1, le=1)
    min_output_words: int = Field(6, ge=1)

    def model_post_init(self, _context) -> None:
        model_dir()  # a missing wordllama fails when the preset loads, with the pip command; the model loads at first use

    def check(self, record):
        return self.check_many([record])[0]

    def check_many(self, records):
        prompts = [f"{record['instruction']}\n{record['input']}" for record in records]
        unsure = [
            i
            for i, (prompt, record) in enumerate(zip(prompts, records))
            if len(record["output"].split()) >= self.min_output_words
            and content_words(prompt).isdisjoint(content_words(record["output"]))
        ]
        details: list[str | None] = [None] * len(records)
        if unsure:
            from ..embedding import embedder

            vectors = embedder().embed([text for i in unsure for text in (prompts[i], records[i]["output"])])
            cosines = (vectors[0::2] * vectors[1::2]).sum(axis=1)
            for i, cosine in zip(unsure, cosines.tolist()):
                if cosine < self.min_cosine:
                    details[i] = f"no shared word, cosine {cosine:.2f} < {self.min_cosine}"
        return details
