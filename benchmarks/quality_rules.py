"""False and true rejects of the filter rules on real data, their CPU cost, and semantic dedup.

    .venv/bin/python benchmarks/quality_rules.py                      # everything but --run, about 3 minutes
    .venv/bin/python benchmarks/quality_rules.py --run outputs/demo   # + a generate run's candidates

Good data, where every record is a real task with a real answer (false rejects):
- bundled: the 208 seed tasks in seeds/ (first instance, as Alpaca does);
- seeds175: self-instruct's 175 seed tasks (../shared/data/self-instruct/);
- user252: self-instruct's 252 user-oriented tasks;
- gsm1000: 1,000 GSM8K problems (question as instruction, solution as output), a fixed
  sample; gsm_rest: the other 6,473, never looked at while the rules were written;
- t0: every 11th of the 55,185 T0 prompts with their completions (5,017), never looked at
  while the rules were written either; many are cloze prompts ("The sentiment expressed
  for the movie is"), which are not requests in Alpaca's sense.

Bad data (true rejects):
- off-topic: each good set with its outputs moved to other instructions of the same set
  (a fixed random permutation without fixed points): a teacher that lost track;
- `--run DIR`: the candidates of `selfinstruct generate` runs (data.jsonl and
  rejected.jsonl), listed with what the new rules say, for judging by hand.

Cost: CPU seconds per candidate of each new rule, in batches of 20 (one teacher answer),
on the standin's TaskMaker records (benchmarks/standin.py: words drawn at random, so
instruction and output share no topic and almost all of them are embedded), on the T0
records and on the good sets.

Semantic dedup: `find_duplicates` on the 55,185 T0 prompts with method = "embedding"
beside the default MinHash + ROUGE-L: wall time and duplicates found.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from selfinstruct.clean import load_preset  # noqa: E402
from selfinstruct.clean.dedup import find_duplicates  # noqa: E402
from selfinstruct.clean.rules import RuleSet  # noqa: E402
from selfinstruct.records import read_jsonl  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
NEW_RULES = ("not_a_task", "needs_web", "placeholder", "off_topic_output")
GSM_SAMPLE = 1000


def first_instances(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        instance = task["instances"][0]
        records.append(
            {"instruction": task["instruction"], "input": instance.get("input", ""), "output": instance["output"]}
        )
    return records


def good_sets() -> dict[str, list[dict]]:
    gsm = [json.loads(line) for line in (SHARED / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    sample = set(random.Random(0).sample(range(len(gsm)), GSM_SAMPLE))
    as_record = lambda g: {"instruction": g["instruction"], "input": g.get("input", ""), "output": g["output"]}  # noqa: E731
    return {
        "bundled": first_instances(ROOT / "seeds" / "seed_tasks.jsonl"),
        "seeds175": first_instances(SHARED / "self-instruct" / "seed_tasks.jsonl"),
        "user252": first_instances(SHARED / "self-instruct" / "user_oriented_instructions.jsonl"),
        "gsm1000": [as_record(gsm[i]) for i in sorted(sample)],
        "gsm_rest": [as_record(g) for i, g in enumerate(gsm) if i not in sample],
        "t0": [{"instruction": p["prompt"], "input": "", "output": p["completion"]} for p in t0_prompts()[::11]],
    }


def t0_prompts() -> list[dict]:
    with gzip.open(SHARED / "t0_prompts_50k.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def moved_outputs(records: list[dict]) -> list[dict]:
    n = len(records)
    order = np.random.default_rng(0).permutation(n)
    order = np.where(order == np.arange(n), (order + 1) % n, order)  # no output stays home
    return [{**record, "output": records[int(j)]["output"]} for record, j in zip(records, order)]


def verdicts(rules: RuleSet, records: list[dict]) -> list[str | None]:
    return [c.rejection.rule if c.rejection else None for c in rules.check_many(records)]


def rates(records: list[dict], preset) -> dict:
    """Per rule alone (every record through that rule) and for the whole preset (first rule that fails)."""
    n = len(records)
    alone = {}
    for rule in preset.rules:
        rejected = sum(d is not None for d in rule.check_many(records))
        if rejected:
            alone[rule.name] = round(rejected / n, 4)
    reasons = Counter(r for r in verdicts(RuleSet(preset.rules), records) if r)
    return {
        "records": n,
        "preset": round(sum(reasons.values()) / n, 4),
        "preset_reasons": dict(reasons.most_common()),
        "rule_alone": alone,
    }


def cost(preset, corpora: dict[str, list[dict]]) -> dict:
    rules = {rule.name: rule for rule in preset.rules}
    rules["off_topic_output"].check_many(corpora["t0"][:10])  # load the model outside the timing
    out = {}
    for name, records in corpora.items():
        batches = [records[i : i + 20] for i in range(0, len(records), 20)]
        row = {}
        for rule in NEW_RULES:
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                for batch in batches:
                    rules[rule].check_many(batch)
                best = min(best, time.process_time() - started)
            row[rule] = round(best / len(records) * 1e6, 1)
        row["all four"] = round(sum(row.values()), 1)
        out[name] = row
    return out


def semantic_dedup() -> dict:
    texts = [p["prompt"] for p in t0_prompts()]
    default = load_preset("default").dedup
    out = {"texts": len(texts)}
    for label, settings in (("minhash", default), ("embedding", default.model_copy(update={"method": "embedding"}))):
        started = time.perf_counter()
        found = find_duplicates(texts, settings)
        reasons = Counter(d.reason for d in found if d is not None)
        out[label] = {"seconds": round(time.perf_counter() - started, 1), **reasons}
    return out


def teacher_candidates(run: Path, preset) -> list[dict]:
    """Every candidate of a run (rejected ones may lack a field: the teacher's JSON had holes)."""
    rows = []
    rules = {rule.name: rule for rule in preset.rules if rule.name in NEW_RULES}
    for _, record in [*read_jsonl(run / "data.jsonl"), *read_jsonl(run / "rejected.jsonl")]:
        record = {field: record.get(field) or "" for field in ("instruction", "input", "output", "reason")}
        said = {name: rule.check(record) for name, rule in rules.items()}
        rows.append(
            {
                "instruction": record["instruction"],
                "input": record["input"],
                "output": record["output"][:200],
                "old_preset": record.get("reason") or "kept",
                **{name: detail for name, detail in said.items() if detail},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, action="append", default=[], help="a generate run directory (repeatable)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "quality_rules_results.json")
    parser.add_argument("--skip-dedup", action="store_true")
    args = parser.parse_args()

    preset = load_preset("default")
    sets = good_sets()
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "false_rejects": {name: rates(records, preset) for name, records in sets.items()},
        "off_topic_true_rejects": {
            name: round(
                sum(
                    d is not None
                    for d in next(r for r in preset.rules if r.name == "off_topic_output").check_many(
                        moved_outputs(records)
                    )
                )
                / len(records),
                4,
            )
            for name, records in sets.items()
            if name != "gsm_rest"
        },
    }
    from standin import TaskMaker

    maker = TaskMaker(1234)
    corpora = {
        "taskmaker": [maker.task() for _ in range(4000)],
        "t0": sets["t0"][:4000],
        "good": [r for n in ("bundled", "seeds175", "user252", "gsm1000") for r in sets[n]],
    }
    results["cpu_us_per_candidate"] = cost(preset, corpora)
    if not args.skip_dedup:
        results["semantic_dedup_t0"] = semantic_dedup()
    for run in args.run:
        results.setdefault("teacher_runs", {})[str(run)] = teacher_candidates(run, preset)
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    for name, row in results["false_rejects"].items():
        print(
            f"{name:9} {row['records']:5}  preset {row['preset']:.2%}  {row['preset_reasons']}  alone: {row['rule_alone']}"
        )
    print("off-topic true rejects:", results["off_topic_true_rejects"])
    print("CPU us per candidate:", json.dumps(results["cpu_us_per_candidate"]))
    if "semantic_dedup_t0" in results:
        print("semantic dedup on T0:", results["semantic_dedup_t0"])
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
