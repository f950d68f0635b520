"""Outputs that answer another instruction: the labelled sets, the rules' accuracy and cost,
and the sentence-model runtimes compared.

    .venv/bin/python benchmarks/mismatch_rule.py             # about 20 minutes on 2 cores
    .venv/bin/python benchmarks/mismatch_rule.py --part accuracy   # no timings
    flock /tmp/h3/bench.lock .venv/bin/python benchmarks/mismatch_rule.py --part timings   # added

Labelled sets, all made here from fixed seeds (nothing written but the results):
- good: real pairs of GSM8K (600 of the 6,473 problems filters/README.md holds out),
  self-instruct's 175 seeds and 252 user-oriented tasks (first instance), and T0 (every
  11th prompt of the first 11,000 with its completion; T0 has 1,000 of them);
- moved (a mis-joined or shuffled file): each set with its outputs moved to other
  instructions of the same set, a fixed permutation without fixed points, no `request_id`;
- in-answer (a teacher that lost track): the same records in groups of 20 sharing a
  `request_id`, as `generate` writes them, and in each group 4 records whose outputs are
  rotated among themselves; the other 16 are good records in the same groups;
- teacher: candidates of the embedded teacher (SmolLM2-135M, `selfinstruct generate`),
  labelled by reading (benchmarks/data/teacher_mismatch_labels.jsonl).
T0's completions are mostly a few words ("positive", "subjective idealism"): too short to
judge, they are kept, so recall is given over the outputs of `min_output_words` or more
words ("judged") and over all of them.

Each set is checked with the two rules without the sentence model (`static`: the default
preset's `off_topic_output` and `answers_other_task` with `sentence_model = false`, content
words and static embeddings), as the `semantic` preset sets them (the sentence model for
what those cannot clear), and `unscreened` (the `semantic` preset with answers_other_task's
`screen = false`: the sentence model reads every record), and each whole preset's false
rejects on the good records are counted.

Then the CPU cost per record of the two rules in batches of 20 (one teacher answer), for
good records and for the sets with swapped or moved outputs: for a record the screens clear
and for one that reaches the sentence model, and the fraction
that reaches it; and the sentence model's runtimes (numpy float32 at 64/128/256 tokens, torch float32
and int8 dynamic quantization at 64/128 tokens, one thread each), texts per CPU second
measured in the same run, with each one's agreement with the numpy float32 reference;
and ONNX Runtime (float32, int8 dynamic quantization per tensor and per channel), when
`pip install onnx onnxruntime` is done (not a dependency: the rows are skipped without it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality_rules import SHARED, first_instances, moved_outputs, t0_prompts  # noqa: E402

from selfinstruct.clean import load_preset  # noqa: E402
from selfinstruct.clean.rules import RuleSet  # noqa: E402
from selfinstruct.clean.rules.topic import AnswersOtherTask, OffTopicOutput, prompt_text  # noqa: E402
from selfinstruct.clean.sentence_model import SentenceModel, mean_pooled, model_dir, padded  # noqa: E402

LABELS = ROOT / "benchmarks" / "data" / "teacher_mismatch_labels.jsonl"
GROUP = 20
ROTATED = 4
RULES = ("off_topic_output", "answers_other_task")
# semantic: the `semantic` preset; static: the default preset with answers_other_task in its
# static mode (no sentence model), which is not in the default (filters/README.md says why);
# unscreened: the `semantic` preset with answers_other_task's screen off (screen = false)
VARIANTS = ("static", "semantic", "unscreened")


def shared_sets() -> dict[str, list[dict]]:
    gsm = [json.loads(line) for line in (SHARED / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    calibration = set(random.Random(0).sample(range(len(gsm)), 1000))  # quality_rules.py's sample
    held_out = [i for i in range(len(gsm)) if i not in calibration]
    return {
        "gsm8k": [
            {"instruction": gsm[i]["instruction"], "input": "", "output": gsm[i]["output"]}
            for i in sorted(random.Random(1).sample(held_out, 600))
        ],
        "seeds175": first_instances(SHARED / "self-instruct" / "seed_tasks.jsonl"),
        "user252": first_instances(SHARED / "self-instruct" / "user_oriented_instructions.jsonl"),
        "t0": [{"instruction": p["prompt"], "input": "", "output": p["completion"]} for p in t0_prompts()[:11000:11]],
    }


def in_answers(records: list[dict], name: str, rotate: int = ROTATED) -> tuple[list[dict], list[bool]]:
    """Groups of GROUP records sharing a request_id; in each, `rotate` outputs rotated."""
    rng = random.Random(2)
    out, moved = [], []
    for start in range(0, len(records) - GROUP + 1, GROUP):
        group = [
            {**r, "request_id": f"{name}-{start}", "id": f"{name}-{start}-{k}"}
            for k, r in enumerate(records[start : start + GROUP])
        ]
        chosen = rng.sample(range(GROUP), rotate)
        outputs = [group[k]["output"] for k in chosen]
        for k, output in zip(chosen, outputs[1:] + outputs[:1]):
            group[k] = {**group[k], "output": output}
        out += group
        moved += [k in chosen for k in range(GROUP)]
    return out, moved


def teacher_set() -> tuple[list[dict], list[bool]]:
    if not LABELS.is_file():
        return [], []
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows, [row["label"] == "mismatched" for row in rows]


def decisions(rules: list, records: list[dict]) -> list[str | None]:
    """The first of `rules` to reject each record (batches of GROUP, as generate checks them)."""
    ruleset = RuleSet(rules)
    out = []
    for start in range(0, len(records), GROUP):
        out += [c.rejection.rule if c.rejection else None for c in ruleset.check_many(records[start : start + GROUP])]
    return out


def rate(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def accuracy(rules: list, sets: dict[str, list[dict]], min_words: int) -> dict:
    out = {}
    for name, records in sets.items():
        judged = [len(r["output"].split()) >= min_words for r in records]
        moved = moved_outputs(records)
        moved_judged = [len(r["output"].split()) >= min_words for r in moved]
        answers, rotated = in_answers(records, name)
        said_moved = decisions(rules, moved)
        said_answers = decisions(rules, answers)
        said_good = decisions(rules, records)
        out[name] = {
            "records": len(records),
            "false_rejects_plain": rate(d is not None for d in said_good),
            "false_rejects_in_answers": rate(d is not None for d, m in zip(said_answers, rotated) if not m),
            "moved_caught_judged": rate(d is not None for d, j in zip(said_moved, moved_judged) if j),
            "moved_caught_all": rate(d is not None for d in said_moved),
            "in_answer_caught_judged": rate(
                d is not None
                for d, m, r in zip(said_answers, rotated, answers)
                if m and len(r["output"].split()) >= min_words
            ),
            "in_answer_caught_all": rate(d is not None for d, m in zip(said_answers, rotated) if m),
            "moved_judged_share": rate(moved_judged),
            "good_judged_share": rate(judged),
        }
    return out


def variant_rules(variant: str) -> list:
    """The whole preset of a VARIANTS entry, in order."""
    if variant == "semantic":
        return load_preset("semantic").rules
    if variant == "unscreened":
        rules = load_preset("semantic").rules
        return [
            rule.model_copy(update={"screen": False}) if rule.name == "answers_other_task" else rule for rule in rules
        ]
    # the default preset with answers_other_task's static mode right after off_topic_output
    rules = load_preset("default").rules
    at = [rule.name for rule in rules].index("off_topic_output") + 1
    return [*rules[:at], AnswersOtherTask(), *rules[at:]]


def preset_false_rejects(preset: list, sets: dict[str, list[dict]]) -> dict:
    """The whole preset on good records, and the share each of RULES rejects."""
    ruleset = RuleSet(preset)
    out = {}
    for name, records in sets.items():
        reasons = [c.rejection.rule if c.rejection else None for c in ruleset.check_many(records)]
        out[name] = {"preset": rate(r is not None for r in reasons)} | {
            rule: rate(r == rule for r in reasons) for rule in RULES
        }
    return out


def preset_rules(preset: list) -> list:
    """RULES as `preset` sets them."""
    rules = {rule.name: rule for rule in preset}
    return [rules[name] for name in RULES]


def preset_accuracy(variant: str, sets: dict[str, list[dict]]) -> dict:
    """RULES of a VARIANTS entry on the labelled sets and the teacher's candidates, and its
    whole preset's false rejects on the good records, plain and in answers of GROUP."""
    preset = variant_rules(variant)
    rules = preset_rules(preset)
    out = {
        "settings": {rule.name: rule.model_dump() for rule in rules},
        "accuracy": accuracy(rules, sets, rules[0].min_output_words),
    }
    teacher, labels = teacher_set()
    if teacher:
        said = decisions(rules, teacher)
        out["teacher"] = {
            "records": len(teacher),
            "mismatched": sum(labels),
            "caught": sum(d is not None for d, m in zip(said, labels) if m),
            "false_rejects": sum(d is not None for d, m in zip(said, labels) if not m),
            "rejected": [
                {"id": r.get("id"), "rule": d, "label": r["label"]} for r, d in zip(teacher, said) if d is not None
            ],
        }
    out["preset_false_rejects"] = preset_false_rejects(
        preset,
        {
            **sets,
            **{f"{name} in answers": in_answers(records, name, rotate=0)[0] for name, records in sets.items()},
        },
    )
    return out


