"""Live load end to end: headless Locust runs against a real collector on 127.0.0.1, then
the ledger is reconciled against the collector's store."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from helpers.collector import running_collector
from helpers.load import ledger_lines, reconcile_totals, run_load

pytestmark = pytest.mark.usefixtures("compiled_policies")


def test_a_time_scaled_run_against_the_collector_loses_nothing(tmp_path, collector):
    summary = run_load(tmp_path, collector.url, protocol="both")
    collector.stop()
    totals = reconcile_totals(tmp_path / "ledger.jsonl", collector.store)
    assert summary["sent"] > 100 and summary["failed"] == 0
    assert totals["sent"] == summary["sent"]
    assert totals["lost"] == 0 and totals["duplicated"] == 0 and totals["unexpected"] == 0


def test_two_processes_ledgers_are_merged_into_one_and_nothing_is_lost(tmp_path, collector):
    summary = run_load(tmp_path, collector.url, processes=2, users=2, seconds=15)
    collector.stop()
    assert summary["workers"] >= 2
    assert not list(tmp_path.glob("ledger.w*.jsonl"))  # the workers' parts became the ledger
    keys = [line["key"] for line in ledger_lines(tmp_path / "ledger.jsonl")]
    assert len(keys) == len(set(keys)) == summary["sent"] > 0  # disjoint session partitions
    totals = reconcile_totals(tmp_path / "ledger.jsonl", collector.store)
    assert totals["sent"] == summary["sent"]
    assert totals["lost"] == 0 and totals["duplicated"] == 0


def test_failed_sends_at_a_faulty_collector_are_exactly_the_failed_ledger_lines(tmp_path):
    with running_collector(tmp_path / "collector.duckdb", "--fail-rate", "0.2") as faulty:
        summary = run_load(tmp_path, faulty.url)
    lines = ledger_lines(tmp_path / "ledger.jsonl")
    failed = [line for line in lines if line.get("failed")]
    assert summary["failed"] == len(failed) > 0
    assert summary["failures"] == {"HTTP 503": len(failed)}
    assert {line["error"] for line in failed} == {"HTTP 503"}
    totals = reconcile_totals(tmp_path / "ledger.jsonl", faulty.store)
    assert totals["failed_at_send"] == len(failed)
    assert totals["lost"] == 0


def test_a_refused_connection_is_counted_and_never_stops_the_run(tmp_path):
    # Bound but never listening: the port stays ours (no other server can take it), and
    # every connection to it is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        summary = run_load(tmp_path, f"http://127.0.0.1:{port}", seconds=4)
    lines = ledger_lines(tmp_path / "ledger.jsonl")
    assert len(lines) == summary["sent"] == summary["failed"] > 20
    assert summary["failures"] == {"connection refused": summary["failed"]}


def test_kava_sessions_stop_views_when_the_server_says_so(tmp_path):
    with running_collector(tmp_path / "collector.duckdb", "--view-events-enabled", "false") as c:
        summary = run_load(tmp_path, c.url, protocol="kava", scale=5, rate=20)
    urls = [line["url"] for line in ledger_lines(tmp_path / "ledger.jsonl")]
    assert summary["views_suppressed"] > 0
    # The player learns viewEventsEnabled from a session's first answer. The VIEW it sends with
    # the first frame (playTimeSum 0) can leave before that answer is back, as in a browser, when
    # the first frame follows the load closely; every later VIEW must stay unsent.
    views = [parse_qs(urlsplit(u).query) for u in urls if "eventType=99&" in u]
    assert [v for v in views if float(v["playTimeSum"][0]) >= 1.0] == []
    assert len(views) < summary["views_suppressed"]
    assert [u for u in urls if "eventType=3&" in u]  # the sessions themselves played on


def test_kava_beacons_carry_the_first_answer_time_as_session_start(tmp_path, collector):
    run_load(tmp_path, collector.url, protocol="kava", scale=5, rate=20)
    by_session: dict[str, list[dict]] = {}
    for line in ledger_lines(tmp_path / "ledger.jsonl"):
        sid = line["url"].split("sessionId=")[1].split("&")[0]
        by_session.setdefault(sid, []).append(line)
    checked = 0
    for lines in by_session.values():
        lines.sort(key=lambda x: x["ts"])
        assert "sessionStartTime" not in orjson.loads(lines[0]["body"])
        asked = []  # send times of beacons the player sent without a sessionStartTime
        for line in lines:
            body = orjson.loads(line["body"])
            if "sessionStartTime" not in body:
                asked.append(line["ts"])
            else:
                # the collector answered one of them with its clock (epoch s)
                assert any(t - 1 <= body["sessionStartTime"] <= t + 1 for t in asked)
                checked += 1
    assert checked > 10
