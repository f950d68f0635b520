"""`selfinstruct export`: formats, destinations, the dataset card, and no key anywhere."""

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from conftest import FAKE_KEY, assert_no_key_in
from fake_openai import FakeOpenAI
from fake_run import RULE_COUNTS, SECRET, real_run, records, write_run
from huggingface_hub import DatasetCard

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.export.card import MARKER
from selfinstruct.export.exporter import export_dataset, make_options
from selfinstruct.records import TEXT_FIELDS, read_records
from selfinstruct.tasks.bootstrap import generate

PROVENANCE = ("id", "request_id", "teacher_model", "created")
# (format, destination file name); the openai format is JSONL only.
CASES = [
    (fmt, name)
    for fmt in ("alpaca", "jsonl", "sharegpt", "messages")
    for name in ("out.json", "out.jsonl", "out.parquet", "out_dir")
] + [("openai", "out.jsonl")]


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "run")


def export(src, **options):
    return export_dataset(src, make_options(**options))


@pytest.mark.parametrize("fmt,name", CASES)
def test_each_format_round_trips_through_the_loader(run, tmp_path, fmt, name):
    dest = tmp_path / "export" / name
    result = export(
        run, format=fmt, to=dest, system_prompt="Answer briefly." if fmt in ("sharegpt", "messages") else None
    )

    keeps = TEXT_FIELDS if fmt in ("alpaca", "openai") else TEXT_FIELDS + PROVENANCE
    expected = [{k: r[k] for k in keeps} for r in records()]
    assert result.records == len(expected)
    assert read_records(dest) == expected
    assert MARKER in result.card.read_text()


def test_alpaca_json_has_exactly_alpacas_fields(run, tmp_path):
    export(run, to=tmp_path / "alpaca_data.json")  # .json means alpaca unless told otherwise

    rows = json.loads((tmp_path / "alpaca_data.json").read_text())
    assert [list(row) for row in rows] == [["instruction", "input", "output"]] * len(records())


def test_chat_rows_have_the_shapes_their_consumers_expect(run, tmp_path):
    export(run, format="sharegpt", to=tmp_path / "s.jsonl", system_prompt="Be brief.")
    export(run, format="openai", to=tmp_path / "o.jsonl")
    sharegpt = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    openai = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    first = records()[0]

    user = first["instruction"] + "\n\n" + first["input"]
    assert sharegpt["conversations"] == [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": user},
        {"from": "gpt", "value": first["output"]},
    ]
    assert sharegpt["id"] == first["id"]
    assert openai == {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": first["output"]}]
    }


def test_datasets_directory_loads_with_load_from_disk_and_can_split(run, tmp_path):
    export(run, to=tmp_path / "plain")
    export(run, format="messages", to=tmp_path / "split", split_test=0.25)

    plain = datasets.load_from_disk(str(tmp_path / "plain"))
    assert plain.column_names == list(TEXT_FIELDS + PROVENANCE) and len(plain) == len(records())
    split = datasets.load_from_disk(str(tmp_path / "split"))
    assert {k: len(v) for k, v in split.items()} == {"train": 15, "test": 5}
    assert "train 15, test 5" in (tmp_path / "split" / "README.md").read_text()

    export(run, format="alpaca", to=tmp_path / "plain", overwrite=True)  # a second export replaces the first
    assert datasets.load_from_disk(str(tmp_path / "plain")).column_names == list(TEXT_FIELDS)


def test_the_card_states_how_the_data_was_made(run, tmp_path):
    export(run, to=tmp_path / "d" / "data.jsonl", license="cc-by-nc-4.0")
    card_file = tmp_path / "d" / "data.jsonl.README.md"
    card = DatasetCard.load(card_file)
    text = card_file.read_text()

    assert card.data.license == "cc-by-nc-4.0" and card.data.language == ["en"]
    assert card.data.task_categories == ["text-generation"] and card.data.size_categories == ["n<1K"]
    assert "selfinstruct" in card.data.tags and "synthetic" in card.data.tags
    for fact in [
        "`gpt-4o-mini` served by api.example-llm.com:8443",  # teacher and provider host
        "terms of use of that model and of the provider",  # provenance note
        "| new tasks asked for per request | `20` |",
        "| temperature | `1.0` |",  # settings
        "sha256 `" + "ab" * 32,  # seed set hash
        "filter preset `default`",
        "saw 25 candidate records and kept 20 (80.0%)",
        *(f"| `{rule}` | {n} |" for rule, n in RULE_COUNTS.items()),  # counts per rule
        "Deduplication removed: 3 records, `near_duplicate` 3",
        "| prompt tokens | 16,000,000 (4,400,000 cached) |",
        "| completion tokens | 8,000,000 |",
        "$6.8700",
        "$0.7500",  # dollars spent and possibly billed
        "between 2026-11-20T10:00:00.000+00:00 and 2026-11-22T10:00:08.000+00:00",  # dates
    ]:
        assert fact in text, fact
    assert SECRET not in text and "user:" not in text and "/v1" not in text


