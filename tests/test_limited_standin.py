"""The multi-endpoint benchmark's stand-in enforces the limits its figures are measured against:
at most N requests in any sliding minute (429 with the Retry-After of the first free slot), a
hidden concurrency limit (429 without one), a log that names every request answered, and that
survives a SIGKILL. Driven through its ASGI app with an injected clock and an injected wait."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from limited_standin import LimitedStandIn, StandInProcess, read_log
from standin import application

BOOTSTRAP = "You are asked to come up with a set of 5 diverse task instructions."


def standin(tmp_path: Path, rpm_window: int | None = None, max_in_flight: int | None = None) -> LimitedStandIn:
    made = LimitedStandIn(0.5, 2, rpm_window, 7, 3, max_in_flight=max_in_flight, log=tmp_path / "standin.jsonl")
    made.clock = FakeClock()
    return made


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def post(app, request_id: str, prompt: str = "Name three rivers.") -> tuple[int, dict, dict]:
    """One chat completion through the ASGI app, as uvicorn would hand it over."""
    payload = json.dumps({"model": "standin", "messages": [{"role": "user", "content": prompt}]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-client-request-id", request_id.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_sliding_minute_admits_at_most_the_limit_in_any_minute_and_no_fewer(tmp_path):
    """Five minutes of arrivals at about three times the limit, at random moments: no minute
    holds more than 120 answers, and each 429 came when the minute was full, with the wait
    until its oldest request leaves."""
    limited = standin(tmp_path, rpm_window=120)
    limited.latency = 0  # the answer is immediate: only the limit is under test
    app, rng = application(limited), random.Random(3)
    results = []

    async def drive():
        for number in range(1800):
            limited.clock.now += rng.expovariate(6.0)  # 6 requests/s on average, 360/min
            results.append((limited.clock.now, *(await post(app, f"r{number}"))))

    asyncio.run(drive())
    answered = [now for now, status, _, _ in results if status == 200]
    for now, status, headers, _ in results:
        in_window = [t for t in answered if now - 60 < t < now]
        if status == 200:
            assert len(in_window) < 120, f"admitted at {now} with {len(in_window)} already in the minute"
        else:
            assert status == 429 and len(in_window) == 120, f"refused at {now} with only {len(in_window)} in the minute"
            assert float(headers["retry-after"]) == pytest.approx(min(in_window) + 60 - now, abs=1e-3)
    minutes = (results[-1][0] - results[0][0]) / 60
    assert 120 * (minutes - 1) <= len(answered) <= 120 * (minutes + 1)
    log = read_log(tmp_path / "standin.jsonl")
    assert [line["status"] for line in log] == [status for _, status, _, _ in results]
    assert {line["limit"] for line in log if line["status"] == 429} == {"rpm"}


def test_retry_after_names_the_moment_a_slot_frees(tmp_path):
    limited = standin(tmp_path, rpm_window=3)
    limited.latency = 0
    app = application(limited)

    async def at(now: float, request_id: str) -> tuple[int, dict, dict]:
        limited.clock.now = now
        return await post(app, request_id)

    async def drive():
        assert [(await at(1000 + t, f"a{t}"))[0] for t in (0, 1, 2)] == [200, 200, 200]
        status, headers, body = await at(1010, "b")
        assert status == 429 and float(headers["retry-after"]) == pytest.approx(50)
        assert body["error"]["message"] == "Rate limit reached for requests"
        assert (await at(1059.9, "c"))[0] == 429
        assert (await at(1060, "d"))[0] == 200  # the request of 1000 has left the minute
        assert (await at(1060.5, "e"))[0] == 429

    asyncio.run(drive())


def test_hidden_concurrency_limit_refuses_above_it_without_telling_and_spends_no_quota(tmp_path):
    limited = standin(tmp_path, rpm_window=5, max_in_flight=3)
    gate = asyncio.Event()

    async def held(_seconds: float) -> None:
        await gate.wait()

    limited.wait = held
    app = application(limited)

    async def drive():
        first = [asyncio.create_task(post(app, f"r{n}")) for n in range(5)]
        # the three before them are held in flight (a limit that let a fourth in would hold it: time out)
        refused = [await asyncio.wait_for(task, 10) for task in first[3:]]
        assert limited.in_flight == 3 and not any(task.done() for task in first[:3])
        for status, headers, body in refused:
            assert status == 429 and "retry-after" not in headers
            assert body["error"]["message"] == "Too many concurrent requests"
        gate.set()
        assert [(await task)[0] for task in first[:3]] == [200, 200, 200]
        assert limited.in_flight == 0
        # the two refused used none of the minute's 5: two more fit before the rate limit
        assert [(await post(app, f"s{n}"))[0] for n in range(3)] == [200, 200, 429]

    asyncio.run(drive())
    log = read_log(tmp_path / "standin.jsonl")
    by_id = {line["id"]: line for line in log}
    assert [by_id[f"r{n}"]["limit"] for n in range(5)] == [None, None, None, "concurrency", "concurrency"]
    assert [by_id[f"r{n}"]["in_flight"] for n in range(5)] == [0, 1, 2, 3, 3]
    assert by_id["s2"]["limit"] == "rpm"
    assert all(line["ended"] >= line["arrived"] for line in log)


def test_answers_fit_the_task_asked(tmp_path):
    limited = standin(tmp_path)
    limited.latency = 0
    app = application(limited)

    async def drive():
        _, _, bootstrap = await post(app, "g", BOOTSTRAP)
        _, headers, answer = await post(app, "a", "Name three rivers.")
        return bootstrap, headers, answer

    bootstrap, headers, answer = asyncio.run(drive())
    tasks = json.loads(bootstrap["choices"][0]["message"]["content"])["tasks"]
    assert len(tasks) == 2 and set(tasks[0]) == {"instruction", "input", "output"}
    text = answer["choices"][0]["message"]["content"]
    assert text in limited.texts and len(text.split()) >= 10
    assert answer["usage"]["completion_tokens"] > 0 and headers["x-request-id"] == "srv-2"
    log = read_log(tmp_path / "standin.jsonl")
    assert log[0]["prompt"] != log[1]["prompt"]  # the digest tells prompts apart


def test_a_killed_standin_logged_what_it_answered_and_nothing_it_did_not(tmp_path):
    """The real process on loopback: one request answered, one in flight when it is SIGKILLed."""
    process = StandInProcess("killed", tmp_path / "killed.jsonl", rpm_window=60, latency=1.0, tasks=2, answers=2)
    try:

        def ask(request_id: str, outcome: list) -> None:
            body = json.dumps({"messages": [{"role": "user", "content": f"Question {request_id}"}]}).encode()
            request = urllib.request.Request(
                f"{process.base_url}/chat/completions",
                body,
                {"Content-Type": "application/json", "X-Client-Request-Id": request_id},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    outcome.append(response.status)
            except (urllib.error.URLError, ConnectionError) as error:
                outcome.append(type(error).__name__)

        answered, cut = [], []
        ask("answered", answered)
        in_flight = threading.Thread(target=ask, args=("cut", cut))
        in_flight.start()
        deadline = time.monotonic() + 30
        while len(stats(process)["served"]) < 2:  # "cut" has arrived and is being answered
            assert time.monotonic() < deadline
        process.kill()
        in_flight.join(30)
    finally:
        process.close()
    assert answered == [200] and cut and cut[0] != 200
    assert [(line["id"], line["status"]) for line in process.lines()] == [("answered", 200)]


def stats(process: StandInProcess) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/stats", timeout=10) as response:
        return json.load(response)


def test_the_benchmark_counts_the_first_minute_by_arrival_and_finds_answers_paid_twice():
    """benchmarks/multi_endpoint.py's figures from logs: the minute is [start, start + 60 s) of
    arrivals, 429s are split by the limit that gave them, and an id or prompt with a 200 from
    two stand-ins is found."""
    from multi_endpoint import answered_twice, minute_figures

    def line(request_id, arrived, status=200, limit=None, prompt=None):
        return {"id": request_id, "prompt": prompt or request_id, "arrived": arrived, "status": status, "limit": limit}

    lines = {
        "a": [line("r1", 100.0), line("r2", 159.9), line("r3", 160.0), line("r4", 120, 429, "rpm")],
        "b": [line("r5", 99.9), line("r6", 130, 429, "concurrency"), line("r7", 131), line("r1", 140, prompt="x")],
    }
    figures = minute_figures(lines, {"a": 120, "b": 240}, start=100.0)
    assert figures["per_endpoint"] == {
        "a": {"served": 2, "limit": 120, "refused_429": 1},
        "b": {"served": 2, "limit": 240, "refused_429": 1},
    }
    assert (figures["served"], figures["refused_rpm"], figures["refused_concurrency"]) == (4, 1, 1)
    assert figures["share_429"] == pytest.approx(2 / 6, abs=1e-4) and figures["share_of_limit"] == round(4 / 360, 3)
    assert figures["seconds_to_90_percent"] is None  # 4 served never reach 90% of 360
    three = {"a": [line("s1", 100.0), line("s2", 110.0), line("s3", 130.5), line("s4", 131, 429, "rpm")]}
    assert minute_figures(three, {"a": 3}, start=100.0)["seconds_to_90_percent"] == 30.5
    twice = answered_twice(lines)
    assert twice["ids_answered_twice"] == ["r1"] and twice["prompts_answered_twice"] == 0
    lines["b"].append(line("r9", 150, prompt="r2"))  # another id, the same prompt: paid twice all the same
    assert answered_twice(lines)["prompts_answered_twice"] == 1
