"""The model under test (`eval`) or the student (`answer --student`), named by one spec string:

    NAME@URL        an OpenAI-compatible endpoint: `gpt-4o-mini@https://api.openai.com/v1`,
                    `qwen2.5-7b@http://localhost:8000/v1` (the key from the api-key variable)
    embedded        the embedded teacher (SmolLM2-135M-Instruct on llama.cpp)
    PATH            a local checkpoint `finetune` wrote (adapter, merged or full), a model
                    directory or .gguf file, or `smollm2-135m` (finetune's base shortcut):
                    served on loopback by `eval.serve` for as long as the `with` block lasts

`open_model(spec)` is a context manager giving the settings a job's config takes:

    with open_model("students/gsm8k", log_path=run / "student.log") as model:
        config = AnswerConfig(source=..., **model.defaults(), **model.job_settings())

`defaults()` are the pace and length a local model can serve (one request at a time), and its
price (none: it runs on this machine): a job takes them for the fields its user left unset. The
embedded teacher is left to the engine (its `base_url` is None): the engine starts it with its
watch and its one restart after a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import SettingError
from ..teacher.embedded import MODEL_ALIAS
from .checkpoint import is_local_model, model_name

EMBEDDED = "embedded"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# A served checkpoint answers one request at a time, slowly on a CPU: more in flight would only
# queue up at the server and run into the client's timeout. It costs nothing but this machine's
# time, so a cost cap holds for it without a price from the user (the price table has no row for it).
CHECKPOINT_DEFAULTS = {"concurrency": 1, "max_tokens": 1024, "price_in": 0.0, "price_out": 0.0}

Kind = Literal["endpoint", "embedded", "checkpoint"]


@dataclass(frozen=True)
class ModelSpec:
    spec: str  # as the user wrote it
    kind: Kind
    model: str  # the name requests carry, and records' `teacher_model`
    base_url: str | None = None  # an endpoint's

    @property
    def local(self) -> bool:
        """A checkpoint on this machine: it has weights to score (imitation) as well as to ask."""
        return self.kind == "checkpoint"

    def defaults(self) -> dict:
        """The pace, length and price a job should use with this model where they were set for
        another (a teacher's defaults): an endpoint keeps them, a local model gets what it can serve."""
        from ..engine.config import JobConfig

        if self.kind == "embedded":
            return {k: v for k, v in JobConfig.EMBEDDED_DEFAULTS.items() if k != "model"}
        return dict(CHECKPOINT_DEFAULTS) if self.kind == "checkpoint" else {}


def parse_model_spec(spec: str, field: str = "model") -> ModelSpec:
    """`spec` read as one of the forms above; a `SettingError` on `field` for anything else."""
    spec = spec.strip()
    if spec == EMBEDDED:
        return ModelSpec(spec, "embedded", MODEL_ALIAS)
    name, at, url = spec.rpartition("@")
    if at and url.startswith(("http://", "https://")):
        if not name:
            raise SettingError(f"{{{field}}}: {spec!r}: name the model before the @ (NAME@URL)", field)
        return ModelSpec(spec, "endpoint", name, url)
    if is_local_model(spec):
        return ModelSpec(spec, "checkpoint", model_name(spec))
    raise SettingError(
        f"{{{field}}}: {spec!r} is neither NAME@URL (an OpenAI-compatible endpoint), {EMBEDDED!r}, nor a "
        "local checkpoint directory, .gguf file or smollm2-135m (models are not downloaded)",
        field,
    )


@dataclass(frozen=True)
class OpenModel:
    """A model ready to be asked: where, under which name, and the variable holding its key."""

    spec: ModelSpec
    base_url: str | None  # None: the embedded teacher, which the engine starts
    model: str
    api_key_env: str

    def job_settings(self) -> dict:
        """The teacher fields of a `JobConfig` that send a job's requests to this model."""
        return {"base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env}

    def defaults(self) -> dict:
        """`ModelSpec.defaults` of the model served."""
        return self.spec.defaults()


@contextmanager
def open_model(
    spec: str | ModelSpec, *, log_path: Path | None = None, api_key_env: str = DEFAULT_KEY_ENV
) -> Iterator[OpenModel]:
    """The model `spec` names, served on loopback meanwhile when it is a local checkpoint
    (its server's output goes to `log_path`)."""
    spec = spec if isinstance(spec, ModelSpec) else parse_model_spec(spec)
    if spec.kind == "checkpoint":
        from .serve import CheckpointServer

        with CheckpointServer(spec.spec, log_path=log_path) as server:
            yield OpenModel(spec, server.base_url, server.model, api_key_env)
        return
    yield OpenModel(spec, spec.base_url, spec.model, api_key_env)
