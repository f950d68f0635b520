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
from itertools import islice

import numpy as np
from pydantic import Field, field_validator

from .base import Rule

# The 140 labels of py3langid 0.4's model (tests/test_cleaning_speed.py checks them against the
# model): codes among them are valid without loading it, which takes `generate` half a second
# before its first request, while its rule worker loads the model anyway, on the other core.
KNOWN_CODES = frozenset(
    """ace af am an ar ary arz as az ba bcl be bg bn br bs ca crh cs cy da de dz el en eo es et eu ext fa fi fo fr fuv
    fy ga gcf gcr gd gl gom grc gu gug guw ha hbo he hi hr ht hu hy id ig is it ja jv ka kab kik kk km kn ko ku ky la lb
    lg lij ln lo lt ltg lv mg mk ml mn mr ms mt my ne nl nn no nso oc om or pa pcm pl ps pt qu ro ru rw sa sdh se si sk
    sl sn so sq sr st sv sw ta te tg th tk tl tr tt ug uk ur uz uzs vec vi vo wa wuu xh yo yue zh zu zxx""".split()
)


def has_letters(text: str, n: int) -> bool:
    """At least `n` letters (`str.isalpha`) in `text`: counted in C, and only up to the n-th."""
    return next(islice(filter(str.isalpha, text), n - 1, None), None) is not None


@functools.cache
def identifier():
    """py3langid's bundled model (loads in about a second, from the package, offline)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    # py3langid keeps its weights in float16 and casts the rows a text needs to float32 for
    # each text: cast once here, to the same float32 values (so the same scores), and a text
    # costs 40% less (57 MB more memory)
    model.nb_ptc = model.nb_ptc.astype(np.float32)
    return model


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
        if KNOWN_CODES.issuperset(codes):
            return codes
        unknown = sorted(set(codes) - set(identifier().labels))
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(unknown)}; py3langid knows {', '.join(sorted(identifier().labels))}"
            )
        return codes

    def load(self) -> None:
        identifier()

    def check(self, record):
        for field in self.fields:
            text = record[field]
            if not has_letters(text, self.min_letters):
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
