"""52,000 records through the Batch API: what a real 52K bootstrap costs per model.

    .venv/bin/python benchmarks/cost_52k.py --out outputs/bench-cost-52k

A full `generate --batch` run to 52,000 accepted records (gpt-4o-mini's settings: 20 tasks per
request, 3 seed examples, the default preset) against the batch stand-in of the tests
(`tests/fake_batch.py`: files, batches, rounds). Its teacher answers with realistic sizes:

- usage is counted as OpenAI counts it: our real prompts and the answers, in the model's own
  encoding (o200k_base, the encoding of gpt-4o-mini, gpt-4.1-nano and gpt-5-nano; `bpe-openai`
  ships it, tiktoken would download it), plus the chat format's 3 + 4 tokens per message;
- each task's instruction, input and output have the token lengths of a seed task drawn at
  random from self-instruct's 175 (`../shared/data/self-instruct/seed_tasks.jsonl`, the seeds
  Alpaca used), with words drawn from the T0 prompts' frequencies (so the tasks differ and the
  cleaner works as on real ones): an instruction opens with a request ("Explain how"), an output
  with its instruction's two longest words; 5% are light edits of an earlier task;
- cached tokens follow OpenAI's rule: a prompt of 1,024 tokens or more gets the prefix it
  shares with the previous prompt, in steps of 128 tokens; shorter prompts get none.

The run's token totals are then priced for each model at batch and at standard prices and
compared with Alpaca's "< $500". Figures go to `--json` and are printed as markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bpe_openai import get_encoding

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]

from fake_batch import FakeBatchAPI  # noqa: E402
from standin import OPENINGS, TaskMaker  # noqa: E402

from selfinstruct.pricing import price_for  # noqa: E402
from selfinstruct.tasks.bootstrap import GenerateConfig, generate  # noqa: E402

SEED_TASKS = HERE.parents[1] / "shared" / "data" / "self-instruct" / "seed_tasks.jsonl"
MODELS = ("gpt-4o-mini", "gpt-4.1-nano", "gpt-5-nano")
TARGET = 52_000
ALPACA_USD = 500
TOKENS_PER_MESSAGE, TOKENS_PER_ANSWER = 4, 3
CACHE_MIN, CACHE_STEP = 1024, 128


@dataclass
class Answered:
    """What the batch stand-in needs of a chat answer."""

    status: int
    server_request_id: str
    usage: dict


class SizedTeacher:
    """A chat teacher whose answers have the token profile of real Alpaca-style tasks."""

    def __init__(self, seed: int = 1234):
        self.encoding = get_encoding("o200k_base")
        self.maker = TaskMaker(seed)
        self.rng = random.Random(seed)
        self.seed_lengths = [
            tuple(
                self.count(text)
                for text in (task["instruction"], task["instances"][0]["input"], task["instances"][0]["output"])
            )
            for task in map(json.loads, SEED_TASKS.read_text().splitlines())
        ]
        self.word_tokens: dict[str, int] = {}
        self.previous_prompt: list[int] = []
        self.answered = 0

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text))

    def _words(self, tokens: int) -> list[str]:
        """Words in T0's frequencies until they make `tokens` tokens."""
        words, made = [], 0
        while made < tokens:
            word = self.rng.choices(self.maker.words, cum_weights=self.maker.cumulative)[0]
            if word not in self.word_tokens:
                self.word_tokens[word] = self.count(" " + word)
            words.append(word)
            made += self.word_tokens[word]
        return words

    def task(self) -> dict:
        if self.maker.made and self.rng.random() < 0.05:  # teachers repeat themselves
            earlier = self.rng.choice(self.maker.made)
            words = earlier["instruction"].split()
            words[self.rng.randrange(1, len(words))] = self.rng.choice(self.maker.words)
            task = {**earlier, "instruction": " ".join(words)}
        else:
            instruction, input_, output = self.rng.choice(self.seed_lengths)
            opening = self.rng.choice(OPENINGS)  # a request, as the rules want
            topic = self._words(instruction - self.count(opening))
            # an answer speaks of what it was asked: it opens with the instruction's two longest words
            lead = sorted(topic, key=len)[-2:]
            task = {
                "instruction": f"{opening} {' '.join(topic)}.",
                "input": f"{' '.join(self._words(input_)).capitalize()}." if input_ else "",
                "output": f"{' '.join(lead + self._words(output - self.count(' '.join(lead)))).capitalize()}.",
            }
        self.maker.made.append(task)
        return task

    def respond(self, body: dict, headers) -> tuple[Answered, dict, bytes]:
        messages = body["messages"]
        prompt_ids = [t for m in messages for t in self.encoding.encode(m["content"])]
        n = int(re.search(r"a set of (\d+) diverse task", messages[-1]["content"]).group(1))
        content = json.dumps({"tasks": [self.task() for _ in range(n)]}, ensure_ascii=False)
        prompt = TOKENS_PER_ANSWER + TOKENS_PER_MESSAGE * len(messages) + len(prompt_ids)
        completion = self.count(content)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": self._cached(prompt_ids, prompt)},
        }
        self.answered += 1
        answer = {
            "id": f"chatcmpl-{self.answered}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage,
        }
        return Answered(200, f"srv-{self.answered}", usage), {}, json.dumps(answer).encode()

    def _cached(self, prompt_ids: list[int], prompt_tokens: int) -> int:
        shared = 0
        for a, b in zip(prompt_ids, self.previous_prompt):
            if a != b:
                break
            shared += 1
        self.previous_prompt = prompt_ids
        return 0 if prompt_tokens < CACHE_MIN else shared // CACHE_STEP * CACHE_STEP


