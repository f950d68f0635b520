"""One run over several endpoints (`engine.runners.multi`): routing by capacity, adaptive
concurrency (AIMD) under a simulated clock, failover from a killed endpoint and a wrong key,
each endpoint at its own price and with its own dialect, resumes with endpoints added or removed."""

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_no_key_in
from fake_openai import FakeOpenAI
from test_teacher_limits import Clock

from selfinstruct.cli import main
from selfinstruct.engine.config import JobConfig, make_config
from selfinstruct.engine.endpoints import EndpointSpec
from selfinstruct.engine.runners.multi import HORIZON_S, Lane, Router
from selfinstruct.errors import SettingError
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.client import RequestFailed, TeacherSettings
from selfinstruct.teacher.concurrency import CUT, AdaptiveConcurrency
from selfinstruct.teacher.endpoint import Endpoint

TESTS = Path(__file__).parent


def events(out: Path, kind: str) -> list[dict]:
    return [e for _, e in read_jsonl(out / "ledger.jsonl") if e["event"] == kind]


def config(urls, **overrides) -> GenerateConfig:
    settings = dict(
        base_url=urls, model="gpt-4o-mini", preset="alpaca", tasks_per_request=5, num_instructions=30, concurrency=2
    )
    return GenerateConfig(**{**settings, **overrides})


def assert_each_request_answered_once(out: Path) -> None:
    answered = Counter(e["request_id"] for e in events(out, "response"))
    assert answered and max(answered.values()) == 1


# ---------------------------------------------------------------- AIMD, with no server at all


def test_the_limit_grows_by_half_per_round_at_first_then_by_one_per_round():
    limit = AdaptiveConcurrency(most=64, start=4)
    for _ in range(4):  # one round of answers
        limit.succeeded()
    assert limit.allowed == 6
    for _ in range(6):
        limit.succeeded()
    assert limit.allowed == 9
    limit.overloaded(limit.epoch)
    assert limit.allowed == int(9 * CUT) == 6
    for _ in range(6):  # a round at 6 adds about one
        limit.succeeded()
    assert 7.5 < limit.limit < 8.0


def test_a_429_without_a_time_bounds_the_limit_below_the_requests_it_was_sent_with():
    """Sent with 5 in flight and refused, with no Retry-After: the server takes at most 4 at
    once, whichever round the request went out in (a cut to 3/4 of 9 would still be 6)."""
    limit = AdaptiveConcurrency(most=64, start=9)
    epoch = limit.epoch
    limit.overloaded(epoch)
    limit.refused_at(5)
    assert limit.allowed == 4
    limit.overloaded(epoch)  # another of that round: no second cut
    limit.refused_at(6)  # sent with more in flight: says less
    assert limit.allowed == 4


def test_a_burst_of_429s_sent_at_one_level_is_one_cut_not_a_fall_to_the_floor():
    limit = AdaptiveConcurrency(most=32, start=32)
    epoch = limit.epoch  # 32 requests went out at this level
    cuts = [limit.overloaded(epoch) for _ in range(20)]  # and 20 of them came back 429
    assert cuts.count(True) == 1 and limit.allowed == 24
    assert limit.cuts == {"429": 1}


def test_it_finds_a_servers_hidden_limit_on_requests_in_flight_with_few_429s():
    """A server that answers 429 above 10 requests in flight, the client told nothing: rounds
    of `allowed` requests; the limit settles near 10 and under 3% of requests get a 429."""
    hidden, limit = 10, AdaptiveConcurrency(most=64)
    sent = refused = 0
    levels = []
    for _ in range(400):
        epoch, allowed = limit.epoch, limit.allowed
        levels.append(allowed)
        for i in range(allowed):
            sent += 1
            if i >= hidden:
                refused += 1
                limit.overloaded(epoch)
            else:
                limit.succeeded(latency_s=1.0, epoch=epoch)
    settled = levels[100:]
    assert refused / sent < 0.03
    assert 7 <= sum(settled) / len(settled) <= 11 and max(settled) <= 12


@pytest.mark.parametrize("hidden", [4, 5, 6, 10])
def test_a_hard_limit_found_again_and_again_is_probed_less_and_less_often(hidden):
    """Each probe past a hard limit is a 429: once the same ceiling has been met a few times,
    the second half of a long run draws almost none (with a fixed slowness: 17-20 of them)."""
    limit = AdaptiveConcurrency(most=64)
    refused_late = sent_late = 0
    for round_ in range(400):
        epoch, allowed = limit.epoch, limit.allowed
        for i in range(allowed):
            late = round_ >= 200
            sent_late += late
            if i >= hidden:
                refused_late += late
                limit.overloaded(epoch)
            else:
                limit.succeeded(latency_s=1.0, epoch=epoch)
    assert refused_late <= 2 and limit.allowed in (hidden - 1, hidden)
    assert sent_late >= 200 * (hidden - 1)  # not bought by sending less


