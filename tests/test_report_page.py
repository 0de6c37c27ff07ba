"""The HTML report: its charts hold the figures `report --json` prints, it renders in a real browser
without script errors, and values from beacons (entry id, referrer) cannot become markup or script."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from events_tables import kava, legacy, write
from headless_chromium import CHROMIUM, SKIP_REASON, dump_dom
from sim.cli import app

# Only a browser that is really there: on a machine without chromium the browser test skips.
HOSTILE = "</script><img src=x onerror=alert(1)>"
runner = CliRunner()


def _rows() -> list[dict]:
    truth = dict(
        truth_outcome="completed", truth_entry_duration=60.0, truth_intended_fraction=1.0, truth_device="tablet"
    )
    rows = []
    for i in range(3):  # three loads, two plays, one reaches 100 %
        seq = (
            dict(truth_session_seq=i, truth_viewer=i, **truth)
            if i < 2
            else dict(truth_session_seq=i, truth_viewer=i, truth_outcome="no_play", truth_device="tablet")
        )
        entry = HOSTILE if i == 0 else "0_plain"
        rows.append(kava(1, session=f"k{i}", entry=entry, referrer=HOSTILE, **seq))
        if i < 2:
            rows.append(kava(2, session=f"k{i}", entry=entry, **seq))
            rows.append(kava(3, session=f"k{i}", entry=entry, **seq))
            rows.append(kava(11, session=f"k{i}", entry=entry, position=15.0, **seq))
    rows.append(kava(14, session="k0", entry=HOSTILE, position=60.0, truth_session_seq=0, truth_viewer=0, **truth))
    rows += [
        legacy(2, entry=HOSTILE, referrer=HOSTILE),
        legacy(3, entry=HOSTILE, duration=120),
        legacy(4, entry=HOSTILE, duration=120),
        legacy(2, session="L2"),
    ]
    return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """(the --json document, the HTML page's path) for the same source."""
    folder = tmp_path_factory.mktemp("report")
    source = write(_rows(), folder / "e.parquet")
    page = folder / "report.html"
    as_json = runner.invoke(app, ["report", str(source), "--json"])
    as_html = runner.invoke(app, ["report", str(source), "--html", str(page)])
    assert as_json.exit_code == 0 and as_html.exit_code == 0, as_json.output + as_html.output
    return json.loads(as_json.stdout), page


def _page_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    return json.loads(block.group(1))


def _charts(data: dict) -> dict[str, dict]:
    charts = [c for s in data["sections"] for c in s["charts"]] + data["mixes"]
    return {c["id"]: c for c in charts}


def test_the_charts_hold_the_figures_of_the_json_report(report):
    doc, page = report
    charts = _charts(_page_data(page.read_text()))
    k, kt = doc["protocols"]["kava"]["headline"], doc["protocols"]["kava"]["truth"]
    measured, truth = charts["kava-funnel"]["data"]
    assert measured["x"] == ["Impressions", "Play requests", "Plays", "25 %", "50 %", "75 %", "100 %"]
    assert measured["y"] == [
        k[key]
        for key in (
            "count_loads",
            "count_play_requests",
            "count_plays",
            "count_plays_25",
            "count_plays_50",
            "count_plays_75",
            "count_plays_100",
        )
    ]
    assert measured["y"][:3] == [3, 2, 2]
    assert truth["y"][0] == kt["count_loads"] and truth["y"][2] == kt["count_plays"] == 2
    assert charts["kava-dropoff"]["data"][0]["y"] == [100.0, 100.0, 0.0, 0.0, 50.0]
    assert charts["kava-dropoff"]["data"][1]["y"] == [100, 100 * kt["play_through_ratio"]]
    assert charts["kava-minutes"]["data"][1]["y"][0] == pytest.approx(kt["sum_time_viewed_min"])
    timeline = doc["protocols"]["kava"]["timeline"]["points"]
    events, plays = charts["kava-timeline"]["data"]
    assert events["y"] == [p[1] for p in timeline] and plays["y"] == [p[2] for p in timeline]
    assert plays["yaxis"] == "y2"  # plays on their own scale
    assert charts["legacy-funnel"]["data"][0]["y"] == [2, 1, 1, 0, 0, 0]
    devices = {t["name"]: t for t in charts["mix-device"]["data"]}
    assert list(devices) == ["legacy measured", "legacy truth", "kava measured", "kava truth"]  # one chart
    assert dict(zip(devices["kava truth"]["x"], devices["kava truth"]["y"]))["tablet"] == 100.0
    assert dict(zip(devices["kava measured"]["x"], devices["kava measured"]["y"]))["tablet"] == 0  # no user agent


def test_days_outside_the_clock_window_are_left_out():
    from sim.metrics.html import clock_window_days

    days = [
        {"key": "d0", "loads": 0, "plays": 1, "events": 5},
        {"key": "d1", "loads": 4, "plays": 3, "events": 9},
        {"key": "d2", "loads": 0, "plays": 0, "events": 1},
        {"key": "d3", "loads": 2, "plays": 1, "events": 4},
        {"key": "d4", "loads": 0, "plays": 1, "events": 7},
    ]
    inside, outside = clock_window_days(days)
    assert [d["key"] for d in inside] == ["d1", "d2", "d3"] and [d["key"] for d in outside] == ["d0", "d4"]


def test_no_value_from_a_beacon_becomes_markup(report):
    _, page = report
    html = page.read_text()
    from plotly.offline import get_plotlyjs

    ours = html.replace(get_plotlyjs(), "")  # the page less the library (whose code holds "<img")
    assert HOSTILE not in ours and "<img" not in ours
    entries = _charts(_page_data(html))["legacy-entries"]["data"][0]["y"]
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in entries  # shown as text by Plotly
    assert len(re.findall(r"</script>", ours, re.I)) == len(re.findall(r"<script\b", ours, re.I)) == 3


def test_page_data_is_json_even_with_non_finite_figures():
    from sim.metrics.html import _json_for_script

    text = _json_for_script({"y": [float("nan"), float("inf"), 1.5], "label": "</script>&"})
    assert json.loads(text) == {"y": [None, None, 1.5], "label": "</script>&"}
    assert "<" not in text and "&" not in text


def test_names_beside_event_ids_and_plain_notes(report):
    _, page = report
    html = page.read_text()
    assert "<td>PLAY_REACHED_25_PERCENT</td><td>11</td>" in html
    assert "<td>MEDIA_LOADED</td><td>2</td>" in html
    notes = " ".join(re.findall(r'<p class="note">(.*?)</p>', html, re.S))
    assert not re.search(r"\btruth_\w+|\bplayTimeSum\b|\bentryId\b", notes)


class _Dom(HTMLParser):
    """Texts drawn inside each chart, every element's tag, and the body's data attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.body: dict[str, str] = {}
        self.texts: dict[str, list[str]] = {}
        self.errors = ""
        self._chart = None  # id of the chart being read: from its div to the next heading or text
        self._in_errors = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "body":
            self.body = attrs
        self._in_errors = attrs.get("id") == "errors"
        if tag in ("h2", "h3", "p", "section", "details"):
            self._chart = None
        elif tag == "div" and "plot" in attrs.get("class", "").split() and attrs.get("id"):
            self._chart = attrs["id"]
            self.texts[self._chart] = []

    def handle_data(self, data):
        if self._chart and data.strip():
            self.texts[self._chart].append(data.strip())
        if self._in_errors:
            self.errors += data


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_the_page_renders_in_chromium_with_the_json_figures(report, tmp_path):
    doc, page = report
    dom = dump_dom(page.as_uri(), tmp_path, budget_ms=10000, timeout_s=180)
    parsed = _Dom()
    parsed.feed(dom)
    charts = _charts(_page_data(page.read_text()))
    assert parsed.body.get("data-rendered") == str(len(charts)), parsed.errors  # every chart drawn ...
    assert "data-errors" not in parsed.body and not parsed.errors.strip()  # ... without a script error
    assert "img" not in parsed.tags  # the hostile entry id made no element
    k = doc["protocols"]["kava"]["headline"]
    funnel = parsed.texts["kava-funnel"]
    for label in ("Impressions", "Play requests", "Plays", "25 %", "100 %", "count (sessions or beacons)", "step"):
        assert label in funnel
    bar_values = [t for t in funnel if re.fullmatch(r"[\d,]+", t)]
    for value in (k["count_loads"], k["count_plays"], k["count_plays_25"]):
        assert str(value) in bar_values
    assert HOSTILE in parsed.texts["legacy-entries"]  # drawn as the text it is
    timeline = parsed.texts["kava-timeline"]
    assert "time (UTC)" in timeline and any(t.startswith("plays per") for t in timeline)