def cost(rules: list, corpora: dict[str, list[dict]]) -> dict:
    """CPU µs per record of each rule in batches of GROUP, and the share reaching the model."""
    out = {}
    for name, records in corpora.items():
        batches = [records[i : i + GROUP] for i in range(0, len(records), GROUP)]
        row = {}
        for rule in rules:
            reached = rule.model_records
            started = time.process_time()
            for batch in batches:
                rule.check_many(batch)
            seconds = time.process_time() - started
            row[rule.name] = {
                "us_per_record": round(seconds / len(records) * 1e6, 1),
                "reach_model": round((rule.model_records - reached) / len(records), 4),
            }
        out[name] = row
    return out


def runtimes(texts: list[str]) -> dict:
    """Texts/s of each way to run the model, and its cosine agreement with numpy float32 at 128 tokens."""
    import torch
    from threadpoolctl import threadpool_limits
    from transformers import AutoModel, AutoTokenizer

    root = model_dir()
    reference = SentenceModel(root, 128)
    with threadpool_limits(1):
        base = reference.embed(texts)
    out = {}

    def timed(label: str, embed, threads: int):
        # CPU seconds, not wall: what a run pays, and steady on a machine shared with other jobs
        embed(texts[:8])
        started = time.process_time()
        vectors = embed(texts)
        seconds = time.process_time() - started
        out[label] = {
            "texts_per_s": round(len(texts) / seconds, 1),
            "threads": threads,
            "min_cosine_with_reference": round(float((vectors * base).sum(axis=1).min()), 4),
        }
        print(label, out[label], flush=True)

    for tokens in (64, 128, 256):
        with threadpool_limits(1):
            timed(f"numpy fp32 {tokens} tokens", SentenceModel(root, tokens).embed, 1)
    tokenizer = AutoTokenizer.from_pretrained(str(root))
    bert = AutoModel.from_pretrained(str(root)).eval()

    def torch_embed(model, tokens):
        def embed(batch_texts):
            vectors = []
            order = sorted(range(len(batch_texts)), key=lambda i: len(batch_texts[i]))
            with torch.inference_mode():
                for start in range(0, len(order), 32):
                    rows = order[start : start + 32]
                    encoded = tokenizer(
                        [batch_texts[i] for i in rows],
                        padding=True,
                        truncation=True,
                        max_length=tokens,
                        return_tensors="pt",
                    )
                    hidden = model(**encoded).last_hidden_state
                    mask = encoded["attention_mask"].unsqueeze(-1).float()
                    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
                    vectors.append((rows, pooled.numpy()))
            result = np.zeros((len(batch_texts), pooled.shape[1]), dtype=np.float32)
            for rows, block in vectors:
                result[rows] = block
            return result

        return embed

    int8 = torch.ao.quantization.quantize_dynamic(bert, {torch.nn.Linear}, dtype=torch.qint8)
    torch.set_num_threads(1)
    for tokens in (64, 128):
        timed(f"torch fp32 {tokens} tokens", torch_embed(bert, tokens), 1)
        timed(f"torch int8 dynamic {tokens} tokens", torch_embed(int8, tokens), 1)
    try:
        sessions = onnx_sessions(bert)
    except ImportError:
        print("onnxruntime rows skipped: pip install onnx onnxruntime", flush=True)
        return out
    for label, session in sessions.items():
        for tokens in (64, 128):
            timed(f"onnxruntime {label} {tokens} tokens", OnnxSentenceModel(root, tokens, session).embed, 1)
    return out


