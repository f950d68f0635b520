"""A hand-made run directory with a priced ledger whose figures are known in advance.

Teacher gpt-4o-mini ($0.15 in, $0.075 cached, $0.60 out per 1M tokens) at a made-up
provider URL that carries a secret in its user:password part and query:

    r000000 answered  2,000,000 prompt (400,000 cached) + 1,000,000 completion  $0.87
    r000001 answered 10,000,000 prompt                  + 5,000,000 completion  $4.50
    r000002 answered  4,000,000 prompt (all cached)     + 2,000,000 completion  $1.50
    r000003 failed                                                              $0
    r000004 cancelled, $0.25 reserved                                  possibly billed
    r000005 no outcome (the process died), $0.50 reserved              possibly billed

    spent $6.87, possibly billed $0.75; 20 accepted of 25 candidates
    per 1,000 accepted: $343.50; 52,000 records on gpt-4o-mini: 2,600 x $6.87 = $17,862.00
"""

from __future__ import annotations

import json
from pathlib import Path

from selfinstruct.clean import load_preset
from selfinstruct.engine.job import Job
from selfinstruct.engine.ledger import Ledger, load_ledger
from selfinstruct.engine.replay import restore
from selfinstruct.engine.rundir import RunDir
from selfinstruct.records import write_json_atomic, write_jsonl_atomic
from selfinstruct.tasks.bootstrap import BootstrapTask, GenerateConfig
from selfinstruct.tasks.bootstrap.seeds import load_seeds

SECRET = "sk-in-the-url-0123456789"
BASE_URL = f"https://user:{SECRET}@api.example-llm.com:8443/v1?api-key={SECRET}"
SPENT_USD = 6.87
UNSETTLED_USD = 0.75
ACCEPTED, CANDIDATES = 20, 25
RULE_COUNTS = {"near_duplicate": 3, "instruction_words": 2}

ANSWERS = [  # request_id, prompt, cached, completion, cost
    ("r000000", 2_000_000, 400_000, 1_000_000, 0.87),
    ("r000001", 10_000_000, 0, 5_000_000, 4.50),
    ("r000002", 4_000_000, 4_000_000, 2_000_000, 1.50),
]


def real_run(server_url: str, out: Path, n: int) -> GenerateConfig:
    """Settings for a real `generate` run against a local OpenAI-compatible server, priced as
    gpt-4o-mini, with a one-rule preset: these tests are about money and keys, not filters."""
    preset = out.parent / f"{out.name}-preset.toml"
    preset.write_text(
        'description = "one rule, no dedup"\n[rules.instruction_words]\nmin = 3\n[dedup]\nenabled = false\n'
    )
    return GenerateConfig(
        base_url=server_url,
        model="gpt-4o-mini",
        preset=str(preset),
        tasks_per_request=5,
        num_instructions=n,
        concurrency=1,
        timeout=5.0,
        max_tokens=400,
    )


def records(n: int = ACCEPTED, teacher: str = "gpt-4o-mini") -> list[dict]:
    """Varied records: empty and multi-paragraph inputs, non-ASCII text, a list in the output."""
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"r{i % 3:06d}-{i}",
                "instruction": f"Summarize the following note number {i} in one sentence.",
                "input": "" if i % 2 else f"Première partie {i}.\n\nSecond paragraph: café, naïve, 東京.",
                "output": f"A short summary {i}:\n- one\n- two",
                "request_id": f"r{i % 3:06d}",
                "teacher_model": teacher,
                "created": f"2026-11-2{i % 3}T10:00:0{i % 10}.000+00:00",
            }
        )
    return out


def write_run(out: Path, answers=ANSWERS) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    config = GenerateConfig(base_url=BASE_URL, model="gpt-4o-mini", num_instructions=ACCEPTED).resolved()
    identity = {**config.identity(), "seeds_sha256": "ab" * 32, "preset_sha256": "cd" * 32}
    write_json_atomic(
        out / "config.json", {"format_version": 1, "identity": identity, "config": config.model_dump(mode="json")}
    )
    events = []
    for index, (request_id, prompt, cached, completion, cost) in enumerate(answers):
        events.append({"event": "request", "request_id": request_id, "index": index, "reserved_usd": 9.0})
        events.append(
            {
                "event": "response",
                "request_id": request_id,
                "model": "gpt-4o-mini-2024-07-18",
                "content": "[]",
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "cached_tokens": cached,
                    "estimated": False,
                },
                "cost_usd": cost,
                "latency_s": 1.0,
            }
        )
    n = len(answers)
    events += [
        {"event": "request", "request_id": "r000003", "index": n, "reserved_usd": 9.0},
        {"event": "failure", "request_id": "r000003", "error": "APIStatusError: 500", "attempts": 8},
        {"event": "request", "request_id": "r000004", "index": n + 1, "reserved_usd": 0.25},
        {"event": "cancelled", "request_id": "r000004", "reserved_usd": 0.25},
        {"event": "request", "request_id": "r000005", "index": n + 2, "reserved_usd": 0.5},
    ]
    with (out / "ledger.jsonl").open("w") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)
    write_jsonl_atomic(out / "data.jsonl", records())
    write_jsonl_atomic(out / "rejected.jsonl", [])
    stats = {
        "accepted": ACCEPTED,
        "candidates": CANDIDATES,
        "unparseable": 1,
        "preset": "default",
        "filters": {"seen": CANDIDATES, "kept": ACCEPTED, "rejected": RULE_COUNTS},
    }
    write_json_atomic(out / "stats.json", stats)
    return out


def write_answer(out: Path, content: str, request_id: str = "r000000", index: int = 0) -> None:
    """Append one answered request to the ledger of `out`, as a run would have."""
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(RunDir(out).ledger, load_ledger(RunDir(out).ledger))
    ledger.request(request_id, index, 0.0)
    ledger.response(
        request_id,
        model="smollm2-135m-instruct",
        output_format="json",
        finish_reason="stop",
        content=content,
        cost_usd=None,
        latency_s=1.0,
        usage={"prompt_tokens": 10, "cached_tokens": 0, "completion_tokens": 10, "estimated": True},
    )
    ledger.close()


def replayed(out: Path, config: GenerateConfig) -> Job:
    """The bootstrap job of `out` rebuilt from its ledger (data.jsonl and rejected.jsonl rewritten), not run."""
    config = config.resolved()
    task = BootstrapTask(config, load_seeds(config.seeds), load_preset(config.preset))
    job = Job(task, config, RunDir(out), task.identity(), None)
    restore(job)
    job.close()
    return job
