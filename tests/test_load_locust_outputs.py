"""Locust's own outputs and configuration work with player-sim's locustfile: --csv, --html,
--json, exit codes, locust.conf and [tool.locust] in pyproject.toml, all against a real
collector on 127.0.0.1."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from helpers import ROOT, VOD
from helpers.collector import RunningCollector, running_collector
from helpers.load import LOCUSTFILE, ledger_lines, locust_cli

SCENARIO = VOD
pytestmark = pytest.mark.usefixtures("compiled_policies")


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    with running_collector(tmp_path_factory.mktemp("collector") / "collector.duckdb") as running:
        yield running


@pytest.fixture(scope="module")
def reported(tmp_path_factory, collector):
    """One healthy legacy run writing Locust's CSV, HTML and JSON reports."""
    out = tmp_path_factory.mktemp("reports")
    cmd = locust_cli(
        "--headless",
        "-u",
        "1",
        "-r",
        "1",
        "-t",
        "5s",
        "--host",
        collector.url,
        "--scenario",
        str(SCENARIO),
        "--protocol",
        "legacy",
        "--session-rate",
        "15",
        "--time-scale",
        "20",
        "--csv",
        str(out / "run"),
        "--html",
        str(out / "report.html"),
        "--json",
    )
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    return out, done


def test_csv_stats_have_a_row_per_legacy_event_type(reported):
    out, done = reported
    rows = list(csv.DictReader((out / "run_stats.csv").open()))
    names = {r["Name"]: int(r["Request Count"]) for r in rows}
    assert names.get("legacy 2 MEDIA_LOADED", 0) > 0, names
    assert names.get("legacy 3 PLAY", 0) > 0, names
    assert int(next(r for r in rows if r["Name"] == "Aggregated")["Failure Count"]) == 0


def test_html_report_lists_the_beacon_types(reported):
    out, _ = reported
    assert "legacy 3 PLAY" in (out / "report.html").read_text()


def test_json_output_holds_the_per_type_statistics(reported):
    _, done = reported
    stats = orjson.loads(done.stdout[done.stdout.index(b"[") :])
    by_name = {s["name"]: s for s in stats}
    assert by_name["legacy 3 PLAY"]["num_requests"] > 0
    assert all(s["method"] == "GET" for s in stats)


def test_a_healthy_run_exits_0(reported):
    assert reported[1].returncode == 0, reported[1].stderr.decode()[-2000:]


def test_a_run_with_failed_sends_exits_1_as_locust_does(tmp_path):
    with running_collector(tmp_path / "collector.duckdb", "--fail-rate", "0.3") as faulty:
        cmd = locust_cli(
            "--headless",
            "--only-summary",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "4s",
            "--host",
            faulty.url,
            "--scenario",
            str(SCENARIO),
            "--protocol",
            "legacy",
            "--session-rate",
            "15",
            "--time-scale",
            "20",
        )
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    assert done.returncode == 1, done.stderr.decode()[-2000:]


def _run_in(folder: Path) -> subprocess.CompletedProcess:
    """`locust` with no arguments at all, in `folder`: everything comes from its config file."""
    return subprocess.run([sys.executable, "-m", "locust"], cwd=folder, capture_output=True, timeout=120)


def _settings(collector: RunningCollector, folder: Path, protocol: str) -> dict[str, str]:
    return {
        "locustfile": str(LOCUSTFILE),
        "headless": "true",
        "users": "1",
        "spawn-rate": "1",
        "run-time": "4s",
        "host": collector.url,
        "scenario": str(SCENARIO),
        "protocol": protocol,
        "session-rate": "15",
        "time-scale": "20",
        "ledger": str(folder / "ledger.jsonl"),
    }


def test_project_options_are_read_from_locust_conf_in_any_folder(tmp_path, collector):
    settings = _settings(collector, tmp_path, "kava")
    del settings["scenario"]  # the bundled mix, found from a folder that has no scenarios/
    (tmp_path / "locust.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    done = _run_in(tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = ledger_lines(tmp_path / "ledger.jsonl")
    assert lines and {line["protocol"] for line in lines} == {"kava"}


def test_project_options_are_read_from_tool_locust_in_pyproject(tmp_path, collector):
    settings = _settings(collector, tmp_path, "legacy")
    body = "".join(f"{k} = {v}\n" if v == "true" or v.isdigit() else f'{k} = "{v}"\n' for k, v in settings.items())
    (tmp_path / "pyproject.toml").write_text("[tool.locust]\n" + body)
    done = _run_in(tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = ledger_lines(tmp_path / "ledger.jsonl")
    assert lines and {line["protocol"] for line in lines} == {"legacy"}


def test_a_bad_option_exits_2_with_its_location_said_once_and_no_traceback(tmp_path, collector):
    shape = tmp_path / "shape.yaml"
    shape.write_text("stages:\n  - ramp: {to: 50, ovr: 2m}\n")
    cmd = locust_cli("--headless", "-t", "3s", "--host", collector.url, "--shape", str(shape))
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    said = (done.stdout + done.stderr).decode()
    assert done.returncode == 2
    assert said.count(f"{shape}:2:20: stages[0].ramp.ovr: unknown key 'ovr'") == 1, said
    assert "Traceback" not in said
