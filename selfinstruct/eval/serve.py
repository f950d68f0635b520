"""A local checkpoint served on loopback as an OpenAI-compatible chat endpoint, for as long as an
evaluation (or `answer --student`) needs it.

    with CheckpointServer("students/gsm8k", log_path=run / "student.log") as server:
        server.base_url      # http://127.0.0.1:PORT/v1, model name server.model

Why not `transformers serve` (5.x): it reads a model's config.json first (`AutoConfig`), which
an adapter directory does not have, so it cannot serve what `finetune` writes by default (a LoRA
adapter, here over a GGUF base); and it prompts with the chat template only, where a student
trained on Alpaca's template (DIR/recipe.toml) must be prompted in that. So this is a small FastAPI
app around `generate`, one request at a time (a CPU has no room for two), started as a child
process and watched like the embedded teacher: `EmbeddedTeacher` starts it on a free port,
waits for a real completion, names a crash with the end of its log, and stops it on exit.

Greedy decoding at temperature 0, sampling otherwise; `usage` counts tokens as the tokenizer does.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path

import click

from ..errors import SelfInstructError
from ..finetune.template import alpaca_prompt
from ..processes import exit_with_parent
from ..teacher.dialect import CHAT_COMPLETIONS
from ..teacher.embedded import EmbeddedTeacher
from .checkpoint import load_checkpoint, model_name

NEEDS_SERVER = "pip install 'selfinstruct[train]' fastapi uvicorn"


def prompt_text(messages: list[dict], template: str, tokenizer) -> str:
    """The prompt the student was trained on: Alpaca's with the user turn as the instruction (a
    system message has no place in it and is dropped), or the model's chat template."""
    if template == "alpaca":
        user = "\n\n".join(m["content"] for m in messages if m["role"] == "user")
        return alpaca_prompt({"instruction": user, "input": ""})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class Generator:
    """One loaded model answering chat requests, one at a time."""

    def __init__(self, spec: str):
        self.loaded = load_checkpoint(spec)
        self.lock = threading.Lock()

    def complete(self, body: dict) -> dict:
        import torch

        loaded = self.loaded
        tokenizer = loaded.tokenizer
        text = prompt_text(body["messages"], loaded.template, tokenizer)
        # Alpaca's plain-text prompt gets BOS as in training; a chat template writes its own tokens.
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=loaded.template == "alpaca")
        inputs = inputs.to(loaded.model.device)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 512)
        temperature = float(body.get("temperature", 1.0))
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": float(body.get("top_p", 1.0))}
            if temperature > 0
            else {"do_sample": False}
        )
        with self.lock, torch.inference_mode():
            output = loaded.model.generate(
                **inputs, max_new_tokens=max_tokens, pad_token_id=tokenizer.eos_token_id, **sampling
            )
        new = output[0, inputs["input_ids"].shape[1] :].tolist()
        stopped = bool(new) and new[-1] == tokenizer.eos_token_id
        content = tokenizer.decode(new, skip_special_tokens=True).strip()
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": loaded.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop" if stopped or len(new) < max_tokens else "length",
                }
            ],
            "usage": {
                "prompt_tokens": inputs["input_ids"].shape[1],
                "completion_tokens": len(new),
                "total_tokens": inputs["input_ids"].shape[1] + len(new),
            },
        }


def create_app(generator: Generator):
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool

    app = FastAPI(title=f"selfinstruct: {generator.loaded.name}")

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": generator.loaded.name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1" + CHAT_COMPLETIONS)
    async def chat_completions(body: dict):
        return await run_in_threadpool(generator.complete, body)

    return app


def serve(spec: str, host: str = "127.0.0.1", port: int = 8000, parent_pid: int | None = None) -> None:
    """Serve `spec` until stopped (or, with `parent_pid`, until that process is gone)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise SelfInstructError(f"serving a local checkpoint needs fastapi and uvicorn: {NEEDS_SERVER}") from None

    if parent_pid is not None:
        exit_with_parent(parent_pid)
    uvicorn.run(create_app(Generator(spec)), host=host, port=port, log_level="warning")


def server_command(spec: str):
    """The command line `CheckpointServer` starts, as `EmbeddedTeacher` takes it: `(port, n_ctx) -> argv`."""

    def command(port: int, _n_ctx: int) -> list[str]:
        return [
            sys.executable,
            "-X",
            "faulthandler",
            "-m",
            __name__,
            spec,
            "--port",
            str(port),
            "--parent-pid",
            str(os.getpid()),
        ]

    return command


class CheckpointServer(EmbeddedTeacher):
    """Context manager: `spec` served on a free loopback port, stopped on exit (see the module)."""

    TITLE = "The served checkpoint"

    def __init__(self, spec: str, log_path: Path | None = None):
        super().__init__(log_path=log_path, command=server_command(spec))
        self.spec = spec
        self.model = model_name(spec)


@click.command()
@click.argument("spec")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--parent-pid", type=int, help="Exit when this process is gone.")
def main(spec, host, port, parent_pid):
    """Serve a local checkpoint SPEC as an OpenAI-compatible chat endpoint."""
    serve(spec, host, port, parent_pid)


if __name__ == "__main__":
    main()
