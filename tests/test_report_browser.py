"""The report in a real browser: headless Chromium (Debian's `chromium`, `make chromium`) with
the network off loads the page, logs no error, draws every chart (the sunburst with one
sector per verb and object of the data), zooms on a click and filters the table as one
types. Without Chromium these tests fail: they are how CI knows the page works.

Screenshots are kept in the test's tmp directory and in outputs/test-artefacts/.
"""

import shutil
from pathlib import Path

import pytest
from browser import Chromium, chromium_path
from report_runs import SMALL_RUN_RECORDS

from selfinstruct.records import read_records
from selfinstruct.report.page import build_report
from selfinstruct.report.sunburst import verb_tree
from selfinstruct.report.verbs import verb_noun

ARTEFACTS = Path(__file__).resolve().parents[1] / "outputs" / "test-artefacts"
CHARTS = "[...document.querySelectorAll('.js-plotly-plot')]"
DRAWN = f"{CHARTS}.length > 0 && {CHARTS}.every(chart => chart._fullLayout && chart.querySelector('.main-svg'))"
SECTORS = "document.querySelectorAll('#chart-{i} g.slice').length"
# Marks each chart drew: sectors, bars, funnel stages, points and lines.
MARKS = f"{CHARTS}.map(chart => [chart.id, chart.querySelectorAll('g.slice, g.point, path.js-line').length])"


@pytest.fixture(scope="module")
def browser():
    try:
        chromium_path()
    except RuntimeError as e:
        pytest.fail(str(e))
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def small_report(small_run, tmp_path_factory):
    return build_report(small_run, tmp_path_factory.mktemp("browser") / "small-run-report.html")


def keep(screenshot: Path) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(screenshot, ARTEFACTS / screenshot.name))


def colours(png: Path, box: dict) -> int:
    """Distinct colours inside `box` (CSS pixels of the page) of a screenshot."""
    from PIL import Image

    with Image.open(png) as image:
        region = image.convert("RGB").crop((box["left"], box["top"], box["right"], box["bottom"]))
        return len(region.getcolors(maxcolors=1 << 20) or [])


def test_the_page_of_a_run_draws_every_chart_offline_without_errors(browser, small_run, small_report, tmp_path, capsys):
    page = browser.open(small_report.path, DRAWN)
    assert page.errors == []
    expected = verb_tree([verb_noun(r["instruction"]) for r in read_records(small_run)])
    assert page.evaluate(SECTORS.format(i="sunburst-0")) == len(expected) == small_report.sunburst_sectors[0]
    marks = dict(page.evaluate(MARKS))
    assert len(marks) == 9 and all(marks.values()), marks  # every chart drew something

    shot = page.screenshot(tmp_path / "report-small-run.png")
    box = page.evaluate(
        "JSON.parse(JSON.stringify(document.getElementById('chart-sunburst-0').getBoundingClientRect()))"
    )
    assert colours(shot, box) > 100  # a drawn sunburst, not a blank canvas
    with capsys.disabled():
        print(f"\nsmall run page: loaded and drawn in {page.load_seconds:.1f} s; screenshot {keep(shot)}")


def test_a_click_on_a_verb_zooms_in_and_the_search_filters_the_table(browser, small_report):
    page = browser.open(small_report.path, DRAWN)
    before = page.evaluate(SECTORS.format(i="sunburst-0"))
    point = page.evaluate("""(() => {
        const chart = document.getElementById('chart-sunburst-0');
        chart.scrollIntoView();
        const slice = [...chart.querySelectorAll('g.slice')].find(g => g.__data__.data.data.id === 'write');
        const centre = chart.querySelector('g.trace').getBoundingClientRect();
        const d = slice.__data__, scale = (d.rpx0 + d.rpx1) / 2 / Math.hypot(d.pxmid[0], d.pxmid[1]);
        return {x: centre.left + centre.width / 2 + d.pxmid[0] * scale,  // the middle of the sector
                y: centre.top + centre.height / 2 + d.pxmid[1] * scale};
    })()""")
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        page.send("Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"], button="left", clickCount=1)
    page.wait_for(f"{SECTORS.format(i='sunburst-0')} < {before}")  # only "write" and its objects are left
    shown = page.evaluate(
        "[...document.querySelectorAll('#chart-sunburst-0 g.slice')].map(g => g.__data__.data.data.id)"
    )
    assert "write" in shown and all(s == "write" or s.startswith("write/") for s in shown)

    rows = (
        "[...document.querySelectorAll('#records-table tbody tr')].filter(row => row.style.display !== 'none').length"
    )
    assert page.evaluate(rows) == SMALL_RUN_RECORDS + 8
    page.evaluate("""(() => { const box = document.getElementById('search');
        box.value = 'teacher_artefact'; box.dispatchEvent(new Event('input')); })()""")
    assert page.evaluate(rows) == 2 and page.evaluate("document.getElementById('shown').textContent") == "2"
    assert page.errors == []


def test_the_page_of_52k_records_opens_in_seconds(browser, big_report, tmp_path, capsys):
    page = browser.open(big_report.path, DRAWN)
    assert page.errors == []
    assert page.evaluate(SECTORS.format(i="sunburst-0")) == big_report.sunburst_sectors[0]
    shot = keep(page.screenshot(tmp_path / "report-52k.png", height=1800))
    with capsys.disabled():
        print(
            f"\n52K page ({big_report.bytes / 1e6:.2f} MB): loaded and drawn in {page.load_seconds:.1f} s; screenshot {shot}"
        )
    assert page.load_seconds < 15


def test_a_page_that_needs_the_network_fails_here(browser, tmp_path):
    page_file = tmp_path / "cdn.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script></head>'
        '<body><div id="c"></div><script>Plotly.newPlot("c", [{y: [1, 2]}]);</script></body></html>'
    )
    page = browser.open(page_file, "true")
    assert any("request failed" in e for e in page.errors) and any("Plotly is not defined" in e for e in page.errors)
