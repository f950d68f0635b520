"""`filter --engine ray` against the local path on millions of records, per stage and per process.

    .venv/bin/python benchmarks/filter_10m.py --records 1000000 3000000 --engines ray local
    .venv/bin/python benchmarks/filter_10m.py --records 10000000 --engines ray

Data (made once per size, deterministic, under --data-dir, not in the repo): instruction-like
records from `benchmarks/dedup.py`'s generator (T0's words after a common opening, 4-60 words;
30% edited copies of an earlier instruction, so that exact and near duplicates exist at every
scale), each with an output of its own words, as JSONL.

Each run is a fresh process running `clean_dataset` (the `filter` command's function) with the
default preset, timed per stage: for the local path reading, the rules, the dedup
(`find_duplicates`: exact, MinHashes, banding, keep-first) and the rest (the verdicts and
writing them); for Ray its own stages (`verdicts_on_ray`'s stage seconds: it streams, so
reading overlaps the rules and writing the verdicts). Memory: the peak RSS of every process of the run (the
driver, Ray's GCS, raylet and workers), sampled every 0.5 s, and the peak of their sum (RSS
counts the object store's shared pages in each process that maps them, so the sum overstates).

Writes benchmarks/filter_10m_results.json (merged with earlier runs of other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

RESULTS = HERE / "filter_10m_results.json"
SEED = 0


def make_data(n: int, data_dir: Path) -> Path:
    path = data_dir / f"records_{n}.jsonl"
    if path.exists():
        return path
    from dedup import synthetic  # the dedup benchmark's generator (it loads T0 once)

    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    partial = path.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as f:
        for i, text in enumerate(synthetic(n, SEED)):
            words = text.split()
            output = " ".join(words[int(rng.integers(len(words))) :] + words[:3]).capitalize() + "."
            f.write(json.dumps({"id": f"r{i}", "instruction": text.capitalize(), "input": "", "output": output}) + "\n")
    partial.rename(path)
    print(f"made {path} ({n:,} records) in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return path


class MemorySampler(threading.Thread):
    """Peak RSS per process of this process's tree (Ray's processes are its children)."""

    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self.peak_total = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.done.wait(self.interval):
            total = 0.0
            for process in [me, *me.children(recursive=True)]:
                try:
                    rss = process.memory_info().rss / 2**20
                    name = _role(process)
                except psutil.Error:
                    continue
                total += rss
                self.peaks[name] = max(self.peaks.get(name, 0.0), rss)
            self.peak_total = max(self.peak_total, total)


def _role(process: psutil.Process) -> str:
    if process.pid == os.getpid():
        return "driver"
    cmd = " ".join(process.cmdline()[:3])
    for role in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "runtime_env"):
        if role in cmd:
            return role
    if "default_worker" in cmd or process.name().startswith("ray::"):
        return f"worker {process.pid}"
    return f"{process.name()} {process.pid}"


def run_once(src: Path, engine: str, out: Path) -> dict:
    """One filter run in this process, its stages timed by wrapping the functions it calls."""
    import selfinstruct.clean.cleaner as cleaner_module
    from selfinstruct.clean import stage

    seconds: dict[str, float] = {}

    def timed(module, name: str, stage_name: str) -> None:
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[stage_name] = seconds.get(stage_name, 0.0) + time.monotonic() - started

        setattr(module, name, wrapper)

    if engine == "local":
        timed(stage, "read_records", "read")
        timed(cleaner_module.Cleaner, "check_rules", "rules")
        timed(cleaner_module, "find_duplicates", "dedup")
    sampler = MemorySampler()
    sampler.start()
    started = time.monotonic()
    result = stage.clean_dataset(src, out, engine=engine, progress=True)
    wall = time.monotonic() - started
    if engine == "local":
        seconds["verdicts_write"] = wall - sum(seconds.values())
    sampler.done.set()
    sampler.join()
    workers = {k: v for k, v in sampler.peaks.items() if k.startswith("worker")}
    return {
        "engine": engine,
        "wall_s": round(wall, 1),
        "stages_s": {**{k: round(v, 1) for k, v in seconds.items()}, **result.stats.get("stage_seconds", {})},
        "kept": result.stats["kept"],
        "rejected": result.stats["rejected"],
        "peak_rss_mb": {
            "driver": round(sampler.peaks.get("driver", 0)),
            **{k: round(v) for k, v in sampler.peaks.items() if k in ("gcs_server", "raylet")},
            "workers_max": round(max(workers.values(), default=0)),
            "workers": len(workers),
            "all_processes_sum": round(sampler.peak_total),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--engines", nargs="+", default=["ray", "local"], choices=["ray", "local"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/selfinstruct-filter-bench"))
    parser.add_argument("--run", nargs=2, metavar=("SRC", "ENGINE"), help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.run:
        src, engine = Path(args.run[0]), args.run[1]
        print(json.dumps(run_once(src, engine, src.parent / f"out_{engine}_{src.stem}")))
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    for n in args.records:
        src = make_data(n, args.data_dir)
        for engine in args.engines:
            print(f"--- {n:,} records, engine {engine}", file=sys.stderr)
            load = os.getloadavg()[0]
            child = subprocess.run(
                [sys.executable, __file__, "--run", str(src), engine], check=False, stdout=subprocess.PIPE, text=True
            )
            if child.returncode != 0:
                run = {"engine": engine, "failed": f"exit {child.returncode} (out of memory if -9)"}
            else:
                run = json.loads(child.stdout.strip().splitlines()[-1])
            run.update(records=n, load_1min_before=round(load, 2), date=datetime.now(UTC).isoformat())
            print(json.dumps(run), file=sys.stderr)
            results["runs"] = [r for r in results["runs"] if (r["records"], r["engine"]) != (n, engine)] + [run]
            results["machine"] = {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30)}
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