def onnx_sessions(bert) -> dict:
    """The model exported to ONNX (float32), and int8 dynamic quantizations of it, one thread each."""
    import tempfile

    import onnxruntime
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class LastHidden(torch.nn.Module):  # positional inputs for the exporter
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    folder = Path(tempfile.mkdtemp(prefix="minilm-onnx-"))
    ids = torch.ones((2, 16), dtype=torch.long)
    names = ["input_ids", "attention_mask", "hidden"]
    torch.onnx.export(
        LastHidden(bert), (ids, ids), str(folder / "fp32.onnx"), input_names=names[:2], output_names=names[2:],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in names}, opset_version=17, dynamo=False,
    )  # fmt: skip
    for per_channel in (False, True):
        quantize_dynamic(
            folder / "fp32.onnx",
            folder / f"int8-{per_channel}.onnx",
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"DefaultTensorType": 1},  # float32 where shape inference gives no type
        )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    files = {"fp32": "fp32", "int8 dynamic": "int8-False", "int8 dynamic per-channel": "int8-True"}
    return {
        label: onnxruntime.InferenceSession(str(folder / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
        for label, name in files.items()
    }


class OnnxSentenceModel(SentenceModel):
    """The rule's model (its tokenizer, truncation and length-sorted batches) with the six
    layers run by an ONNX Runtime session instead of numpy."""

    def __init__(self, root: Path, max_tokens: int, session):
        super().__init__(root, max_tokens)
        self.session = session

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        ids, mask = padded(batch)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask.astype(np.int64)})[0]
        return mean_pooled(hidden, mask)


