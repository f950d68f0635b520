"""One chat completion from any OpenAI-compatible endpoint, with the failure handling a
long paid run needs.

- 429, 5xx, timeouts and dropped connections are retried by tenacity with exponential
  backoff and jitter; a `Retry-After` / `retry-after-ms` / `x-ratelimit-reset-*` header wins
  over the backoff, and a 429 pauses the whole rate limiter, not only the request that got it.
- 400/401/403/404/422/501 raise `TeacherRefused` at once: retrying cannot fix them, unless the
  endpoint's dialect learns from it (a structured-output mode or a parameter it does not take,
  see `dialect`) and the request is asked again, changed.
- Until the endpoint has once answered like an API (any JSON, an error included), a refused
  connection, an unknown host or an answer that is not JSON is a wrong `base_url`, not a busy
  server: it raises `TeacherRefused` naming the URL and the cause at once, where retries would
  hide it for half a minute. Later, the same failures are transient and retried.
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
from openai._constants import RAW_RESPONSE_HEADER
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..errors import SettingError
from ..tokens import estimate_prompt_tokens
from .dialect import COMPLETIONS, Ask, Body, Completion, Dialect, EmptyAnswer, read_answer
from .limiter import RateLimiter, parse_duration

REFUSAL_HINTS = {  # status -> (hint, the settings it names)
    401: ("the API key was not accepted: check the key in ${key_env}", ()),
    403: ("the key has no access to this model or endpoint", ()),
    404: ("the endpoint or model was not found: check {base_url} and {model}", ("base_url", "model")),
    501: (
        "the server does not implement chat completions: check that {base_url} is an OpenAI-compatible API, "
        "most end in /v1",
        ("base_url",),
    ),
}
# a raw prompt (Magpie) refused: most hosted chat APIs have no /completions, or not for this model
RAW_PROMPT_HINT = (
    "raw prompts need a server with /completions (under {base_url}) for {model}: llama.cpp's server, vLLM, "
    "Ollama, the embedded teacher; most hosted chat APIs have none",
    ("base_url", "model"),
)
GATEWAY_STATUSES = (502, 503, 504)  # a proxy's error page while the API behind it starts: retried, even at first
CONNECT_ERRORS = ("ConnectError", "UnsupportedProtocol")  # httpx's (httpx2's) failures to open a connection


class TeacherRefused(SettingError):
    """The endpoint answered with an error that retrying cannot fix (400/401/403/404/422/501),
    or is not an API at all."""


class NotJSON(Exception):
    """A 200 whose body is not JSON (a web page): the openai client hands such a body back as text."""


class RequestFailed(Exception):
    """Transient failures went on until the attempts ran out. `kind` is the last one in a word or
    two ("HTTP 429", "timeout", "connection"), `retry_after_s` what the endpoint asked to wait."""

    def __init__(
        self, error: str, attempts: int, retry_errors: list[str], kind: str = "", retry_after_s: float | None = None
    ):
        super().__init__(error)
        self.attempts = attempts
        self.retry_errors = retry_errors
        self.kind = kind
        self.retry_after_s = retry_after_s


@dataclass
class TeacherSettings:
    base_url: str
    model: str
    api_key: str
    key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_attempts: int = 8
    backoff_max_s: float = 60.0
    response_format: str = "auto"  # "auto" or one of dialect.FORMAT_CHAIN
    first_format: str = "json_schema"  # where "auto" starts
    reached: bool = False  # answered already (the embedded teacher's probe): first failures are transient too


class TeacherClient:
    def __init__(
        self,
        settings: TeacherSettings,
        limiter: RateLimiter | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        """`on_retry(kind)` hears of each failure about to be retried ("HTTP 429", "timeout"...)."""
        self.settings = settings
        self.limiter = limiter or RateLimiter()
        self.on_retry = on_retry
        self.reached = settings.reached  # the endpoint has answered like an API: connection failures are transient now
        self.dialect = Dialect(settings.model, settings.base_url, settings.response_format, settings.first_format)
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_s,
            max_retries=0,  # tenacity retries, so that every attempt is seen and counted
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(self, ask: Ask, request_id: str) -> Completion:
        """Ask once (retrying transient failures). `request_id` goes out as
        `X-Client-Request-Id`, so provider logs can be matched to the ledger."""
        while True:
            body = self.dialect.body(ask)
            try:
                return await self._complete_with_retries(body, request_id)
            except openai.APIStatusError as e:
                if not self.dialect.learn(e.status_code, str(e.message), getattr(e, "param", None), body):
                    raise self._refusal(e, body) from None

    def _refusal(self, e: openai.APIStatusError, body: Body) -> TeacherRefused:
        hint, fields = REFUSAL_HINTS.get(e.status_code, ("the request was rejected as invalid", ()))
        if body.path == COMPLETIONS and e.status_code in (400, 404, 405, 501):
            hint, fields = RAW_PROMPT_HINT
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

    def _worth_retrying(self, e: BaseException) -> bool:
        """Tenacity's question, asked of every failure: the one place that sees them all."""
        if isinstance(e, openai.APIStatusError) and e.body is not None and not isinstance(e.body, str):
            self.reached = True  # an error in JSON: an API is there, busy or refusing
        return _is_transient(e) and (self.reached or _wrong_endpoint(e) is None)

    def _unusable(self, problem: str) -> TeacherRefused:
        return TeacherRefused(f"The teacher at {self.settings.base_url} {problem}; check {{base_url}}", "base_url")

    def _retrying(self, e: BaseException, retry_errors: list[str]) -> None:
        retry_errors.append(self._redact(_describe(e)))
        if self.on_retry is not None:
            self.on_retry(_kind(e))

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

    async def _complete_with_retries(self, body: Body, request_id: str) -> Completion:
        # The generic `post` with the raw-response header (what `with_raw_response` sends) keeps
        # the client's auth, errors and timeouts, without its typed request and response models:
        # a third of the client's CPU per request, which matters at 100 requests/s.
        headers = {RAW_RESPONSE_HEADER: "true", "X-Client-Request-Id": request_id}

        retry_errors: list[str] = []
        started = time.monotonic()
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._worth_retrying),
            wait=self._wait_retry_after_or_backoff(),
            stop=stop_after_attempt(self.settings.max_attempts),
            before_sleep=lambda state: self._retrying(state.outcome.exception(), retry_errors),
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    # counting tokens costs CPU: only while a tokens/minute limit is known
                    limit = body.params.get(self.dialect.limit_param, 0)
                    tokens_needed = (
                        estimate_prompt_tokens(body.messages) + limit if self.limiter.tokens.per_minute else 0
                    )
                    await self.limiter.acquire(tokens_needed)
                    raw = await self._client.post(
                        body.path, cast_to=object, body=body.json, options={"headers": headers}
                    )
                    self.limiter.update_from_headers(raw.headers)
                    answer = raw.parse()
                    if isinstance(answer, str):
                        raise NotJSON(
                            f"HTTP {raw.status_code} {raw.headers.get('content-type', '')}: {_short(answer, 80)}"
                        )
                    self.reached = True
                    completion = read_answer(
                        answer,
                        body,
                        latency_s=round(time.monotonic() - started, 3),
                        attempts=attempts,
                        retry_errors=retry_errors,
                        provider_request_id=raw.headers.get("x-request-id"),
                    )
        except Exception as e:
            if not _is_transient(e):
                raise
            problem = None if self.reached else _wrong_endpoint(e)
            if problem is not None:
                raise self._unusable(self._redact(problem)) from None
            response = getattr(e, "response", None)
            raise RequestFailed(
                self._redact(_describe(e)),
                attempts,
                retry_errors,
                _kind(e),
                _retry_after(response.headers) if response is not None else None,
            ) from e
        return completion