def test_a_filter_output_card_uses_its_stats_and_those_of_its_run(run, tmp_path):
    filtered = tmp_path / "filtered"
    filtered.mkdir()
    (filtered / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records()[:12]))
    stats = {
        "input": str(run),
        "preset": "strict",
        "decontaminated_against": ["/data/user_oriented_instructions.jsonl"],
        "seen": 20,
        "kept": 12,
        "rejected": {"exact_duplicate": 5, "refusal": 3},
    }  # as `selfinstruct filter` writes it
    (filtered / "stats.json").write_text(json.dumps(stats))

    export(filtered, to=tmp_path / "out.json")
    text = (tmp_path / "out.json.README.md").read_text()
    assert (
        "`selfinstruct filter` with preset `strict`, decontaminating against `user_oriented_instructions.jsonl`" in text
    )
    assert "saw 20 records and kept 12" in text
    assert "| `exact_duplicate` | 5 |" in text and "| `refusal` | 3 |" in text  # the filter's counts
    assert "| `near_duplicate` | 3 |" in text  # and the run's, found through the filter's `input`
    assert "Deduplication removed: 8 records" in text
    assert "api.example-llm.com:8443" in text and "$6.8700" in text

    (filtered / "stats.json").write_text(json.dumps({**stats, "input": "moved-away"}))
    export(filtered, to=tmp_path / "out.json", run_dir=run, overwrite=True)  # the run named by hand
    assert "$6.8700" in (tmp_path / "out.json.README.md").read_text()


def test_a_plain_file_gets_a_card_that_says_what_is_unknown(tmp_path):
    src = tmp_path / "mine" / "alpaca.json"
    src.parent.mkdir()
    src.write_text(json.dumps([{"instruction": "Name a color.", "input": "", "output": "Blue."}]))

    export(src, to=tmp_path / "out" / "data.parquet")
    text = (tmp_path / "out" / "data.parquet.README.md").read_text()
    assert "an unrecorded teacher model" in text and "Not recorded" in text and "--run-dir" in text
    assert read_records(tmp_path / "out" / "data.parquet") == [
        {"instruction": "Name a color.", "input": "", "output": "Blue."}
    ]


def test_the_api_key_never_reaches_any_output(tmp_path):
    """A real run against a local OpenAI-compatible server with the key in the environment."""
    with FakeOpenAI() as server:
        generate(real_run(server.base_url, tmp_path / "run", 8), tmp_path / "run", progress=False)
    out = tmp_path / "out"
    for fmt, name in CASES:
        export(tmp_path / "run", format=fmt, to=out / fmt / name)
    result = CliRunner().invoke(main, ["cost", str(tmp_path / "run"), "--json"])
    (out / "cost.json").write_text(result.output)

    assert "127.0.0.1" in (out / "jsonl" / "out.jsonl.README.md").read_text()
    assert_no_key_in(out, FAKE_KEY)
    assert_no_key_in(out, SECRET)


def test_the_cli_exports_and_reports(run, tmp_path):
    result = CliRunner().invoke(main, ["export", str(run), "--format", "sharegpt", "--to", str(tmp_path / "x.jsonl")])
    assert result.exit_code == 0, result.output
    assert (
        f"20 records in sharegpt rows: {tmp_path / 'x.jsonl'} (card: {tmp_path / 'x.jsonl.README.md'})" in result.output
    )

    result = CliRunner().invoke(main, ["export", str(run), "--format", "openai", "--to", str(tmp_path / "x.parquet")])
    assert (
        result.exit_code == 1
        and "Error: --format openai writes OpenAI's fine-tuning file, which is JSONL" in result.output
    )


@pytest.mark.parametrize(
    "options,message",
    [
        ({}, "nowhere to export to"),
        ({"to": "x.jsonl", "split_test": 0.1}, "'split_test' makes train/test splits for a datasets directory"),
        ({"to": "x_dir", "split_test": 1.5}, "invalid option 'split_test'"),
        ({"to": "x.jsonl", "system_prompt": "Hi"}, "'system_prompt' applies to the chat formats"),
        ({"to": "x.jsonl", "public": True}, "'public' applies to 'push_to_hub' only"),
        ({"push_to_hub": "no-owner"}, "expected OWNER/NAME"),
    ],
)
def test_inconsistent_options_are_refused_before_anything_is_read(options, message):
    with pytest.raises(SelfInstructError, match=message):
        make_options(**options)


def test_a_foreign_card_file_or_folder_is_never_replaced(run, tmp_path):
    (tmp_path / "data.jsonl.README.md").write_text("# My notes\n")
    with pytest.raises(SelfInstructError, match="data.jsonl.README.md: not written by selfinstruct"):
        export(run, to=tmp_path / "data.jsonl", overwrite=True)
    assert not (tmp_path / "data.jsonl").exists() and (tmp_path / "data.jsonl.README.md").read_text() == "# My notes\n"

    with pytest.raises(SelfInstructError, match="exists and is not a saved dataset"):
        export(run, to=run)  # the run directory itself
    assert (run / "ledger.jsonl").exists()


def test_chat_rows_that_are_not_one_instruction_are_refused_with_file_line_and_field(tmp_path):
    src = tmp_path / "chats.jsonl"
    user, assistant = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}
    src.write_text(
        json.dumps({"messages": [user, assistant]}) + "\n" + json.dumps({"messages": [user, assistant, user]}) + "\n"
    )
    with pytest.raises(
        SelfInstructError, match=r"chats.jsonl:2: field 'messages' must hold one user turn then one assistant"
    ):
        read_records(src)
    src.write_text(json.dumps({"conversations": [{"from": "robot", "value": "x"}]}) + "\n")
    with pytest.raises(
        SelfInstructError, match=r"chats.jsonl:1: field 'conversations\[0\]' must be an object with 'from'"
    ):
        read_records(src)
