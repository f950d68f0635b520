"""One run over several endpoints with sliding-minute limits (issue 21): how much of their joint
rate it uses in its first full minute, how many 429s it draws, and failover when one dies.

    .venv/bin/python benchmarks/multi_endpoint.py --json benchmarks/multi_endpoint_results.json  # ~7 min
    .venv/bin/python benchmarks/multi_endpoint.py --scenarios single                              # ~1.5 min

Every scenario runs `selfinstruct answer` (from `--source`, default this checkout) as a user
would, over distinct T0 prompts, against `limited_standin.py` processes that log each request
(client request id, prompt digest, arrival, status) where this script reads them afterwards:

- `single`: the reference, one stand-in alone at 480 requests/min (0.35 s per answer);
- `three`: three stand-ins at 120, 240 and 480/min (1.2, 0.7 and 0.35 s per answer), one run
  with `--base-url` three times; 840/min is the most any minute can serve;
- `hidden`: the same three, each also answering 429 (without Retry-After) above 4, 5 and 6
  requests in flight, a limit the client is not told;
- `told`: the same three as in `three`, given in an `--endpoints` file with each one's `rpm`;
- `failover`: the three stand-ins, a run of `--failover-prompts` prompts; once half are
  answered the 480/min stand-in is SIGKILLed; the run must finish on the other two.

Except in `told`, the client is told neither rate nor concurrency (`--concurrency` is only its
upper bound), so what it does within the limits it learns from the answers. The first full
minute starts at the first request any stand-in saw (the client's start-up is not counted
against it; `first_minute_from_client_start` counts it) and counts requests by arrival, as the
limits do; it is wall-clock time by nature. "90% served by" shows how the minute was used: a
client that bursts takes the quota in seconds, a paced one spreads it over the minute. A request
answered twice is an id (or a prompt) with two 200s in the logs, the killed stand-in's
included (it logs a request only once its answer went out).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from generate_scale import HERE
from limited_standin import StandInProcess

T0_PROMPTS = HERE.parents[1] / "shared" / "data" / "t0_prompts_50k.jsonl.gz"
# name, requests per sliding minute, seconds per answer, hidden in-flight limit
ENDPOINTS = [("a", 120, 1.2, 4), ("b", 240, 0.7, 5), ("c", 480, 0.35, 6)]
MINUTE = 60.0


def write_prompts(path: Path, count: int) -> Path:
    """`count` distinct T0 prompts as a JSONL of `prompt` rows (`selfinstruct answer` reads them)."""
    prompts: dict[str, None] = {}
    with gzip.open(T0_PROMPTS, "rt", encoding="utf-8") as f:
        for line in f:
            prompts[json.loads(line)["prompt"]] = None
            if len(prompts) == count:
                break
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return path


def start_standins(directory: Path, names: list[str], hidden_limits: bool) -> list[StandInProcess]:
    return [
        StandInProcess(
            name, directory / f"standin-{name}.jsonl", rpm, latency, in_flight if hidden_limits else None, tasks=1
        )
        for name, rpm, latency, in_flight in ENDPOINTS
        if name in names
    ]


def teacher_options(standins: list[StandInProcess], told: bool, directory: Path) -> list[str]:
    """`--base-url` once per stand-in; or, told, an endpoints file with each one's rate limit."""
    if not told:
        return [option for standin in standins for option in ("--base-url", standin.base_url)]
    endpoints = directory / "endpoints.toml"
    endpoints.write_text(
        "".join(f'[[endpoint]]\nname = "{s.name}"\nurl = "{s.base_url}"\nrpm = {s.rpm_window}\n\n' for s in standins)
    )
    return ["--endpoints", str(endpoints)]


def answer_command(args, out: Path, prompts: Path, teacher: list[str]) -> list[str]:
    """`selfinstruct answer` as a user runs it; answers are free (the stand-ins' price is 0)."""
    free = ["--model", "standin", "--price-in", "0", "--price-out", "0"]
    command = [sys.executable, "-m", "selfinstruct", "answer", str(prompts), "--out", str(out), *teacher, *free]
    return [*command, "--concurrency", str(args.concurrency), "--quiet"]


