"""Reading a 52K Alpaca JSON list (`alpaca_data.json`) with `read_records`, beside `json.load`.

    .venv/bin/python benchmarks/read_alpaca_json.py                             # this checkout
    .venv/bin/python benchmarks/read_alpaca_json.py --source OLD --label before  # another checkout
    .venv/bin/python benchmarks/read_alpaca_json.py --records 2000 4000 8000      # smaller lists

The data is made here, in Alpaca's own layout (`json.dump(..., indent=4)`: one key a line):
52,002 records of Alpaca's sizes (instruction 6-18 words, an input in 40% of them, output
15-80 words), about 23 MB, written to a temporary directory. Each size is read in a fresh
subprocess of the chosen checkout; the result is appended to read_alpaca_json_results.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "read_alpaca_json_results.json"
ALPACA_RECORDS = 52_002
WORDS = (
    "the a of to and in is that for it with as on be this by are from or an which can your you more "
    "write describe explain list generate create give find classify summarize rewrite suggest compare "
    "data water energy story poem city market health science history music language system people"
).split()

# Runs in the checkout under test: its read_records, timed, and a check that every record came back.
TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from selfinstruct.records import read_records
path, expected = sys.argv[2], int(sys.argv[3])
started = time.perf_counter(); rows = json.load(open(path, encoding="utf-8")); load_s = time.perf_counter() - started
started = time.perf_counter(); records = read_records(path); read_s = time.perf_counter() - started
assert len(records) == len(rows) == expected, (len(records), len(rows), expected)
print(json.dumps({"json_load_s": round(load_s, 3), "read_records_s": round(read_s, 3)}))
"""


def alpaca_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    text = lambda lo, hi: " ".join(rng.choices(WORDS, k=rng.randint(lo, hi))).capitalize()  # noqa: E731
    return [
        {
            "instruction": text(6, 18) + ".",
            "input": text(8, 30) if rng.random() < 0.4 else "",
            "output": text(15, 80) + ".",
        }
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout whose read_records is timed")
    parser.add_argument("--label", default="after")
    parser.add_argument("--records", type=int, nargs="+", default=[ALPACA_RECORDS])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.records:
            path = Path(tmp) / "alpaca_data.json"
            path.write_text(json.dumps(alpaca_records(n), indent=4), encoding="utf-8")
            out = subprocess.run(
                [sys.executable, "-c", TIMER, str(args.source.resolve()), str(path), str(n)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row = {"label": args.label, "records": n, "mb": round(path.stat().st_size / 1e6, 1), **json.loads(out)}
            print(row, flush=True)
            rows.append(row)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    run = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "rows": rows,
    }
    RESULTS.write_text(json.dumps([*previous, run], indent=1) + "\n")


if __name__ == "__main__":
    main()
