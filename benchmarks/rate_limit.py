"""`--rpm` against a provider that enforces it over a sliding minute: served rate and 429s.

    .venv/bin/python benchmarks/rate_limit.py                      # this checkout, 150 s
    .venv/bin/python benchmarks/rate_limit.py --source OLD --label before

`benchmarks/standin.py --rpm-window 120` answers 429 (with Retry-After and
x-ratelimit-reset-requests) to any request that would make more than 120 in the last 60 s.
`selfinstruct generate --rpm 120 --concurrency 32` runs against it for `--seconds`, then is
stopped. Reported: requests served per minute (as a share of the configured 120) and the share
of requests answered 429.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from generate_scale import HERE, free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE.parent)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--rpm", type=int, default=120)
    parser.add_argument("--seconds", type=float, default=150)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-rate"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    args.out = args.out.resolve()
    shutil.rmtree(args.out, ignore_errors=True)
    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "standin.py"),
            "--port",
            str(port),
            "--latency",
            "0.3",
            "--tasks",
            "5",
            "--rpm-window",
            str(args.rpm),
        ]
    )
    time.sleep(2)
    cmd = [
        sys.executable,
        "-m",
        "selfinstruct",
        "generate",
        "--out",
        str(args.out),
        "--base-url",
        f"http://127.0.0.1:{port}/v1",
        "--model",
        "standin",
        "--price-in",
        "0",
        "--price-out",
        "0",
        "--num-instructions",
        "1000000",
        "--tasks-per-request",
        "5",
        "--concurrency",
        "32",
        "--rpm",
        str(args.rpm),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(args.source), "OPENAI_API_KEY": "EMPTY"}
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=args.source
    )  # `python -m` looks in the working directory first
    time.sleep(args.seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stopped = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as response:
        stats = json.load(response)
    standin.terminate()
    standin.wait()

    # from the first request the provider saw (process start-up is not the limiter's doing)
    elapsed = stopped - min(stats["served"] + stats["refused"])
    served, refused = len(stats["served"]), len(stats["refused"])
    per_minute = served / elapsed * 60
    result = {
        "label": args.label,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(elapsed, 1),
        "configured_rpm": args.rpm,
        "served": served,
        "refused_429": refused,
        "served_per_minute": round(per_minute, 1),
        "share_of_rate": round(per_minute / args.rpm, 3),
        "share_429": round(refused / (served + refused), 3) if served + refused else None,
    }
    print(json.dumps(result))
    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*previous, result], indent=2) + "\n")
    print(
        f"| {args.label} | {served} | {refused} ({result['share_429']:.1%}) | {per_minute:.1f}/min ({result['share_of_rate']:.1%}) |"
    )


if __name__ == "__main__":
    main()
