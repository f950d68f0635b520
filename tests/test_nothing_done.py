"""A command that could do nothing fails and says why, instead of exiting 0 with an empty result."""

import json

from click.testing import CliRunner
from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from fake_run import write_run
from test_cli_generate import api_args

from selfinstruct.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def generate_capped(server, out, max_cost, *extra):
    return invoke(*api_args(server, out, "-n", 5, "--max-cost", max_cost, *extra))


def test_a_zero_cost_cap_is_refused_before_anything_is_sent(tmp_path):
    with FakeOpenAI() as server:
        result = generate_capped(server, tmp_path / "run", 0)
    assert result.exit_code != 0
    assert "invalid setting --max-cost: Input should be greater than 0" in result.output
    assert server.calls == [] and not (tmp_path / "run").exists()


def assert_no_request_fits(result):
    assert result.exit_code != 0
    assert "--max-cost ($1e-05) is below what one request can cost" in result.output
    assert "nothing was sent: raise --max-cost or lower --max-tokens" in result.output


def test_a_cost_cap_below_one_request_is_an_error_not_a_finished_run(tmp_path):
    with FakeOpenAI() as server:
        result = generate_capped(server, tmp_path / "run", 0.00001)
    assert_no_request_fits(result)
    assert server.calls == []


def test_a_cost_cap_below_one_request_is_an_error_in_a_batch_too(tmp_path):
    with FakeBatchAPI(FakeOpenAI()) as server:
        result = generate_capped(server, tmp_path / "run", 0.00001, "--batch", "--batch-poll", "0.05")
    assert_no_request_fits(result)
    assert server.uploads == [] and server.batches == {}


def test_filter_on_an_empty_file_names_the_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = invoke("filter", empty, "--out", tmp_path / "clean")
    assert result.exit_code != 0
    assert f"{empty}: no records to filter" in result.output
    assert not (tmp_path / "clean" / "data.jsonl").exists()


def test_cost_of_a_path_that_is_not_a_run_names_the_path(tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps({"instruction": "Say hi.", "input": "", "output": "Hi."}) + "\n")
    run = write_run(tmp_path / "run")
    for path in (records, run / "data.jsonl"):  # a dataset, and a run's records rather than its ledger
        result = invoke("cost", path)
        assert result.exit_code != 0, result.output
        assert f"{path}: not a run, no request is recorded in it" in result.output
        assert "teacher: None" not in result.output
    assert invoke("cost", run).exit_code == 0
