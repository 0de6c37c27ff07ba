"""`player-sim report`: terminal table, --json, --html, and a clear exit 2 for bad sources."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from events_tables import kava, legacy, write
from sim.cli import app

runner = CliRunner()
ROWS = [
    kava(1, session="a"),
    kava(1, session="b"),
    kava(2, session="a"),
    kava(3, session="a", userId="u1"),
    kava(11, session="a", position=30.0),
    kava(99, session="a", eventIndex=5, playTimeSum=10.0),
    legacy(2),
    legacy(3, duration=120),
]


def test_json_prints_the_metrics_of_both_protocols(tmp_path):
    result = runner.invoke(app, ["report", str(write(ROWS, tmp_path / "e.parquet")), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["protocols"]["kava"]["headline"]["load_play_ratio"] == 0.5
    assert doc["protocols"]["legacy"]["headline"]["count_plays"] == 1


def test_protocol_option_limits_the_report(tmp_path):
    result = runner.invoke(app, ["report", str(write(ROWS, tmp_path / "e.parquet")), "--json", "--protocol", "legacy"])
    assert list(json.loads(result.stdout)["protocols"]) == ["legacy"]


def test_terminal_table_shows_truth_beside_measured(tmp_path):
    truth = dict(
        truth_session_seq=1,
        truth_outcome="completed",
        truth_viewer=3,
        truth_entry_duration=60.0,
        truth_intended_fraction=1.0,
    )
    rows = [kava(1, **truth), kava(3, **truth)]
    result = runner.invoke(app, ["report", str(write(rows, tmp_path / "e.jsonl"))], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "kava measured" in result.stdout and "kava truth" in result.stdout
    assert re.search(r"Plays\s+│\s+1\s+│\s+1\s+│", result.stdout)


def test_html_report_is_self_contained_with_charts(tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(write(ROWS, tmp_path / "e.parquet")), "--html", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for title in (
        "Play funnel",
        "Quartile drop-off",
        "Beacons and plays over time",
        "Plays by hour of day",
        "Top videos by plays",
        "Device mix",
    ):
        assert title in page
    assert "Plotly.newPlot" in page and "plotly.js" in page.lower()  # the library is inlined ...
    assert not re.search(r"<link\b|<script[^>]*\bsrc=|src=\"http", page)  # ... and nothing is fetched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report-")] == []


def test_a_missing_source_exits_2_with_a_message(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "none.parquet")])
    assert result.exit_code == 2
    assert "none.parquet: no such file or folder" in result.output
    assert "Traceback" not in result.output


def test_a_source_without_protocol_column_exits_2(tmp_path):
    rows = [{"ts": 1.0, "eventType": 3}]
    result = runner.invoke(app, ["report", str(write(rows, tmp_path / "e.parquet"))])
    assert result.exit_code == 2
    assert "no `protocol` column" in result.output


def test_an_unknown_breakdown_exits_2(tmp_path):
    result = runner.invoke(app, ["report", str(write(ROWS, tmp_path / "e.parquet")), "--by", "city"])
    assert result.exit_code == 2
    assert "unknown breakdown 'city'" in result.output
