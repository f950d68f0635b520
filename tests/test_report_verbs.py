"""Verb–noun extraction without a parser model: hand-checked instructions, and how often it
finds a verb in self-instruct's seed tasks and user-oriented instructions."""

from collections import Counter

import pytest
from conftest import SEED_TASKS, USER_ORIENTED

from selfinstruct.report.sunburst import NO_OBJECT, NO_VERB, OTHER, OTHER_VERBS, verb_tree
from selfinstruct.report.verbs import QUESTION, VerbNoun, verb_noun
from selfinstruct.tasks.bootstrap.seeds import load_seeds


@pytest.mark.parametrize(
    "instruction, verb, noun",
    [
        ("Write a short story about a dragon.", "write", "story"),
        ("Give me three tips for staying healthy.", "give", "tip"),
        ("Generate a list of five names for a bakery.", "generate", "list"),
        ("Write a blog post about remote work.", "write", "post"),
        ("Classify the following sentences as positive or negative.", "classify", "sentence"),
        ("Give me a cooking recipe for the following food.", "give", "recipe"),
        ("Come up with a question and a funny answer.", "come", "question"),
        ("Please summarize the article in two sentences.", "summarize", "article"),
        ("Can you write a haiku about rain?", "write", "haiku"),
        ("Given a list of numbers, sort them in ascending order.", "sort", None),
        ("Using the table below, compute the average price.", "compute", "price"),
        ("Write a recommendation letter given the student's achievements.", "write", "letter"),
        ("Explain why the sky is blue.", "explain", None),
        ("Tell me whether the behavior is ethical.", "tell", None),
        ("The sentence might be too wordy. Rewrite the sentence to be concise.", "rewrite", "sentence"),
        ("You are given a tweet, decide whether it is offensive.", "decide", None),
        ("You will need to compose the ABC notation for a given song.", "compose", "notation"),
        ("Write a story that you could tell a child at bedtime.", "write", "story"),
        ("1. Write a poem about rain.", "write", "poem"),
        ("What is the capital of France?", QUESTION, "what"),
        ("Is there anything I can eat for breakfast without eggs?", QUESTION, "is"),
        ("In your opinion, what are the qualities of a good coach?", QUESTION, "what"),
        ("Water is essential for life.", None, None),
        ("A list of movies should be compiled.", None, None),
    ],
)
def test_verb_and_object(instruction, verb, noun):
    assert verb_noun(instruction) == VerbNoun(verb, noun)


def rates(path) -> Counter:
    found = Counter()
    for task in load_seeds(path).tasks:
        vn = verb_noun(task["instruction"])
        found["verb" if vn.verb not in (None, QUESTION) else vn.verb or "none"] += 1
        found["object"] += vn.verb not in (None, QUESTION) and vn.noun is not None
        found["all"] += 1
    return found


@pytest.mark.parametrize("path, tasks, least_verbs", [(SEED_TASKS, 175, 0.85), (USER_ORIENTED, 252, 0.88)])
def test_a_verb_is_found_in_most_human_written_instructions(path, tasks, least_verbs, capsys):
    found = rates(path)
    with capsys.disabled():
        print(
            f"\n{path.name}: command verb {found['verb']}/{found['all']} ({found['verb'] / found['all']:.1%}), "
            f"question {found[QUESTION]} ({found[QUESTION] / found['all']:.1%}), none {found['none']}, "
            f"verb with an object {found['object']} ({found['object'] / found['all']:.1%})"
        )
    assert found["all"] == tasks
    assert found["verb"] / tasks >= least_verbs
    assert found["none"] / tasks <= 0.07  # the rest are questions, grouped in the chart


def test_the_rings_add_up_to_every_record():
    verb_nouns = (
        [
            VerbNoun("write", noun)
            for noun in ["poem"] * 5 + ["story"] * 4 + ["essay", "song", "letter", "list"] + [None] * 2
        ]
        + [VerbNoun(f"verb{i}", "thing") for i in range(25)]
        + [VerbNoun(QUESTION, "what")] * 3
        + [VerbNoun(None, None)] * 2
    )
    tree = verb_tree(verb_nouns, top_verbs=3, top_nouns=2)
    inner = {s.id: s.value for s in tree if not s.parent}
    assert sum(inner.values()) == len(verb_nouns)
    assert inner["write"] == 15 and inner[QUESTION] == 3 and inner[NO_VERB] == 2 and inner[OTHER_VERBS] == 24
    write = {s.label: s.value for s in tree if s.parent == "write"}
    assert write == {"poem": 5, "story": 4, OTHER: 4, NO_OBJECT: 2}
    for verb, value in inner.items():
        children = [s.value for s in tree if s.parent == verb]
        assert not children or sum(children) == value
