"""A fast OpenAI-compatible stand-in for benchmarks: answers cost nothing and take a fixed time.

    python benchmarks/standin.py --port 8931 --latency 0.3 --tasks 20
    python benchmarks/standin.py --port 8931 --rpm-window 120     # 429 past 120 requests/minute

It runs in its own process (starlette on uvicorn, one event loop; both come with the `local`
extra), so the client under test gets the CPU it would get against a real provider. Each
answer is a JSON `{"tasks": [...]}` of Alpaca-shaped tasks made of words drawn with the T0
prompts' frequencies (see `TaskMaker`), with `usage`.

`--rpm-window N` enforces N requests per sliding minute, as providers do: a request over the
limit gets 429 with `Retry-After` and `x-ratelimit-reset-requests` (seconds until the oldest
request in the window leaves it). GET /stats returns the counts (served, 429s, their times).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gzip
import itertools
import json
import math
import random
import time
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

T0_PROMPTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "t0_prompts_50k.jsonl.gz"
OPENINGS = [
    "Write a",
    "Write a short",
    "Explain why",
    "Explain how",
    "Give me",
    "List three",
    "List five",
    "Describe the",
    "Summarize the",
    "Generate a list of",
    "Classify the following",
    "Rewrite the sentence",
    "What is the",
    "How do I",
    "Translate the",
    "Find the",
    "Create a",
    "Suggest some",
    "Compare the",
    "Name the",
]


class TaskMaker:
    """Tasks shaped like Alpaca's: an instruction of about 12 words after a common opening, an
    input in 40% of them, an output of 20-80 words opening with two words of its instruction,
    all drawn with the word frequencies of the real T0 prompts; 5% are light edits of an
    earlier task (teachers repeat themselves), so the near-duplicate check has real work to do."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        counts = collections.Counter()
        with gzip.open(T0_PROMPTS, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f):
                if number % 5 == 0:
                    counts.update(w for w in json.loads(line)["prompt"].lower().split() if w.isalpha())
        self.words, weights = zip(*counts.most_common(20_000))
        self.cumulative = list(itertools.accumulate(weights))
        self.made: list[dict] = []

    def _words(self, low: int, high: int) -> str:
        n = max(low, min(high, int(self.rng.lognormvariate(math.log((low + high) / 2), 0.4))))
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=n))

    def task(self) -> dict:
        if self.made and self.rng.random() < 0.05:
            earlier = self.rng.choice(self.made)
            words = earlier["instruction"].rstrip(".").split()
            for _ in range(max(1, len(words) // 8)):
                words[self.rng.randrange(len(words))] = self.rng.choice(self.words)
            task = {**earlier, "instruction": " ".join(words) + "."}
        else:
            opening, topic = self.rng.choice(OPENINGS), self._words(4, 20)
            task = {
                "instruction": f"{opening} {topic}.",
                "input": f"{self._words(10, 40).capitalize()}." if self.rng.random() < 0.4 else "",
                # an answer speaks of what it was asked: the instruction's two longest words
                # open it (else nearly every output would be off topic to the default preset)
                "output": f"{' '.join([*sorted(topic.split(), key=len)[-2:], self._words(20, 80)]).capitalize()}.",
            }
        self.made.append(task)
        return task


class StandIn:
    def __init__(self, latency: float, tasks: int, rpm_window: int | None, seed: int, answers: int):
        self.latency = latency
        self.rpm_window = rpm_window
        # Answers are made at start-up, so that serving one costs this process (which shares
        # the machine with the client under test) as little as a real provider's would.
        maker = TaskMaker(seed)
        self.answers = [json.dumps({"tasks": [maker.task() for _ in range(tasks)]}) for _ in range(answers)]
        self.window: collections.deque[float] = collections.deque()
        self.served: list[float] = []
        self.refused: list[float] = []
        # injectable, so tests drive the sliding minute and hold requests in flight without waiting
        self.clock = time.monotonic
        self.wait = asyncio.sleep

    def _over_limit(self, now: float) -> float | None:
        """Seconds until a slot frees, when this request is over the sliding-minute limit."""
        if self.rpm_window is None:
            return None
        while self.window and self.window[0] <= now - 60:
            self.window.popleft()
        if len(self.window) >= self.rpm_window:
            return self.window[0] + 60 - now
        self.window.append(now)
        return None

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        now = self.clock()
        wait = self._over_limit(now)
        if wait is not None:
            self.refused.append(now)
            headers = {"retry-after": f"{wait:.3f}", "x-ratelimit-reset-requests": f"{wait:.3f}s"}
            error = {"error": {"message": "Rate limit reached for requests", "type": "requests"}}
            return JSONResponse(error, status_code=429, headers=headers)
        self.served.append(now)
        content = self.content(body)
        if self.latency:
            await self.wait(self.latency)
        prompt = sum(len(m.get("content", "")) for m in body.get("messages", [])) // 4
        completion = len(content) // 4 + 1
        answer = {
            "id": f"chatcmpl-{len(self.served)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "standin"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        return JSONResponse(answer, headers={"x-request-id": f"srv-{len(self.served)}"})

    def content(self, body: dict) -> str:
        """What the teacher says: the next of the answers made at start-up."""
        return self.answers[(len(self.served) - 1) % len(self.answers)]

    async def stats(self, _request: Request) -> JSONResponse:
        return JSONResponse({"served": self.served, "refused": self.refused})


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rpm-window", type=int)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--answers", type=int, default=3000, help="distinct answers made at start-up, then served in turn"
    )
    return parser


def application(standin: StandIn) -> Starlette:
    return Starlette(
        routes=[Route("/v1/chat/completions", standin.chat, methods=["POST"]), Route("/stats", standin.stats)]
    )


def serve(standin: StandIn, port: int) -> None:
    uvicorn.run(application(standin), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    args = arguments().parse_args()
    serve(StandIn(args.latency, args.tasks, args.rpm_window, args.seed, args.answers), args.port)


if __name__ == "__main__":
    main()
