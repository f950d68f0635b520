"""Throughput, MFU and peak memory of the fine-tune recipes on one GPU, against plain trl.

    python benchmarks/finetune_gpu.py --out results.json       # on an H100 with selfinstruct[train-gpu]
    python benchmarks/finetune_gpu.py --tiny --out tiny.json   # CPU smoke test of the same code path
    python benchmarks/finetune_gpu.py --runs lora-7b-48gb lora-7b-48gb+attention=sdpa+liger_kernel=false

A run is a recipe name, `baseline-METHOD`, or either with `+FIELD=VALUE` recipe overrides (the
"before" of an optimisation: the same recipe with one setting changed back). `+bench.peft_cast=true`
restores peft's fp32 cast of the adapters' inputs, which `build_trainer` turns off under autocast.
Results and the commands that produced them: benchmarks/RESULTS.md, "Fine-tune".

A randomly initialised Llama-2-7B-shaped model is built from its config and saved once (no
download: speed and memory do not depend on the weights). Each shipped single-GPU recipe then
trains for a fixed number of steps at sequence length 512 and 2048 with packing, through
selfinstruct's own `load_model` / `build_trainer`; and a plain `SFTTrainer` with trl's defaults
(no packing, padded batches, trl's default checkpointing, optimizer and attention) trains the
same data with the same LoRA / quantisation and examples per step as the baseline. Every run is a
separate process, so peak memory is its own and an out-of-memory run does not stop the others.
`--check` first compares the `varlen` attention kernel with SDPA on random packed data (forward
and gradients) and times a large bf16 matmul, the card's practical ceiling.

Data: random token ids with Alpaca-like lengths (log-normal, median ~150 tokens, prompt ~40%)
and the response-only loss mask. Tokens per micro-batch and per step are kept as at length 512:
at 2048 the recipes' row counts are divided by 4. The baseline does not pack, so its rows are
examples whatever the length: it keeps trl's default 8 examples per micro-batch at every length;
max_length only truncates its few long examples.

tokens/s counts real (non-padding) tokens between the end of the warm-up steps and the last
step, data loading included. MFU = tokens/s x FLOPs per token / peak, with FLOPs per token
6N for a full fine-tune and 4N for LoRA/QLoRA (forward 2N, backward through the frozen weights
2N, no weight gradients), N = parameters that do matmuls (all but the input embedding).
Attention-score FLOPs and the recomputation of gradient checkpointing are not counted: this is
model FLOPs utilisation, not hardware utilisation.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ["lora-7b-24gb", "lora-7b-48gb", "lora-7b-80gb", "qlora-7b-16gb", "full-7b-80gb"]
# The baseline copies the method's settings (LoRA rank and targets, quantisation, learning rate,
# examples per optimizer step) from these recipes, with trl's default 8 examples per micro-batch.
BASELINES = {"lora": "lora-7b-24gb", "qlora": "qlora-7b-16gb", "full": "full-7b-80gb"}
BASELINE_ROWS = 8  # SFTConfig's per_device_train_batch_size default

LLAMA2_7B = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
TINY = {
    "vocab_size": 1024,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}

# Dense bf16 tensor-core peak, TFLOP/s (no sparsity), by device name.
PEAK_TFLOPS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results.json"))
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny Llama, a few steps")
    parser.add_argument("--steps", type=int, help="measured optimizer steps [8; tiny: 2]")
    parser.add_argument("--warmup", type=int, help="optimizer steps run before measuring, at least 1 [2; tiny: 1]")
    parser.add_argument("--seq-lens", type=int, nargs="+", help="[512 2048; tiny: 64 256]")
    parser.add_argument("--only", nargs="+", help="run only these recipes / baseline-METHOD names")
    parser.add_argument(
        "--runs", nargs="+", help="run exactly these (RECIPE or baseline-METHOD, +FIELD=VALUE overrides)"
    )
    parser.add_argument(
        "--check", action="store_true", help="first check the varlen kernel against SDPA, time a matmul"
    )
    parser.add_argument("--time-budget", type=float, help="seconds; runs that would start later are skipped")
    parser.add_argument("--run-timeout", type=float, default=900, help="seconds one run may take [900]")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak [by device name]")
    parser.add_argument("--workdir", type=Path, help="where the random model is saved [a temporary directory]")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(_child(json.loads(args.child))), flush=True)
        return

    started = time.monotonic()
    steps = args.steps or (2 if args.tiny else 8)
    warmup = max(1, args.warmup or (1 if args.tiny else 2))
    seq_lens = args.seq_lens or ([64, 256] if args.tiny else [512, 2048])
    names = args.runs or RECIPES + [f"baseline-{m}" for m in BASELINES]
    names = [n for n in names if not args.only or n in args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    model_dir = workdir / ("tiny-llama" if args.tiny else "llama2-7b-random")

    info = _spawn({"device_info": True, "tiny": args.tiny})
    peak = args.peak_tflops or info["peak_tflops"]
    report = {
        **info,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "peak_tflops": peak,
        "steps": steps,
        "warmup": warmup,
        "runs": [],
    }
    print(json.dumps(info), flush=True)
    if args.check:
        report["check"] = _spawn({"check": True, "tiny": args.tiny}, timeout=args.run_timeout)
        print("check: " + json.dumps(report["check"]), flush=True)
    if not (model_dir / "config.json").exists():
        made = time.monotonic()
        report["model"] = _spawn({"make_model": str(model_dir), "tiny": args.tiny}, timeout=args.run_timeout)
        print(f"model written in {time.monotonic() - made:.0f} s", flush=True)

    for seq_len in seq_lens:
        for name in names:
            if args.time_budget and time.monotonic() - started > args.time_budget:
                result = {"name": name, "seq_len": seq_len, "status": "not run (time budget)"}
            else:
                spec = {
                    "name": name,
                    "seq_len": seq_len,
                    "base_seq_len": 512 if not args.tiny else seq_lens[0],
                    "steps": steps,
                    "warmup": warmup,
                    "model_dir": str(model_dir),
                    "tiny": args.tiny,
                    "workdir": str(workdir),
                }
                run_started = time.monotonic()
                result = _spawn(spec, timeout=args.run_timeout)
                result["wall_s"] = round(time.monotonic() - run_started, 1)
            if result.get("tokens_per_s") and peak:
                result["mfu"] = result["tokens_per_s"] * result["flops_per_token"] / (peak * 1e12)
            report["runs"].append(result)
            print(_row(result), flush=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")  # after every run: a timeout keeps the rest

    _add_ratios(report)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(markdown_table(report))
    print(f"\nwritten: {args.out}")


def _add_ratios(report: dict) -> None:
    """Each run's tokens/s over its method's plain-trl baseline at the same length."""
    baselines = {
        (r["name"], r["seq_len"]): r.get("tokens_per_s") for r in report["runs"] if r["name"].startswith("baseline-")
    }
    for run in report["runs"]:
        if run.get("status") != "ok" or run["name"].startswith("baseline-"):
            continue
        base = baselines.get((f"baseline-{run['method']}", run["seq_len"]))
        if base:
            run["vs_baseline"] = run["tokens_per_s"] / base


# ---------------------------------------------------------------- parent side


def _spawn(spec: dict, timeout: float | None = None) -> dict:
    """Run one job in a fresh Python process and return what it reports."""
    cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
    try:  # a failed run is reported, not fatal
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
        stdout, stderr = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        stdout, stderr = "", f"timed out after {timeout:.0f} s\n" + (e.stderr or b"").decode(errors="replace")
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    tail = (stderr or stdout)[-3000:]
    if "make_model" in spec or "device_info" in spec:
        raise SystemExit(f"benchmark setup failed:\n{tail}")
    if "check" in spec:
        return {"status": "error", "error": tail[-1500:]}
    status = "OOM" if "OutOfMemoryError" in tail or "CUDA out of memory" in tail else "error"
    if stderr.startswith("timed out"):
        status = "timed out"
    print(tail, file=sys.stderr)
    return {"name": spec["name"], "seq_len": spec["seq_len"], "status": status, "error": tail[-600:]}


def _row(run: dict) -> str:
    if run.get("status") != "ok":
        return f"{run['name']:<16} seq {run['seq_len']:>5}: {run.get('status')}"
    memory = "n/a" if run["peak_memory_gib"] is None else f"{run['peak_memory_gib']:.1f} GiB"
    mfu = f", MFU {run['mfu']:.1%}" if run.get("mfu") is not None else ""
    return (
        f"{run['name']:<16} seq {run['seq_len']:>5}: {run['tokens_per_s']:>10.0f} tokens/s{mfu}, "
        f"peak memory {memory}, {run['tokens_per_step']:.0f} tokens/step, loss {run['loss_first']:.4f}"
    )


def markdown_table(report: dict) -> str:
    lines = [
        "| run | seq len | rows x accum | tokens/step | tokens/s | MFU | vs baseline | peak memory (reserved) | settings |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in report["runs"]:
        if run.get("status") != "ok":
            lines.append(f"| {run['name']} | {run['seq_len']} | | | {run.get('status')} | | | | |")
            continue
        mfu = f"{run['mfu']:.1%}" if run.get("mfu") is not None else "n/a"
        memory = "n/a"
        if run["peak_memory_gib"] is not None:
            memory = f"{run['peak_memory_gib']:.1f} GiB ({run['peak_reserved_gib']:.1f})"
        ratio = f"{run['vs_baseline']:.2f}x" if run.get("vs_baseline") else ""
        checkpointing = "off"
        if run["gradient_checkpointing"]:
            every = run.get("checkpoint_every_n_layers", 1)
            checkpointing = "on" if every == 1 else f"every {every} layers"
        settings = (
            f"{run['attention']}, packing {'on' if run['packing'] else 'off'}, "
            f"checkpointing {checkpointing}, {run['optim']}{', liger' if run.get('liger') else ''}"
        )
        lines.append(
            f"| {run['name']} | {run['seq_len']} | {run['rows']} x {run['accum']} | {run['tokens_per_step']:.0f} "
            f"| {run['tokens_per_s']:.0f} | {mfu} | {ratio} | {memory} | {settings} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- child side


def _child(spec: dict) -> dict:
    if "make_model" in spec:
        return _make_model(Path(spec["make_model"]), spec["tiny"])
    if "device_info" in spec:
        return _device_info(spec["tiny"])
    if "check" in spec:
        return _check(spec["tiny"])
    return _train(spec)


def _device_info(tiny: bool) -> dict:
    import torch
    import transformers
    import trl

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}
    for package in ("peft", "accelerate", "bitsandbytes", "torchao", "flash_attn", "flash_attn_interface"):
        try:
            versions[package] = getattr(__import__(package), "__version__", "installed")
        except ImportError:
            pass
    for package in ("liger_kernel", "datasets"):
        try:
            versions[package] = importlib.metadata.version(package.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            pass
    versions["python"] = platform.python_version()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    if torch.cuda.is_available():
        versions["cuda (torch)"] = torch.version.cuda
        versions["cudnn"] = torch.backends.cudnn.version()
        try:
            query = [
                "nvidia-smi",
                "--query-gpu=driver_version,memory.total,power.limit,clocks.max.sm",
                "--format=csv,noheader",
            ]
            versions["driver, memory, power limit, max SM clock"] = subprocess.run(
                query, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    peak = next((tflops for key, tflops in PEAK_TFLOPS if key in device), None)
    return {"device": device, "peak_tflops": None if tiny else peak, "versions": versions, "tiny": tiny}


def _check(tiny: bool) -> dict:
    """The varlen kernel against SDPA with a block-diagonal causal mask, on random packed data; a matmul's rate."""
    import torch

    from selfinstruct.finetune.kernels import varlen_available, varlen_kernel

    if not varlen_available():
        return {"varlen": "not available here"}
    torch.manual_seed(0)
    lengths = [37, 512, 1, 300, 1198]  # 2048 tokens, one of them a single token
    heads, dim = 32, 128
    cu = torch.tensor([0] + list(itertools.accumulate(lengths)), dtype=torch.int32, device="cuda")
    q, k, v = (
        torch.randn(sum(lengths), heads, dim, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)
    )
    grad = torch.randn(sum(lengths), heads, dim, device="cuda", dtype=torch.bfloat16)
    out = varlen_kernel(q, k, v, cu, max(lengths), None)
    got = [out.float(), *torch.autograd.grad(out, (q, k, v), grad)]
    # Reference: fp32 SDPA per example, the same function on upcast inputs.
    ref_out = torch.cat(
        [
            torch.nn.functional.scaled_dot_product_attention(
                *(t[a:b].float().transpose(0, 1) for t in (q, k, v)), is_causal=True
            ).transpose(0, 1)
            for a, b in itertools.pairwise(cu.tolist())
        ]
    )
    ref = [ref_out, *torch.autograd.grad(ref_out, (q, k, v), grad.float())]
    errors = {
        name: ((g.float() - r).norm() / r.norm()).item() for name, g, r in zip(("out", "dq", "dk", "dv"), got, ref)
    }
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(20):
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    matmul = 2 * 8192**3 / sorted(times)[len(times) // 2] / 1e12
    return {"varlen_rel_error_vs_fp32_sdpa": errors, "bf16_matmul_8192_tflops": round(matmul, 1)}


def _make_model(target: Path, tiny: bool) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**(TINY if tiny else LLAMA2_7B))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # initialising 7B on the GPU takes seconds, on the CPU minutes
        model = LlamaForCausalLM._from_config(config, dtype=torch.float32 if tiny else torch.bfloat16)
    model.save_pretrained(target)
    return {"params": sum(p.numel() for p in model.parameters())}