def source_digest(source: Path) -> str:
    """Names the client's code as it was started: the tree may change between scenarios."""
    digest = hashlib.sha256()
    for path in sorted((source / "selfinstruct").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def start_client(args, command: list[str], directory: Path) -> subprocess.Popen:
    (directory / "source_digest").write_text(source_digest(args.source))
    env = {**os.environ, "PYTHONPATH": str(args.source), "OPENAI_API_KEY": "EMPTY"}
    return subprocess.Popen(  # `python -m` looks in the working directory first: run from --source
        command, env=env, cwd=args.source, stdout=subprocess.DEVNULL, stderr=(directory / "client.err").open("w")
    )


def logs(standins: list[StandInProcess]) -> dict[str, list[dict]]:
    return {standin.name: standin.lines() for standin in standins}


def first_arrival(lines: dict[str, list[dict]]) -> float | None:
    arrivals = [line["arrived"] for log in lines.values() for line in log]
    return min(arrivals) if arrivals else None


def minute_figures(lines: dict[str, list[dict]], rates: dict[str, int], start: float) -> dict:
    """Requests that arrived in [start, start + 60 s): served (200) per endpoint and 429s by limit."""
    figures = {"served": 0, "refused_429": 0, "refused_rpm": 0, "refused_concurrency": 0, "per_endpoint": {}}
    answered = []
    for name, log in lines.items():
        minute = [line for line in log if start <= line["arrived"] < start + MINUTE]
        answered += [line["arrived"] for line in minute if line["status"] == 200]
        served = sum(line["status"] == 200 for line in minute)
        refused = collections.Counter(line["limit"] for line in minute if line["status"] == 429)
        figures["per_endpoint"][name] = {"served": served, "limit": rates[name], "refused_429": refused.total()}
        figures["served"] += served
        figures["refused_429"] += refused.total()
        figures["refused_rpm"] += refused["rpm"]
        figures["refused_concurrency"] += refused["concurrency"]
    asked = figures["served"] + figures["refused_429"]
    figures["limit"] = sum(rates.values())
    figures["share_of_limit"] = round(figures["served"] / figures["limit"], 3)
    figures["share_429"] = round(figures["refused_429"] / asked, 4) if asked else None
    # how the minute was used: a client that bursts has 90% of the limit within seconds
    enough = math.ceil(0.9 * figures["limit"])
    figures["seconds_to_90_percent"] = (
        round(sorted(answered)[enough - 1] - start, 1) if len(answered) >= enough else None
    )
    return figures


def answered_twice(lines: dict[str, list[dict]]) -> dict:
    """Request ids and prompts with more than one 200 across all stand-ins: paid for twice."""
    ids, prompts = collections.Counter(), collections.Counter()
    for log in lines.values():
        for line in log:
            if line["status"] == 200:
                ids[line["id"]] += 1
                prompts[line["prompt"]] += 1
    return {
        "ids_answered_twice": sorted(i for i, n in ids.items() if n > 1),
        "prompts_answered_twice": sum(n > 1 for n in prompts.values()),
        "distinct_prompts_answered": len(prompts),
    }


def ledger_endpoints(run: Path, standins: list[StandInProcess]) -> dict[str, int] | None:
    """Responses per stand-in as the run's ledger records them (None: the ledger names no endpoint).
    The ledger names an endpoint by host:port/path when the user gave it no name."""
    names = {standin.base_url.removeprefix("http://"): standin.name for standin in standins}
    responses = [
        json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines() if '"event": "response"' in line
    ]
    if not responses or "endpoint" not in responses[0]:
        return None
    return dict(collections.Counter(names.get(response["endpoint"], response["endpoint"]) for response in responses))


def whole_run(lines: dict[str, list[dict]]) -> dict:
    """From the first arrival to the last: served and the share of 429s. No rate: a run of 70 s
    can hold two minutes' quotas of a sliding window (one at the start, one at 60 s)."""
    arrivals = [line["arrived"] for log in lines.values() for line in log]
    seconds = max(arrivals) - min(arrivals)
    served = sum(line["status"] == 200 for log in lines.values() for line in log)
    refused = sum(line["status"] == 429 for log in lines.values() for line in log)
    return {
        "seconds": round(seconds, 1),
        "served": served,
        "refused_429": refused,
        "share_429": round(refused / (served + refused), 4),
    }


def timed(args, scenario: str, names: list[str], prompts: Path, hidden_limits=False, told=False) -> dict:
    """Run the client until `--seconds` after the first request any stand-in saw, then SIGKILL it."""
    directory = args.out / scenario
    load = os.getloadavg()[0]
    standins = start_standins(directory, names, hidden_limits)
    try:
        launched = time.monotonic()
        teacher = teacher_options(standins, told, directory)
        client = start_client(args, answer_command(args, directory / "run", prompts, teacher), directory)
        deadline = launched + 120  # the client's start-up, at most
        while (start := first_arrival(logs(standins))) is None:
            if client.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"{scenario}: the client sent nothing: {(directory / 'client.err').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        while time.monotonic() < start + args.seconds and client.poll() is None:
            time.sleep(0.5)
        ended_early = client.poll()
        client.kill()
        client.wait()
    finally:
        for standin in standins:
            standin.close()
    lines = logs(standins)
    start = first_arrival(lines)
    rates = {name: rpm for name, rpm, _, _ in ENDPOINTS if name in names}
    result = {
        "scenario": scenario,
        "source_digest": (directory / "source_digest").read_text(),
        "load_at_start": load,
        "endpoints": {
            s.name: {"rpm": s.rpm_window, "latency_s": s.latency, "max_in_flight": s.max_in_flight} for s in standins
        },
        "client_exit_before_the_end": ended_early,
        "first_full_minute": minute_figures(lines, rates, start),
        "client_start_to_first_request_s": round(start - launched, 2),
        "first_minute_from_client_start": minute_figures(lines, rates, launched),
        "whole_run": whole_run(lines),
        "endpoints_that_served": sorted(name for name, log in lines.items() if any(l["status"] == 200 for l in log)),
        **answered_twice(lines),
        "ledger_responses_per_endpoint": ledger_endpoints(directory / "run", standins),
    }
    print(json.dumps(result), flush=True)
    return result


def failover(args, prompts: Path) -> dict:
    """Three stand-ins; the 480/min one is SIGKILLed once half of the prompts are answered."""
    directory = args.out / "failover"
    load = os.getloadavg()[0]
    standins = start_standins(directory, [name for name, *_ in ENDPOINTS], hidden_limits=False)
    victim = next(s for s in standins if s.name == args.kill)
    run = directory / "run"
    killed_at = None
    try:
        teacher = teacher_options(standins, False, directory)
        client = start_client(args, answer_command(args, run, prompts, teacher), directory)
        started = time.monotonic()
        while client.poll() is None and time.monotonic() < started + args.failover_timeout:
            if killed_at is None:
                answered = sum(line["status"] == 200 for log in logs(standins).values() for line in log)
                if answered >= args.failover_prompts // 2:
                    victim.kill()
                    killed_at = time.monotonic()
            time.sleep(0.2)
        finished_at = time.monotonic()
        timed_out = client.poll() is None
        client.kill()
        returncode = client.wait()
    finally:
        for standin in standins:
            standin.close()
    lines = logs(standins)
    stats_path = run / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    after_kill = rate_after_kill = None
    if killed_at is not None:
        after_kill = {
            name: sum(line["status"] == 200 and line["arrived"] >= killed_at for line in log)
            for name, log in lines.items()
        }
        rate_after_kill = round(sum(after_kill.values()) / (finished_at - killed_at) * MINUTE, 1)
    served = {name: sum(line["status"] == 200 for line in log) for name, log in lines.items()}
    ledger = ledger_endpoints(run, standins)
    result = {
        "scenario": "failover",
        "source_digest": (directory / "source_digest").read_text(),
        "load_at_start": load,
        "prompts": args.failover_prompts,
        "killed": args.kill,
        "killed_after_s": round(killed_at - started, 1) if killed_at else None,
        "finished_after_kill_s": round(finished_at - killed_at, 1) if killed_at else None,
        "timed_out": timed_out,
        "client_exit_code": returncode,
        "status": stats.get("status"),
        "answered_items": stats.get("answered_items"),
        "items": stats.get("items"),
        "served_per_endpoint": served,
        "served_after_kill_per_endpoint": after_kill,
        "served_per_minute_after_kill": rate_after_kill,
        "refused_429": sum(line["status"] == 429 for log in lines.values() for line in log),
        **answered_twice(lines),
        "ledger_responses_per_endpoint": ledger,
        # every answer a stand-in sent is in the ledger, where it is paid for once
        "ledger_matches_standins": ledger == {name: n for name, n in served.items() if n} if ledger else None,
        "client_stderr_tail": (directory / "client.err").read_text()[-1500:],
    }
    print(json.dumps(result), flush=True)
    return result


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} cores ({cpu}), load {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE.parent, help="checkout whose selfinstruct runs")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--scenarios", default="single,three,hidden,told,failover", help="comma-separated, in order")
    parser.add_argument("--seconds", type=float, default=70, help="each timed run, from its first request")
    parser.add_argument("--concurrency", type=int, default=32, help="the client's --concurrency (an upper bound)")
    parser.add_argument("--failover-prompts", type=int, default=800)
    parser.add_argument("--failover-timeout", type=float, default=600)
    parser.add_argument("--kill", default="c", choices=[name for name, *_ in ENDPOINTS])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-multi-endpoint"))
    parser.add_argument("--json", type=Path, help="append the figures to this JSON list")
    args = parser.parse_args()

    args.out = args.out.resolve()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    results = {"label": args.label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    timed_prompts = write_prompts(
        args.out / "prompts.jsonl", int(sum(r for _, r, _, _ in ENDPOINTS) * args.seconds / MINUTE * 1.5)
    )
    failover_prompts = write_prompts(args.out / "failover-prompts.jsonl", args.failover_prompts)
    scenarios = {
        "single": lambda: timed(args, "single", ["c"], timed_prompts),
        "three": lambda: timed(args, "three", ["a", "b", "c"], timed_prompts),
        "hidden": lambda: timed(args, "hidden", ["a", "b", "c"], timed_prompts, hidden_limits=True),
        "told": lambda: timed(args, "told", ["a", "b", "c"], timed_prompts, told=True),
        "failover": lambda: failover(args, failover_prompts),
    }
    for scenario in args.scenarios.split(","):
        results[scenario] = scenarios[scenario]()
    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*previous, results], indent=2) + "\n")
    print(table(results))


