"""A seed too long for any prompt (issue 17): how long `generate` takes to refuse it, and its
peak memory, for a 5 MB and a 50 MB seed line among the bundled seeds.

    .venv/bin/python benchmarks/seed_limits.py                              # this checkout
    .venv/bin/python benchmarks/seed_limits.py --source OLD --label before  # another checkout

Each size runs `selfinstruct generate` in a fresh subprocess of the chosen checkout against a
loopback stand-in (tests/fake_openai.py, which counts the requests it gets); the result is
appended to seed_limits_results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fake_openai import FakeOpenAI  # noqa: E402

RESULTS = ROOT / "benchmarks" / "seed_limits_results.json"
PEAK_RSS = """
import resource, sys
from selfinstruct.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    print("exit", e.code, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
"""


def seed_file(path: Path, megabytes: int) -> Path:
    seeds = [json.loads(line) for line in (ROOT / "seeds" / "seed_tasks.jsonl").read_text().splitlines()[:10]]
    long = {
        "id": "seed_long",
        "instruction": "Summarize this text: " + "river garden " * (megabytes * 2**20 // 13),
        "instances": [{"input": "", "output": "A summary."}],
    }
    path.write_text("".join(json.dumps(s) + "\n" for s in [*seeds[:5], long, *seeds[5:]]))
    return path


def measure(source: Path, megabytes: int, folder: Path) -> dict:
    seeds = seed_file(folder / f"seeds-{megabytes}mb.jsonl", megabytes)
    with FakeOpenAI() as server:
        started = time.monotonic()
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS,
                "generate",
                "--out",
                str(folder / f"run-{megabytes}"),
                "--base-url",
                server.base_url,
                "--model",
                "gpt-4o-mini",
                "--seeds",
                str(seeds),
                "-n",
                "10",
                "--quiet",
                "--max-cost",
                "0.01",
            ],
            capture_output=True,
            text=True,
            cwd=source,
            env={"PYTHONPATH": str(source), "OPENAI_API_KEY": "sk-bench", "PATH": "/usr/bin:/bin"},
            timeout=600,
        )
        seconds = time.monotonic() - started
        requests = len(server.calls)
    *_, exit_line, peak_mb = run.stderr.strip().splitlines()
    return {
        "seed_mb": megabytes,
        "seconds": round(seconds, 2),
        "peak_rss_mb": int(peak_mb),
        "exit": exit_line,
        "requests_sent": requests,
        "message": next((l for l in run.stderr.splitlines() if l.startswith("Error")), "")[:200],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose selfinstruct is measured")
    parser.add_argument("--label", default="after")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50], help="MB of the long seed line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(args.source.resolve(), size, Path(folder)) for size in args.sizes]
    entry = {
        "label": args.label,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "rows": rows,
    }
    for row in rows:
        print(json.dumps(row))
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    RESULTS.write_text(json.dumps([*history, entry], indent=2) + "\n")


if __name__ == "__main__":
    main()