def _tokenizer(vocab_size: int):
    """A stand-in tokenizer: the data is already token ids, trl only needs the pad and EOS ids."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab.update({f"t{i}": i for i in range(3, vocab_size)})
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def _examples(min_tokens: int, min_count: int, vocab_size: int, max_len: int, seed: int = 0) -> list[dict]:
    """Alpaca-like lengths: log-normal around 150 tokens with a long tail, 40% prompt.

    Enough for every step, packed (`min_tokens`) or one example per row (`min_count`), so no
    step runs short at the end of an epoch.
    """
    import random

    rng = random.Random(seed)
    examples, tokens = [], 0
    while tokens < min_tokens or len(examples) < min_count:
        length = min(max_len, max(16, int(rng.lognormvariate(math.log(150), 0.6))))
        n_prompt = max(1, int(length * 0.4))
        ids = [rng.randrange(3, vocab_size) for _ in range(length - 1)] + [1]  # ends with EOS
        examples.append({"input_ids": ids, "completion_mask": [0] * n_prompt + [1] * (length - n_prompt)})
        tokens += length
    return examples


def _train(spec: dict) -> dict:
    import torch

    from selfinstruct.finetune import load_recipe
    from selfinstruct.finetune.kernels import liger_available
    from selfinstruct.finetune.model import ModelSource, attention_kernel, choose_precision, load_model
    from selfinstruct.finetune.train import build_trainer

    name, seq_len, tiny = spec["name"], spec["seq_len"], spec["tiny"]
    base_name, overrides, bench = _parse_run(name)
    baseline = base_name.startswith("baseline-")
    recipe = load_recipe(BASELINES[base_name.split("-", 1)[1]] if baseline else base_name, overrides)
    # Packed rows: same tokens per micro-batch and per step at every length. The baseline's rows
    # are single examples, so it keeps its row counts at every length.
    scale = 1 if baseline else max(1, seq_len // spec["base_seq_len"])
    rows = BASELINE_ROWS if baseline else max(1, recipe.per_device_batch_size // scale)
    total_steps = spec["warmup"] + spec["steps"]
    update = {
        "max_length": seq_len,
        "packing": True,
        "per_device_batch_size": rows,
        "global_batch_size": max(rows, recipe.global_batch_size // scale),
        "max_steps": total_steps,
        "logging_steps": 1,
        "warmup_ratio": 0.0,
    }
    if tiny and recipe.optim in ("adamw_torch_8bit", "paged_adamw_32bit", "paged_adamw_8bit"):
        update["optim"] = "adamw_torch"  # the 8-bit/paged optimizers need a GPU
    recipe = recipe.model_copy(update=update)
    if recipe.method == "qlora" and not torch.cuda.is_available():
        return {"name": name, "seq_len": seq_len, "status": "skipped (QLoRA needs a CUDA GPU)"}

    torch.manual_seed(0)
    source = ModelSource(spec["model_dir"], spec["model_dir"])
    config = json.loads((Path(spec["model_dir"]) / "config.json").read_text())
    tokenizer = _tokenizer(config["vocab_size"])
    accum = recipe.global_batch_size // rows
    rows_needed = total_steps * recipe.global_batch_size
    examples = _examples(int(1.2 * rows_needed * seq_len), int(1.2 * rows_needed), config["vocab_size"], seq_len)
    out = Path(spec["workdir"]) / "runs" / f"{name}-{seq_len}"
    timer = _step_timer()

    precision = choose_precision(recipe)
    if baseline:
        trainer, settings = _plain_trl(recipe, source, precision, tokenizer, examples, out, rows, accum, timer)
    else:
        attention = attention_kernel(recipe)
        model = load_model(source, recipe, precision, attention)
        trainer = build_trainer(model, tokenizer, examples, recipe, out, precision, attention, callbacks=[timer])
        if bench.get("peft_cast"):  # the "before" of keep_adapter_inputs_16bit: peft's own fp32 casts
            for module in trainer.model.modules():
                if hasattr(module, "cast_input_dtype_enabled"):
                    module.cast_input_dtype_enabled = True
        settings = {
            "attention": attention,
            "packing": True,
            "gradient_checkpointing": recipe.gradient_checkpointing,
            "checkpoint_every_n_layers": recipe.checkpoint_every_n_layers,
            "optim": recipe.optim,
            "liger": recipe.liger_kernel and liger_available(),
        }
    load_peak = None
    if torch.cuda.is_available():
        load_peak = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    trainer.train()

    matmul_params = _matmul_params(config)
    tokens = {e["step"]: e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e}
    w, n = spec["warmup"], total_steps
    seconds = timer.ends[n - 1] - timer.ends[w - 1]  # ends[i] is the end of step i + 1
    measured_tokens = tokens[n] - tokens[w]
    return {
        "name": name,
        "recipe": recipe.source,
        "method": recipe.method,
        "seq_len": seq_len,
        "status": "ok",
        "rows": rows,
        "accum": accum,
        "tokens_per_step": measured_tokens / spec["steps"],
        "tokens_per_s": measured_tokens / seconds,
        "seconds_per_step": seconds / spec["steps"],
        "flops_per_token": (6 if recipe.method == "full" else 4) * matmul_params,
        "matmul_params": matmul_params,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else None,
        "load_peak_gib": load_peak,
        "overrides": overrides,
        "loss_first": next((e["loss"] for e in trainer.state.log_history if "loss" in e), None),
        **settings,
    }


def _parse_run(name: str) -> tuple[str, dict, dict]:
    """ "lora-7b-48gb+attention=sdpa+bench.peft_cast=true" -> ("lora-7b-48gb", {"attention": "sdpa"}, {"peft_cast": True}).

    `bench.` settings are the benchmark's own switches, not recipe fields."""
    import tomllib

    base, *settings = name.split("+")
    overrides, bench = {}, {}
    for setting in settings:
        key, _, value = setting.partition("=")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value  # a bare word: a string
        if key.startswith("bench."):
            bench[key.removeprefix("bench.")] = parsed
        else:
            overrides[key] = parsed
    return base, overrides, bench