def test_a_server_that_queues_instead_of_refusing_is_found_by_its_latency():
    """A vLLM-like server with 8 slots: past them, requests queue and take longer, no 429 ever."""
    slots, limit = 8, AdaptiveConcurrency(most=64)
    levels = []
    for _ in range(300):
        epoch, allowed = limit.epoch, limit.allowed
        levels.append(allowed)
        for _ in range(allowed):
            limit.succeeded(latency_s=1.0 * max(1.0, allowed / slots), epoch=epoch)
    settled = levels[100:]
    assert limit.cuts.get("latency", 0) >= 1 and "429" not in limit.cuts
    assert max(settled) <= 2 * slots + 1 and min(settled) >= 2


def test_the_limit_stays_within_the_users_bounds():
    limit = AdaptiveConcurrency(most=3)
    for _ in range(100):
        limit.succeeded(latency_s=0.5)
    assert limit.allowed == 3
    for _ in range(10):
        limit.overloaded(limit.epoch)
    assert limit.allowed == 1  # still sends, a request at a time


# ---------------------------------------------------------------- the router, under a simulated clock


class NoClient:
    async def close(self):
        pass


def lane(clock: Clock, name: str, **spec) -> Lane:
    spec = EndpointSpec(url=f"http://{name}:8000/v1", name=name, **spec)
    settings = TeacherSettings(base_url=spec.url, model="m", api_key="EMPTY")
    config = make_config(JobConfig, base_url=spec.url, model="m").resolved()
    return Lane(Endpoint(settings, client=NoClient(), spec=spec), config, clock, clock.sleep)


def route_for(router: Router, clock: Clock, seconds: float) -> Counter:
    """Requests sent as the router picks them (each answered at once) for `seconds` of simulated time."""

    async def send_all():
        sent, end = Counter(), clock.now + seconds
        while clock.now < end:
            chosen = router.pick()
            if chosen is None:
                clock.now = max(clock.now + 0.001, router.room_at())
                continue
            await chosen.limiter.acquire(0)
            sent[chosen.name] += 1
        return sent

    return asyncio.run(send_all())


def test_requests_go_to_each_endpoint_at_its_own_pace():
    clock = Clock()
    router = Router([lane(clock, "slow", rpm=60), lane(clock, "fast", rpm=240)], clock)
    sent = route_for(router, clock, 60)
    assert 58 <= sent["slow"] <= 63 and 235 <= sent["fast"] <= 246  # a minute's worth each, no more


def test_a_retry_after_pauses_that_endpoint_only():
    clock = Clock()
    a, b = lane(clock, "a", rpm=120), lane(clock, "b", rpm=120)
    router = Router([a, b], clock)
    a.failed(RequestFailed("HTTP 429: slow down", 1, [], "HTTP 429", retry_after_s=10.0), a.limit.epoch)
    paused = route_for(router, clock, 10 - HORIZON_S)
    assert paused["a"] == 0 and paused["b"] >= 15
    after = route_for(router, clock, 10)
    assert after["a"] >= 15
    assert a.limit.cuts == {"429": 1} and b.limit.cuts == {}


def test_a_failing_endpoint_is_benched_then_probed_one_request_at_a_time():
    clock = Clock()
    a, b = lane(clock, "a"), lane(clock, "b")
    router = Router([a, b], clock)
    a.failed(RequestFailed("ConnectError: refused", 1, [], "connection"), a.limit.epoch)
    assert a.delay() > HORIZON_S and router.pick() is b
    clock.now += 2.0  # the first bench is over: one probe
    assert a.delay() == 0
    a.in_flight = 1
    assert a.delay() == float("inf")
    a.in_flight = 0
    a.failed(RequestFailed("ConnectError: refused", 1, [], "connection"), a.limit.epoch)  # the probe failed
    assert a.delay() == pytest.approx(4.0)  # benched twice as long
    clock.now += 4.0
    a.succeeded(0.1, a.limit.epoch)  # the probe answered
    assert a.benched_until is None and a.delay() == 0


