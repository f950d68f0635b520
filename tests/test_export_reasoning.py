"""Records with reasoning traces: every `--reasoning` mode round-trips through `read_records`,
trl's SFT preparation takes the inline form, and the student is trained on trace + answer."""

import json

import datasets
import pytest
from click.testing import CliRunner
from fake_run import records
from test_export_trl import tiny_student

from selfinstruct.cli import main
from selfinstruct.errors import SettingError
from selfinstruct.export.exporter import export_dataset, make_options
from selfinstruct.finetune.template import render
from selfinstruct.reasoning import inline
from selfinstruct.records import read_records

trl = pytest.importorskip("trl")


def traced(n=6) -> list[dict]:
    """Records of a reasoning teacher; every other one without a trace (a non-reasoning answer)."""
    out = records(n)
    for i, record in enumerate(out):
        if i % 2 == 0:
            record["reasoning"] = f"Step one for note {i}.\n\nStep two: keep it short."
    return out


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "traced.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in traced()))
    return path


def fields(record: dict) -> tuple:
    return record["instruction"], record["input"], record["output"], record.get("reasoning")


@pytest.mark.parametrize("mode", ["inline", "field", "drop"])
@pytest.mark.parametrize(
    "fmt, dest",
    [
        ("jsonl", "out.jsonl"),
        ("alpaca", "out.json"),
        ("sharegpt", "out.jsonl"),
        ("messages", "out.parquet"),
        ("messages", "data"),
        ("openai", "out.jsonl"),
    ],
)
def test_every_mode_reads_back(tmp_path, source, mode, fmt, dest):
    if fmt == "openai" and mode == "field":
        with pytest.raises(SettingError, match="OpenAI's fine-tuning file has no field for it"):
            export_dataset(source, make_options(format=fmt, to=tmp_path / dest, reasoning=mode))
        return
    export_dataset(source, make_options(format=fmt, to=tmp_path / dest, reasoning=mode))
    back = read_records(tmp_path / dest)
    expected = [fields(r) if mode != "drop" else fields({**r, "reasoning": None}) for r in traced()]
    assert [fields(r) for r in back] == expected
    on_disk = (tmp_path / dest).read_text() if dest.endswith(("jsonl", "json")) else None
    if on_disk is not None:  # the trace really is where the mode puts it (JSON escapes the newline)
        assert ('"<think>\\nStep one for note 0.' in on_disk) == (mode == "inline")


def test_the_cli_names_the_flag(tmp_path, source):
    result = CliRunner().invoke(main, ["export", str(source), "--format", "openai", "--to", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 1 and "set --reasoning to inline or drop" in result.output


def test_sft_trainer_prepares_the_inline_form(tmp_path, source):
    export_dataset(source, make_options(format="messages", to=tmp_path / "data", reasoning="inline"))
    dataset = datasets.load_from_disk(str(tmp_path / "data"))
    texts = [inline(r.get("reasoning"), r["output"]) + " " + r["instruction"] + " " + r["input"] for r in traced()]
    model, tokenizer = tiny_student(texts)
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "trainer"),
        report_to=[],
        max_length=256,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
    )
    prepared = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train_dataset
    first, record = prepared[0], traced()[0]
    learned = [
        t for t, label in zip(first["input_ids"], first["labels"]) if label != -100
    ]  # the loss: trace and answer
    assert (
        tokenizer.decode(learned).split()
        == f"<think> {record['reasoning']} </think> {record['output']} <|im_end|>".split()
    )


def test_the_student_learns_the_trace_then_the_answer():
    class Tokenizer:
        eos_token = "</s>"

    record = traced()[0]
    prompt, full = render(record, "alpaca", Tokenizer())
    assert full == prompt + f"<think>\n{record['reasoning']}\n</think>\n\n{record['output']}</s>"
    plain = traced()[1]
    assert render(plain, "alpaca", Tokenizer())[1].endswith(plain["output"] + "</s>")


def test_the_card_says_the_teacher_reasons(tmp_path, source):
    result = export_dataset(source, make_options(format="jsonl", to=tmp_path / "out.jsonl", reasoning="inline"))
    card = result.card.read_text()
    assert (
        "## Reasoning" in card
        and "The teacher is a reasoning model" in card
        and "inline at the start of each output" in card
    )
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in records(3)))
    assert "## Reasoning" not in export_dataset(plain, make_options(to=tmp_path / "p" / "out.jsonl")).card.read_text()
