"""How one endpoint wants its chat requests, and what its answers mean: shared by the online
client and the Batch API runner, which send the same bodies.

- Structured output: "json_schema" (OpenAI), "json_object" with a schema (llama.cpp's
  grammar), or "text" (Alpaca's numbered format). In "auto" mode a server that rejects the
  `response_format` we sent is asked again one step down that list.
- Reasoning models refuse some parameters. The answer limit goes out as
  `max_completion_tokens` to api.openai.com and as `max_tokens` elsewhere; a 400 that names
  the one we sent as unsupported switches to the other, once (a server that refuses both is
  refused: an answer without a limit could break the cost cap). A 400 that refuses
  `temperature`, `top_p`, `reasoning_effort` or `seed` drops it. The request is then asked again
  at once (a 400 is not billed), and the dialect remembers for the rest of the run.
- Requests in flight together are refused together: whichever learns first, the others were
  made before it and are asked again as the dialect now makes them, not refused.
- A raw prompt (Magpie: the text before a user's message, template tokens included) goes to
  `/completions` with its stop strings, and its answer is the choice's `text`; the same
  parameters are learned as for chat requests. A request's `seed` is sent where the task
  gives one.
- An answer's trace comes back in `message.reasoning_content` (DeepSeek, vLLM's reasoning
  parsers) or `message.reasoning`; inline `<think>` blocks stay in the content, as sent
  (see `selfinstruct.reasoning`). Reasoning tokens are counted apart when usage reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ..tokens import count_tokens, estimate_prompt_tokens

CHAT_COMPLETIONS = "/chat/completions"  # the path of a chat request, after a base URL ending in /v1
COMPLETIONS = "/completions"  # the path of a raw prompt's request
FORMAT_CHAIN = ("json_schema", "json_object", "text")
LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")  # the same limit under two names
OPTIONAL_PARAMS = ("temperature", "top_p", "reasoning_effort", "seed")  # dropped when a model refuses them
REFUSAL_WORDS = ("unsupported", "not supported", "unrecognized", "unknown", "extra", "not permitted")


class EmptyAnswer(Exception):
    """A 200 response whose body had no usable choice (proxies, overloaded servers)."""


@dataclass
class Ask:
    """What one request asks, whatever the endpoint. `messages(output_format)` builds the prompt
    for "json" or "text"; `schema(bounded)` the JSON schema of the answer (None: plain text)."""

    messages: Callable[[str], list[dict]]
    schema: Callable[[bool], dict] | None
    max_tokens: int
    temperature: float
    top_p: float
    reasoning_effort: str | None = None
    prompt: str | None = None  # a raw prompt for /completions instead of `messages`
    stop: tuple[str, ...] = ()  # where a raw prompt's answer ends (its end-of-turn token)
    seed: int | None = None  # the sampling seed: a server otherwise samples the same prompt from one sequence


@dataclass
class Body:
    """A request as the endpoint gets it: the JSON to post, and what it was made from."""

    json: dict
    mode: str  # the structured-output mode used (FORMAT_CHAIN)
    output_format: str  # "json" or "text": how to read the answer
    messages: list[dict]  # a raw prompt's, as one user message: what its prompt tokens are counted on
    params: dict  # the generation parameters sent
    path: str = CHAT_COMPLETIONS  # where it is posted, after the base URL

    @classmethod
    def of(cls, json_body: dict) -> "Body":
        """A body read back (from a batch's input file)."""
        mode = (json_body.get("response_format") or {}).get("type", "text")
        params = {name: json_body[name] for name in (*LIMIT_PARAMS, *OPTIONAL_PARAMS) if name in json_body}
        return cls(json_body, mode, "text" if mode == "text" else "json", json_body["messages"], params)

    def adapted(self, dialect: "Dialect") -> "Body":
        """The same request with the parameters the dialect has learned since it was made (the
        answer limit's name, refused parameters dropped); the prompt is unchanged."""
        limit = next((self.params[name] for name in LIMIT_PARAMS if name in self.params), None)
        params = {name: value for name, value in self.params.items() if name not in (*LIMIT_PARAMS, *dialect.refused)}
        if limit is not None:
            params[dialect.limit_param] = limit
        rest = {k: v for k, v in self.json.items() if k not in (*LIMIT_PARAMS, *OPTIONAL_PARAMS)}
        return Body({**rest, **params}, self.mode, self.output_format, self.messages, params, self.path)


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
    latency_s: float | None  # None through the Batch API
    attempts: int
    retry_errors: list[str] = field(default_factory=list)
    provider_request_id: str | None = None
    reasoning: str | None = None  # the trace from `reasoning_content` / `reasoning`, as sent
    params: dict = field(default_factory=dict)  # the generation parameters the answer was asked with
    batch_id: str | None = None  # the Batch API batch that answered (priced at its discount)


class Dialect:
    def __init__(self, model: str, base_url: str, response_format: str = "auto", first_format: str = "json_schema"):
        self.model = model
        self.auto = response_format == "auto"
        self.format = first_format if self.auto else response_format
        self.limit_param = "max_completion_tokens" if urlparse(base_url).hostname == "api.openai.com" else "max_tokens"
        self.refused: set[str] = set()  # parameters this model refused: not sent again

    def body(self, ask: Ask) -> Body:
        params = {self.limit_param: ask.max_tokens, "temperature": ask.temperature, "top_p": ask.top_p}
        if ask.reasoning_effort is not None:
            params["reasoning_effort"] = ask.reasoning_effort
        if ask.seed is not None:
            params["seed"] = ask.seed
        params = {name: value for name, value in params.items() if name not in self.refused}
        if ask.prompt is not None:
            json_body = {"model": self.model, "prompt": ask.prompt, **params, "stop": list(ask.stop)}
            return Body(json_body, "text", "text", raw_messages(ask.prompt), params, COMPLETIONS)
        mode = self.format if ask.schema is not None else "text"
        output_format = "text" if mode == "text" else "json"
        messages = ask.messages(output_format)
        json_body = {"model": self.model, "messages": messages, **params}
        if mode == "json_schema":
            json_body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": ask.schema(False), "strict": True},
            }
        elif mode == "json_object":
            json_body["response_format"] = {"type": "json_object", "schema": ask.schema(True)}
        return Body(json_body, mode, output_format, messages, params)

    def learn(self, status: int, message: str, param: str | None, body: Body) -> bool:
        """The endpoint refused `body` (HTTP `status`): True when a changed body is worth sending,
        a lower structured-output mode or a parameter sent another way or not at all, learned
        from this refusal or by another request since `body` was made."""
        if status not in (400, 422, 500):  # the statuses a refused format or parameter comes with
            return False
        return self._outdated(body) or self._downgrade(message, body) or self._learn_param(status, message, param, body)

    def _outdated(self, body: Body) -> bool:
        """`body` is not what the dialect would send now: a concurrent request has learned since."""
        sent_limit = next((name for name in LIMIT_PARAMS if name in body.params), self.limit_param)
        stepped_down = self.auto and body.mode != "text" and body.mode != self.format
        return stepped_down or sent_limit != self.limit_param or not self.refused.isdisjoint(body.params)

    def _downgrade(self, message: str, body: Body) -> bool:
        if not self.auto or body.mode == "text" or "response_format" not in message:
            return False
        self.format = FORMAT_CHAIN[FORMAT_CHAIN.index(body.mode) + 1]
        return True

    def _learn_param(self, status: int, message: str, param: str | None, body: Body) -> bool:
        if status not in (400, 422):
            return False
        param = refused_param(message, param, body.params)
        if param in LIMIT_PARAMS:
            other = LIMIT_PARAMS[1 - LIMIT_PARAMS.index(param)]
            if other in self.refused:  # never switch back: a server that refuses both names is refused
                return False
            self.refused.add(param)
            self.limit_param = other
            return True
        if param in OPTIONAL_PARAMS:
            self.refused.add(param)
            return True
        return False


