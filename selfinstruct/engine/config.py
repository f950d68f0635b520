"""Settings every teacher job shares (teacher, limits, money, cleaning), validated once.

Each job's config subclasses `JobConfig` and adds its own fields. Fields fall in two groups.
The *identity* fields (`IDENTITY`; a subclass lists its base's and its own) decide what data the run
makes: a resumed run must keep them (a run directory refuses a different identity unless
overwritten). The others only steer the run (target size, concurrency, limits, prices) and may
change between resumes, e.g. to raise the target. The endpoint is not part of the identity:
the same model may move to another host or port.

Each field's default and description are the only ones: the command line takes its flags'
defaults and help from them.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import SettingError, from_settings
from ..pricing import Price, price_for
from ..teacher.embedded import MODEL_ALIAS

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
    base_url: str | None = Field(
        None, description="OpenAI-compatible endpoint; without it the embedded SmolLM2 teacher runs."
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

    @model_validator(mode="after")
    def _api_needs_model(self):
        if self.base_url is not None and not self.model:
            raise SettingError("{model} is required with {base_url}", "model", "base_url")
        return self

    @model_validator(mode="after")
    def _base_url_is_http(self):
        url = urlparse(self.base_url) if self.base_url is not None else None
        if url is not None and (url.scheme not in ("http", "https") or not url.hostname):  # refused before any request
            raise SettingError(
                f"{{base_url}} must be an http:// or https:// URL such as https://api.openai.com/v1 or "
                f"http://localhost:8000/v1, not {self.base_url!r}",
                "base_url",
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.base_url is None

    def resolved(self: C) -> C:
        """Fill the fields left to None with the defaults of the embedded or an API teacher."""
        defaults = self.EMBEDDED_DEFAULTS if self.embedded else self.API_DEFAULTS
        return self.model_copy(update={k: v for k, v in defaults.items() if getattr(self, k) is None})

    def price(self) -> Price | None:
        """The teacher's price (the table's, with overrides); a cost cap needs one."""
        price = price_for(self.model, self.price_in, self.price_out, self.price_cached)
        if price is None and self.max_cost is not None:
            raise SettingError(
                f"no price is known for model {self.model!r}, so {{max_cost}} cannot be enforced: "
                "set {price_in} and {price_out} (USD per 1M tokens)",
                "max_cost",
                "price_in",
                "price_out",
            )
        return price

    def identity(self) -> dict:
        return {name: getattr(self, name) for name in self.IDENTITY}


def make_config(cls: type[C], **settings) -> C:
    """A config from keyword settings (None = not given); a validation error names its field."""
    return from_settings(cls, "setting", "config", **settings)