def table(results: dict) -> str:
    header = "| scenario | first full minute: served | of the limit | 90% of it served by | answered 429 (rpm / concurrency) "
    rows = [header + "| per endpoint | whole run: served | answered 429 |", "|---|---:|---:|---:|---:|---|---:|---:|"]
    for scenario in ("single", "three", "hidden", "told"):
        if scenario in results:
            m, w = results[scenario]["first_full_minute"], results[scenario]["whole_run"]
            per = ", ".join(f"{n} {e['served']}/{e['limit']}" for n, e in m["per_endpoint"].items())
            rows.append(
                f"| {scenario} | {m['served']} of {m['limit']} | {m['share_of_limit']:.1%} | {m['seconds_to_90_percent']} s "
                f"| {m['refused_429']} ({m['share_429']:.1%}; {m['refused_rpm']} / {m['refused_concurrency']}) "
                f"| {per} | {w['served']} in {w['seconds']} s | {w['refused_429']} ({w['share_429']:.1%}) |"
            )
    if "failover" in results:
        f = results["failover"]
        rows.append(
            f"\nfailover: exit {f['client_exit_code']}, {f['answered_items']} of {f['items']} answered, "
            f"stand-in {f['killed']} killed after {f['killed_after_s']} s, done {f['finished_after_kill_s']} s later; "
            f"served {f['served_per_endpoint']} (after the kill {f['served_after_kill_per_endpoint']}); "
            f"ids answered twice: {len(f['ids_answered_twice'])}, prompts answered twice: {f['prompts_answered_twice']}"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
