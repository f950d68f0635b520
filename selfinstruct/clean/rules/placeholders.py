"""Unfilled template slots: the teacher wrote the frame of an answer and left the work out.

"[Insert three examples here]", "<your answer>", "{summary}", "____", "Lorem ipsum",
"TODO", "XXX" in an output mean the task was not done. Not every slot is a defect, though:
human-written answers to "Write an email to attendees..." sign off with "[Your Name]" and
leave "[date]" open when the instruction does not give them (self-instruct's user-oriented
answers do this in 8 of 252, its seeds in 3 of 175). So the rule tells two kinds of slot
apart:

- a *content* slot stands for the answer itself: bracketed words that ask for writing
  ("insert", "describe", "list", "answer", "example", "here"...), several words in angle
  brackets ("<time-in-days>"), a format field left in prose ("{n} of {d}"), a blank
  "____"; these are rejected;
- a *detail* slot stands for a personal detail the instruction did not give (a name, a
  date, a company, an address; "Dear Professor ____,"); these are kept unless
  `detail_slots = true`.

A slot is kept whatever its kind when the user asked for one (the instruction speaks of a
template, placeholders, blanks, a form) or gave it (the same slot is in the instruction
or input: "Replace the <mask> token", an email to rewrite that has "[Your name]").
The input is checked for bracketed slots only: a blank or an "XXX" there is usually the
question ("3 ft = ___ in.") or masked data.
"""

from __future__ import annotations

import re

from .base import Rule

_CONTENT_WORDS = (
    "insert",
    "enter",
    "add",
    "fill",
    "include",
    "type",
    "write",
    "describe",
    "explain",
    "list",
    "answer",
    "response",
    "reply",
    "content",
    "text",
    "here",
    "example",
    "examples",
    "detail",
    "details",
    "description",
    "summary",
    "paragraph",
    "sentence",
    "topic",
    "reason",
    "reasons",
    "point",
    "points",
    "step",
    "steps",
    "item",
    "items",
    "information",
    "info",
    "placeholder",
    "something",
    "blank",
    "tbd",
    "todo",
    "etc",
)
_DETAIL_WORDS = (
    "name",
    "names",
    "date",
    "dates",
    "company",
    "organization",
    "organisation",
    "employer",
    "address",
    "email",
    "phone",
    "number",
    "title",
    "position",
    "role",
    "location",
    "city",
    "country",
    "school",
    "university",
    "degree",
    "website",
    "url",
    "signature",
    "recipient",
    "manager",
    "contact",
    "industry",
    "department",
    "team",
    "event",
    "venue",
    "price",
    "amount",
)
_ASKED_FOR = re.compile(
    r"\b(?:templates?|placeholders?|blanks?|fill[- ]in|fill\s+in|forms?|mad\s*libs?|cloze|mask(?:ed)?|boilerplate|skeleton"
    r"|mail\s+merge|format\s+strings?|f-strings?|lorem|dummy\s+text|filler\s+text)\b",
    re.IGNORECASE,
)
# A label in brackets: words, not code (`arr[i]`, `["a"]`, `{**a}`, `[0-9]`, `<div class=...>`).
_LABEL = r"[A-Za-z][A-Za-z'\u2019 /-]{0,58}[A-Za-z]|[A-Za-z]"
_BRACKETS = re.compile(
    rf"(?<![\w\])$])\[\s*({_LABEL})\s*\](?!\()"  # [Your Name], not arr[i] or a Markdown link
    rf"|<\s*({_LABEL})\s*>"  # <insert answer here>, <time-in-days>, not <div> (one word: a tag)
    rf"|(?<![\w$])\{{\{{?\s*({_LABEL})\s*\}}\}}?"  # {name}, {{name}}, not ${x} or {**a}
)
_BLANK = re.compile(r"(?<!_)_{3,}(?!_)")
# a blank for a personal detail: "Dear Professor ____,", "Name: ______"
_DETAIL_BEFORE = re.compile(
    r"\b(?:dear|mr|mrs|ms|dr|prof|professor|sir|madam|hi|hello|sincerely|regards|"
    + "|".join(_DETAIL_WORDS)
    + r")\W{0,3}$",
    re.IGNORECASE,
)
_OUTPUT_ONLY = re.compile(r"\b[Ll]orem [Ii]psum\b|\bTODO\b|\bX{3,}\b")  # not "todo list", "xxx" in a chat
_MAYBE = re.compile(r"[\[<{]|___|[Ll]orem|TODO|XXX")
_CODE = re.compile(r"`|\\\w|\bf[\"']|\bdef |\bfunction\b|\bprint\(|\breturn\b|=|;\s*$|\bimport ", re.MULTILINE)


def _words(label: str) -> list[str]:
    return re.findall(r"[a-z]+", label.lower().replace("\u2019", "'"))


def slot_kind(label: str, bracket: str) -> str | None:
    """ "content", "detail" or None (not a slot) for the text inside a pair of brackets.

    slot_kind("Insert answer here", "[") -> "content"; slot_kind("Your Name", "[") -> "detail";
    slot_kind("Hokage", "[") -> None (a bracketed word, e.g. an entity to link)"""
    words = _words(label)
    if any(word in _CONTENT_WORDS for word in words):
        return "content"
    if any(word in _DETAIL_WORDS for word in words):
        return "detail"
    # other bracketed words are slots only where brackets do not hold them otherwise: curly
    # brackets outside code (a format field left in prose: "{n} of {d}"), angle brackets
    # around several words (<time-in-days>; one word is an HTML tag); square brackets hold
    # entities and citations
    if bracket == "{" or (bracket == "<" and len(words) > 1):
        return "content"
    return None


class Placeholder(Rule):
    name = "placeholder"
    reason = "unfilled template slot ('[Insert answer here]', '<your answer>', '____', lorem ipsum, TODO, XXX) the user did not ask for"
    detail_slots: bool = False  # also reject slots for personal details: "[Your Name]", "[date]", "Dear ____,"

    def check(self, record):
        instruction = record["instruction"]
        for field, given in (("input", instruction), ("output", f"{instruction}\n{record['input']}")):
            found = self._slot(record[field], field == "output")
            if found is not None and found.lower() not in given.lower() and not _ASKED_FOR.search(instruction):
                return f"{field} has {found[:50]!r}"
        return None

    def _slot(self, text: str, output: bool) -> str | None:
        if not _MAYBE.search(text):
            return None  # most texts: one quick scan
        for match in _BRACKETS.finditer(text):
            slot = match.group(0)
            label = next(group for group in match.groups() if group is not None)
            if slot[0] == "{" and _CODE.search(text):
                continue  # in code or LaTeX, {name} is a format field, a block or an argument
            if self._rejects(slot_kind(label, slot[0]), output):
                return slot
        if not output:
            return None
        for match in _BLANK.finditer(text):
            start, end = text.rfind("\n", 0, match.start()) + 1, text.find("\n", match.end())
            if text[start : end if end >= 0 else len(text)].strip() == match.group(0):
                continue  # a horizontal rule in Markdown
            if self._rejects("detail" if _DETAIL_BEFORE.search(text, 0, match.start()) else "content", output):
                return match.group(0)
        match = _OUTPUT_ONLY.search(text)
        return match.group(0) if match else None

    def _rejects(self, kind: str | None, output: bool) -> bool:
        # a detail slot in the input is the user's own template (an email to rewrite)
        return kind == "content" or (kind == "detail" and self.detail_slots and output)