def _is_transient(e: BaseException) -> bool:
    """Worth another attempt: overload, timeouts, dropped connections, garbled bodies."""
    garbled = (openai.APIResponseValidationError, json.JSONDecodeError, EmptyAnswer, NotJSON)
    if isinstance(e, (openai.APITimeoutError, openai.APIConnectionError, *garbled)):
        return True
    if not isinstance(e, openai.APIStatusError) or "response_format" in str(e.message):
        return False  # a server that rejects our response_format will not change its mind
    return retried_status(e.status_code)


def retried_status(status: int) -> bool:
    """An HTTP status worth asking again, online or in a batch's next round: a timeout, a
    conflict, overload and server errors, but not 501 (Not Implemented) or 505 (HTTP Version
    Not Supported), which say the request can never be served there."""
    return status in (408, 409, 429) or (status >= 500 and status not in (501, 505))


def _wrong_endpoint(e: BaseException) -> str | None:
    """What a transient failure says of an endpoint that has never answered like an API: no
    connection could be made, or it answered with something other than JSON (None: it may be busy)."""
    if isinstance(e, openai.APIConnectionError) and not isinstance(e, openai.APITimeoutError):
        chain = _causes(e)
        if any(type(cause).__name__ in CONNECT_ERRORS for cause in chain):
            return f"cannot be reached: {_connect_failure(chain[-1])}"
    if isinstance(e, (NotJSON, json.JSONDecodeError)):
        return (
            f"answered with something that is not JSON, so it is not an OpenAI-compatible API ({_short(str(e), 120)})"
        )
    if isinstance(e, openai.APIStatusError) and isinstance(e.body, str) and e.status_code not in GATEWAY_STATUSES:
        return f"answered HTTP {e.status_code} with a body that is not JSON, so it is not an OpenAI-compatible API"
    return None


def _causes(e: BaseException) -> list[BaseException]:
    """`e` and the exceptions it was raised from, outermost first."""
    chain = [e]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 20:
        chain.append(cause)
    return chain


def _connect_failure(root: BaseException) -> str:
    if isinstance(root, ConnectionRefusedError):
        return "connection refused (is a server listening on that port?)"
    if isinstance(root, socket.gaierror):
        return f"unknown host ({root.strerror})"
    return _short(str(root))


def _kind(e: BaseException) -> str:
    """A failure in a word or two, for the progress bar: HTTP 429, timeout, connection..."""
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    if isinstance(e, openai.APIConnectionError):
        return "connection"
    return "bad answer"


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


def _describe(e: BaseException | None) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"HTTP {e.status_code}: {_short(e.message)}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    if isinstance(e, openai.APIConnectionError):  # its own message is always "Connection error."
        return f"{type(e).__name__}: {_short(str(_causes(e)[-1]))}"
    return f"{type(e).__name__}: {_short(str(e))}"


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
