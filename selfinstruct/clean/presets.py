"""Filter presets: TOML files naming rules, their thresholds and the dedup settings.

    description = "Stanford Alpaca's rules"
    [rules.instruction_words]
    min = 4
    max = 150
    [dedup]
    rouge_threshold = 0.7

Rules run in the order they appear. `--preset NAME` finds `filters/NAME.toml` among the
shipped presets; a path to a .toml file of your own works too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import SelfInstructError
from ..resources import read_shipped_toml, shipped_names, shipped_toml
from .dedup import DedupSettings
from .rules import RULES, Rule


class Preset(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    path: Path
    description: str = ""
    rules: list[Rule]
    dedup: DedupSettings


def preset_path(name_or_path: str) -> Path:
    return shipped_toml("filters", name_or_path)


def available_presets() -> list[str]:
    return shipped_names("filters")


def load_preset(name_or_path: str) -> Preset:
    path, data = read_shipped_toml("filters", "preset", name_or_path)
    unknown = set(data) - {"description", "rules", "dedup"}
    if unknown:
        raise SelfInstructError(
            f"{path}: unknown section(s) {', '.join(sorted(unknown))}; expected description, rules, dedup"
        )
    rules = [_build_rule(path, name, params) for name, params in data.get("rules", {}).items()]
    try:
        dedup = DedupSettings(**data.get("dedup", {}))
    except ValidationError as e:
        raise SelfInstructError(f"{path}: {_first_error('dedup', e)}") from None
    return Preset(name=path.stem, path=path, description=data.get("description", ""), rules=rules, dedup=dedup)


def _build_rule(path: Path, name: str, params) -> Rule:
    if name not in RULES:
        raise SelfInstructError(f"{path}: unknown rule 'rules.{name}'; known rules: {', '.join(sorted(RULES))}")
    if not isinstance(params, dict):
        raise SelfInstructError(f"{path}: 'rules.{name}' must be a table of settings")
    try:
        # relative file settings (a phrase list) are resolved beside the preset first
        return RULES[name].model_validate(params, context={"preset_dir": path.parent})
    except ValidationError as e:
        raise SelfInstructError(f"{path}: {_first_error(f'rules.{name}', e)}") from None


def _first_error(prefix: str, error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join([prefix, *map(str, first["loc"])])
    return f"{location}: {first['msg']}"
