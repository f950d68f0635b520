"""Tasks about content the model cannot see: a web page, a video, an attached file.

"Summarize the article at https://..." with nothing else given makes the teacher invent
the article, and the student learns to pretend it read a link (AlpacaDataCleaned removed
such records by hand). A task is kept when the content is there after all: a URL beside
an input that holds the text ("Summarize the following article." with the article and
its source link), or a task about the URL string itself ("Extract the domain from this
URL"). Pictures are the `image_reference` rule's.
"""

from __future__ import annotations

import re

from pydantic import Field

from .base import Rule

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]", re.IGNORECASE)
# "this article", "the attached file", "the following website", "at this link"
_UNSEEN = re.compile(
    r"\b(?:this|that|these|the\s+(?:following|attached|linked|above|below|given|provided|enclosed|uploaded|shared)|attached)"
    r"\s+(?:(?:news|online|youtube|web|blog|research|pdf|word|excel|audio|video)\s+)?"
    r"(?:articles?|web\s*pages?|websites?|sites?|blog\s*posts?|blogs?|posts?|videos?|clips?|podcasts?|links?|urls?"
    r"|files?|documents?|docs?|pdfs?|attachments?|spreadsheets?|pages?|papers?|reports?|tweets?|threads?|recordings?"
    r"|presentations?|slides?|slideshows?|e-?books?)\b"
    r"|\b(?:at|on|from|via|in)\s+(?:this|the\s+following|the\s+given|the\s+provided|the\s+attached)\s+(?:link|url|address)\b"
)  # searched in lowercased text: 3x faster than re.IGNORECASE on long prompts
_SENTENCE_ENDS = (". ", "! ", "? ", "\n")  # a URL's dots are not followed by a space
# words of a task about a URL or link as a string, which the model can read
_ABOUT_THE_URL = re.compile(
    r"\b(?:domains?|hostnames?|host\s+names?|protocol|scheme|query\s+strings?|parameters?|subdomains?|tld|slug"
    r"|regex|regular\s+expressions?|valid(?:ate)?|shorten|encode|decode|escape|parse|markdown|html|hyperlinks?|anchor)\b",
    re.IGNORECASE,
)


class NeedsWeb(Rule):
    name = "needs_web"
    reason = "asks about a web page, video or file the model cannot see (a URL, 'this article', 'the attached file') without giving its text"
    min_given_words: int = Field(
        5, ge=0, description="an input (or text after a colon) of this many words, URLs aside, holds the content"
    )
    min_passage_words: int = Field(
        40, ge=0, description="so do this many words in the other sentences of the reference's line"
    )

    def check(self, record):
        found = self._reference(record)
        if found is None:
            return None
        field, match, what = found
        if self._given(record, field, match) or _ABOUT_THE_URL.search(record["instruction"]):
            return None
        return f"{field} {what} {match.group(0)[:60]!r}"

    @staticmethod
    def _reference(record):
        for field in ("instruction", "input"):
            if match := _UNSEEN.search(record[field].lower()):
                return field, match, "refers to"
        for field in ("instruction", "input"):
            text = record[field]
            if ("://" in text or "www." in text.lower()) and (match := _URL.search(text)):
                return field, match, "has the link"
        return None

    def _given(self, record, field: str, match: re.Match) -> bool:
        """Whether the content may be in the record after all (URLs are not content). For a
        reference in the input, the rest of the input holds it ("This presentation was
        boring..." is the text to work on). For one in the instruction: the input, the
        instruction's other lines, what follows a colon ("Classify this tweet: ..."), or a
        passage around the sentence on the same line (a review, then "Did the reviewer
        enjoy this video?")."""
        text = match.string
        if field == "input":
            return _words(text[: match.start()] + " " + text[match.end() :]) >= self.min_given_words
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = _find(text, ("\n",), match.end())
        end = _find(text, _SENTENCE_ENDS, match.end())
        after_colon = text[match.end() : end].partition(":")[2]
        other_lines = f"{text[:line_start]} {text[line_end:]} {after_colon} {record['input']}"
        if _words(other_lines) >= self.min_given_words:
            return True
        start = max(text.rfind(mark, line_start, match.start()) for mark in _SENTENCE_ENDS) + 1
        return _words(f"{text[line_start:start]} {text[end:line_end]}") >= self.min_passage_words


def _find(text: str, marks, start: int) -> int:
    """Where the first of `marks` after `start` is, or the end of `text`."""
    return min((i for i in (text.find(mark, start) for mark in marks) if i >= 0), default=len(text))


def _words(text: str) -> int:
    return len(_URL.sub(" ", text).split())