def refused_param(message: str, param: str | None, sent: dict) -> str | None:
    """The parameter a 400 refuses: OpenAI names it in `param`; other servers in the message."""
    if param in sent:
        return param
    message = message.lower()
    if not any(word in message for word in REFUSAL_WORDS):
        return None
    named = [name for name in sent if f"'{name}'" in message or f'"{name}"' in message or f"`{name}`" in message]
    return named[0] if len(named) == 1 else None


def raw_messages(prompt: str) -> list[dict]:
    """A raw prompt as one user message, for the token counts (an upper bound: the message's
    framing is counted on top) and the ledger."""
    return [{"role": "user", "content": prompt}]


def read_answer(response, body: Body, **details) -> Completion:
    """The Completion of a chat completion `response` (its JSON) to `body`, or of a raw
    completion's; EmptyAnswer for a response without one. `details` fill the rest (latency,
    attempts, ids)."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices:
        raise EmptyAnswer("the response had no choices")
    if body.path == COMPLETIONS:  # a raw completion's choice holds its text, not a message
        if not isinstance(choices[0], dict) or not isinstance(choices[0].get("text"), str):
            raise EmptyAnswer("the response's first choice has no text")
        message = {"content": choices[0]["text"]}
    elif not isinstance(choices[0], dict) or not isinstance(choices[0].get("message"), dict):
        raise EmptyAnswer("the response's first choice has no message")
    else:
        message = choices[0]["message"]
    content = message.get("content") or ""
    return Completion(
        content=content,
        finish_reason=choices[0].get("finish_reason") or "unknown",
        usage=_usage(response.get("usage"), body.messages, content),
        output_format=body.output_format,
        response_format=body.mode,
        messages=body.messages,
        reasoning=message.get("reasoning_content") or message.get("reasoning") or None,
        params=body.params,
        **details,
    )


def _usage(usage: dict | None, messages: list[dict], content: str) -> Usage:
    if not isinstance(usage, dict) or usage.get("prompt_tokens") is None:
        return Usage(estimate_prompt_tokens(messages), count_tokens(content), estimated=True)
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0  # the second: DeepSeek's name
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(usage["prompt_tokens"], usage.get("completion_tokens") or 0, cached, reasoning_tokens=reasoning)
