"""52,000 records against a local stand-in: what our own process costs when the teacher is free.

    .venv/bin/python benchmarks/generate_scale.py --out outputs/bench-scale
    .venv/bin/python benchmarks/generate_scale.py --source /path/to/old/checkout --label before

Runs `selfinstruct generate` (from `--source`, default this checkout) as a user would, against
`benchmarks/standin.py` in its own process: 64 requests in flight, 0.3 s per answer, 20 tasks
per answer, the default preset. Three runs, each a fresh `generate` process:

1. a fresh run to 52,000 records: wall time, CPU seconds, requests/s, candidates/s, peak
   RSS, ledger size;
2. the same command again on the finished run: how long a resume takes when nothing is left
   to ask (the whole process);
3. a second fresh run killed with SIGKILL once half the records are in, then the same
   command again: seconds from its start until the stand-in sees its first new request
   (the resume of a run stopped half way), and that it then finishes.

Figures go to `--json` and are printed as a markdown row per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn:
    def __init__(self, latency: float, tasks: int, start_timeout_s: float = 30):
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "standin.py"),
                "--port",
                str(self.port),
                "--latency",
                str(latency),
                "--tasks",
                str(tasks),
            ]
        )
        deadline = time.monotonic() + start_timeout_s  # it reads the T0 prompts first
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as response:
            return json.load(response)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait()


def generate_command(source: Path, out: Path, base_url: str, target: int) -> tuple[list[str], dict]:
    cmd = [
        sys.executable,
        "-m",
        "selfinstruct",
        "generate",
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--model",
        "standin",
        "--price-in",
        "0",
        "--price-out",
        "0",
        "--num-instructions",
        str(target),
        "--tasks-per-request",
        "20",
        "--concurrency",
        "64",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(source), "OPENAI_API_KEY": "EMPTY"}
    return cmd, env


def run_measured(
    cmd: list[str], env: dict, *, kill_when=None, first_request_after: int | None = None, standin=None
) -> dict:
    """Run one process to its end (or SIGKILL it when `kill_when()` is true); its own rusage."""
    started = time.monotonic()
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=env["PYTHONPATH"]
    )  # `python -m` looks in the working directory first
    first_request_s = None
    ticks = 0
    while True:
        # wait4 rather than poll(): it reaps the process with its own resource usage
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        ticks += 1
        if kill_when is not None and ticks % 20 == 0 and kill_when():  # once a second: it reads a file
            process.send_signal(signal.SIGKILL)
        if first_request_after is not None and first_request_s is None:
            if len(standin.stats()["served"]) > first_request_after:
                first_request_s = time.monotonic() - started
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    stderr = process.stderr.read()
    if kill_when is None and process.returncode != 0:
        raise SystemExit(f"generate failed ({process.returncode}):\n{stderr[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "first_new_request_s": None if first_request_s is None else round(first_request_s, 2),
    }


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE.parent, help="checkout whose selfinstruct runs")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-scale"))
    parser.add_argument("--target", type=int, default=52_000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--json", type=Path, help="append the figures to this JSON list")
    args = parser.parse_args()

    results = {
        "label": args.label,
        "source": str(args.source),
        "target": args.target,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out = args.out.resolve()
    shutil.rmtree(args.out, ignore_errors=True)
    full, half = args.out / "full", args.out / "half"

    standin = StandIn(args.latency, 20)
    try:
        cmd, env = generate_command(args.source, full, standin.base_url, args.target)
        fresh = run_measured(cmd, env)
        stats = json.loads((full / "stats.json").read_text())
        fresh.update(
            requests=stats["responses"],
            candidates=stats["candidates"],
            accepted=stats["accepted"],
            requests_per_s=round(stats["responses"] / fresh["wall_s"], 1),
            candidates_per_s=round(stats["candidates"] / fresh["wall_s"], 1),
            cpu_ms_per_candidate=round(1000 * fresh["cpu_s"] / stats["candidates"], 3),
            ledger_mb=round((full / "ledger.jsonl").stat().st_size / 2**20, 1),
        )
        results["fresh"] = fresh
        print(f"fresh: {fresh}", flush=True)

        served = len(standin.stats()["served"])
        resume = run_measured(cmd, env)
        assert len(standin.stats()["served"]) == served, "a finished run sent new requests on resume"
        results["resume_finished"] = resume
        print(f"resume of the finished run: {resume}", flush=True)

        cmd, env = generate_command(args.source, half, standin.base_url, args.target)
        data = half / "data.jsonl"
        killed = run_measured(cmd, env, kill_when=lambda: data.exists() and count_lines(data) >= args.target // 2)
        results["killed_half_way"] = {**killed, "accepted_lines": count_lines(data)}
        served = len(standin.stats()["served"])
        resumed = run_measured(cmd, env, first_request_after=served, standin=standin)
        results["resume_half_way"] = resumed
        print(f"resume half way: {resumed}", flush=True)
        assert count_lines(half / "data.jsonl") >= args.target
    finally:
        standin.close()

    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*previous, results], indent=2) + "\n")
    f = results["fresh"]
    print(
        f"| {args.label} | {f['wall_s']} s | {f['cpu_s']} s | {f['requests_per_s']} | {f['candidates_per_s']} "
        f"| {f['cpu_ms_per_candidate']} ms | {f['peak_rss_mb']} MB | {f['ledger_mb']} MB "
        f"| {results['resume_finished']['wall_s']} s | {results['resume_half_way']['first_new_request_s']} s |"
    )


if __name__ == "__main__":
    main()
