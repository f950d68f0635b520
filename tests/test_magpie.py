"""selfinstruct magpie: the pre-query read from the model's own chat template, raw completions
for the instructions, answers, turns, cleaning, resume and refusal, against a loopback stand-in
that serves /v1/completions as llama.cpp's server does (and the real embedded teacher, slow)."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner
from conftest import assert_no_key_in
from loopback import LoopbackServer

from selfinstruct.chat_template import ChatTemplate, read_chat_template
from selfinstruct.cli import main
from selfinstruct.engine.ledger import load_ledger
from selfinstruct.errors import SelfInstructError
from selfinstruct.export.formats import FORMATS
from selfinstruct.records import read_jsonl
from selfinstruct.resources import bundled_gguf
from selfinstruct.tasks.magpie import MagpieConfig, magpie
from selfinstruct.teacher.client import TeacherRefused
from selfinstruct.teacher.dialect import COMPLETIONS, Ask, Dialect, EmptyAnswer, read_answer

SMOLLM_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
TEMPLATE_TOKEN = re.compile(r"<\|[a-z_]+\|>")


@pytest.fixture(scope="module")
def smollm2() -> ChatTemplate:
    return read_chat_template(bundled_gguf())


# ---------------------------------------------------------------- the template, from the model's files


def test_smollm2s_pre_query_comes_from_its_gguf_with_its_default_or_a_given_system_turn(smollm2):
    assert smollm2.before_user([]) == SMOLLM_SYSTEM + "<|im_start|>user\n"
    system = [{"role": "system", "content": "Answer about cooking."}]
    assert smollm2.before_user(system) == "<|im_start|>system\nAnswer about cooking.<|im_end|>\n<|im_start|>user\n"
    assert smollm2.stops == ("<|im_end|>",)  # its end of turn is also its EOS
    assert {"<|im_start|>", "<|im_end|>", "<|endoftext|>"} <= set(smollm2.special_tokens)


def test_a_later_turn_starts_after_the_earlier_ones_as_the_template_writes_them(smollm2):
    history = [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "A pear."}]
    assert smollm2.before_user(history) == (
        SMOLLM_SYSTEM + "<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\nA pear.<|im_end|>\n"
        "<|im_start|>user\n"
    )


def test_a_llama3_template_from_tokenizer_config_drops_the_bos_its_tokenizer_adds(tmp_path):
    added = {str(i): {"content": t, "special": True} for i, t in enumerate(["<|begin_of_text|>", "<|eot_id|>"])}
    config = {
        "chat_template": LLAMA3_TEMPLATE,
        "bos_token": "<|begin_of_text|>",
        "eos_token": {"content": "<|eot_id|>"},
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"],
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    template = read_chat_template(tmp_path)  # the folder holding it
    assert template.before_user([]) == "<|start_header_id|>user<|end_header_id|>\n\n"
    assert template.before_user([{"role": "system", "content": "Be brief. "}]) == (
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    )
    assert template.stops == ("<|eot_id|>",)
    # a tokenizer that adds no BOS keeps the one its template writes
    kept = ChatTemplate("t", LLAMA3_TEMPLATE, "<|begin_of_text|>", "<|eot_id|>", (), adds_bos=False)
    assert kept.before_user([]).startswith("<|begin_of_text|><|start_header_id|>user")


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"bos_token": "<s>"}, "no 'chat_template'"),
        ({"chat_template": "{{ raise_exception('System role not supported') }}"}, "refuses the turns"),
        ({"chat_template": "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"}, "as it is"),
        ({"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"}, "writes nothing before"),
    ],
)
def test_a_template_that_cannot_give_the_pre_query_is_refused_with_the_file_named(tmp_path, config, problem):
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SelfInstructError, match=problem) as raised:
        read_chat_template(path).before_user([])
    assert str(path) in str(raised.value)


def test_a_gguf_without_a_chat_template_or_not_a_gguf_is_refused_naming_what_to_give(tmp_path):
    import gguf

    writer = gguf.GGUFWriter(str(tmp_path / "base.gguf"), "llama")  # a base model: no chat template
    writer.add_name("base")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(SelfInstructError, match="base.gguf: the GGUF has no chat template.*tokenizer_config.json"):
        read_chat_template(tmp_path / "base.gguf")
    (tmp_path / "text.gguf").write_text("not a model")
    with pytest.raises(SelfInstructError, match="text.gguf: not a readable GGUF file"):
        read_chat_template(tmp_path / "text.gguf")


# ---------------------------------------------------------------- raw requests in the dialect


def test_a_raw_prompt_goes_to_completions_with_its_stops_and_learns_parameters_like_a_chat_request():
    dialect = Dialect("m", "http://localhost:8000/v1")
    ask = Ask(lambda _f: [], None, 64, 1.0, 1.0, prompt="<|im_start|>user\n", stop=("<|im_end|>",))
    body = dialect.body(ask)
    assert body.path == COMPLETIONS and body.json == {
        "model": "m",
        "prompt": "<|im_start|>user\n",
        "max_tokens": 64,
        "temperature": 1.0,
        "top_p": 1.0,
        "stop": ["<|im_end|>"],
    }
    assert dialect.learn(400, "Unsupported parameter: 'max_tokens'", "max_tokens", body)
    assert dialect.body(ask).json["max_completion_tokens"] == 64 and dialect.body(ask).path == COMPLETIONS
    answer = {"choices": [{"text": " Name a fruit.", "finish_reason": "stop"}], "usage": {"prompt_tokens": 3}}
    completion = read_answer(answer, body, latency_s=0.1, attempts=1)
    assert completion.content == " Name a fruit." and completion.usage.prompt_tokens == 3
    with pytest.raises(EmptyAnswer):
        read_answer({"choices": [{"message": {"content": "x"}}]}, body, latency_s=0.1, attempts=1)


# ---------------------------------------------------------------- a loopback server with raw completions


@dataclass
class FakeCompletions(LoopbackServer):
    """Serves /v1/completions (instructions, one of `instructions` in turn, cut at the first
    stop string as a server does; one ending in "..." ran out of tokens) and /v1/chat/completions
    (an answer naming the question). `raw_status` answers every raw prompt with that HTTP error
    instead; `fail_after` refuses every request (HTTP 401) after that many; the requests
    numbered in `busy` (from 1) get an HTTP 500."""

    instructions: list[str]
    raw_status: int | None = None
    fail_after: int | None = None
    busy: tuple[int, ...] = ()
    bodies: list[tuple[str, dict]] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._listen(self._handler_class())

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def served(self, path: str) -> list[dict]:
        return [body for p, body in self.bodies if p == path]

    def respond(self, path: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.bodies.append((path, body))
            calls = len(self.bodies)
            raw_calls = len(self.served("/v1/completions"))
        if self.fail_after is not None and calls > self.fail_after:
            return 401, {"error": {"message": "key revoked", "type": "invalid_request_error"}}
        if calls in self.busy:
            return 500, {"error": {"message": "overloaded", "type": "server_error"}}
        usage = {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
        if path == "/v1/completions":
            if self.raw_status is not None:
                return self.raw_status, {"error": {"message": "Not Found", "type": "not_found"}}
            text = self.instructions[(raw_calls - 1) % len(self.instructions)]
            for stop in body.get("stop") or ():
                text = text.split(stop)[0]
            choice = {"index": 0, "text": text, "finish_reason": "length" if text.endswith("...") else "stop"}
            return 200, {"object": "text_completion", "model": body["model"], "choices": [choice], "usage": usage}
        question = body["messages"][-1]["content"]
        message = {"role": "assistant", "content": f"Here is a careful answer to the question: {question}"}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return 200, {"object": "chat.completion", "model": body["model"], "choices": [choice], "usage": usage}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, answer = server.respond(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


INSTRUCTIONS = [
    "Write a short poem about the autumn harbor.<|im_end|>\n<|im_start|>assistant\nSure",  # cut at the stop
    "The weather is nice today.",  # not a request
    "Describe the long history of the village bakery and its...",  # never ended: the token limit
    "Explain how <|im_start|> tokens mark a turn.",  # a template token inside
    "How do tides depend on the moon?",
    "Write a short poem about the autumn harbor.",  # a duplicate
    "Suggest three names for a bakery in a small village.",
    "Compare trains and buses for a long trip.",
]
GOOD = [i for i in INSTRUCTIONS[3:] if "<|" not in i]


def config(server: FakeCompletions, **settings) -> MagpieConfig:
    return MagpieConfig(
        base_url=server.base_url, model="smollm2", chat_template=str(bundled_gguf()), concurrency=1, **settings
    )


def test_instructions_come_from_the_raw_pre_query_and_bad_ones_are_rejected_before_any_answer(tmp_path):
    with FakeCompletions(INSTRUCTIONS) as server:
        result = magpie(config(server, target=4), tmp_path / "run", progress=False)
    raw = server.served("/v1/completions")
    assert raw[0]["prompt"] == SMOLLM_SYSTEM + "<|im_start|>user\n" and raw[0]["stop"] == ["<|im_end|>"]
    assert "messages" not in raw[0]
    seeds = [body["seed"] for body in raw]  # one per request: a server's own sequence would repeat itself
    assert len(set(seeds)) == len(seeds)
    records = [r for _, r in read_jsonl(tmp_path / "run" / "data.jsonl")]
    assert [r["instruction"] for r in records] == [
        "Write a short poem about the autumn harbor.",
        "How do tides depend on the moon?",
        "Suggest three names for a bakery in a small village.",
        "Compare trains and buses for a long trip.",
    ]
    assert all(r["output"].endswith(r["instruction"]) and "conversation" not in r for r in records)
    assert not any(TEMPLATE_TOKEN.search(json.dumps(r)) for r in records)
    rejected = {r["reason"] for _, r in read_jsonl(tmp_path / "run" / "rejected.jsonl")}
    assert rejected == {"not_a_task", "instruction_cut_off", "template_tokens", "exact_duplicate"}
    # the three refused by the instruction rules were never answered; the duplicate was (dedup is the cleaner's)
    answered = [body["messages"][-1]["content"] for body in server.served("/v1/chat/completions")]
    assert "The weather is nice today." not in answered and len(answered) == 5
    assert result.stats["filters"]["rejected"] == {
        "not_a_task": 1,
        "instruction_cut_off": 1,
        "template_tokens": 1,
        "exact_duplicate": 1,
    }
    assert result.stats["magpie"]["pre_query"] == SMOLLM_SYSTEM + "<|im_start|>user\n"
    assert_no_key_in(tmp_path / "run")


def test_turns_continue_each_conversation_from_the_template_and_export_writes_every_turn(tmp_path):
    with FakeCompletions(GOOD) as server:
        magpie(config(server, target=2, turns=2, system="Answer about travel."), tmp_path / "run", progress=False)
    records = [r for _, r in read_jsonl(tmp_path / "run" / "data.jsonl")]
    first = records[0]
    assert [turn["role"] for turn in first["conversation"]] == ["system", "user", "assistant", "user", "assistant"]
    assert first["instruction"] == first["conversation"][1]["content"] == GOOD[0]
    assert first["turns"] == 2 and first["system"] == "Answer about travel."
    second_instruction = server.served("/v1/completions")[1]["prompt"]
    assert second_instruction == (
        f"<|im_start|>system\nAnswer about travel.<|im_end|>\n<|im_start|>user\n{GOOD[0]}<|im_end|>\n"
        f"<|im_start|>assistant\n{first['output']}<|im_end|>\n<|im_start|>user\n"
    )
    # the answer to turn 2 saw the whole conversation
    assert server.served("/v1/chat/completions")[1]["messages"] == first["conversation"][:4]
    row = FORMATS["messages"].to_row(first, None)
    assert row["messages"] == first["conversation"] and "conversation" not in row
    sharegpt = FORMATS["sharegpt"].to_row(first, None)["conversations"]
    assert [turn["from"] for turn in sharegpt] == ["system", "human", "gpt", "human", "gpt"]


def test_a_resume_finishes_the_conversations_under_way_and_asks_no_step_twice(tmp_path):
    out = tmp_path / "run"
    with FakeCompletions(GOOD, fail_after=3) as server:  # turn 1 answered, turn 2's instruction asked, then refused
        with pytest.raises(TeacherRefused):
            magpie(config(server, target=2, turns=2), out, progress=False)
    assert (out / "checkpoint.json").exists()  # the resume's replay starts after it: the task reads the ledger
    with FakeCompletions(GOOD[1:]) as server:
        magpie(config(server, target=2, turns=2), out, progress=False)
    ledger = load_ledger(out / "ledger.jsonl")
    answered = Counter(
        (r["conversation"], r["turn"], r["step"]) for r in ledger.answered_requests() if "conversation" in r
    )
    assert set(answered.values()) == {1}
    records = [r for _, r in read_jsonl(out / "data.jsonl")]
    assert records[0]["conversation_id"] == "c000000" and records[0]["instruction"] == GOOD[0]
    roles = [turn["role"] for turn in records[0]["conversation"]]
    assert roles == ["user", "assistant", "user", "assistant"] and len(records) == 2
    assert records[0]["conversation"][2]["content"] == GOOD[1]  # turn 2's instruction, from the first run
    # the second run asked the answer to turn 2 first: the conversation under way, then new ones
    assert server.served("/v1/chat/completions")[0]["messages"] == records[0]["conversation"][:3]


def test_a_step_given_up_is_asked_again_and_its_conversation_goes_on(tmp_path):
    with FakeCompletions(GOOD, busy=(2,)) as server:  # turn 1's answer fails once, and is not retried
        magpie(config(server, target=1, turns=2, max_attempts=1), tmp_path / "run", progress=False)
    ledger = [json.loads(line) for line in (tmp_path / "run" / "ledger.jsonl").read_text().splitlines()]
    assert [e["request_id"] for e in ledger if e["event"] == "failure"] == ["r000001"]
    requests = [(e["conversation"], e["turn"], e["step"]) for e in ledger if e["event"] == "request"]
    assert requests == [("c000000", 1, "instruction"), ("c000000", 1, "answer"), ("c000000", 1, "answer")] + [
        ("c000000", 2, "instruction"),
        ("c000000", 2, "answer"),
    ]
    [record] = [r for _, r in read_jsonl(tmp_path / "run" / "data.jsonl")]
    assert record["conversation_id"] == "c000000" and len(record["conversation"]) == 4


def test_instructions_only_are_answered_by_another_model_with_the_answer_task(tmp_path):
    from selfinstruct.tasks.answer import AnswerConfig, answer

    with FakeCompletions(GOOD) as server:
        magpie(config(server, target=3, instructions_only=True), tmp_path / "mp", progress=False)
        assert server.served("/v1/chat/completions") == []
        answer(AnswerConfig(source=str(tmp_path / "mp"), base_url=server.base_url, model="big"), tmp_path / "answers")
    records = [r for _, r in read_jsonl(tmp_path / "answers" / "data.jsonl")]
    assert sorted(r["instruction"] for r in records) == sorted(GOOD[:3])  # in the order they were answered
    assert all(r["output"].endswith(r["instruction"]) for r in records)


def test_a_run_directory_of_other_settings_is_refused_naming_them_not_replayed(tmp_path):
    with FakeCompletions(GOOD) as server:
        magpie(config(server, target=1), tmp_path / "run", progress=False)
        with pytest.raises(SelfInstructError, match="different settings.*turns: 1 -> 2"):
            magpie(config(server, target=1, turns=2), tmp_path / "run", progress=False)


@pytest.mark.parametrize("status", [404, 400])
def test_an_endpoint_without_raw_completions_is_refused_naming_what_to_give(tmp_path, status):
    with FakeCompletions(INSTRUCTIONS, raw_status=status) as server:
        outcome = CliRunner().invoke(
            main,
            ["magpie", "-n", "2", "--out", str(tmp_path / "run"), "--base-url", server.base_url, "--model", "m"]
            + ["--chat-template", str(bundled_gguf())],
        )
    assert outcome.exit_code != 0
    assert f"HTTP {status}" in outcome.output and "/completions" in outcome.output
    assert "--base-url" in outcome.output
    assert {path for path, _ in server.bodies} == {"/v1/completions"}  # the requests in flight, nothing after


def test_an_api_teacher_without_a_chat_template_is_refused_before_any_request(tmp_path):
    with FakeCompletions(INSTRUCTIONS) as server:
        outcome = CliRunner().invoke(
            main, ["magpie", "--out", str(tmp_path / "run"), "--base-url", server.base_url, "--model", "m"]
        )
    assert outcome.exit_code != 0 and "--chat-template" in outcome.output
    assert server.bodies == []


def test_a_chat_template_path_that_is_not_there_is_refused_naming_the_option(tmp_path):
    outcome = CliRunner().invoke(main, ["magpie", "--out", str(tmp_path / "run"), "--chat-template", "/no/such"])
    assert outcome.exit_code != 0 and "--chat-template /no/such: no such file" in outcome.output
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- the real embedded teacher


@pytest.mark.slow
def test_the_embedded_teacher_makes_clean_records_end_to_end(tmp_path):
    result = magpie(MagpieConfig(target=2), tmp_path / "run", progress=False)
    records = [r for _, r in read_jsonl(tmp_path / "run" / "data.jsonl")]
    assert len(records) == 2 and result.accepted == 2
    for record in records:
        assert record["instruction"].strip() and record["output"].strip()
        assert not TEMPLATE_TOKEN.search(record["instruction"] + record["output"])
    raw = [r for r in load_ledger(tmp_path / "run" / "ledger.jsonl").answered_requests() if r["step"] == "instruction"]
    assert raw and result.stats["magpie"]["pre_query"].endswith("<|im_start|>user\n")
