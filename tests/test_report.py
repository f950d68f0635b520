"""`selfinstruct report`: one offline HTML page from a run, a filter output, a plain dataset or two
of them, built from what the files say; and at Alpaca's size, small and quick."""

import hashlib
import json
import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import SEED_TASKS, USER_ORIENTED
from report_runs import SMALL_RUN_RECORDS

from selfinstruct.cli import main
from selfinstruct.errors import SelfInstructError
from selfinstruct.records import read_records
from selfinstruct.report.page import build_report, default_report_path
from selfinstruct.report.summary import SAMPLE_ACCEPTED, SAMPLE_REJECTED
from selfinstruct.report.sunburst import verb_tree
from selfinstruct.report.verbs import verb_noun

EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def cli(*args):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 0, result.output
    return result.output


def section(page: str, key: str) -> str:
    return page.split(f'<section id="{key}">', 1)[1].split("</section>", 1)[0]


def table_rows(page: str) -> list[str]:
    return re.findall(r"<tr class=\"(accepted|rejected)\">", page)


def traces(page: str, chart: str) -> list[dict]:
    """The data of one figure, as the page hands it to Plotly.newPlot."""
    start = page.index("[", page.index(f'"chart-{chart}",'))
    return json.JSONDecoder().raw_decode(page, start)[0]


def digest(directory) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_a_run_becomes_one_offline_page_with_every_section(small_run, tmp_path, capsys):
    before = digest(small_run)
    out = tmp_path / "report.html"
    output = cli("report", small_run, "--out", out)
    assert digest(small_run) == before  # the run directory is only read
    page = out.read_text()
    with capsys.disabled():
        print(f"\nsmall run report: {output.strip()}")

    assert not EXTERNAL.findall(page)  # nothing loads from elsewhere
    assert page.count("<script>") >= 10 and "Plotly.newPlot" in page  # plotly.js inlined, figures drawn by it
    records = read_records(small_run)
    expected = verb_tree([verb_noun(r["instruction"]) for r in records])
    sunburst = traces(page, "sunburst-0")[0]
    assert sunburst["ids"] == [s.id for s in expected] and sunburst["values"] == [s.value for s in expected]
    assert sum(v for v, parent in zip(sunburst["values"], sunburst["parents"]) if not parent) == SMALL_RUN_RECORDS
    funnel = traces(page, "funnel-0")[0]
    stats = json.loads((small_run / "stats.json").read_text())
    rules = stats["filters"]["rejected"]
    assert set(rules) == {"instruction_words", "teacher_artefact", "exact_duplicate", "near_duplicate"}
    assert funnel["y"] == ["candidates", *(f"− {rule} ({n})" for rule, n in rules.items()), "accepted"]
    assert funnel["x"][0] == stats["candidates"] == 32 and funnel["x"][-2:] == [24, 24]
    diversity = section(page, "diversity")
    assert "Write a short poem about the sea at night." in diversity and "accepted; 3 removed" in diversity
    assert "$" in section(page, "cost") and "chart-spending-0" in page and "chart-projection-0" in page
    assert "chart-acceptance-0" in page
    rows = table_rows(page)
    assert rows.count("accepted") == SMALL_RUN_RECORDS and rows.count("rejected") == 8
    assert "As an AI language model" in section(page, "records")  # a rejected record, with its verdict
    assert "<td>teacher_artefact</td>" in section(page, "records")


def test_a_plain_dataset_has_no_funnel_or_cost_and_says_so(tmp_path):
    src = tmp_path / "alpaca_data.json"
    src.write_text(
        json.dumps(
            [
                {"instruction": "Write a poem about a cat.", "input": "", "output": "Soft paws."},
                {"instruction": "What is two plus two?", "input": "", "output": "Four."},
            ]
        )
    )
    out = build_report(src, tmp_path / "page.html")
    page = out.path.read_text()
    assert out.records == [2] and out.sunburst_sectors == [4]  # write, write/poem, (question), (question)/what
    assert "a plain dataset" in section(page, "funnel") and "no ledger" in section(page, "cost")
    assert "which duplicates were removed is not known" in section(page, "diversity")


