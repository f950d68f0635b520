"""The whole loop on a CPU: data, `finetune`, then `eval --compare base student` on held-out items.

    python benchmarks/eval_loop.py                    # a few minutes of training on an idle 2-core CPU
    python benchmarks/eval_loop.py --max-steps 4 --eval-items 10     # a quicker look

1. data: GSM8K training solutions (the shared train.jsonl; `output` is the worked solution,
   `answer` the number). The first --train lines train the student; the last --eval-items lines
   are the held-out set, never trained on (the eval's overlap check confirms it).
2. `selfinstruct finetune`: LoRA on the bundled SmolLM2-135M-Instruct (the GGUF, dequantised),
   chat template, --max-steps steps.
3. `selfinstruct eval HELD-OUT --compare smollm2-135m STUDENT`: both served on loopback in turn;
   accuracy (math-verify against `answer`) and the imitation NLL per token of the held-out
   solutions. The NLL must drop; the accuracy of a 135M model on GSM8K is near zero either way.
4. Throughput against a stand-in: `eval` on --standin-items items of GSM8K with a stand-in
   model (right on half the items) and a stand-in judge priced as gpt-4o-mini: items/s of the
   eval machinery itself, and what a pairwise judge costs per item (both orders).

Writes benchmarks/eval_loop_results.json; the figures go into RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from generate_scale import free_port
from standin import StandIn, serve

HERE = Path(__file__).resolve().parent
GSM8K = HERE.parents[1] / "shared" / "data" / "gsm8k" / "train.jsonl"
BASE = "smollm2-135m"
JUDGE_PRICED_AS = "gpt-4o-mini"


class EvalStandIn(StandIn):
    """A model that answers a GSM8K question right when a hash of it is even (half the items), and
    a judge that prefers the first answer shown (a position bias the both-orders design cancels)."""

    def __init__(self, answers: dict[str, str]):
        super().__init__(latency=0.0, tasks=1, rpm_window=None, seed=0, answers=1)
        self.right = answers  # question -> reference number

    def content(self, body: dict) -> str:
        messages = body.get("messages", [])
        if messages and messages[0]["role"] == "system" and "judge" in messages[0]["content"]:
            return "Assistant A answers the question directly.\n[[A]]"
        question = messages[-1]["content"]
        number = self.right.get(question.strip(), "0")
        if int(hashlib.sha256(question.encode()).hexdigest(), 16) % 2:
            number += "1"  # 72 -> 721: wrong
        return f"Working it out step by step gives {number}.\n#### {number}"


def serve_standin(answers: dict[str, str], port: int) -> None:
    serve(EvalStandIn(answers), port)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def selfinstruct(*args: str) -> float:
    """Run a selfinstruct command, its output shown; returns its wall time. One thread for torch:
    on cores shared with other work, OpenMP threads spinning on a busy core cost more than they bring."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "selfinstruct", *args], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    return time.monotonic() - started


def scores(eval_dir: Path) -> dict:
    doc = json.loads((eval_dir / "eval.json").read_text())
    return {label: entry["scores"] for label, entry in doc["models"].items()} | {"_doc": doc}


def loop(args, work: Path) -> dict:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    train = write_jsonl(work / "train.jsonl", rows[: args.train])
    held_out = write_jsonl(work / "held-out.jsonl", rows[-args.eval_items :])
    student = work / "student"
    train_s = selfinstruct(
        "finetune",
        "--data",
        str(train),
        "--model",
        BASE,
        "--out",
        str(student),
        "--template",
        "chat",
        "--max-steps",
        str(args.max_steps),
        "--max-length",
        "256",
        "--batch-size",
        "1",
        "--global-batch-size",
        "4",
        "--lr",
        "2e-3",
        "--lora-r",
        "16",
        "--no-packing",
        "--no-gradient-checkpointing",
    )
    metrics = json.loads((student / "metrics.json").read_text())
    eval_dir = work / "eval"
    eval_s = selfinstruct(
        "eval",
        str(held_out),
        "--compare",
        BASE,
        str(student),
        "--out",
        str(eval_dir),
        "--metrics",
        "verified,imitation",
        "--train",
        str(train),
        "--max-tokens",
        str(args.max_tokens),
        "--concurrency",
        "1",
        "--quiet",
    )
    found = scores(eval_dir)
    doc = found.pop("_doc")
    return {
        "paired_nll_drop": paired(held_out, student),
        "train_records": args.train,
        "held_out_items": args.eval_items,
        "max_steps": args.max_steps,
        "train_seconds": round(train_s, 1),
        "train_loss": [metrics["first_loss"], metrics["last_loss"]],
        "eval_seconds": round(eval_s, 1),
        "scores": found,
        "overlap": {label: entry.get("overlap") for label, entry in doc["models"].items()},
    }


