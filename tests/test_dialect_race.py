"""Concurrent requests that a server refuses for the same reason: every one of them is asked
again the way the dialect has learned meanwhile, whichever request learned it."""

import threading

import pytest
from fake_openai import FakeOpenAI

from selfinstruct.engine.job import StopReason
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.dialect import Ask, Dialect

UNSUPPORTED_MAX_TOKENS = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
)


class HeldRefusals(FakeOpenAI):
    """A reasoning model behind a gateway (not api.openai.com) that refuses `max_tokens` with
    OpenAI's 400, and holds its refusals until `in_flight` requests have arrived: all of them are
    refused before the client has learned anything."""

    def __init__(self, in_flight: int):
        super().__init__(reasoning="openai", tasks_per_answer=5)
        self.in_flight = in_flight
        self.arrived = 0
        self.all_arrived = threading.Event()

    def refusal(self, body: dict) -> dict | None:
        refusal = super().refusal(body)
        if refusal is not None:
            with self._lock:
                self.arrived += 1
                if self.arrived >= self.in_flight:
                    self.all_arrived.set()
            self.all_arrived.wait(timeout=10)
        return refusal


@pytest.mark.parametrize("concurrency", [4, 8])
def test_every_request_refused_for_max_tokens_at_once_is_asked_again(tmp_path, concurrency):
    with HeldRefusals(concurrency) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="gpt-5-mini",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=20 * concurrency,
            concurrency=concurrency,
            max_tokens=2000,
        )
        result = generate(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    # all in flight were refused (their refusals are recorded as they are let go, so in any order
    # among the first answers), and none was refused again
    assert sorted(c.status for c in server.calls) == [200] * (len(server.calls) - concurrency) + [400] * concurrency
    assert all("max_tokens" in body for body in server.bodies[:concurrency])  # they arrived before any was let go
    assert all("max_completion_tokens" in body for body in server.bodies[concurrency:])
    events = [e for _, e in read_jsonl(tmp_path / "ledger.jsonl")]
    assert not [e for e in events if e["event"] == "failure"]
    assert sum(e["event"] == "response" for e in events) == len(server.calls) - concurrency


def test_a_body_made_before_the_dialect_learned_is_sent_again_as_it_now_would_be():
    dialect = Dialect("gpt-5-mini", "https://gateway.example/v1", response_format="auto")
    ask = Ask(lambda fmt: [{"role": "user", "content": "hi"}], lambda bounded: {"type": "object"}, 100, 0.7, 1.0)
    bodies = [dialect.body(ask) for _ in range(3)]  # in flight together
    assert all("max_tokens" in b.params for b in bodies)
    for body in bodies:  # each refused for the limit's name: the first learns, the others follow
        assert dialect.learn(400, UNSUPPORTED_MAX_TOKENS, "max_tokens", body)
    assert dialect.body(ask).params == {"max_completion_tokens": 100, "temperature": 0.7, "top_p": 1.0}
    bodies = [dialect.body(ask) for _ in range(3)]
    for body in bodies:  # the same for a structured-output mode refused at once
        assert dialect.learn(500, "'response_format' of type 'json_schema' is not supported", None, body)
    assert dialect.format == "json_object"  # stepped down once, not past json_object
    # a refusal the dialect cannot learn from stays a refusal: the request is not sent again forever
    fresh = dialect.body(ask)
    assert not dialect.learn(400, "This model's maximum context length is 128000 tokens", None, fresh)
    assert not dialect.learn(401, "Incorrect API key provided", None, fresh)
    # a server that refuses both names of the limit is refused, not sent requests without one
    assert not dialect.learn(400, "Unsupported parameter: 'max_completion_tokens'", "max_completion_tokens", fresh)
    assert "max_completion_tokens" in dialect.body(ask).params