def test_compare_shows_two_datasets_side_by_side(small_run, tmp_path):
    out = tmp_path / "compare.html"
    output = cli("report", small_run, "--compare", USER_ORIENTED, "--out", out)
    assert f"{SMALL_RUN_RECORDS} and 252 records" in output
    page = out.read_text()
    assert "chart-sunburst-0" in page and "chart-sunburst-1" in page
    assert f"{small_run.name} vs {USER_ORIENTED.name}" in page
    rows = table_rows(page)
    assert len(rows) == SMALL_RUN_RECORDS + 8 + min(SAMPLE_ACCEPTED, 252)
    assert "not a run directory" in section(page, "cost")  # the second one, beside the run's figures


def test_a_filter_output_has_its_funnel_and_clusters(small_run, tmp_path):
    cli("filter", SEED_TASKS, "--out", tmp_path / "clean", "--preset", "alpaca")
    out = build_report(tmp_path / "clean", tmp_path / "clean-report.html")
    page = out.path.read_text()
    assert "chart-funnel-0" in page and "no ledger" in section(page, "cost")


def test_the_default_page_goes_beside_the_source_never_over_it(small_run, tmp_path):
    assert default_report_path(small_run) == small_run.parent / f"{small_run.name}-report.html"
    assert default_report_path(small_run / "data.jsonl") == small_run.parent / f"{small_run.name}-report.html"
    assert default_report_path(SEED_TASKS) == SEED_TASKS.parent / "seed_tasks-report.html"
    with pytest.raises(SelfInstructError, match="a file the report reads"):
        build_report(small_run, small_run / "ledger.jsonl")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_52k_records_make_a_small_page_quickly(big_report, capsys):
    with capsys.disabled():
        print(
            f"\n52K-record run report: {big_report.bytes / 1e6:.2f} MB, built in {big_report.seconds:.1f} s, "
            f"{big_report.sunburst_sectors[0]} sunburst sectors"
        )
    assert big_report.records == [52_000]
    assert big_report.bytes < 6_500_000  # plotly.js (4.8 MB) plus aggregates and a sample, not the records
    assert big_report.seconds < 60  # about 7 s alone on the project's 2 cores
    rows = table_rows(big_report.path.read_text())
    assert rows.count("accepted") == SAMPLE_ACCEPTED and rows.count("rejected") == SAMPLE_REJECTED


def test_a_run_with_nothing_accepted_yet_still_has_a_page(small_run, tmp_path):
    run = tmp_path / "early"
    shutil.copytree(small_run, run)
    (run / "data.jsonl").write_text("")  # a report may be made while `generate` is still at work
    out = build_report(run, tmp_path / "early.html")
    page = out.path.read_text()
    assert out.records == [0] and out.sunburst_sectors == [0]
    assert "chart-funnel-0" in page and "chart-spending-0" in page and "chart-projection-0" not in page


def test_duplicate_groups_name_what_they_copy():
    from selfinstruct.report.diversity import duplicate_clusters

    seeds = [{"id": "seed_task_1", "instruction": "Write a poem."}]
    records = [{"id": "r0-0", "instruction": "Sort the list."}]
    rejected = [
        {"id": "r0-1", "instruction": "Sort the list!", "reason": "exact_duplicate", "duplicate_of": "r0-0"},
        {"id": "r0-2", "instruction": "Sort this list.", "reason": "near_duplicate", "duplicate_of": "r0-0"},
        {
            "id": "r1-0",
            "instruction": "Write a poem please.",
            "reason": "near_duplicate",
            "duplicate_of": "seed_task_1",
        },
        {"id": "r1-1", "instruction": "Write a poem please", "reason": "exact_duplicate", "duplicate_of": "r1-0"},
        {"id": "r1-2", "instruction": "Copy", "reason": "near_duplicate", "duplicate_of": 7},
        {"id": "r1-3", "instruction": "Hi.", "reason": "instruction_words"},
    ]
    clusters = duplicate_clusters(rejected, records, seeds, top=3)
    assert [(c.original_id, c.status, len(c.removed)) for c in clusters] == [
        ("r0-0", "accepted", 2),
        ("seed_task_1", "seed", 1),
        ("r1-0", "near_duplicate", 1),
    ]
    assert clusters[0].original == "Sort the list." and clusters[1].original == "Write a poem."
    assert duplicate_clusters(rejected, records, seeds, top=9)[-1].status == "not in this dataset"
