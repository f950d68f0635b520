"""`selfinstruct export` never destroys a file it was not asked to: an existing export, a card of
another export, a user's README.md; and a name it cannot write is refused, not made a folder."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner
from fake_run import records, write_run

from selfinstruct.cli import main
from selfinstruct.export.card import MARKER
from selfinstruct.finetune.card import find_dataset_card
from selfinstruct.records import read_records


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(tmp_path / "run")


def export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_an_existing_file_is_replaced_only_with_overwrite(run, tmp_path):
    dest = tmp_path / "x.jsonl"
    assert export(run, "--to", dest).exit_code == 0
    before = dest.read_bytes()

    result = export(run, "--format", "sharegpt", "--to", dest)
    assert result.exit_code == 1
    assert f"Error: --to {dest}: exists; pass --overwrite to replace it, or choose another --to" in result.output
    assert dest.read_bytes() == before

    result = export(run, "--format", "sharegpt", "--to", dest, "--overwrite")
    assert result.exit_code == 0, result.output
    assert "conversations" in json.loads(dest.read_text().splitlines()[0])


def test_an_existing_datasets_directory_is_replaced_only_with_overwrite(run, tmp_path):
    dest = tmp_path / "ds"
    assert export(run, "--to", dest).exit_code == 0
    result = export(run, "--format", "alpaca", "--to", dest)
    assert result.exit_code == 1 and "exists; pass --overwrite" in result.output
    assert "id" in datasets.load_from_disk(str(dest)).column_names  # still the first export
    assert export(run, "--format", "alpaca", "--to", dest, "--overwrite").exit_code == 0
    assert datasets.load_from_disk(str(dest)).column_names == ["instruction", "input", "output"]


@pytest.mark.parametrize("name", ["out.csv", "data.jsonl.gz", "notes.txt"])
def test_a_file_name_export_does_not_write_is_refused_and_no_folder_made(run, tmp_path, name):
    result = export(run, "--to", tmp_path / name)
    assert result.exit_code == 1
    assert (
        f"Error: --to {tmp_path / name}: export writes no {Path(name).suffix} files; name a .json, .jsonl or .parquet file"
        in result.output
    )
    assert not (tmp_path / name).exists()


def test_file_exports_into_one_folder_each_keep_their_own_card(run, tmp_path):
    for fmt, name in [("alpaca", "alpaca_data.json"), ("messages", "train.jsonl"), ("sharegpt", "train.parquet")]:
        result = export(run, "--format", fmt, "--to", tmp_path / "out" / name)
        assert result.exit_code == 0, result.output
        assert f"(card: {tmp_path / 'out' / (name + '.README.md')})" in result.output
    for fmt, name in [("alpaca", "alpaca_data.json"), ("messages", "train.jsonl"), ("sharegpt", "train.parquet")]:
        card = (tmp_path / "out" / (name + ".README.md")).read_text()
        assert MARKER in card and f"Exported as `{fmt}`" in card and f'data_files="{name}"' in card
    assert not (tmp_path / "out" / "README.md").exists()


def test_export_beside_a_users_readme_leaves_it_alone(run, tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# My project\n")
    monkeypatch.chdir(project)  # the README's own example: `export ... --to alpaca_data.json`

    result = export(run, "--format", "alpaca", "--to", "alpaca_data.json")
    assert result.exit_code == 0, result.output
    assert (project / "README.md").read_text() == "# My project\n"
    assert len(read_records(project / "alpaca_data.json")) == len(records())
    assert find_dataset_card(project / "alpaca_data.json") == project / "alpaca_data.json.README.md"  # finetune's card


def test_a_card_file_someone_else_wrote_is_never_replaced(run, tmp_path):
    (tmp_path / "train.jsonl.README.md").write_text("my notes\n")
    result = export(run, "--to", tmp_path / "train.jsonl")
    assert result.exit_code == 1 and "train.jsonl.README.md: not written by selfinstruct" in result.output
    assert not (tmp_path / "train.jsonl").exists() and (tmp_path / "train.jsonl.README.md").read_text() == "my notes\n"
