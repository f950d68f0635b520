"""The endpoints a run's requests may go to: `--base-url` given once or several times, or an
endpoints file, read and checked once, at the edge.

An endpoints file is TOML, one `[[endpoint]]` table per endpoint; only `url` is required:

    [[endpoint]]
    name = "gpu0"                     # how the ledger, cost.json and the progress bar name it
    url = "http://10.0.0.5:8000/v1"
    concurrency = 64                  # the most requests in flight there (AIMD moves below it)
    rpm = 600                         # its own requests/minute limit; tpm likewise
    price_in = 0.0                    # USD per 1M tokens there; price_out, price_cached likewise

    [[endpoint]]
    url = "https://api.openai.com/v1"
    model = "gpt-4o-mini-2024-07-18"  # the name this endpoint serves the run's model under
    api_key_env = "OPENAI_API_KEY_2"  # a second account
    weight = 0.5                      # a share of the free capacity: below 1, it is asked less often

What a table leaves out comes from the run's settings (`--model`, `--api-key-env`,
`--concurrency`, `--rpm`, `--tpm`, `--price-in`...): with `--base-url` repeated, each endpoint
gets those, so `--concurrency` and `--rpm` bound each endpoint, not the run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SettingError
from ..pricing import Price


class EndpointSpec(BaseModel):
    """One endpoint as the user gave it; None: the run's setting applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    name: str | None = Field(None, min_length=1, max_length=64)
    model: str | None = None
    api_key_env: str | None = None
    weight: float = Field(1.0, gt=0, le=100)
    concurrency: int | None = Field(None, ge=1, le=512)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    price_in: float | None = Field(None, ge=0)
    price_out: float | None = Field(None, ge=0)
    price_cached: float | None = Field(None, ge=0)

    @property
    def label(self) -> str:
        """The endpoint's short, stable name: its own, or host:port/path."""
        return self.name or endpoint_label(self.url)


@dataclass
class Via:
    """The endpoint a request was answered by (or last tried at), at its price, and the failed
    attempts it met at each endpoint before: what its ledger event records."""

    name: str
    price: Price | None = None
    errors: dict[str, int] = field(default_factory=dict)  # endpoint name -> failed attempts there

    def ledger_fields(self) -> dict:
        return {"endpoint": self.name, **({"endpoint_errors": self.errors} if self.errors else {})}


def endpoint_label(url: str) -> str:
    """endpoint_label("http://10.0.0.5:8000/v1/") -> "10.0.0.5:8000/v1" (no scheme, no user or key)."""
    parts = urlparse(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}{parts.path.rstrip('/')}"


def check_url(url: str, where: str, fields: tuple[str, ...]) -> None:
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:  # refused before any request
        raise SettingError(
            f"{where}must be an http:// or https:// URL such as https://api.openai.com/v1 or "
            f"http://localhost:8000/v1, not {url!r}",
            *fields,
        )


def read_endpoints_file(path: str | Path) -> list[EndpointSpec]:
    """The endpoints of a TOML file; an error names the file, the endpoint and the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SettingError(f"{{endpoints}} {path}: {e.strerror}", "endpoints") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SettingError(f"{{endpoints}} {path}: not valid TOML ({e})", "endpoints") from None
    unknown = sorted(set(data) - {"endpoint"})
    tables = data.get("endpoint")
    if unknown or not isinstance(tables, list) or not tables:
        raise SettingError(
            f"{{endpoints}} {path}: expected one [[endpoint]] table per endpoint, each with a url"
            + (f" (unknown key {unknown[0]!r})" if unknown else ""),
            "endpoints",
        )
    specs = []
    for number, table in enumerate(tables, 1):
        where = f"{path}: endpoint {number}"
        try:
            spec = EndpointSpec(**table)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(map(str, first["loc"])) or "url"
            raise SettingError(f"{{endpoints}} {where}, {field}: {first['msg']}", "endpoints") from None
        check_url(spec.url, f"{{endpoints}} {where}, url ", ("endpoints",))
        specs.append(spec)
    return unique_labels(specs, f"{{endpoints}} {path}", "endpoints")


def unique_labels(specs: list[EndpointSpec], where: str, field: str) -> list[EndpointSpec]:
    """The ledger tells endpoints apart by their label: two with one label are refused."""
    seen: set[str] = set()
    for spec in specs:
        if spec.label in seen:
            raise SettingError(f"{where}: two endpoints are named {spec.label!r}; give each its own url or name", field)
        seen.add(spec.label)
    return specs
