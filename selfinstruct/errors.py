"""The one exception type meant for users.

Library code raises `SelfInstructError` with a message that names the file, line or field
and says how to fix it; the CLI turns it into a clean `click.ClickException`.

A setting is named in a message as `{field}` and listed in `fields`: the library shows it as
the field's name (`'max_cost'`), the command line as the flag that sets it (`--max-cost`).

    raise SettingError("no price is known for this model, so {max_cost} cannot be enforced: "
                       "set {price_in} and {price_out}", "max_cost", "price_in", "price_out")
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

M = TypeVar("M")


class SelfInstructError(Exception):
    """A problem the user can fix: bad input, bad configuration, a refused request."""


class SettingError(SelfInstructError):
    """A setting is wrong or missing; `fields[0]` is the one at fault."""

    def __init__(self, message: str, *fields: str):
        self.template = message
        self.fields = fields
        super().__init__(self.render(lambda field: repr(field)))

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each `{field}` written as `name(field)`."""
        text = self.template
        for field in self.fields:
            text = text.replace("{" + field + "}", name(field))
        return text


def from_settings(model_class: type[M], noun: str, whole: str, **settings) -> M:
    """A pydantic `model_class` from keyword settings (None = not given): the edge where user
    settings are validated. A validation error becomes a SettingError naming its field,
    "invalid {noun} {field}: ..." (`whole` when no single field is at fault)."""
    from pydantic import ValidationError

    try:
        return model_class(**{k: v for k, v in settings.items() if v is not None})
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else whole
        raise SettingError(f"invalid {noun} {{{field}}}: {first['msg']}", field) from None


def warn(message: str) -> None:
    """Tell the user of a problem that does not stop the work: on stderr, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)
