"""A model's chat template, read from the model's own files, and the text a user's turn starts with.

Magpie (arXiv 2406.08464) asks an aligned model for an instruction by giving it only what its
chat template writes before a user's message (the pre-query): the model, trained to continue
that with a user's request, writes one. The template is never typed per model: it is read from
the GGUF metadata (`tokenizer.chat_template`) or a `tokenizer_config.json`, rendered with jinja2
as transformers renders it, with a sentinel as the user's message, and cut before the sentinel:

    template = read_chat_template("SmolLM2-135M-Instruct.Q4_1.gguf")
    template.before_user([])                                      # SmolLM2 adds its own system turn
    -> "<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\\n<|im_start|>user\\n"
    template.before_user([{"role": "system", "content": "Be brief."}, user, assistant])   # a later turn
    template.stops                                                 # -> ("<|im_end|>", "<|endoftext|>")

The same cut after earlier turns gives the prompt for a later instruction (multi-turn data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

from .errors import SelfInstructError

SENTINEL = "selfinstruct_query_sentinel"  # the user's message while rendering: found once, cut before
GGUF_TEMPLATE_KEY = "tokenizer.chat_template"
CONTROL_TOKEN = 3  # GGUF's token type of the special tokens (gguf.TokenType.CONTROL)


@dataclass(frozen=True)
class ChatTemplate:
    source: str  # the file it was read from
    template: str  # the jinja2 source
    bos_token: str
    eos_token: str
    special_tokens: tuple[str, ...]  # the model's control tokens: never part of a clean text
    adds_bos: bool = True  # the tokenizer starts every text with the BOS token (a server's raw prompts too)

    @cached_property
    def _compiled(self):
        # transformers renders chat templates in a sandbox, with these settings and helpers
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            return env.from_string(self.template)
        except TemplateError as e:
            raise SelfInstructError(f"{self.source}: the chat template does not parse: {e}") from None

    def render(self, messages: list[dict], add_generation_prompt: bool = False) -> str:
        from jinja2.exceptions import TemplateError

        try:
            return self._compiled.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateError as e:
            roles = [m["role"] for m in messages]
            raise SelfInstructError(f"{self.source}: the chat template refuses the turns {roles}: {e}") from None

    def before_user(self, history: list[dict]) -> str:
        """What the template writes after `history` (system, then user/assistant turns) and before
        the next user's message: the pre-query. The BOS token a template writes is left out when
        the tokenizer adds one: the server adds it to a raw prompt (twice would be a text the model
        never saw). SmolLM2's BOS is `<|im_start|>`, written by its template as a role marker and
        not added by its tokenizer: it stays."""
        text = self.render([*history, {"role": "user", "content": SENTINEL}])
        if text.count(SENTINEL) != 1:
            raise SelfInstructError(
                f"{self.source}: the chat template does not write the user's message as it is, so the text "
                "before it cannot be found"
            )
        prefix = text[: text.index(SENTINEL)]
        if self.adds_bos and self.bos_token and "bos_token" in self.template and prefix.startswith(self.bos_token):
            prefix = prefix[len(self.bos_token) :]
        if not prefix.strip():
            raise SelfInstructError(
                f"{self.source}: the chat template writes nothing before a user's message, so a model cannot "
                "be asked for one (Magpie needs a template that marks the user's turn)"
            )
        return prefix

    @cached_property
    def end_of_turn(self) -> str:
        """The token that ends a user's turn, where an instruction asked for with `before_user`
        ends: the special token the template writes first after a user's message (ChatML's
        `<|im_end|>`, Llama 3's `<|eot_id|>`), else the first line of what it writes there."""
        text = self.render([{"role": "user", "content": SENTINEL}], add_generation_prompt=True)
        after = text[text.index(SENTINEL) + len(SENTINEL) :].lstrip()
        for token in sorted(self.special_tokens, key=len, reverse=True):
            if after.startswith(token):
                return token
        first_line = after.split("\n", 1)[0].strip()
        if not first_line:
            raise SelfInstructError(
                f"{self.source}: the chat template writes nothing after a user's message, so where the "
                "model's instruction ends cannot be told"
            )
        return first_line

    @property
    def stops(self) -> tuple[str, ...]:
        """Where a raw completion asked for an instruction stops."""
        return tuple(dict.fromkeys(t for t in (self.end_of_turn, self.eos_token) if t))


def read_chat_template(path: str | Path) -> ChatTemplate:
    """The chat template of a model: from its .gguf file, its tokenizer_config.json, or a folder
    holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer_config.json"
    if not path.is_file():
        raise SelfInstructError(f"{path}: no such file (give the model's .gguf or its tokenizer_config.json)")
    if path.suffix == ".gguf":
        return _from_gguf(path)
    return _from_tokenizer_config(path)


def _from_gguf(path: Path) -> ChatTemplate:
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError) as e:
        raise SelfInstructError(f"{path}: not a readable GGUF file ({e})") from None

    def field(key: str):
        found = reader.fields.get(key)
        return found.contents() if found is not None else None

    template = field(GGUF_TEMPLATE_KEY)
    if not template:
        raise SelfInstructError(
            f"{path}: the GGUF has no chat template ({GGUF_TEMPLATE_KEY}), so the text before a user's message "
            "is unknown: give the model's tokenizer_config.json instead"
        )
    tokens, types = field("tokenizer.ggml.tokens") or [], field("tokenizer.ggml.token_type") or []

    def token(key: str) -> str:
        index = field(key)
        return tokens[index] if index is not None and index < len(tokens) else ""

    special = tuple(t for t, kind in zip(tokens, types) if kind == CONTROL_TOKEN)
    adds_bos = field("tokenizer.ggml.add_bos_token")
    return ChatTemplate(
        str(path),
        template,
        token("tokenizer.ggml.bos_token_id"),
        token("tokenizer.ggml.eos_token_id"),
        special,
        True if adds_bos is None else bool(adds_bos),
    )


def _from_tokenizer_config(path: Path) -> ChatTemplate:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SelfInstructError(f"{path}: not a JSON tokenizer config ({e})") from None
    template = config.get("chat_template") if isinstance(config, dict) else None
    if isinstance(template, list):  # several named templates: the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    beside = path.parent / "chat_template.jinja"  # where newer models keep it
    if not template and beside.is_file():
        template = beside.read_text(encoding="utf-8")
    if not isinstance(template, str) or not template:
        raise SelfInstructError(
            f"{path}: no 'chat_template', and no chat_template.jinja beside it: give the model's .gguf, "
            "or the tokenizer_config.json of a chat model"
        )

    def content(token) -> str:
        return (token.get("content") if isinstance(token, dict) else token) or ""

    added = config.get("added_tokens_decoder") or {}
    special = tuple(content(t) for t in added.values() if isinstance(t, dict) and t.get("special"))
    special += tuple(content(t) for t in config.get("additional_special_tokens") or [])
    return ChatTemplate(
        str(path),
        template,
        content(config.get("bos_token")),
        content(config.get("eos_token")),
        tuple(dict.fromkeys(t for t in special if t)),
        bool(config.get("add_bos_token", True)),  # transformers' Llama, Mistral and Gemma tokenizers add it
    )
