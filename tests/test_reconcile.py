"""Reconciliation of a request ledger against a collector store, with hand-built ledgers and stores."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.metrics import SourceError
from sim.metrics.reconcile import reconcile

runner = CliRunner()


def ledger_line(key: str, event_type: int = 3, protocol: str = "kava", **extra) -> dict:
    if protocol == "kava":
        url = f"/api_v3/index.php?service=analytics&action=trackEvent&eventType={event_type}&partnerId=1&entryId=0_e"
    else:
        url = f"/api_v3/index.php?service=stats&action=collect&event%3AeventType={event_type}&event%3AentryId=0_e"
    return {
        "ts": 1.0,
        "method": "GET",
        "url": url,
        "headers": {"User-Agent": "x"},
        "body": None,
        "protocol": protocol,
        "key": key,
        **extra,
    }


def write_ledger(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def write_store(path: Path, rows: list[tuple]) -> Path:
    """rows: (ledger_key, protocol, eventType, accepted, error_code)."""
    con = duckdb.connect(str(path))
    con.execute(
        "create table events (ts double, ledger_key varchar, protocol varchar, eventType integer, "
        "accepted boolean, error_code varchar)"
    )
    if rows:
        con.executemany("insert into events values (0, ?, ?, ?, ?, ?)", rows)
    con.close()
    return path


SENT = [ledger_line("s1:1", 1), ledger_line("s1:2", 2), ledger_line("s1:3", 3), ledger_line("L1:1", 2, "legacy")]
STORED = [
    ("s1:1", "kava", 1, True, None),
    ("s1:2", "kava", 2, True, None),
    ("s1:3", "kava", 3, True, None),
    ("L1:1", "legacy", 2, True, None),
]


@pytest.fixture
def files(tmp_path):
    def _files(sent, stored):
        return write_ledger(tmp_path / "requests.jsonl", sent), write_store(tmp_path / "store.duckdb", stored)

    return _files


def test_everything_received_means_nothing_lost_or_duplicated(files):
    r = reconcile(*files(SENT, STORED))
    assert r.ok
    assert (r.totals["sent"], r.totals["received"], r.totals["lost"], r.totals["duplicated"]) == (4, 4, 0, 0)


def test_a_missing_row_is_one_lost_event_of_its_type(files):
    r = reconcile(*files(SENT, STORED[:2] + STORED[3:]))
    assert r.totals["lost"] == 1 and not r.ok
    lost = [(row["protocol"], row["eventType"]) for row in r.by_type if row["lost"]]
    assert lost == [("kava", 3)]


def test_a_row_stored_twice_is_one_duplicate(files):
    r = reconcile(*files(SENT, STORED + [STORED[0]]))
    assert (r.totals["duplicated"], r.totals["lost"]) == (1, 0)


def test_a_key_sent_twice_and_stored_twice_is_not_a_duplicate(files):
    r = reconcile(*files(SENT + [SENT[0]], STORED + [STORED[0]]))
    assert (r.totals["duplicated"], r.totals["lost"]) == (0, 0)


def test_a_row_never_sent_is_unexpected_not_duplicated(files):
    r = reconcile(*files(SENT, STORED + [("zz:9", "kava", 99, True, None)]))
    assert (r.totals["unexpected"], r.totals["duplicated"]) == (1, 0)
    assert r.unexpected_keys == ["zz:9"]


def test_rejected_rows_are_counted_with_their_reasons(files):
    stored = STORED[:3] + [("L1:1", "legacy", 2, False, "INVALID_ENUM_VALUE")]
    r = reconcile(*files(SENT, stored))
    assert r.totals["rejected"] == 1 and r.totals["lost"] == 0
    assert r.rejected_reasons == [{"protocol": "legacy", "error_code": "INVALID_ENUM_VALUE", "rows": 1}]


def test_a_send_that_failed_at_the_generator_is_not_lost(files):
    sent = SENT + [ledger_line("s1:4", 99, failed=True), ledger_line("s1:5", 99, status="timeout")]
    r = reconcile(*files(sent, STORED))
    assert (r.totals["failed_at_send"], r.totals["lost"]) == (2, 0)


def test_failed_sends_are_grouped_by_their_error(files):
    sent = SENT + [ledger_line(f"s1:{i}", 99, failed=True, error="HTTP 503") for i in (4, 5)]
    r = reconcile(*files(sent + [ledger_line("s1:6", 99, failed=True, error="timeout")], STORED))
    assert r.failed_reasons == [
        {"protocol": "kava", "error": "HTTP 503", "lines": 2},
        {"protocol": "kava", "error": "timeout", "lines": 1},
    ]


def test_an_http_error_status_is_a_response_so_a_missing_row_is_lost(files):
    r = reconcile(*files(SENT + [ledger_line("s1:4", 99, status=500)], STORED))
    assert (r.totals["failed_at_send"], r.totals["lost"]) == (0, 1)


def test_a_failed_send_that_arrived_anyway_is_not_a_duplicate(files):
    sent = SENT + [ledger_line("s1:4", 99, failed=True)]
    r = reconcile(*files(sent, STORED + [("s1:4", "kava", 99, True, None)]))
    assert (r.totals["arrived_despite_failure"], r.totals["duplicated"]) == (1, 0)


def test_event_type_is_read_from_a_json_post_body(files):
    line = ledger_line("s1:9", 0) | {
        "method": "POST",
        "url": "/api_v3/index.php?service=analytics&action=trackEvent",
        "body": json.dumps({"eventType": 45, "position": 3.5}),
    }
    r = reconcile(*files([line], []))
    assert [(row["eventType"], row["lost"]) for row in r.by_type] == [(45, 1)]


def test_a_folder_of_worker_ledgers_is_one_ledger(tmp_path):
    write_ledger(tmp_path / "ledger" / "requests-0.jsonl", SENT[:2])
    write_ledger(tmp_path / "ledger" / "requests-1.jsonl", SENT[2:])
    r = reconcile(tmp_path / "ledger", write_store(tmp_path / "store.duckdb", STORED))
    assert (r.totals["sent"], r.totals["lost"]) == (4, 0)


def test_a_missing_ledger_is_refused_with_its_name(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.jsonl: no such ledger"):
        reconcile(tmp_path / "nope.jsonl", write_store(tmp_path / "store.duckdb", STORED))


def test_a_store_without_ledger_keys_is_refused(tmp_path):
    path = tmp_path / "store.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table events (protocol varchar, eventType int)")
    con.close()
    with pytest.raises(SourceError, match="events has no ledger_key column"):
        reconcile(write_ledger(tmp_path / "r.jsonl", SENT), path)


def test_cli_exits_0_when_nothing_is_lost(files):
    ledger, store = files(SENT, STORED)
    result = runner.invoke(app, ["reconcile", str(ledger), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "nothing lost or duplicated" in result.stdout


def test_cli_table_of_a_healthy_run_fits_80_columns_and_says_the_zero_counts_below(files):
    ledger, store = files(SENT, STORED)
    result = runner.invoke(app, ["reconcile", str(ledger), "--store", str(store)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.output
    assert "0 failed at send, 0 arrived despite failure, 0 unexpected, 0 rejected" in result.output


def test_cli_table_shows_a_count_column_when_the_run_has_any(files):
    ledger, store = files(SENT, STORED[:3] + [("L1:1", "legacy", 2, False, "SIMULATED_FAILURE")])
    result = runner.invoke(app, ["reconcile", str(ledger), "--store", str(store)], env={"COLUMNS": "120"})
    header = next(line for line in result.output.splitlines() if "protocol" in line)
    assert "rejected" in header and "unexpected" not in header


def test_cli_exits_1_and_reports_json_when_an_event_is_lost(files):
    ledger, store = files(SENT, STORED[1:])
    result = runner.invoke(app, ["reconcile", str(ledger), "--store", str(store), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["totals"]["lost"], doc["ok"]) == (1, False)


def test_cli_exits_2_for_a_store_that_is_not_a_database(tmp_path):
    bad = tmp_path / "store.duckdb"
    bad.write_text("not a database")
    result = runner.invoke(app, ["reconcile", str(write_ledger(tmp_path / "r.jsonl", SENT)), "--store", str(bad)])
    assert result.exit_code == 2
    assert "cannot open as a DuckDB store" in result.output and "Traceback" not in result.output


def test_cli_exits_2_for_a_ledger_that_is_not_json_lines(tmp_path):
    ledger = tmp_path / "r.jsonl"
    ledger.write_text("this is not json\n")
    result = runner.invoke(app, ["reconcile", str(ledger), "--store", str(write_store(tmp_path / "s.duckdb", STORED))])
    assert result.exit_code == 2
    assert "cannot read as a JSON-lines ledger" in result.output


def test_each_event_type_carries_its_name_in_the_result_and_the_table(files):
    ledger, store = files(SENT, STORED)
    r = reconcile(ledger, store)
    assert [(row["protocol"], row["eventType"], row["eventName"]) for row in r.by_type] == [
        ("kava", 1, "IMPRESSION"),
        ("kava", 2, "PLAY_REQUEST"),
        ("kava", 3, "PLAY"),
        ("legacy", 2, "MEDIA_LOADED"),
    ]
    table = runner.invoke(app, ["reconcile", str(ledger), "--store", str(store)], env={"COLUMNS": "120"}).output
    assert "1 IMPRESSION" in table and "2 MEDIA_LOADED" in table
