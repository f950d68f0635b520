"""The root verb of an instruction and its direct object, as in Alpaca's verb–noun chart.

Alpaca and self-instruct parsed every instruction with a constituency parser (benepar) and
kept the root verb and the first noun of its object. That parser, like spaCy's and NLTK's
taggers, needs a model download; this module needs none. It reads the instruction as an
imperative, with lemminflect's bundled English lexicon saying which parts of speech a word
can have:

1. Each sentence in turn, after dropping polite openings ("Please", "Can you", "Let's") and
   an introductory clause that ends in a comma ("Given a sentence, classify ..."); a command
   stated as a need ("You will need to write ...") counts as one.
2. The sentence's first word is the verb when it is a verb's base form ("write", "list")
   and the next word is not one that makes it a subject ("Dogs are ..." is no imperative).
3. The object is the noun phrase after the verb, past an indirect object ("Give *me* ...")
   and determiners or numbers ("a", "the following", "three"): its head is the last noun of
   the phrase before a preposition, a conjunction or punctuation, in its singular form.

    verb_noun("Write a short story about a dragon.")    -> VerbNoun("write", "story")
    verb_noun("Give me three tips for staying healthy.") -> VerbNoun("give", "tip")
    verb_noun("Explain why the sky is blue.")           -> VerbNoun("explain", None)
    verb_noun("What is the capital of France?")         -> VerbNoun(QUESTION, "what")

A sentence that opens with a question word or an auxiliary ("What ...", "Is there ...")
is a question: the chart groups questions under QUESTION, by their first word, where
Alpaca's parser found no verb-object pair and dropped them. An instruction that neither
commands nor asks ("The sentence might be too wordy.") has no verb: `VerbNoun(None, None)`.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

QUESTION = "(question)"

_LIST_MARKER = re.compile(r"^(?:\d+[.)]|[-*•])\s+")  # teachers number their tasks: "1. Write a poem ..."
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+(?:[.,]\d+)*|[^\sA-Za-z\d]")

QUESTION_WORDS = frozenset("what which who whom whose when where why how".split())
AUXILIARIES = frozenset(
    "is are was were am be been do does did has have had can could will would shall should may might must "
    "isn't aren't don't doesn't didn't can't won't".split()
)
POLITE = frozenset("please kindly now also then so first next finally just and".split())
MODAL_OPENINGS = frozenset("can could would will".split())  # "Can you write ..." asks for an action
INTRO_WORDS = frozenset(
    "given using based according with without for in on from after before if when while assuming "
    "considering as to by".split()
)
# After "you": a command stated as a need or a wish ("You will need to write ...").
REQUEST_PHRASES = [
    p.split()
    for p in (
        "will need to",
        "need to",
        "have to",
        "should",
        "must",
        "will be required to",
        "are required to",
        "are asked to",
        "will be asked to",
        "could",
        "can",
        "wrote",
        "would",
    )
]
INDIRECT_OBJECTS = frozenset("me us him her them someone everyone".split())
DETERMINERS = frozenset(
    "a an the this that these those some any each every all both few several many more most much no "
    "my your our their his her its one two three four five six seven eight nine ten twenty hundred "
    "another other such".split()
)
# Adjectives that point at the input rather than describe the object ("the following text").
POINTERS = frozenset("following given provided above below attached next previous same".split())
PARTICLES = frozenset("up out down off".split())
# Words that end the object's noun phrase.
STOP_WORDS = frozenset(
    "of about for to in on at with from by into onto over under between among through during as than "
    "and or but nor so yet that which who whom whose whether if because while where when why how what "
    "using based like including such it its they them their you your i we he she me us is are was were "
    "be been being do does did not".split()
)


class VerbNoun(NamedTuple):
    verb: str | None  # lemma of the root verb; QUESTION for a question; None: no verb found
    noun: str | None  # lemma of its object's head noun (for a question: its first word)


def verb_noun(instruction: str) -> VerbNoun:
    """The root verb and object noun of an instruction (see the module docstring)."""
    for sentence in _SENTENCE_END.split(_LIST_MARKER.sub("", instruction.strip(), count=1))[:4]:
        words = [w.lower().replace("’", "'") for w in _TOKEN.findall(sentence)]
        words = _drop_opening(words)
        if not words:
            continue
        if words[0] in QUESTION_WORDS or (words[0] in AUXILIARIES and len(words) > 1):
            return VerbNoun(QUESTION, words[0])
        if _is_imperative_verb(words):
            return VerbNoun(words[0], _object_noun(words[1:]))
        if sentence.rstrip().endswith("?"):
            return VerbNoun(QUESTION, words[0])
    return VerbNoun(None, None)


def _drop_opening(words: list[str]) -> list[str]:
    """Drop what comes before the verb: polite words, "can you", "let's", an intro clause."""
    while words and words[0] in POLITE:
        words = words[1:]
    if len(words) > 2 and words[0] in MODAL_OPENINGS and words[1] == "you":
        words = words[2:]
        words = words[1:] if words[0] == "please" else words
    if not words or _is_imperative_verb(words):
        return words
    if (words[0] in INTRO_WORDS or words[0].endswith("ing")) and "," in words[:25]:
        # "Given a list of numbers, sort them", "Using the table, ...": the verb follows the comma
        return _drop_opening(words[words.index(",") + 1 :])
    if words[:1] == ["you"] and words[1:3] in (["are", "given"], ["are", "provided"]) and "," in words:
        return _drop_opening(words[words.index(",") + 1 :])  # "You are given a tweet, classify it"
    return _after_request(words) or words


def _after_request(words: list[str]) -> list[str] | None:
    """The words after a command stated as a need or a wish, anywhere in the sentence:
    "You will need to write ...", "... so let's list ...", "It would help if you could suggest ..."."""
    for i, word in enumerate(words[:30]):
        if word == "let's" or (word == "let" and words[i + 1 : i + 2] == ["us"]):
            return words[i + (1 if word == "let's" else 2) :] or None
        if word != "you":
            continue
        rest = words[i + 1 : i + 6]
        for phrase in REQUEST_PHRASES:
            if rest[: len(phrase)] == phrase:
                return words[i + 1 + len(phrase) :] or None
    return None


def _is_imperative_verb(words: list[str]) -> bool:
    lemmas = _lemmas(words[0])
    if words[0] not in lemmas.get("VERB", ()):  # a base form only: "writes", "written" are no commands
        return False
    if len(words) > 1 and (words[1] in AUXILIARIES or words[1] in {":", "'s"}):
        return False  # "Water is ...", "Question: ...": the word is a subject or a label
    return True


def _object_noun(words: list[str]) -> str | None:
    """Head noun of the noun phrase that opens `words` (the words after the verb)."""
    i = 0
    while i < len(words) and words[i] in PARTICLES:  # "come up with", "point out"
        i += 1
    if i and i < len(words) and words[i] == "with":
        i += 1
    if (
        i + 1 < len(words)
        and words[i] in INDIRECT_OBJECTS
        and words[i + 1] not in STOP_WORDS
        and words[i + 1].isalpha()
    ):
        i += 1  # "Give me a list": the direct object comes after
    while i < len(words) and (words[i] in DETERMINERS or words[i] in POINTERS or words[i].isdigit()):
        i += 1
    head = None
    for word in words[i : i + 6]:
        if not word[0].isalpha() or word in STOP_WORDS or word in INDIRECT_OBJECTS or word in POINTERS:
            break
        lemmas = _lemmas(word)
        if lemmas and set(lemmas) <= {"VERB", "AUX", "ADV"} and word not in lemmas.get("VERB", ()):
            if head is None and word.endswith(("ing", "ed")):
                continue  # a participle before the noun: "a cooking recipe"
            break  # an inflected verb after it ("a story explaining ...", "... is") ends the phrase
        if "NOUN" in lemmas or "PROPN" in lemmas or not lemmas:  # unknown words are mostly nouns
            forms = lemmas.get("NOUN") or lemmas.get("PROPN")
            head = forms[0] if forms else word
    return head


@functools.lru_cache(maxsize=65536)
def _lemmas(word: str) -> dict[str, tuple[str, ...]]:
    """Each part of speech `word` can be, with its lemmas: {"NOUN": ("list",), "VERB": ("list",)}."""
    from lemminflect import getAllLemmas

    return getAllLemmas(word)
