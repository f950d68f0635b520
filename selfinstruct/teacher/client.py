"""One chat completion from any OpenAI-compatible endpoint, with the failure handling a
long paid run needs.

- 429, 5xx, timeouts and dropped connections are retried by tenacity with exponential
  backoff and jitter; a `Retry-After` / `retry-after-ms` / `x-ratelimit-reset-*` header wins
  over the backoff, and a 429 pauses the whole rate limiter, not only the request that got it.
- 400/401/403/404/422 raise `TeacherRefused` at once: retrying cannot fix them.
- Structured output: "json_schema" (OpenAI), "json_object" with a schema (llama.cpp's
  grammar), or "text" (Alpaca's numbered format). In "auto" mode a server that rejects the
  `response_format` we sent is asked again one step down that list.
- Reasoning models refuse some parameters. The answer limit goes out as
  `max_completion_tokens` to api.openai.com and as `max_tokens` elsewhere; a 400 that names
  the one we sent as unsupported switches to the other, once. A 400 that refuses
  `temperature`, `top_p` or `reasoning_effort` drops it. Either way the request is asked again
  at once (a 400 is not billed), and the client remembers for the rest of the run; the ledger
  records the parameters each answer was asked with.
- A reasoning trace comes back in `message.reasoning_content` (DeepSeek, vLLM's reasoning
  parsers) or `message.reasoning`; inline `<think>` blocks stay in the content, as sent
  (see `selfinstruct.reasoning`). Reasoning tokens are counted apart when usage reports them.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import openai
from openai._constants import RAW_RESPONSE_HEADER
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..errors import SettingError
from ..tokens import count_tokens, estimate_prompt_tokens
from .limiter import RateLimiter, parse_duration

FORMAT_CHAIN = ("json_schema", "json_object", "text")
REFUSAL_HINTS = {  # status -> (hint, the settings it names)
    401: ("the API key was not accepted: check the key in ${key_env}", ()),
    403: ("the key has no access to this model or endpoint", ()),
    404: ("the endpoint or model was not found: check {base_url} and {model}", ("base_url", "model")),
}


class TeacherRefused(SettingError):
    """The endpoint answered with an error that retrying cannot fix (400/401/403/404/422)."""


class EmptyAnswer(Exception):
    """A 200 response whose body had no usable choice (proxies, overloaded servers)."""


class RequestFailed(Exception):
    """Transient failures went on until the attempts ran out."""

    def __init__(self, error: str, attempts: int, retry_errors: list[str]):
        super().__init__(error)
        self.attempts = attempts
        self.retry_errors = retry_errors


LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")  # the same limit under two names
OPTIONAL_PARAMS = ("temperature", "top_p", "reasoning_effort")  # dropped when a model refuses them


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int  # reasoning tokens included: they are billed as completion tokens
    cached_tokens: int = 0
    estimated: bool = False  # True when the server sent no usage and tiktoken counted
    reasoning_tokens: int = 0


@dataclass
class Completion:
    content: str
    finish_reason: str
    usage: Usage
    output_format: str  # "json" or "text": how to parse `content`
    response_format: str  # the structured-output mode that was used
    messages: list[dict]
    latency_s: float
    attempts: int
    retry_errors: list[str] = field(default_factory=list)
    provider_request_id: str | None = None
    reasoning: str | None = None  # the trace from `reasoning_content` / `reasoning`, as sent
    params: dict = field(default_factory=dict)  # the generation parameters the answer was asked with


@dataclass
class TeacherSettings:
    base_url: str
    model: str
    api_key: str
    key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_attempts: int = 8
    backoff_max_s: float = 60.0
    response_format: str = "auto"  # "auto" or one of FORMAT_CHAIN
    first_format: str = "json_schema"  # where "auto" starts


class TeacherClient:
    def __init__(self, settings: TeacherSettings, limiter: RateLimiter | None = None):
        self.settings = settings
        self.limiter = limiter or RateLimiter()
        self.format = settings.first_format if settings.response_format == "auto" else settings.response_format
        self.limit_param = "max_completion_tokens" if urlparse(settings.base_url).hostname == "api.openai.com" else "max_tokens"
        self.refused: set[str] = set()  # parameters this model refused: not sent again
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            max_retries=0,  # tenacity retries, so that every attempt is seen and counted
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        make_messages: Callable[[str], list[dict]],
        *,
        schema: Callable[[bool], dict] | None,
        max_tokens: int,
        temperature: float,
        top_p: float,
        request_id: str,
        reasoning_effort: str | None = None,
    ) -> Completion:
        """Ask once (retrying transient failures). `make_messages(output_format)` builds the
        prompt for "json" or "text"; `schema(bounded)` builds the JSON schema (None: a plain
        text answer, with no structured output asked for). `request_id` goes out as
        `X-Client-Request-Id`, so provider logs can be matched to the ledger."""
        while True:
            mode = self.format if schema is not None else "text"
            output_format = "text" if mode == "text" else "json"
            messages = make_messages(output_format)
            params = self._params(max_tokens, temperature, top_p, reasoning_effort)
            try:
                return await self._complete_with_retries(mode, output_format, messages, schema, params, request_id)
            except openai.APIStatusError as e:
                if not (self._downgrade(mode, e) or self._learn(e, params)):
                    raise self._refusal(e) from None

    def _params(self, max_tokens: int, temperature: float, top_p: float, reasoning_effort: str | None) -> dict:
        """The generation parameters, as this endpoint has shown it takes them."""
        params = {self.limit_param: max_tokens, "temperature": temperature, "top_p": top_p}
        if reasoning_effort is not None:
            params["reasoning_effort"] = reasoning_effort
        return {name: value for name, value in params.items() if name not in self.refused}

    def _learn(self, error: openai.APIStatusError, params: dict) -> bool:
        """A 400 that refuses a parameter we sent: send the answer limit under its other name
        (once), or drop an optional parameter; True when the request is worth asking again."""
        if error.status_code not in (400, 422):
            return False
        param = _refused_param(error, params)
        if param in LIMIT_PARAMS and param == self.limit_param and param not in self.refused:
            self.refused.add(param)  # never switch back: a server that refuses both names is refused
            self.limit_param = LIMIT_PARAMS[1 - LIMIT_PARAMS.index(param)]
            return True
        if param in OPTIONAL_PARAMS:
            self.refused.add(param)
            return True
        return False

    def _downgrade(self, mode: str, error: openai.APIStatusError) -> bool:
        """In auto mode, step down FORMAT_CHAIN when the server rejects our response_format."""
        if self.settings.response_format != "auto" or mode == "text":
            return False
        if error.status_code not in (400, 422, 500) or "response_format" not in str(error.message):
            return False
        if self.format == mode:  # concurrent requests may have stepped down already
            self.format = FORMAT_CHAIN[FORMAT_CHAIN.index(mode) + 1]
        return True

    def _refusal(self, e: openai.APIStatusError) -> TeacherRefused:
        hint, fields = REFUSAL_HINTS.get(e.status_code, ("the request was rejected as invalid", ()))
        hint = hint.replace("${key_env}", f"${self.settings.key_env}")
        return TeacherRefused(
            f"The teacher at {self.settings.base_url} refused the request with HTTP {e.status_code} "
            f"({hint}). Server said: {self._redact(_short(e.message))}",
            *fields,
        )

    def _redact(self, text: str) -> str:
        """Servers sometimes echo the key they rejected; it must not reach logs or the ledger."""
        key = self.settings.api_key
        return text.replace(key, "***") if len(key) >= 8 else text

    def _wait_retry_after_or_backoff(self):
        backoff = wait_random_exponential(multiplier=0.5, max=self.settings.backoff_max_s)

        def wait(state) -> float:
            error = state.outcome.exception()
            response = getattr(error, "response", None)
            delay = _retry_after(response.headers) if response is not None else None
            delay = backoff(state) if delay is None else min(delay, self.settings.backoff_max_s)
            if isinstance(error, openai.RateLimitError):
                self.limiter.pause(delay)  # the provider refuses our pace, not this request
            return delay

        return wait

    async def _complete_with_retries(self, mode, output_format, messages, schema, params, request_id) -> Completion:
        body = {"model": self.settings.model, "messages": messages, **params}
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tasks", "schema": schema(False), "strict": True},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema(True)}
        # The generic `post` with the raw-response header (what `with_raw_response` sends) keeps
        # the client's auth, errors and timeouts, without its typed request and response models:
        # a third of the client's CPU per request, which matters at 100 requests/s.
        headers = {RAW_RESPONSE_HEADER: "true", "X-Client-Request-Id": request_id}

        retry_errors: list[str] = []
        started = time.monotonic()
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            wait=self._wait_retry_after_or_backoff(),
            stop=stop_after_attempt(self.settings.max_attempts),
            before_sleep=lambda state: retry_errors.append(self._redact(_describe(state.outcome.exception()))),
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    # counting tokens costs CPU: only while a tokens/minute limit is known
                    limit = params.get(self.limit_param, 0)
                    tokens_needed = estimate_prompt_tokens(messages) + limit if self.limiter.tokens.per_minute else 0
                    await self.limiter.acquire(tokens_needed)
                    raw = await self._client.post("/chat/completions", cast_to=object, body=body, options={"headers": headers})
                    self.limiter.update_from_headers(raw.headers)
                    response = raw.parse()
                    choice = _first_choice(response)
        except Exception as e:
            if not _is_transient(e):
                raise
            raise RequestFailed(self._redact(_describe(e)), attempts, retry_errors) from e
        message = choice["message"]
        content = message.get("content") or ""
        return Completion(
            content=content,
            finish_reason=choice.get("finish_reason") or "unknown",
            usage=_usage(response.get("usage"), messages, content),
            output_format=output_format,
            response_format=mode,
            messages=messages,
            latency_s=round(time.monotonic() - started, 3),
            attempts=attempts,
            retry_errors=retry_errors,
            provider_request_id=raw.headers.get("x-request-id"),
            reasoning=message.get("reasoning_content") or message.get("reasoning") or None,
            params=params,
        )


def _first_choice(response) -> dict:
    """The answer of a chat completion body; EmptyAnswer (transient) for a body without one."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices:
        raise EmptyAnswer("the response had no choices")
    if not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise EmptyAnswer("the response's first choice has no message")
    return choices[0]


