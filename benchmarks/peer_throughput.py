"""selfinstruct `generate` beside bespokelabs-curator 0.1.31, side by side on one local stand-in.

    python3 -m venv /tmp/curator-venv && /tmp/curator-venv/bin/pip install bespokelabs-curator==0.1.31
    .venv/bin/python benchmarks/peer_throughput.py --curator-venv /tmp/curator-venv \\
        --json benchmarks/peer_throughput_results.json

One `benchmarks/standin.py` (0.3 s per answer, 20 Alpaca-shaped tasks per answer) serves, in
turn, three clients asking for 52,000 records at 64 requests in flight:

- `all rules`: `selfinstruct generate` with the default preset (every rule and dedup);
- `no cleaning`: the same with a preset of no rules and dedup off (`[dedup] enabled = false`),
  which accepts every parsed task: 2,600 requests;
- `curator`: bespokelabs-curator 0.1.31, which cleans nothing, in its own virtual environment
  (never a dependency of selfinstruct): a `curator.LLM` subclass (the script is written to a
  temporary file) asks for 2,600 answers and parses each answer's JSON into one row per task
  (a pydantic `response_format` makes curator probe a custom base URL for structured output,
  which the stand-in fails), its OpenAI backend pointed at the stand-in with a dummy key, `max_concurrent_requests` 64,
  rate limits far above what the stand-in serves, and its cache off (`CURATOR_DISABLE_CACHE`)
  so that it really asks. Without `--curator-venv` (or with a missing one) this client is
  skipped, with a message.

With `--before OLD_CHECKOUT`, a `before` client runs OLD_CHECKOUT's generate with its default
preset too, so that before and after are measured in the same run.

The clients run interleaved (before, all rules, no cleaning, curator; three rounds) and each figure is
the median of its three runs: requests/s (answers over the process's wall time, start-up
included), CPU seconds of every process of the client (a subreaper waits for the rule-check
worker too; the stand-in is not counted) and the peak RSS of its largest process.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_scale import HERE, StandIn, generate_command

PR_SET_CHILD_SUBREAPER = 36
CLIENTS = ["before", "all rules", "no cleaning", "curator"]
NO_CLEANING_PRESET = 'description = "no cleaning: every parsed task kept"\n[dedup]\nenabled = false\n'

CURATOR_SCRIPT = """
import json, sys
from bespokelabs import curator

base_url, requests, concurrency, report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


class Generator(curator.LLM):
    def prompt(self, row):
        return row["prompt"]

    def parse(self, row, response):
        # the answer is the JSON the prompt asks for: one row per task
        return [{"instruction": t["instruction"], "input": t["input"], "output": t["output"]} for t in json.loads(response)["tasks"]]


PROMPT = (
    "You are asked to come up with a set of 20 diverse task instructions. These task instructions will be "
    "given to a GPT model and we will evaluate the GPT model for completing the instructions. Here are "
    "the requirements: try not to repeat the verb for each instruction; the language used should be "
    "diverse; the type of instructions should be diverse; a GPT language model should be able to "
    "complete the instruction; the instructions should be in English; they should be 1 to 2 sentences "
    "long; generate an appropriate input where needed; the output should be an appropriate response.\\n"
    "Examples:\\n1. Instruction: Give three tips for staying healthy.\\n2. Instruction: Rewrite the "
    "sentence in the passive voice. Input: The cat chased the mouse.\\n3. Instruction: Explain why the "
    "sky is blue.\\nList of 20 tasks (request {}):"
)
generator = Generator(
    model_name="gpt-4o-mini",
    backend="openai",
    backend_params={
        "base_url": base_url,
        "api_key": "dummy",
        "max_concurrent_requests": concurrency,
        "max_requests_per_minute": 1_000_000,
        "max_tokens_per_minute": 1_000_000_000,
        "max_retries": 1,
        "require_all_responses": True,
    },
)
rows = generator([{"prompt": PROMPT.format(i)} for i in range(requests)])
stats = rows.performance_stats
with open(report, "w") as f:
    json.dump({"tasks": len(rows.dataset), "max_concurrent_requests": stats.max_concurrent_requests}, f)
"""


def measure(cmd: list[str]) -> None:
    """Run `cmd` as a subreaper: every process it leaves (a worker its parent never waited for)
    is waited for here, so that RUSAGE_CHILDREN holds the CPU of them all; prints it as JSON."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    started = time.monotonic()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    returncode = child.wait()
    wall = time.monotonic() - started
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "returncode": returncode,
                "wall_s": round(wall, 2),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            }
        )
    )


def measured(cmd: list[str], env: dict, cwd: Path) -> dict:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", *cmd],
        env=env,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"{cmd[:4]} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures.pop("returncode") != 0:
        raise SystemExit(f"{cmd[:4]} failed:\n{done.stderr[-3000:]}")
    return figures


