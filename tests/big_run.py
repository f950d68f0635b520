"""A run directory of Alpaca's size, written directly: 52,000 accepted records and what a run
leaves beside them (rejects with reasons and duplicate groups, a priced ledger over an hour,
stats.json, config.json). Made in about 3 s, so the report can be built and opened at scale.

Instructions open like Alpaca's ("Write a short story about ...") and go on with words of
the real T0 prompts; 40% have an input (a T0 prompt's opening), outputs run 20 to 80 words.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from selfinstruct.records import write_json_atomic

RECORDS = 52_000
TASKS_PER_RESPONSE = 20
VERBS = {
    "Write": ["poem", "story", "letter", "essay", "review", "song"],
    "Generate": ["list", "sentence", "title", "name"],
    "Create": ["plan", "list", "story", "recipe"],
    "Describe": ["process", "place", "person"],
    "Explain": ["concept", "difference", "process"],
    "Give": ["example", "tip", "reason", "summary"],
    "Rewrite": ["sentence", "paragraph"],
    "Classify": ["sentence", "text", "animal"],
    "Find": ["word", "number"],
    "Suggest": ["name", "way", "idea"],
    "Summarize": ["article", "text"],
    "Translate": ["sentence", "phrase"],
    "Identify": ["type", "word", "theme"],
    "Compose": ["tweet", "poem"],
    "Design": ["logo", "game"],
    "List": ["thing", "benefit", "example"],
    "Make": ["list", "sentence"],
    "Name": ["country", "animal"],
    "Edit": ["sentence", "text"],
    "Compare": ["thing", "country"],
    "Brainstorm": ["idea", "name"],
    "Construct": ["sentence", "argument"],
    "Provide": ["example", "definition"],
    "Predict": ["outcome"],
}
QUESTIONS = ["What is", "How do I", "Why does", "Which of"]
REASONS = {
    "instruction_words": 1500,
    "teacher_artefact": 700,
    "output_language": 400,
    "near_duplicate": 2400,
    "exact_duplicate": 600,
}


def write_big_run(out: Path, t0_prompts: Path, records: int = RECORDS, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with gzip.open(t0_prompts, "rt", encoding="utf-8") as f:
        prompts = [json.loads(line)["prompt"] for line in f]
    words = [w for p in prompts[::50] for w in p.split() if w.isalpha() and w.islower()]

    def task(i: int) -> dict:
        if rng.random() < 0.1:
            instruction = f"{rng.choice(QUESTIONS)} {' '.join(rng.choices(words, k=rng.randint(4, 12)))}?"
        else:
            verb = rng.choice(list(VERBS))
            instruction = (
                f"{verb} a {rng.choice(VERBS[verb])} about {' '.join(rng.choices(words, k=rng.randint(3, 14)))}."
            )
        return {
            "instruction": instruction,
            "input": prompts[i % len(prompts)][:300] if rng.random() < 0.4 else "",
            "output": " ".join(rng.choices(words, k=rng.randint(20, 80))),
        }

    start = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    rejects = [reason for reason, n in REASONS.items() for _ in range(n * records // RECORDS)]
    rng.shuffle(rejects)
    candidates = records + len(rejects)
    responses = -(-candidates // TASKS_PER_RESPONSE)
    out.mkdir(parents=True)
    data, rejected, ledger = [], [], []
    verdicts = iter(rng.sample(["kept"] * records + rejects, candidates))
    for r in range(responses):
        request_id = f"r{r:06d}"
        when = (start + timedelta(seconds=3600 * r / responses)).isoformat(timespec="milliseconds")
        ledger.append({"event": "request", "request_id": request_id, "index": r, "time": when, "reserved_usd": 0.01})
        ledger.append(
            {
                "event": "response",
                "request_id": request_id,
                "time": when,
                "model": "gpt-4o-mini",
                "content": "",
                "usage": {"prompt_tokens": 1400, "cached_tokens": 0, "completion_tokens": 1200, "estimated": False},
                "cost_usd": (1400 * 0.15 + 1200 * 0.6) / 1e6,
                "latency_s": 9.0,
            }
        )
        for j in range(TASKS_PER_RESPONSE):
            verdict = next(verdicts, None)
            if verdict is None:
                break
            row = {
                "id": f"{request_id}-{j}",
                **task(len(data) + len(rejected)),
                "request_id": request_id,
                "teacher_model": "gpt-4o-mini",
                "created": when,
            }
            if verdict == "kept":
                data.append(row)
                continue
            row.update(reason=verdict, detail="")
            if verdict.endswith("duplicate") and data:
                kept = rng.choice(data[-2000:])  # teachers repeat what they said lately
                row.update(
                    instruction=kept["instruction"]
                    if verdict == "exact_duplicate"
                    else kept["instruction"] + " Briefly.",
                    duplicate_of=kept["id"],
                    detail=f"duplicate of {kept['id']}",
                )
            rejected.append(row)
    for name, rows in (("data.jsonl", data), ("rejected.jsonl", rejected), ("ledger.jsonl", ledger)):
        (out / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    counts = {reason: sum(1 for r in rejected if r["reason"] == reason) for reason in REASONS}
    write_json_atomic(
        out / "stats.json",
        {
            "accepted": len(data),
            "candidates": candidates,
            "unparseable": 0,
            "filters": {"seen": candidates, "kept": len(data), "rejected": counts},
        },
    )
    write_json_atomic(
        out / "config.json",
        {
            "format_version": 2,
            "task": "bootstrap",
            "identity": {"model": "gpt-4o-mini"},
            "config": {"model": "gpt-4o-mini", "seeds": None},
        },
    )
    return out
