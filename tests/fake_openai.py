"""A stand-in OpenAI chat-completions server on loopback that misbehaves on cue.

It speaks the wire format the `openai` client expects (JSON body, `usage`, `x-request-id`,
`Retry-After`), answers with distinct, valid English tasks, and records every call so
tests can compare the client's ledger with what the "provider" actually served.

    with FakeOpenAI(faults=["429", "500", "hang"]) as server:
        ...  # the first three HTTP requests fail in those ways, later ones succeed
        server.completed  # calls that returned an answer, with their usage

Faults, applied to HTTP requests in arrival order:
  ok, 429 (Retry-After: 1), 500, hang (sleeps past any client timeout), 401,
  malformed_json (200 with content that is not JSON), truncated (finish_reason=length,
  content cut), empty_choice (200 with choices: []), bad_body (200 with an HTML body),
  gateway (a proxy's 502 page in HTML).

A request that is not the bootstrap prompt (an instruction to answer) gets `answer(prompt)`;
a rating prompt (`selfinstruct judge`) gets `rate(prompt)` when it is set: a (score,
rationale) pair, written as JSON for a JSON response_format and as AlpaGasus's two lines
otherwise, or a string sent as it is (a malformed rating).
`reasoning` makes it behave like a reasoning teacher:
  "openai"   an OpenAI reasoning model: 400 unsupported_parameter for `max_tokens`, 400
             unsupported_value for a temperature or top_p other than 1; usage reports
             `completion_tokens_details.reasoning_tokens` (billed as completion tokens);
  "deepseek" DeepSeek's reasoner: the trace in `message.reasoning_content`, and reasoning
             that its `max_tokens` does not bound (`reasoning_tokens` each answer);
  "r1"       an R1-distilled model behind vLLM: the trace inline, without the opening <think>.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from loopback import LoopbackServer

WORDS = """
river garden teacher planet window market village engine winter summer autumn spring
doctor bridge castle forest desert island mountain ocean valley harbor station library
museum kitchen bakery farmer pilot sailor painter author singer student scientist
bicycle train rocket camera laptop phone battery compass ladder hammer blanket pillow
apple banana cherry lemon carrot potato tomato pepper onion garlic butter cheese bread
coffee tea juice honey sugar salt flour rice bean lentil soup salad pasta pizza cookie
tiger rabbit eagle dolphin turtle spider beetle salmon parrot wolf fox horse sheep goat
budget invoice contract meeting schedule project deadline report survey interview
network server database password browser keyboard printer monitor software hardware
history science poetry grammar physics chemistry biology geology economics politics
festival holiday wedding birthday concert theater stadium marathon tournament picnic
""".split()


VERBS = "Explain Describe Summarize Compare Suggest List Classify Rewrite Evaluate Plan Outline Predict".split()


def make_task(rng: random.Random) -> dict:
    """A task made of random words: any two share too little to be near-duplicates."""
    words = lambda n: " ".join(rng.sample(WORDS, n))  # noqa: E731
    return {
        "instruction": f"{rng.choice(VERBS)} the {words(3)} for a {words(3)} about {words(2)}.",
        "input": "" if rng.random() < 0.5 else f"A {words(4)} with {words(3)}.",
        "output": f"The {words(5)} works well with {words(3)}.",
    }


@dataclass
class Call:
    arrived: float
    client_request_id: str | None
    fault: str
    status: int
    server_request_id: str
    response_format: dict | None
    usage: dict | None = None  # what the answer reported (None: no answer was made)
    delivered: bool = False  # the answer was written to the connection


@dataclass
class FakeOpenAI(LoopbackServer):
    faults: list[str] = field(default_factory=list)
    tasks_per_answer: int = 5
    delay_s: float = 0.0
    hang_s: float = 30.0
    reject_json_schema: bool = False  # answer json_schema like llama.cpp does: HTTP 500
    send_usage: bool = True
    extra_headers: dict = field(default_factory=dict)
    reasoning: str | None = None  # "openai", "deepseek" or "r1"
    reasoning_tokens: int = 300
    answer: Callable[[str], str] = lambda prompt: f"Here is my answer to: {prompt[:60]}"
    rate: Callable[[str], tuple[object, str] | str] | None = None
    calls: list[Call] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)  # every request body, in arrival order

    def __post_init__(self):
        self._lock = threading.Lock()
        self._rng = random.Random(1234)
        self._listen(self._handler_class())

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def completed(self) -> list[Call]:
        """Answers delivered to the client: what a provider would bill."""
        return [c for c in self.calls if c.delivered and c.status == 200]

    # ------------------------------------------------------------ answering

    def _next_call(self, client_request_id: str | None, response_format: dict | None) -> tuple[Call, list[dict]]:
        with self._lock:
            fault = self.faults[len(self.calls)] if len(self.calls) < len(self.faults) else "ok"
            if self.reject_json_schema and (response_format or {}).get("type") == "json_schema":
                fault = "reject_json_schema"
            call = Call(time.monotonic(), client_request_id, fault, 200, f"srv-{len(self.calls)}", response_format)
            self.calls.append(call)
            tasks = [make_task(self._rng) for _ in range(self.tasks_per_answer)]
        return call, tasks

    def refusal(self, body: dict) -> dict | None:
        """What an OpenAI reasoning model says to parameters it does not take."""
        if self.reasoning != "openai":
            return None
        if "max_tokens" in body:
            return {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        for name in ("temperature", "top_p"):
            if body.get(name, 1) != 1:
                return {
                    "message": f"Unsupported value: '{name}' does not support {body[name]} with this model. Only the default (1) value is supported.",
                    "type": "invalid_request_error",
                    "param": name,
                    "code": "unsupported_value",
                }
        return None

    def respond(self, body: dict, headers) -> tuple[Call, dict, bytes]:
        with self._lock:
            self.bodies.append(body)
        refusal = self.refusal(body)
        if refusal is not None:
            call, _ = self._next_call(headers.get("X-Client-Request-Id"), body.get("response_format"))
            call.status = 400
            return call, {"x-request-id": call.server_request_id}, json.dumps({"error": refusal}).encode()
        return self._answer(body, headers)

    def _answer(self, body: dict, headers) -> tuple[Call, dict, bytes]:
        call, tasks = self._next_call(headers.get("X-Client-Request-Id"), body.get("response_format"))
        out_headers = {"x-request-id": call.server_request_id, **self.extra_headers}
        fault = call.fault
        if fault == "hang":
            time.sleep(self.hang_s)
        if self.delay_s:
            time.sleep(self.delay_s)
        errors = {
            "429": (429, "Rate limit reached for requests", {"retry-after": "1"}),
            "500": (500, "The server had an error while processing your request.", {}),
            # Like OpenAI, the 401 echoes the key it got: the client must never log it.
            "401": (401, f"Incorrect API key provided: {headers.get('Authorization', '')[7:]}.", {}),
            "reject_json_schema": (
                500,
                "1 validation error: ('body', 'response_format', 'type') Input should be 'text' or 'json_object'",
                {},
            ),
        }
        if fault in errors:
            call.status, message, extra = errors[fault]
            return call, {**out_headers, **extra}, json.dumps({"error": {"message": message, "type": "error"}}).encode()
        if fault == "bad_body":
            return call, out_headers, b"<html><body>Bad gateway</body></html>"
        if fault == "gateway":
            call.status = 502
            return call, out_headers, b"<html><body><h1>502 Bad Gateway</h1></body></html>"

        messages = body.get("messages", [])
        prompt = messages[-1]["content"] if messages else ""
        json_format = (body.get("response_format") or {}).get("type") in ("json_schema", "json_object")
        if self.rate is not None and "Please rate the accuracy and helpfulness" in prompt:
            rating = self.rate(prompt)
            if isinstance(rating, str):
                content = rating
            else:
                score, rationale = rating
                content = (
                    json.dumps({"score": score, "rationale": rationale}) if json_format else f"{score}\n{rationale}"
                )
        elif "You are asked to come up with a set of" not in prompt:
            content = self.answer(prompt)
        elif json_format:
            content = json.dumps({"tasks": tasks})
        else:
            content = "".join(
                f"{i}. Instruction: {t['instruction']}\n{i}. Input:\n{t['input'] or '<noinput>'}\n{i}. Output:\n{t['output']}\n###\n"
                for i, t in enumerate(tasks, start=4)
            )
        finish_reason = "stop"
        if fault == "malformed_json":
            content = "Sure! Here are some tasks: {tasks: [instruction = 'oops'"
        elif fault == "truncated":
            content, finish_reason = content[: int(len(content) * 0.7)], "length"
        usage = {
            "prompt_tokens": sum(len(m.get("content", "")) for m in messages) // 4,
            "completion_tokens": len(content) // 4 + 1,
        }
        message = {"role": "assistant", "content": content}
        if self.reasoning is not None:
            trace = (
                f"Let me think about this step by step. The request was {len(prompt)} characters long, "
                "so a short answer will do. I check it once more, and then I write it down."
            )
            usage["completion_tokens"] += self.reasoning_tokens
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
            if self.reasoning == "deepseek":
                message["reasoning_content"] = trace
            elif self.reasoning == "r1":
                message["content"] = f"{trace}\n</think>\n\n{content}"
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choices = [] if fault == "empty_choice" else [{"index": 0, "message": message, "finish_reason": finish_reason}]
        answer = {
            "id": f"chatcmpl-{call.server_request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": choices,
        }
        if self.send_usage:
            answer["usage"] = usage
        call.usage = usage
        return call, out_headers, json.dumps(answer).encode()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                call, headers, payload = server.respond(body, self.headers)
                try:
                    self.send_response(call.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                    call.delivered = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): as a real server would, drop the answer

            def log_message(self, *args):
                pass

        return Handler
