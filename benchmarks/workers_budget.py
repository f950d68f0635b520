"""Three `generate` workers on one run under one `--max-cost`, one of them killed with SIGKILL
and started again (issue 22's measured target).

    .venv/bin/python benchmarks/workers_budget.py --cap 0.5

Starts a redis-server and `benchmarks/standin.py` (priced as gpt-4o-mini, 0.3 s per answer of
20 tasks), then three `selfinstruct generate --shard i/3 --shared-run redis://...` processes
with the same cap and a target out of reach, so the cap is what stops them. Worker 2 is killed
with SIGKILL once it has `--kill-after` answers, then started again at once: it is refused
while its lease lives, and the script retries every second; the seconds from the kill to its
first new request (its ledger's time) measure how long a dead worker's lease holds its name
(`LEASE_S`, 30 s, from its last renewal). When all three have stopped, `merge`
combines them. Figures: each worker's spend and possibly billed money (cost.json), their sum
against the cap, what Redis still holds, the records and the duplicates across shards after
merge, wall times; and for reference one worker alone under the same cap.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from generate_scale import StandIn  # noqa: E402
from redis_server import redis_server  # noqa: E402


def generate(out: Path, base_url: str, cap: float, concurrency: int, shard: str | None, run_url: str | None):
    command = [sys.executable, "-m", "selfinstruct", "generate", "--out", str(out), "--base-url", base_url]
    command += ["--model", "gpt-4o-mini", "--num-instructions", "1000000", "--max-cost", str(cap)]
    command += ["--concurrency", str(concurrency)]
    if shard:
        command += ["--shard", shard, "--shared-run", run_url]
    log = open(out.parent / f"{out.name}.log", "a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def responses(out: Path) -> int:
    ledger = out / "ledger.jsonl"
    if not ledger.exists():
        return 0
    return sum(1 for line in ledger.read_bytes().splitlines() if b'"event": "response"' in line)


def first_request_after(out: Path, moment: float) -> float:
    """When the worker in `out` sent its first request after `moment` (by its ledger's times)."""
    from datetime import datetime

    for line in (out / "ledger.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "request" and datetime.fromisoformat(event["time"]).timestamp() > moment:
            return datetime.fromisoformat(event["time"]).timestamp()
    raise AssertionError(f"{out}: no request after the restart")


def cost(out: Path) -> dict:
    return json.loads((out / "cost.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kill-after", type=int, default=20, help="answers of worker 2 before its SIGKILL")
    parser.add_argument("--out", type=Path, default=Path("/tmp/workers-budget"))
    parser.add_argument("--json", type=Path, default=HERE / "workers_budget_results.json")
    args = parser.parse_args()
    subprocess.run(["rm", "-rf", str(args.out)], check=True)
    args.out.mkdir(parents=True)
    from selfinstruct.merge import merge

    with redis_server() as redis_url:
        standin = StandIn(latency=0.3, tasks=20)
        try:
            run_url = f"{redis_url}?run=bench"
            outs = [args.out / f"w{i}" for i in (1, 2, 3)]
            started = time.monotonic()
            workers = [
                generate(o, standin.base_url, args.cap, args.concurrency, f"{i}/3", run_url)
                for i, o in enumerate(outs, 1)
            ]
            while responses(outs[1]) < args.kill_after:
                time.sleep(0.05)
            workers[1].send_signal(signal.SIGKILL)
            workers[1].wait()
            killed_at = time.time()
            attempts = 0
            while True:  # the restart is refused while the dead worker's lease lives
                attempts += 1
                restarted = generate(outs[1], standin.base_url, args.cap, args.concurrency, "2/3", run_url)
                if restarted.wait() == 0:
                    break
                time.sleep(1)
            restart_s = first_request_after(outs[1], killed_at) - killed_at
            for worker in (workers[0], workers[2]):
                worker.wait()
            wall = time.monotonic() - started

            import redis

            client = redis.Redis.from_url(redis_url)
            held = {k.decode(): float(v) for k, v in client.hgetall("selfinstruct:run:bench:held").items()}
            merged = merge(outs, args.out / "merged")
            texts = [
                json.loads(line)["instruction"]
                for line in (args.out / "merged" / "data.jsonl").read_text().splitlines()
            ]

            alone_out = args.out / "alone"
            alone_started = time.monotonic()
            generate(alone_out, standin.base_url, args.cap, args.concurrency, None, None).wait()
            alone_wall = time.monotonic() - alone_started
        finally:
            standin.close()

    costs = [cost(o) for o in outs]
    result = {
        "cap_usd": args.cap,
        "workers": [
            {
                "shard": f"{i}/3",
                "spent_usd": c["cost_usd"],
                "possibly_billed_usd": c["unsettled_usd"],
                "responses": c["responses"],
            }
            for i, c in enumerate(costs, 1)
        ],
        "spent_usd": round(sum(c["cost_usd"] for c in costs), 6),
        "possibly_billed_usd": round(sum(c["unsettled_usd"] for c in costs), 6),
        "held_in_redis_at_end_usd": held,
        "restart_refused_attempts": attempts - 1,
        "restart_first_request_after_kill_s": round(restart_s, 1),
        "merged_records": merged.records,
        "duplicates_across_shards": merged.duplicates,
        "distinct_instructions_after_merge": len(set(texts)),
        "wall_s_three_workers": round(wall, 1),
        "alone": {
            "spent_usd": cost(alone_out)["cost_usd"],
            "responses": cost(alone_out)["responses"],
            "wall_s": round(alone_wall, 1),
        },
        "machine": os.uname().nodename,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    assert result["spent_usd"] + result["possibly_billed_usd"] <= args.cap, "the cap was passed"


if __name__ == "__main__":
    main()