def _is_transient(e: BaseException) -> bool:
    """Worth another attempt: overload, timeouts, dropped connections, garbled bodies."""
    garbled = (openai.APIResponseValidationError, json.JSONDecodeError, EmptyAnswer)
    if isinstance(e, (openai.APITimeoutError, openai.APIConnectionError, *garbled)):
        return True
    if not isinstance(e, openai.APIStatusError) or "response_format" in str(e.message):
        return False  # a server that rejects our response_format will not change its mind
    return e.status_code in (408, 409, 429) or e.status_code >= 500


def _retry_after(headers) -> float | None:
    """Seconds the provider asks us to wait: Retry-After (seconds or an HTTP date),
    retry-after-ms, or else the reset time of the limit that ran out."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        resets = [parse_duration(headers.get(f"x-ratelimit-reset-{kind}") or "") for kind in ("requests", "tokens")]
        return max((r for r in resets if r is not None), default=None)
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _usage(usage: dict | None, messages: list[dict], content: str) -> Usage:
    if not isinstance(usage, dict) or usage.get("prompt_tokens") is None:
        return Usage(estimate_prompt_tokens(messages), count_tokens(content), estimated=True)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0  # DeepSeek's name
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(usage["prompt_tokens"], usage.get("completion_tokens") or 0, cached, reasoning_tokens=reasoning)


def _refused_param(error: openai.APIStatusError, params: dict) -> str | None:
    """The parameter a 400 refuses: OpenAI names it in `param`; other servers in the message."""
    if getattr(error, "param", None) in params:
        return error.param
    message = str(error.message).lower()
    if not any(word in message for word in ("unsupported", "not supported", "unrecognized", "unknown", "extra", "not permitted")):
        return None
    named = [name for name in params if f"'{name}'" in message or f'"{name}"' in message or f"`{name}`" in message]
    return named[0] if len(named) == 1 else None


def _describe(e: BaseException | None) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}: {_short(e.message)}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    return f"{type(e).__name__}: {_short(str(e))}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