def _plain_trl(recipe, source, precision, tokenizer, examples, out, rows, accum, timer):
    """trl's SFTTrainer as a user would write it: defaults except what makes it the same job."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from selfinstruct.finetune.model import four_bit_config, lora_config

    kwargs = {"dtype": "auto"}
    if recipe.method == "qlora":
        kwargs.update(quantization_config=four_bit_config(precision), device_map={"": 0})
    model = AutoModelForCausalLM.from_pretrained(source.path_or_id, **kwargs)
    args = SFTConfig(
        output_dir=str(out),
        max_length=recipe.max_length,
        per_device_train_batch_size=rows,
        gradient_accumulation_steps=accum,
        max_steps=recipe.max_steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=precision.bf16,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=tokenizer,
        callbacks=[timer],
        peft_config=None if recipe.method == "full" else lora_config(recipe),
    )
    settings = {
        "attention": model.config._attn_implementation,
        "packing": False,
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "optim": getattr(args.optim, "value", args.optim),
    }
    return trainer, settings


def _matmul_params(config: dict) -> int:
    """Parameters that take part in matmuls: every layer's projections and the output head.

    Counted from the config, since 4-bit weights are stored two to a byte."""
    h, i, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = h * config["num_key_value_heads"] // config["num_attention_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i  # q, o; k, v; gate, up, down
    return config["num_hidden_layers"] * per_layer + vocab * h  # + the output head


def _step_timer():
    import torch
    from transformers import TrainerCallback

    class StepEnds(TrainerCallback):
        """Wall-clock time at the end of each optimizer step, once the GPU has finished it."""

        def __init__(self):
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    return StepEnds()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