def run_selfinstruct(source: Path, out: Path, standin: StandIn, target: int, preset: str | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd, env = generate_command(source, out, standin.base_url, target)
    if preset is not None:
        cmd += ["--preset", preset]
    figures = measured(cmd, env, source)
    stats = json.loads((out / "stats.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {**figures, "requests": stats["responses"], "accepted": stats["accepted"]}


def run_curator(python: Path, script: Path, standin: StandIn, requests: int, concurrency: int, work: Path) -> dict:
    cache = work / "curator-cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = {
        **os.environ,
        "CURATOR_CACHE_DIR": str(cache),
        "CURATOR_DISABLE_CACHE": "true",
        "OPENAI_API_KEY": "dummy",
        "TELEMETRY_ENABLED": "false",  # no network here, and none wanted
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_DATASETS_OFFLINE": "1",
        # tiktoken would download cl100k_base; litellm (a curator dependency) ships it in tiktoken's cache layout
        "TIKTOKEN_CACHE_DIR": str(
            next(python.parent.parent.glob("lib/python*/site-packages/litellm/litellm_core_utils/tokenizers"))
        ),
    }
    served = len(standin.stats()["served"])
    report = work / "curator_report.json"
    figures = measured(
        [str(python), str(script), standin.base_url, str(requests), str(concurrency), str(report)], env, work
    )
    # curator first sends one request of no messages to read rate-limit headers: not one of the work
    asked = len(standin.stats()["served"]) - served - 1
    if asked < requests:
        raise SystemExit(f"curator sent {asked} requests of {requests}")
    shutil.rmtree(cache, ignore_errors=True)
    return {**figures, "requests": requests, **json.loads(report.read_text())}


def median_row(runs: list[dict]) -> dict:
    row = {"runs": runs}
    for key in ("wall_s", "cpu_s", "peak_rss_mb", "requests_per_s"):
        row[key] = round(statistics.median(run[key] for run in runs), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=HERE.parent, help="checkout whose selfinstruct runs")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument(
        "--before", type=Path, help="another checkout (an exported older commit): its `all rules` run too, as `before`"
    )
    parser.add_argument("--curator-venv", type=Path, help="a virtual environment with bespokelabs-curator==0.1.31")
    parser.add_argument("--target", type=int, default=52_000)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per answer")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=CLIENTS, help="clients to run")
    parser.add_argument("--json", type=Path, help="append the figures to this JSON list")
    args = parser.parse_args()

    clients = [c for c in args.only or CLIENTS if c != "before" or args.before]
    python = args.curator_venv / "bin" / "python" if args.curator_venv else None
    if "curator" in clients and (python is None or not python.exists()):
        print(
            "curator skipped: no --curator-venv with bespokelabs-curator (python3 -m venv /tmp/curator-venv && "
            "/tmp/curator-venv/bin/pip install bespokelabs-curator==0.1.31)",
            file=sys.stderr,
        )
        clients = [c for c in clients if c != "curator"]

    work = Path(tempfile.mkdtemp(prefix="peer-throughput-"))
    script, no_cleaning = work / "curator_generate.py", work / "no_cleaning.toml"
    script.write_text(CURATOR_SCRIPT)
    no_cleaning.write_text(NO_CLEANING_PRESET)
    requests = args.target // args.tasks
    runs: dict[str, list[dict]] = {client: [] for client in clients}
    load = os.getloadavg()
    standin = StandIn(args.latency, args.tasks)
    try:
        for round_number in range(args.runs):
            for client in clients:
                if client == "curator":
                    figures = run_curator(python, script, standin, requests, args.concurrency, work)
                else:
                    source = args.before if client == "before" else args.source
                    preset = str(no_cleaning) if client == "no cleaning" else None
                    figures = run_selfinstruct(source, work / "run", standin, args.target, preset)
                figures["requests_per_s"] = round(figures["requests"] / figures["wall_s"], 1)
                runs[client].append(figures)
                print(f"round {round_number + 1} {client}: {figures}", file=sys.stderr, flush=True)
    finally:
        standin.close()
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "label": args.label,
        "source": str(args.source),
        "before": str(args.before) if args.before else None,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "load_average_at_start": [round(x, 2) for x in load],
        "target": args.target,
        "concurrency": args.concurrency,
        "latency_s": args.latency,
        "clients": {client: median_row(figures) for client, figures in runs.items()},
    }
    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*previous, results], indent=2) + "\n")
    print("| client | requests/s | wall | CPU (all its processes) | peak RSS |")
    print("|---|---:|---:|---:|---:|")
    for client, row in results["clients"].items():
        print(
            f"| {client} | {row['requests_per_s']} | {row['wall_s']} s | {row['cpu_s']} s | {row['peak_rss_mb']} MB |"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2:])
    else:
        main()
