"""Settings every teacher job shares (teacher, limits, money, cleaning), validated once.

Each job's config subclasses `JobConfig` and adds its own fields. Fields fall in two groups.
The *identity* fields (`IDENTITY`; a subclass lists its base's and its own) decide what data the run
makes: a resumed run must keep them (a run directory refuses a different identity unless
overwritten). The others only steer the run (target size, concurrency, limits, prices) and may
change between resumes, e.g. to raise the target. The endpoints are not part of the identity:
the same model may move to another host or port, and a rerun may use one endpoint more or fewer
(`engine.endpoints`: `--base-url` given several times, or `--endpoints FILE`).

Each field's default and description are the only ones: the command line takes its flags'
defaults and help from them.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ..errors import SettingError, from_settings
from ..pricing import Price, dearest, price_for
from ..teacher.embedded import MODEL_ALIAS
from .endpoints import EndpointSpec, check_url, read_endpoints_file, unique_labels
from .shared_run import Shard, index_url, parse_shared_run

C = TypeVar("C", bound="JobConfig")


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A subclass's IDENTITY and defaults replace these: it adds to them by naming them
    # (`IDENTITY = JobConfig.IDENTITY + ("seed",)`, `API_DEFAULTS = {**JobConfig.API_DEFAULTS, ...}`).
    IDENTITY: ClassVar[tuple[str, ...]] = (
        "model",
        "preset",
        "temperature",
        "top_p",
        "max_tokens",
        "response_format",
        "reasoning_effort",
    )
    # The embedded 135M teacher answers one request at a time (llama-cpp-python's server
    # serialises them) and needs few tokens; API teachers get Alpaca's settings. Context windows:
    # the embedded teacher is started with 4,096 tokens; 128,000 is gpt-4o(-mini)'s and DeepSeek's,
    # the smallest of the priced models (a local server's may be smaller: set it).
    EMBEDDED_DEFAULTS: ClassVar[dict] = {
        "max_tokens": 1024,
        "concurrency": 1,
        "model": MODEL_ALIAS,
        "context_tokens": 4096,
    }
    API_DEFAULTS: ClassVar[dict] = {"max_tokens": 3072, "concurrency": 8, "context_tokens": 128_000}

    # ---- the teacher
    base_url: str | list[str] | None = Field(
        None,
        description="OpenAI-compatible endpoint; give it several times to spread the requests over several "
        "(--concurrency, --rpm and --tpm then bound each one); without it the embedded SmolLM2 teacher runs.",
    )
    endpoints: str | None = Field(
        None,
        description="A TOML file with one [[endpoint]] table per endpoint (url, and optionally name, model, "
        "api_key_env, weight, concurrency, rpm, tpm, price_in, price_out, price_cached), instead of --base-url.",
    )
    model: str | None = Field(None, description="Teacher model name (required with a base URL).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
    temperature: float = Field(1.0, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling: the share of probability mass sampled from.")
    max_tokens: int | None = Field(None, ge=16, description="Completion token limit per request.")
    context_tokens: int | None = Field(
        None,
        ge=256,
        description="The teacher's context window in tokens: a prompt longer than it leaves room for beside max_tokens is refused before it is sent.",
    )
    response_format: Literal["auto", "json_schema", "json_object", "text"] = Field(
        "auto",
        description="How answers are asked for; auto steps down from JSON schema to text until the endpoint takes one.",
    )
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = Field(
        None, description="For reasoning models that take it."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds per HTTP request.")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts per request on 429/5xx/timeouts.")

    # ---- cleaning
    preset: str = Field("default", description="Cleaning preset name or .toml path.")
    lsh_storage: str | None = Field(
        None, description="redis://HOST:PORT[/DB][?index=NAME]: share the duplicate index with other workers."
    )

    # ---- pace and money: may change between resumes
    concurrency: int | None = Field(None, ge=1, le=512, description="Requests in flight.")
    rpm: float | None = Field(None, gt=0, description="Client-side limit, requests per minute (paced evenly).")
    tpm: float | None = Field(None, gt=0, description="Client-side limit, tokens per minute.")
    # gt=0: a cap of 0 would pay for nothing
    max_cost: float | None = Field(
        None, gt=0, description="Hard cap in USD; the run stops before it could be exceeded."
    )
    max_output_tokens: int | None = Field(
        None, ge=1, description="The most one answer can bill, reasoning included (default: the price table's)."
    )
    batch: bool = Field(
        False, description="Send the requests through the provider's Batch API, at its batch price (OpenAI: -50%)."
    )
    batch_poll_s: float = Field(30.0, gt=0, description="Seconds between looks at a running batch.")
    price_in: float | None = Field(None, ge=0, description="USD per 1M prompt tokens (overrides the price table).")
    price_out: float | None = Field(None, ge=0, description="USD per 1M completion tokens.")
    price_cached: float | None = Field(None, ge=0, description="USD per 1M cached prompt tokens.")
    cleaning_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Processes for the rule checks (default: 1 at concurrency 32 or more with a spare core, else 0).",
    )

    # ---- several workers on one run (engine.shared_run)
    shard: str | None = Field(
        None,
        description="i/N: this worker is the i-th of N on one run: it takes every N-th item (answer, judge) or "
        "request (generate); without --shared-run it also takes 1/N of the target and of --max-cost.",
    )
    shared_run: str | None = Field(
        None,
        description="redis://HOST:PORT[/DB]?run=NAME: the workers of one run (--shard) share through Redis the "
        "duplicate index, one --max-cost and one target.",
    )

    _shard: Shard | None = PrivateAttr(default=None)  # `shard`, parsed once

    _endpoint_specs: list[EndpointSpec] = PrivateAttr(default_factory=list)  # read once, by `_read_endpoints`

    @model_validator(mode="after")
    def _read_endpoints(self):
        """The endpoints, checked once: each base URL, or the endpoints file."""
        if self.endpoints is not None and self.base_url is not None:
            raise SettingError("give {base_url} or {endpoints}, not both", "base_url", "endpoints")
        if self.endpoints is not None:
            self._endpoint_specs = read_endpoints_file(self.endpoints)
        elif self.base_url is not None:
            urls = [self.base_url] if isinstance(self.base_url, str) else self.base_url
            for url in urls:
                check_url(url, "{base_url} ", ("base_url",))
            self._endpoint_specs = unique_labels([EndpointSpec(url=url) for url in urls], "{base_url}", "base_url")
        if self._endpoint_specs and not self.model:
            raise SettingError(
                "{model} is required with {base_url}"
                if self.endpoints is None
                else "{model} is required with {endpoints}",
                "model",
                "base_url" if self.endpoints is None else "endpoints",
            )
        self._check_workers()
        if self.batch and len(self._endpoint_specs) > 1:
            raise SettingError(
                "a batch runs on one endpoint (the provider's Batch API): give one {base_url}, or leave out {batch}",
                "batch",
                "base_url",
            )
        return self

    def _check_workers(self) -> None:
        if self.shard is not None:
            self._shard = Shard.parse(self.shard)
        if self.shared_run is None:
            return
        parse_shared_run(self.shared_run)
        if self._shard is None:
            raise SettingError(
                "{shared_run} needs {shard} i/N: which worker of the run this one is", "shard", "shared_run"
            )
        if self.batch:
            raise SettingError(
                "{shared_run} reserves each request's cost as it is sent, which a batch does not do: run the workers "
                "online, or give each its {shard} without {shared_run} (each then takes 1/N of --max-cost)",
                "batch",
                "shared_run",
            )

    @property
    def shard_spec(self) -> Shard | None:
        """Which worker of a run this one is (`--shard`), or None for a run of its own."""
        return self._shard

    def index_storage(self) -> str | None:
        """Where the duplicate index lives: `lsh_storage`, else the shared run's Redis."""
        return self.lsh_storage or (index_url(self.shared_run) if self.shared_run else None)

    @property
    def embedded(self) -> bool:
        return not self._endpoint_specs

    def endpoint_specs(self) -> list[EndpointSpec]:
        """The endpoints the run's requests may go to (none: the embedded teacher)."""
        return list(self._endpoint_specs)

    def resolved(self: C) -> C:
        """Fill the fields left to None with the defaults of the embedded or an API teacher."""
        defaults = self.EMBEDDED_DEFAULTS if self.embedded else self.API_DEFAULTS
        return self.model_copy(update={k: v for k, v in defaults.items() if getattr(self, k) is None})

    def price(self) -> Price | None:
        """The teacher's price (the table's, with overrides); a cost cap needs one. With several
        endpoints, the dearest of their prices: what a request reserves, since failover may ask
        it anywhere (each answer is then priced at its endpoint's own, `endpoint_price`)."""
        specs = self._endpoint_specs or [None]
        prices = [self.endpoint_price(spec) for spec in specs]
        if self.max_cost is not None and None in prices:
            where = f" at endpoint {specs[prices.index(None)].label}" if len(specs) > 1 else ""
            raise SettingError(
                f"no price is known for model {self.model!r}{where}, so {{max_cost}} cannot be enforced: "
                "set {price_in} and {price_out} (USD per 1M tokens)" + (", or the endpoint's own" if where else ""),
                "max_cost",
                "price_in",
                "price_out",
            )
        return dearest(prices)

    def endpoint_price(self, spec: EndpointSpec | None) -> Price | None:
        """One endpoint's price: its own overrides, else the run's, else the table's for the model it serves."""
        if spec is None:
            return price_for(self.model, self.price_in, self.price_out, self.price_cached)
        return price_for(
            spec.model or self.model,
            self.price_in if spec.price_in is None else spec.price_in,
            self.price_out if spec.price_out is None else spec.price_out,
            self.price_cached if spec.price_cached is None else spec.price_cached,
        )

    def identity(self) -> dict:
        return {name: getattr(self, name) for name in self.IDENTITY}


def make_config(cls: type[C], **settings) -> C:
    """A config from keyword settings (None = not given); a validation error names its field."""
    return from_settings(cls, "setting", "config", **settings)
