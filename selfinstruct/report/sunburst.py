"""Alpaca's verb–noun chart: root verbs on the inner ring, their objects on the outer ring.

Alpaca showed the 20 most common root verbs and the 4 most common objects of each. Here
the rest is grouped, so the rings add up to every record: each verb's other objects
under OTHER, commands without an object under NO_OBJECT, the less common verbs in one
OTHER_VERBS sector, and instructions with no verb found in NO_VERB.

    tree = verb_tree([VerbNoun("write", "poem"), VerbNoun("write", "story")], top_verbs=20, top_nouns=4)
    [Sector("write", "write", "", 2), Sector("write/poem", "poem", "write", 1), Sector("write/story", ...)]
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from .verbs import VerbNoun

TOP_VERBS = 20
TOP_NOUNS = 4
OTHER = "(other)"
NO_OBJECT = "(no object)"
OTHER_VERBS = "(other verbs)"
NO_VERB = "(no verb found)"


class Sector(NamedTuple):
    id: str
    label: str
    parent: str  # "" for the inner ring
    value: int


def verb_tree(verb_nouns: list[VerbNoun], top_verbs: int = TOP_VERBS, top_nouns: int = TOP_NOUNS) -> list[Sector]:
    """The sectors of the chart: each top verb, then its top objects and the rest grouped."""
    verbs = Counter(vn.verb for vn in verb_nouns if vn.verb is not None)
    nouns: dict[str, Counter] = {}
    for vn in verb_nouns:
        if vn.verb is not None:
            nouns.setdefault(vn.verb, Counter())[vn.noun if vn.noun else NO_OBJECT] += 1
    sectors: list[Sector] = []
    for verb, count in verbs.most_common(top_verbs):
        sectors.append(Sector(verb, verb, "", count))
        named = [(noun, n) for noun, n in nouns[verb].most_common() if noun != NO_OBJECT][:top_nouns]
        for noun, n in named:
            sectors.append(Sector(f"{verb}/{noun}", noun, verb, n))
        rest = count - sum(n for _, n in named) - nouns[verb][NO_OBJECT]
        for label, n in ((OTHER, rest), (NO_OBJECT, nouns[verb][NO_OBJECT])):
            if n:
                sectors.append(Sector(f"{verb}/{label}", label, verb, n))
    shown = sum(s.value for s in sectors if not s.parent)
    for label, n in ((OTHER_VERBS, sum(verbs.values()) - shown), (NO_VERB, len(verb_nouns) - sum(verbs.values()))):
        if n:
            sectors.append(Sector(label, label, "", n))
    return sectors


def sunburst_figure(verb_nouns: list[VerbNoun], title: str):
    import plotly.graph_objects as go

    sectors = verb_tree(verb_nouns)
    grey = {OTHER, NO_OBJECT, OTHER_VERBS, NO_VERB}
    figure = go.Figure(
        go.Sunburst(
            ids=[s.id for s in sectors],
            labels=[s.label for s in sectors],
            parents=[s.parent for s in sectors],
            values=[s.value for s in sectors],
            branchvalues="total",  # a verb's sector is exactly the sum of its objects'
            marker={"colors": ["#d9d9d9" if s.label in grey else None for s in sectors]},
            hovertemplate="<b>%{id}</b><br>%{value} records<br>%{percentRoot:.1%} of all<extra></extra>",
            insidetextorientation="radial",
        )
    )
    figure.update_layout(title=title, height=640, margin={"t": 50, "l": 10, "r": 10, "b": 10})
    return figure