def paired(held_out: Path, student: Path) -> dict:
    """The student's NLL drop on the same held-out answers, base and student side by side (the
    eval's table gives each model its own interval, which the items' spread in difficulty widens)."""
    import torch

    from selfinstruct.eval.imitation import imitation_nlls, paired_drop
    from selfinstruct.records import read_records

    torch.set_num_threads(1)
    records = read_records(held_out)
    base = imitation_nlls(BASE, records, template="chat")
    trained = imitation_nlls(str(student), records)
    return paired_drop(base, trained).to_json()


def throughput(args, work: Path) -> dict:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()][: args.standin_items]
    questions = write_jsonl(work / "standin-set.jsonl", rows)
    port = free_port()
    server = multiprocessing.Process(
        target=serve_standin, args=({r["instruction"]: r["answer"] for r in rows}, port), daemon=True
    )
    server.start()
    try:
        time.sleep(2.0)  # uvicorn's start-up; the first request retries anyway
        url = f"http://127.0.0.1:{port}/v1"
        eval_dir = work / "standin-eval"
        started = time.monotonic()
        selfinstruct(
            "eval",
            str(questions),
            f"standin@{url}",
            "--out",
            str(eval_dir),
            "--metrics",
            "verified,pairwise",
            "--judge-base-url",
            url,
            "--judge-model",
            JUDGE_PRICED_AS,
            "--concurrency",
            "16",
            "--quiet",
        )
        seconds = time.monotonic() - started
    finally:
        server.terminate()
    doc = json.loads((eval_dir / "eval.json").read_text())
    (entry,) = doc["models"].values()
    judge_cost = entry["pairwise"]["judge_cost_usd"]
    return {
        "items": len(rows),
        "seconds": round(seconds, 1),
        "items_per_s": round(len(rows) / seconds, 1),
        "requests": len(rows) * 3,  # one answer and two verdicts per item
        "accuracy": entry["scores"]["accuracy"],
        "win_rate": entry["scores"].get("win_rate"),
        "judge_priced_as": JUDGE_PRICED_AS,
        "judge_cost_usd": judge_cost,
        "judge_cost_per_item_usd": judge_cost / len(rows) if judge_cost is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="outputs/eval-loop", help="working directory (replaced)")
    parser.add_argument("--train", type=int, default=2000, help="GSM8K training records offered to finetune")
    parser.add_argument("--max-steps", type=int, default=10, help="optimizer steps of 4 records each")
    parser.add_argument("--eval-items", type=int, default=20, help="held-out items (the last lines of the file)")
    parser.add_argument("--max-tokens", type=int, default=256, help="answer length limit in the eval")
    parser.add_argument("--standin-items", type=int, default=300)
    parser.add_argument("--skip-loop", action="store_true", help="only the stand-in throughput")
    args = parser.parse_args()
    work = Path(args.work)
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "cpu": _cpu_name(),
        "date": time.strftime("%Y-%m-%d"),
        "standin": throughput(args, work),
    }
    if not args.skip_loop:
        results["loop"] = loop(args, work)
    out = HERE / "eval_loop_results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    found = re.search(r"model name\s*:\s*(.+)", info)
    return found[1].strip() if found else platform.processor()


if __name__ == "__main__":
    main()