def model_accuracy(sets: dict[str, list[dict]], min_words: int) -> dict:
    """Recall of moved outputs and false rejects of off_topic_output's model stage alone (no
    screen) at 64/128/256 tokens, at its default min_sentence_cosine: what truncation costs."""
    out = {}
    threshold = OffTopicOutput.model_fields["min_sentence_cosine"].default
    for tokens in (64, 128, 256):
        model = SentenceModel(model_dir(), tokens)
        row = {}
        for name, records in sets.items():
            good = [r for r in records if len(r["output"].split()) >= min_words]
            moved = [r for r in moved_outputs(records) if len(r["output"].split()) >= min_words]
            cosines = {}
            for label, rs in (("good", good), ("moved", moved)):
                vectors = model.embed([t for r in rs for t in (prompt_text(r), r["output"])])
                cosines[label] = (vectors[0::2] * vectors[1::2]).sum(axis=1)
            row[name] = {
                "moved_caught": rate(cosines["moved"] < threshold),
                "false_rejects": rate(cosines["good"] < threshold),
            }
        out[f"{tokens} tokens"] = row
    return out


def timings(sets: dict[str, list[dict]]) -> dict:
    """The cost figures (run alone on the machine: `flock /tmp/h3/bench.lock ...`)."""
    rules = preset_rules(variant_rules("semantic"))
    out = {"load_average_timings": os.getloadavg()}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # as in the rule workers; two BLAS threads on a busy machine spin
        out["model_stage_by_tokens"] = model_accuracy({"user252": sets["user252"]}, rules[0].min_output_words)
    # what a run pays: good records in answers of GROUP; then answers with ROTATED outputs
    # swapped, and moved outputs (no request_id), where more records reach the model
    corpora = {f"{name} good, in answers": in_answers(records, name, rotate=0)[0] for name, records in sets.items()}
    corpora |= {name: in_answers(records, name)[0] for name, records in sets.items()}
    corpora["gsm8k moved"] = moved_outputs(sets["gsm8k"])
    corpora["user252 moved"] = moved_outputs(sets["user252"])
    rules[0].check_many(sets["seeds175"][:40])  # load both models outside the timing
    out["cpu_us_per_record"] = cost(rules, corpora)
    for variant in ("static", "unscreened"):
        out[f"cpu_us_per_record_{variant}"] = cost(preset_rules(variant_rules(variant)), corpora)
        print(variant, json.dumps(out[f"cpu_us_per_record_{variant}"]), flush=True)
    print(json.dumps(out["cpu_us_per_record"]), flush=True)
    texts = [t for r in sets["user252"][:50] for t in (prompt_text(r), r["output"])]
    out["runtimes"] = runtimes(texts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "mismatch_rule_results.json")
    parser.add_argument(
        "--part", choices=("accuracy", "timings", "all"), default="all", help="timings: added to --json"
    )
    args = parser.parse_args()

    sets = shared_sets()
    if args.part == "timings":
        results = json.loads(args.json.read_text(encoding="utf-8"))
        results.update(timings(sets))
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
        return
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "variants": {variant: preset_accuracy(variant, sets) for variant in VARIANTS},
    }
    for variant, figures in results["variants"].items():
        print(variant, json.dumps(figures["accuracy"]), json.dumps(figures.get("teacher")))
        print(variant, json.dumps(figures["preset_false_rejects"]))
    if args.part == "all":
        results.update(timings(sets))
    elif args.json.exists():  # keep the timings of an earlier run
        results = {**json.loads(args.json.read_text(encoding="utf-8")), **results}
    args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