def run(out: Path, target: int) -> dict:
    os.environ.setdefault("OPENAI_API_KEY", "EMPTY")  # the stand-in takes any key
    teacher = SizedTeacher()
    started = time.monotonic()
    with FakeBatchAPI(teacher) as server:
        config = GenerateConfig(
            base_url=server.base_url, model="gpt-4o-mini", batch=True, batch_poll_s=0.05, num_instructions=target
        )
        result = generate(config, out, overwrite=True, progress=False)
    wall = time.monotonic() - started
    usages = [usage for _, _, usage in server.served]
    prompt = sum(u["prompt_tokens"] for u in usages)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    accepted = result.accepted + result.stats.get("surplus", 0)  # every record kept: past the target too
    per_record = {"prompt": prompt / accepted, "cached": cached / accepted, "completion": completion / accepted}
    costs = {}
    for model in MODELS:
        price = price_for(model)
        for batch in (True, False):
            run_usd = price.cost(prompt, completion, cached, batch=batch)
            costs[f"{model} {'batch' if batch else 'standard'}"] = round(run_usd * TARGET / accepted, 2)
    gpt4o_mini = costs["gpt-4o-mini batch"]
    billed = price_for("gpt-4o-mini").cost(prompt, completion, cached, batch=True)
    assert abs(result.cost["cost_usd"] - billed) < 1e-6, (
        result.cost["cost_usd"],
        billed,
    )  # the ledger prices what was served
    return {
        "date": time.strftime("%Y-%m-%d"),
        "accepted": accepted,
        "requests": len(usages),
        "batches": [len(ids) for _, ids in server.uploads],
        "tasks_per_request": config.resolved().tasks_per_request,
        "acceptance": round(accepted / (len(usages) * config.resolved().tasks_per_request), 3),
        "prompt_tokens_per_request": round(prompt / len(usages)),
        "completion_tokens_per_request": round(completion / len(usages)),
        "tokens_per_accepted_record": {k: round(v, 1) for k, v in per_record.items()},
        "seed_task_tokens_median": sorted(map(sum, teacher.seed_lengths))[len(teacher.seed_lengths) // 2],
        "run_cost_usd": result.cost["cost_usd"],
        "usd_for_52k": costs,
        # cost goes as 1/acceptance: below this share of tasks kept, gpt-4o-mini at batch prices passes $3
        "acceptance_for_3_usd": round(
            accepted / (len(usages) * config.resolved().tasks_per_request) * gpt4o_mini / 3, 3
        ),
        # gpt-5-nano thinks before it answers: each 1,000 reasoning tokens per request add this (batch)
        "gpt-5-nano_batch_usd_per_1k_reasoning_tokens": round(
            price_for("gpt-5-nano").cost(0, 1000 * len(usages), batch=True) * TARGET / accepted, 2
        ),
        "wall_s": round(wall, 1),
    }


def markdown(figures: dict) -> str:
    per = figures["tokens_per_accepted_record"]
    lines = [
        f"{figures['accepted']:,} records accepted from {figures['requests']:,} requests in {len(figures['batches'])} batches "
        f"({', '.join(map(str, figures['batches']))} requests); {figures['acceptance']:.1%} of the tasks asked for kept.",
        f"Per request: {figures['prompt_tokens_per_request']:,} prompt and {figures['completion_tokens_per_request']:,} completion tokens. "
        f"Per accepted record: {per['prompt']} prompt ({per['cached']} cached), {per['completion']} completion.",
        "",
        "| model | 52K at batch prices | 52K at standard prices | vs Alpaca's < $500 (batch) |",
        "|---|---:|---:|---:|",
    ]
    for model in MODELS:
        batch, standard = figures["usd_for_52k"][f"{model} batch"], figures["usd_for_52k"][f"{model} standard"]
        lines.append(f"| {model} | ${batch:.2f} | ${standard:.2f} | {ALPACA_USD / batch:,.0f}x cheaper |")
    lines += [
        "",
        f"gpt-5-nano's figures leave out its reasoning tokens: each 1,000 per request adds "
        f"${figures['gpt-5-nano_batch_usd_per_1k_reasoning_tokens']:.2f} at batch prices. Cost goes as 1/acceptance: "
        f"gpt-4o-mini at batch prices passes $3 below {figures['acceptance_for_3_usd']:.0%} of the tasks kept.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/bench-cost-52k"))
    parser.add_argument("--target", type=int, default=TARGET)
    parser.add_argument("--json", type=Path, default=HERE / "cost_52k_results.json")
    args = parser.parse_args()
    figures = run(args.out, args.target)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(markdown(figures))
    if args.target == TARGET:
        print(
            f"\ntarget (<= $3 for 52K on gpt-4o-mini at batch prices): {'met' if figures['usd_for_52k']['gpt-4o-mini batch'] <= 3 else 'missed'}"
        )


if __name__ == "__main__":
    main()