class SlidingMinute:
    """A server's quota, as OpenAI counts it: at most `quota` requests in any 60 s; above it, a 429
    whose Retry-After says when the oldest leaves the window."""

    def __init__(self, quota: int):
        self.quota = quota
        self.admitted: list[float] = []

    def admit(self, now: float) -> float | None:
        """None: admitted; else the seconds to wait."""
        self.admitted = [t for t in self.admitted if t > now - 60]
        if len(self.admitted) < self.quota:
            self.admitted.append(now)
            return None
        return self.admitted[0] + 60 - now


def simulate(router: Router, clock: Clock, servers: dict, latency: dict, seconds: float) -> list[tuple]:
    """Requests sent as the router picks them to servers with sliding-minute quotas, each
    answered `latency[name]` seconds later: [(sent at, endpoint, refused)]."""
    log, pending = [], []

    async def run():
        end = clock.now + seconds
        while clock.now < end:
            chosen = router.pick()
            if chosen is not None:
                await chosen.limiter.acquire(0)
                chosen.in_flight += 1
                wait = servers[chosen.name].admit(clock.now)
                log.append((clock.now, chosen.name, wait is not None))
                pending.append((clock.now + latency[chosen.name], clock.now, chosen, chosen.limit.epoch, wait))
                continue
            room = router.room_at()
            clock.now = min([p[0] for p in pending] + ([room] if room is not None else []))
            for done in [p for p in pending if p[0] <= clock.now]:
                pending.remove(done)
                _, sent, lane, epoch, wait = done
                lane.in_flight -= 1
                if wait is None:
                    lane.succeeded(clock.now - sent, epoch, sent)
                else:
                    lane.failed(RequestFailed("HTTP 429", 1, [], "HTTP 429", retry_after_s=wait), epoch)

    asyncio.run(run())
    return log


def test_three_sliding_minute_quotas_are_served_whole_with_few_429s():
    """The issue's target, simulated: 120, 240 and 480 requests a minute over a sliding minute,
    different latencies, nothing told to the client: the first 429 of each teaches it the rate."""
    clock = Clock()
    quotas, latency = {"a": 120, "b": 240, "c": 480}, {"a": 0.8, "b": 0.5, "c": 0.3}
    router = Router([lane(clock, name, concurrency=8) for name in quotas], clock)
    start = clock.now
    log = simulate(router, clock, {n: SlidingMinute(q) for n, q in quotas.items()}, latency, 180)
    for minute in range(3):
        sent = [entry for entry in log if start + 60 * minute <= entry[0] < start + 60 * (minute + 1)]
        served = sum(not refused for _, _, refused in sent)
        assert served >= 0.9 * 840, (minute, served)
        assert sum(refused for _, _, refused in sent) <= 0.02 * len(sent), minute
    assert all(lane.limiter.learned for lane in router.lanes)


class InFlightLimit:
    """A server that answers 429 without Retry-After above `most` requests in flight (a gateway's
    concurrency limit, not told to the client)."""

    def __init__(self, most: int):
        self.most = most
        self.in_flight: list[float] = []  # when each admitted request ends

    def admit(self, now: float, latency: float) -> bool:
        self.in_flight = [end for end in self.in_flight if end > now]
        if len(self.in_flight) >= self.most:
            return False
        self.in_flight.append(now + latency)
        return True


def test_a_hidden_limit_on_requests_in_flight_is_found_without_pausing_the_endpoint():
    clock, server = Clock(), InFlightLimit(6)
    router = Router([lane(clock, "gpu", concurrency=32)], clock)
    gpu = router.lanes[0]
    pending, sent, refused = [], 0, 0

    async def run():
        nonlocal sent, refused
        while clock.now < 1000.0 + 120:
            if router.pick() is not None:
                await gpu.limiter.acquire(0)
                gpu.in_flight += 1
                sent += 1
                ok = server.admit(clock.now, 0.5)
                refused += not ok
                pending.append((clock.now + (0.5 if ok else 0.01), clock.now, gpu.limit.epoch, ok))
                continue
            room = router.room_at()
            clock.now = min([p[0] for p in pending] + ([room] if room is not None else []))
            for done in [p for p in pending if p[0] <= clock.now]:
                pending.remove(done)
                gpu.in_flight -= 1
                if done[3]:
                    gpu.succeeded(0.5, done[2], done[1])
                else:
                    gpu.failed(RequestFailed("HTTP 429", 1, [], "HTTP 429"), done[2])

    asyncio.run(run())
    answered = sent - refused
    assert answered >= 0.85 * 120 * 6 / 0.5  # near the 12 answers a second that 6 in flight allow
    assert refused <= 0.03 * sent and gpu.limit.allowed <= 8
    assert not gpu.limiter.learned  # no Retry-After: a concurrency limit, not a rate


