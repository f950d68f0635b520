"""Keep records in the requested language(s), identified offline by py3langid.

Language identification is unreliable on short texts, and on a handful of English
words py3langid's 140 languages often give "en" well under half the probability (while
a real French or Chinese instruction gives "en" about 1e-6). So a text is judged only
when it has at least `min_letters` letters, and rejected only when the requested
languages together get less than `min_probability`; anything unsure is kept. Only the
instruction is judged by default: inputs and outputs in other languages are often the
point of the task (translation). Measured on the 175 seeds, the 252 user-oriented eval
instructions and SmolLM2 output: English instructions of 10+ letters never fell below
0.14, the foreign ones never rose above 0.001.
"""

from __future__ import annotations

import functools

from pydantic import Field, field_validator

from .base import Rule


@functools.cache
def identifier():
    """py3langid's bundled model (loads in about a second, from the package, offline)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class Language(Rule):
    name = "language"
    reason = "not in the requested language(s) (py3langid)"
    keep: tuple[str, ...] = Field(("en",), min_length=1, description="ISO 639-1 codes")
    fields: tuple[str, ...] = ("instruction",)
    min_letters: int = Field(10, ge=1)
    min_probability: float = Field(0.01, gt=0, lt=1)

    @field_validator("keep")
    @classmethod
    def _known(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(codes) - set(identifier().labels))
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(unknown)}; py3langid knows {', '.join(sorted(identifier().labels))}"
            )
        return codes

    def check(self, record):
        for field in self.fields:
            text = record[field]
            if sum(c.isalpha() for c in text) < self.min_letters:
                continue
            top, p = identifier().classify(text)
            if top in self.keep and p >= self.min_probability:
                continue  # the usual case, decided without ranking every language
            ranked = identifier().rank(text)
            wanted = sum(p for lang, p in ranked if lang in self.keep)
            if wanted < self.min_probability:
                lang, p = ranked[0]
                return f"{field} looks like '{lang}' (p={p:.2f}; {'+'.join(self.keep)} p={wanted:.3f})"
        return None
