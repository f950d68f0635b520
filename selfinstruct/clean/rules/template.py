"""What a raw completion (Magpie: a model asked for a user's turn) leaves wrong.

Chat-template tokens left in the text: a model sometimes writes on past its turn
("...?<|im_end|>\n<|im_start|>assistant") or writes markers into it, and a student trained on
them learns to end its turns anywhere. `template_tokens` knows the usual markers (ChatML's
`<|im_start|>`, Llama's `<|eot_id|>` and `[INST]`, Gemma's `<start_of_turn>`, `<s>`, `</s>`);
a task that knows its model's template adds the model's own special tokens (`tokens`).

An instruction the model never ended: its completion stopped at the token limit, not at the
end of its turn (`instruction_cut_off`, on the `instruction_finish_reason` a task records).
"""

from __future__ import annotations

import re

from pydantic import PrivateAttr

from .base import Rule

# <|anything|> (ChatML, Llama 3, Phi), [INST] / [/INST] (Llama 2, Mistral), Gemma's turn markers, <s> / </s>
COMMON_MARKERS = r"<\|[A-Za-z0-9_]+\|>|\[/?INST\]|<(?:start|end)_of_turn>|</?s>"
TURN_FIELDS = ("instruction", "input", "output")


class TemplateTokens(Rule):
    name = "template_tokens"
    reason = "a chat-template token in the text (<|im_end|>, [INST], the model's special tokens)"
    tokens: tuple[str, ...] = ()
    _pattern: re.Pattern = PrivateAttr()

    def model_post_init(self, _context) -> None:
        own = [re.escape(token) for token in sorted(self.tokens, key=len, reverse=True) if token]
        self._pattern = re.compile("|".join([*own, COMMON_MARKERS]))

    def check(self, record):
        texts = [record.get(name) or "" for name in TURN_FIELDS]
        texts += [turn.get("content") or "" for turn in record.get("conversation") or ()]
        for text in texts:
            if found := self._pattern.search(text):
                return f"{found.group(0)!r} in {text[:60]!r}"
        return None


class InstructionCutOff(Rule):
    name = "instruction_cut_off"
    reason = "the instruction stopped at its token limit instead of at the end of the user's turn"

    def check(self, record):
        return "stopped at the token limit" if record.get("instruction_finish_reason") == "length" else None