# ---------------------------------------------------------------- runs against loopback endpoints


def test_requests_go_where_there_is_free_capacity(tmp_path):
    with FakeOpenAI(delay_s=0.01) as fast, FakeOpenAI(delay_s=1.0) as slow:
        result = generate(config([fast.base_url, slow.base_url], num_instructions=100), tmp_path, progress=False)
    assert result.accepted == 100
    answered = Counter(e["endpoint"] for e in events(tmp_path, "response"))
    fast_name, slow_name = fast.base_url.split("//")[1], slow.base_url.split("//")[1]
    assert answered[fast_name] >= 3 * answered[slow_name] and answered[slow_name] >= 1
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert {name: e["responses"] for name, e in cost["endpoints"].items()} == dict(answered)
    assert_each_request_answered_once(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_endpoint_is_benched_and_the_run_finishes_on_the_other(tmp_path, capsys):
    """The stand-in process kills itself (SIGKILL) at its 4th request, with a request in flight."""
    port = free_port()
    dying = subprocess.Popen(
        [sys.executable, str(TESTS / "fake_teacher_server.py"), str(port), "--die-at", "4", "--signal", "SIGKILL"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving" in dying.stdout.readline()
        with FakeOpenAI(delay_s=0.05) as healthy:
            result = generate(
                config([f"http://127.0.0.1:{port}/v1", healthy.base_url], num_instructions=60), tmp_path, progress=False
            )
        assert dying.wait(timeout=10) == -9
    finally:
        dying.kill()
    assert result.accepted == 60
    assert_each_request_answered_once(tmp_path)
    responses = events(tmp_path, "response")
    dead = f"127.0.0.1:{port}/v1"
    assert 2 <= sum(e["endpoint"] == dead for e in responses) <= 3  # what it answered before it died is kept
    asked_again = [e for e in responses if dead in e.get("endpoint_errors", {})]
    assert asked_again and all(e["endpoint"] != dead for e in asked_again)
    assert not events(tmp_path, "failure")
    assert f"endpoint {dead} is failing" in capsys.readouterr().err
    cost = json.loads((tmp_path / "cost.json").read_text())
    assert cost["endpoints"][dead]["errors"] >= 1 and cost["responses"] == len(responses)


def test_an_endpoint_that_hangs_is_benched_after_its_timeouts(tmp_path, capsys):
    with FakeOpenAI(faults=["hang"] * 100, hang_s=3.0) as hung, FakeOpenAI() as good:
        result = generate(config([hung.base_url, good.base_url], timeout=0.3), tmp_path, progress=False)
        assert len(hung.calls) <= 6  # its first requests, then probes: no more than a bench allows
    assert result.accepted == 30
    hung_name = hung.base_url.split("//")[1]
    assert f"endpoint {hung_name} is failing (timeout)" in capsys.readouterr().err
    assert {e["endpoint"] for e in events(tmp_path, "response")} == {good.base_url.split("//")[1]}


def test_a_wrong_key_drops_that_endpoint_by_name_not_the_run(tmp_path, capsys):
    with FakeOpenAI(faults=["401"] * 100) as refusing, FakeOpenAI() as good:
        result = generate(config([refusing.base_url, good.base_url]), tmp_path, progress=False)
        assert len(refusing.calls) <= 2  # dropped at its first refusal (two were in flight)
    assert result.accepted == 30
    err = capsys.readouterr().err
    name = refusing.base_url.split("//")[1]
    assert f"endpoint {name} is dropped" in err and "HTTP 401" in err and "goes on with" in err
    assert {e["endpoint"] for e in events(tmp_path, "response")} == {good.base_url.split("//")[1]}
    assert_no_key_in(tmp_path)  # the refused key, echoed by the server, is in no file of the run


def test_every_endpoint_refusing_stops_the_run_as_one_would(tmp_path):
    with FakeOpenAI(faults=["401"] * 100) as a, FakeOpenAI(faults=["401"] * 100) as b:
        with pytest.raises(SettingError, match="HTTP 401"):
            generate(config([a.base_url, b.base_url]), tmp_path, progress=False)
    assert events(tmp_path, "failure") and not events(tmp_path, "response")


def test_no_endpoint_reachable_stops_the_run_at_once_naming_each(tmp_path):
    ports = [free_port(), free_port()]
    started = time.monotonic()
    with pytest.raises(SettingError, match="None of the endpoints can be reached") as refused:
        generate(config([f"http://127.0.0.1:{port}/v1" for port in ports]), tmp_path, progress=False)
    assert time.monotonic() - started < 10
    assert all(f"127.0.0.1:{port}/v1: " in str(refused.value) for port in ports)


def endpoints_file(path: Path, *tables: dict) -> Path:
    lines = []
    for table in tables:
        lines.append("[[endpoint]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_endpoint_is_priced_at_its_own_price_and_a_request_reserves_the_dearest(tmp_path):
    with FakeOpenAI() as cheap, FakeOpenAI() as dear:
        file = endpoints_file(
            tmp_path / "endpoints.toml",
            {"name": "cheap", "url": cheap.base_url, "price_in": 0.1, "price_out": 0.2},
            {"name": "dear", "url": dear.base_url, "price_in": 1.0, "price_out": 2.0},
        )
        out = tmp_path / "run"
        generate(config(None, endpoints=str(file), max_cost=5.0), out, progress=False)
    prices = {"cheap": (0.1, 0.2), "dear": (1.0, 2.0)}
    responses = events(out, "response")
    assert {e["endpoint"] for e in responses} == {"cheap", "dear"}
    for e in responses:
        price_in, price_out = prices[e["endpoint"]]
        usage = e["usage"]
        assert e["cost_usd"] == pytest.approx(
            (usage["prompt_tokens"] * price_in + usage["completion_tokens"] * price_out) / 1e6
        )
    reserved = {e["reserved_usd"] for e in events(out, "request")}
    worst = 3072 * 2.0 / 1e6  # max_tokens at the dearest output price, at least
    assert min(reserved) > worst
    cost = json.loads((out / "cost.json").read_text())
    by_endpoint = cost["endpoints"]
    assert sum(e["cost_usd"] for e in by_endpoint.values()) == pytest.approx(cost["cost_usd"])
    shown = CliRunner().invoke(main, ["cost", str(out)])
    assert shown.exit_code == 0 and "endpoint cheap" in shown.output and "endpoint dear" in shown.output
    exported = CliRunner().invoke(main, ["export", str(out), "--to", str(tmp_path / "export" / "data.jsonl")])
    card = (tmp_path / "export" / "data.jsonl.README.md").read_text()
    assert exported.exit_code == 0 and "| endpoint `cheap` |" in card and "| endpoint `dear` |" in card
    assert "the endpoints listed in endpoints.toml" in card


def test_the_dry_run_prices_each_endpoint(tmp_path):
    file = endpoints_file(
        tmp_path / "endpoints.toml",
        {"name": "cheap", "url": "http://127.0.0.1:9/v1", "price_in": 0.1, "price_out": 0.2},
        {"name": "dear", "url": "http://127.0.0.1:10/v1", "price_in": 1.0, "price_out": 2.0, "weight": 0.5},
    )
    shown = CliRunner().invoke(
        main,
        ["generate", "--endpoints", str(file), "--model", "m", "-n", "1000", "--out", str(tmp_path / "r"), "--dry-run"],
    )
    assert shown.exit_code == 0, shown.output
    by_endpoint = re.search(r"there: cheap \$([0-9.]+), dear \$([0-9.]+)", shown.output)
    cheap, dear = map(float, by_endpoint.groups())
    assert dear == pytest.approx(10 * cheap, rel=0.01)  # its prices are ten times the other's
    assert f"expected cost: ${dear}" in shown.output  # the figures of the whole run: at the dearest


def test_each_endpoint_learns_its_own_dialect(tmp_path):
    """A llama.cpp-like endpoint refuses JSON schemas; an OpenAI-like one takes them."""
    with FakeOpenAI(reject_json_schema=True) as llama, FakeOpenAI() as openai_like:
        generate(config([llama.base_url, openai_like.base_url], num_instructions=40), tmp_path, progress=False)
        assert all(
            c.response_format is None or c.response_format.get("type") == "json_schema" for c in openai_like.calls
        )
    formats = {
        name: {e["response_format"] for e in events(tmp_path, "response") if e["endpoint"] == name}
        for name in (llama.base_url.split("//")[1], openai_like.base_url.split("//")[1])
    }
    llama_formats, openai_formats = formats.values()
    assert openai_formats == {"json_schema"} and llama_formats and "json_schema" not in llama_formats


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def generate_args(out, urls, *extra):
    flags = [flag for url in urls for flag in ("--base-url", url)]
    return ["generate", "--out", str(out), *flags, "--model", "gpt-4o-mini", "--preset", "alpaca", "--quiet", *extra]


def test_a_multi_endpoint_run_resumes_with_one_endpoint_fewer_or_more_but_not_another_model(tmp_path):
    with FakeOpenAI() as a, FakeOpenAI() as b, FakeOpenAI() as c:
        first = cli(*generate_args(tmp_path, [a.base_url, b.base_url], "-n", "20"))
        assert first.exit_code == 0 and "target reached: 20/20" in first.output
        fewer = cli(*generate_args(tmp_path, [a.base_url], "-n", "40"))
        assert fewer.exit_code == 0 and "target reached: 40/40" in fewer.output
        more = cli(*generate_args(tmp_path, [a.base_url, b.base_url, c.base_url], "-n", "70"))
        assert more.exit_code == 0 and "target reached: 70/70" in more.output
        assert c.calls  # the endpoint added on the last rerun took its share
        other = cli(*generate_args(tmp_path, [a.base_url, b.base_url], "-n", "80", "--model", "gpt-4o"))
    assert other.exit_code == 1 and "different settings (model: 'gpt-4o-mini' -> 'gpt-4o')" in other.output
    assert_each_request_answered_once(tmp_path)
    assert len((tmp_path / "data.jsonl").read_text().splitlines()) == 70


# ---------------------------------------------------------------- settings checked at the edge


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[[endpoint]\nurl = 1", "not valid TOML"),
        ('[[endpoint]]\nname = "a"\n', "endpoint 1, url: Field required"),
        (
            '[[endpoint]]\nurl = "http://a/v1"\n[[endpoint]]\nurl = "http://b/v1"\nweight = "heavy"\n',
            "endpoint 2, weight",
        ),
        ('[[endpoint]]\nurl = "http://a/v1"\nrpm = -5\n', "endpoint 1, rpm"),
        ('[[endpoint]]\nurl = "ftp://a/v1"\n', "endpoint 1, url must be an http"),
        ('[[endpoint]]\nurl = "http://a/v1"\nkey = "sk-..."\n', "endpoint 1, key: Extra inputs"),
        ('[[endpoint]]\nurl = "http://a/v1"\n[[endpoint]]\nurl = "http://a/v1"\n', "two endpoints are named 'a/v1'"),
        ('url = "http://a/v1"\n', "one [[endpoint]] table per endpoint"),
    ],
)
def test_a_bad_endpoints_file_is_named_with_the_endpoint_and_field(tmp_path, content, expected):
    file = tmp_path / "endpoints.toml"
    file.write_text(content)
    result = cli("generate", "--endpoints", str(file), "--model", "m", "--out", str(tmp_path / "r"), "--quiet")
    assert result.exit_code == 1
    assert str(file) in result.output and expected in result.output, result.output


def test_other_bad_combinations_are_refused_before_any_request(tmp_path, monkeypatch):
    urls = ["https://api.example.com/v1", "http://127.0.0.1:9/v1"]
    batch = cli(*generate_args(tmp_path / "b", urls, "--batch"))
    assert batch.exit_code == 1 and "a batch runs on one endpoint" in batch.output and "--base-url" in batch.output
    file = endpoints_file(tmp_path / "e.toml", {"url": urls[0]})
    both = cli(*generate_args(tmp_path / "c", urls, "--endpoints", str(file)))
    assert both.exit_code == 1 and "--base-url or --endpoints, not both" in both.output
    monkeypatch.delenv("OPENAI_API_KEY")
    keyless = cli(*generate_args(tmp_path / "d", urls))
    assert keyless.exit_code == 1 and "No API key for endpoint api.example.com/v1" in keyless.output
    assert not (tmp_path / "d" / "ledger.jsonl").exists() or not events(tmp_path / "d", "request")


def test_one_base_url_stays_a_string_in_the_config():
    one = make_config(JobConfig, base_url="http://127.0.0.1:8000/v1", model="m")
    assert one.base_url == "http://127.0.0.1:8000/v1" and len(one.endpoint_specs()) == 1
    many = make_config(JobConfig, base_url=["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"], model="m")
    assert [s.label for s in many.endpoint_specs()] == ["127.0.0.1:8000/v1", "127.0.0.1:8001/v1"]
