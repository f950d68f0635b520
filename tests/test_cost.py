"""`selfinstruct cost`: the table is the ledger's sums, to the cent, and the 52K projection."""

import json

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from fake_run import ACCEPTED, ANSWERS, CANDIDATES, SPENT_USD, UNSETTLED_USD, real_run, write_run

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.pricing import PRICES
from selfinstruct.records import read_jsonl
from selfinstruct.report.cost import cost_report
from selfinstruct.report.table import render_table
from selfinstruct.tasks.bootstrap import generate


def cli(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result.output


def line(table: str, label: str) -> list[str]:
    """The cells of the table row that starts with `label`."""
    row = next(r for r in table.splitlines() if r.strip().startswith(label))
    return row.strip()[len(label) :].split()


def test_the_table_matches_a_hand_made_ledger_to_the_cent(tmp_path):
    run = write_run(tmp_path / "run")
    table = cli("cost", run)

    assert line(table, "requests")[:3] == ["6", "3", "answered,"] and "1 failed" in table
    assert line(table, "prompt tokens")[:2] == ["16,000,000", "4,400,000"]
    assert line(table, "completion tokens") == ["8,000,000"]
    assert line(table, "spent") == [f"${SPENT_USD:.4f}"]
    assert line(table, "possibly billed")[:4] == [f"${UNSETTLED_USD:.4f}", "reserved", "for", "2"]
    assert line(table, "accepted records")[:3] == [str(ACCEPTED), "acceptance", f"{ACCEPTED / CANDIDATES:.1%}"]
    assert line(table, "per 1,000 accepted") == ["$343.5000"]
    # 52,000 records = 2,600 times this run: the same tokens per record on each model.
    assert line(table, "gpt-4o-mini ") == ["$17,862.00", "$8,931.00"]
    assert line(table, "deepseek-chat")[1] == "-"  # no batch API
    assert line(table, "text-davinci-003")[:2] == ["$1,248,000.00", "-"] and "< $500" in table

    data = json.loads(cli("cost", run, "--json"))
    assert round(data["cost_usd"], 2) == SPENT_USD and round(data["unsettled_usd"], 2) == UNSETTLED_USD
    assert (data["requests"], data["responses"], data["failures"], data["unsettled_requests"]) == (6, 3, 1, 2)
    assert data["prompt_tokens"] == sum(a[1] for a in ANSWERS) and data["completion_tokens"] == sum(
        a[3] for a in ANSWERS
    )
    assert data["acceptance_rate"] == ACCEPTED / CANDIDATES
    assert [p["model"] for p in data["projections"]] == list(PRICES)


def test_the_table_of_a_real_run_is_the_sum_of_its_ledger(tmp_path):
    run = tmp_path / "run"
    with FakeOpenAI() as server:
        generate(real_run(server.base_url, run, 10), run, progress=False)
    responses = [e for _, e in read_jsonl(run / "ledger.jsonl") if e["event"] == "response"]
    spent = sum(e["cost_usd"] for e in responses)
    price = PRICES["gpt-4o-mini"]
    served = sum(price.cost(c.usage["prompt_tokens"], c.usage["completion_tokens"]) for c in server.completed)

    report = cost_report(run)
    assert report.responses == len(responses) == len(server.completed)
    assert report.cost_usd == pytest.approx(spent) == pytest.approx(served)
    assert line(render_table(report), "spent") == [f"${spent:.4f}"]
    stats = json.loads((run / "stats.json").read_text())
    assert report.accepted == stats["accepted"] and report.candidates == stats["candidates"]


def test_an_unpriced_model_says_unknown_instead_of_zero(tmp_path):
    run = write_run(tmp_path / "run", answers=[("r000000", 1000, 0, 500, None)])
    table = cli("cost", run)
    assert "unknown (no price for gpt-4o-mini)" in table
    assert line(table, "gpt-4o-mini ")[0].startswith("$")  # the projection needs tokens only


def test_a_png_chart_for_people(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_run(tmp_path / "run")
    result = CliRunner().invoke(main, ["cost", str(run), "--plot", str(tmp_path / "cost.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_directory_without_a_ledger_is_refused(tmp_path):
    with pytest.raises(SelfInstructError, match="no ledger.jsonl here; cost reads a run directory"):
        cost_report(tmp_path)
