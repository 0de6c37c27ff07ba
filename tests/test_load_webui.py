"""The Viewers tab of Locust's web UI: Locust runs with its web UI on 127.0.0.1 against a real
collector, the test reads the tab's JSON while the load runs (one process, then a master
with two workers)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import pytest

from helpers import ROOT
from helpers.load import locust_cli, web_get
from sim.cli.demo import free_port, start_collector, stop_process
from sim.load.viewers import viewer_table

RATE = 20.0  # sessions per second asked of the open model
SCENARIOS = {"typical-vod", "short-clip", "long-form-ads"}  # the default mix


pytestmark = pytest.mark.usefixtures("compiled_policies")


def watch_run(tmp: Path, *, protocol: str, processes: int, seconds: float = 180, watch_until: float = 10) -> dict:
    """Locust with its web UI against a collector; the tab's JSON, the statistics JSON and the
    page once the schedule has run `watch_until` seconds; then everything is stopped. `-t` only
    bounds a run that never gets there: it counts from the start, before the workers have built
    their schedules, which takes tens of seconds on a busy machine, and the test stops Locust as
    soon as it has seen what it reads."""
    collector, host = start_collector(tmp / "collector.duckdb", tmp / "collector.log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = locust_cli(
        "--autostart",
        "--autoquit",
        "2",
        "-u",
        str(processes),
        "-r",
        str(processes),
        "-t",
        f"{seconds:g}s",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(port),
        "--host",
        host,
        "--protocol",
        protocol,
        "--session-rate",
        f"{RATE:g}",
        "--time-scale",
        "20",
    )
    if processes > 1:  # the master on a port of its own: other runs may hold Locust's default
        master = free_port()
        cmd += ["--processes", str(processes), "--master-bind-port", str(master), "--master-port", str(master)]
    locust = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = {}
    try:
        deadline = time.time() + seconds + 60
        while time.time() < deadline and locust.poll() is None:
            time.sleep(0.5)
            try:
                table = orjson.loads(web_get(base + "/player-sim/viewers"))
            except OSError:
                continue  # the web UI is not up yet
            if table["elapsed_s"] >= watch_until and table["processes"] == processes:
                seen = {
                    "table": table,
                    "stats": orjson.loads(web_get(base + "/stats/requests")),
                    "page": web_get(base + "/").decode(),
                }
                break
    finally:
        if locust.poll() is None:
            locust.terminate()
        err = locust.communicate(timeout=60)[1]
        stop_process(collector)
    assert seen, err.decode()[-3000:]
    return seen


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return watch_run(tmp_path_factory.mktemp("webui-one"), protocol="legacy", processes=1)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    return watch_run(tmp_path_factory.mktemp("webui-two"), protocol="kava", processes=2)


def test_the_web_ui_page_declares_a_viewers_tab_and_its_columns(one_process):
    page = one_process["page"]
    assert '"extended_tabs": [{"key": "viewers", "title": "Viewers"}]' in page
    assert '"title": "Viewers in progress"' in page and '"title": "Lateness p99 (ms)"' in page


def test_the_achieved_session_start_rate_is_near_the_target(one_process):
    total = one_process["table"]["total"]
    assert total["target_rate"] == RATE
    # about 200 Poisson arrivals so far: 25 % is over 3 standard deviations
    assert abs(total["achieved_rate"] / RATE - 1) < 0.25
    assert total["started"] + total["dropped"] <= total["scheduled_rate"] * one_process["table"]["elapsed_s"] + 1


def test_every_scenario_of_the_mix_has_a_row_and_the_rows_add_up_to_the_total(one_process):
    table = one_process["table"]
    rows, total = table["scenarios"], table["total"]
    assert {r["scenario"] for r in rows} == SCENARIOS
    for key in ("active", "started", "dropped", "sends", "late"):
        assert sum(r[key] for r in rows) == total[key], key
    assert sum(r["target_rate"] for r in rows) == pytest.approx(RATE)


def test_viewers_are_in_progress_and_lateness_is_measured(one_process):
    total = one_process["table"]["total"]
    assert total["active"] > 0 and total["sends"] > total["started"] > 0
    assert 0 < total["p50_ms"] <= total["p99_ms"] <= total["max_ms"]
    assert total["late"] <= total["sends"]


def test_the_request_statistics_carry_the_viewers_rows_for_the_tab(one_process):
    extended = one_process["stats"]["extended_stats"]
    assert [e["key"] for e in extended] == ["viewers"]
    rows = extended[0]["data"]
    assert [r["scenario"] for r in rows][-1] == "total"
    assert {r["scenario"] for r in rows[:-1]} == SCENARIOS
    assert rows[-1]["sends"] > 0


def test_a_master_shows_the_figures_of_all_its_workers(two_workers):
    table = two_workers["table"]
    assert table["processes"] == 2
    total = table["total"]
    assert total["target_rate"] == pytest.approx(RATE)  # each worker's half, summed
    assert abs(total["achieved_rate"] / RATE - 1) < 0.25
    assert total["active"] > 0 and total["sends"] > 0
    assert {r["scenario"] for r in table["scenarios"]} == SCENARIOS


def figures(elapsed: float, started: int, buckets: list[int], target: float = 10.0) -> dict:
    return {
        "workload": "open",
        "elapsed_s": elapsed,
        "target_rate": target,
        "target_viewers": None,
        "late_threshold": 0.25,
        "scenarios": {
            "vod": {
                "share": 1.0,
                "active": 3,
                "offered": started + 1,
                "started": started,
                "dropped": 1,
                "lateness_hist": {"buckets": buckets, "counts": [1] * len(buckets), "max": (max(buckets) + 1) / 1000},
            }
        },
    }


def test_processes_figures_merge_into_summed_rates_and_one_lateness_distribution():
    table = viewer_table([figures(10.0, 100, [1, 2, 300]), figures(5.0, 40, [4])])
    total = table["total"]
    assert total["achieved_rate"] == pytest.approx(100 / 10 + 40 / 5)
    assert total["target_rate"] == 20.0
    assert total["sends"] == 4 and total["late"] == 1 and total["max_ms"] == 301.0
    assert total["active"] == 6 and total["dropped"] == 2
