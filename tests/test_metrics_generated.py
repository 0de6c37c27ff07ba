"""Metrics, report and reconcile on files the real generator writes (end to end, small runs)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from helpers.collector import running_collector
from sim.cli import app
from sim.generate import generate
from sim.metrics import compute
from sim.metrics.reconcile import reconcile
from sim.protocols.beacons import WireRequest
from sim.protocols.dispatch import codec_for, decode_any
from sim.scenario.loader import load

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "typical-vod.yaml"
SESSIONS = 400


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One legacy run written as every file kind the generator offers (same seed, same beacons),
    and one run of a player sending both protocols, as events and as requests."""
    out = tmp_path_factory.mktemp("generated")
    components = load(SCENARIO)
    for protocol, fmt, target, partition in (
        ("legacy", "parquet", "events.parquet", None),
        ("legacy", "jsonl", "events.jsonl", None),
        ("legacy", "csv", "events.csv", None),
        ("legacy", "parquet", "by-day", "day"),
        ("legacy", "requests", "requests.jsonl", None),
        ("both", "parquet", "both.parquet", None),
        ("both", "requests", "both-requests.jsonl", None),
    ):
        generate(
            components, seed=11, sessions=SESSIONS, protocol=protocol, fmt=fmt, out=out / target, partition=partition
        )
    return out


def _store_from(ledger: Path, store: Path, drop_first: int = 0) -> Path:
    """A collector-like store holding every beacon of a request ledger as if all arrived (minus
    the first few): each request decoded and keyed as the collector does it. CORS preflights
    carry no beacon."""
    rows = []
    for line in ledger.read_bytes().splitlines():
        req = orjson.loads(line)
        if req.get("preflight"):
            continue
        body = None if req["body"] is None else req["body"].encode()
        beacon = decode_any(WireRequest(req["method"], req["url"], req["headers"], body))
        rows.append(
            (req["ts"], codec_for(beacon.protocol).ledger_key(beacon), beacon.protocol, int(beacon.fields["eventType"]))
        )
    rows.sort(key=lambda r: r[0])
    con = duckdb.connect(str(store))
    con.execute(
        "create table events (ledger_key varchar, protocol varchar, eventType integer, accepted boolean, "
        "error_code varchar)"
    )
    con.executemany("insert into events values (?, ?, ?, true, null)", [r[1:] for r in rows[drop_first:]])
    con.close()
    return store


def _rounded(headline: dict) -> dict:
    return {k: round(v, 9) if isinstance(v, float) else v for k, v in headline.items()}


def test_every_generated_file_kind_gives_the_same_figures(run):
    def figures(source):
        return _rounded(compute(run / source, by=[]).protocols["legacy"].headline)

    reference = figures("events.parquet")
    assert reference["count_plays"] > 0
    for source in ("events.jsonl", "events.csv", "by-day"):
        assert figures(source) == reference, source


def test_generated_truth_counts_every_session_as_an_impression(run):
    m = compute(run / "events.parquet", by=[]).protocols["legacy"]
    assert m.truth["count_loads"] == SESSIONS
    assert 0 < m.truth["count_plays"] <= m.headline["count_plays"]


def test_kava_plays_and_exits_before_start_match_the_truth(run):
    # KAVA counts a play at the first frame, once per entry per session: exactly the played sessions.
    m = compute(run / "both.parquet", by=[], protocol="kava").protocols["kava"]
    assert m.headline["count_plays"] == m.truth["count_plays"] > 0
    assert m.headline["count_ebvs"] == m.truth["count_ebvs"]


def test_kava_interval_minutes_stay_below_the_true_minutes(run):
    # VIEWs report play time up to the last 10-s tick (content seconds: faster playback counts a
    # little more): close to, and not above, the play time of the timelines.
    m = compute(run / "both.parquet", by=[], protocol="kava").protocols["kava"]
    true_min = m.truth["sum_view_period_min"]
    assert 0.9 * true_min < m.headline["sum_view_period_min"] <= 1.02 * true_min


def test_a_ledger_of_both_protocols_reconciles_key_for_key(run, tmp_path):
    store = _store_from(run / "both-requests.jsonl", tmp_path / "store.duckdb")
    r = reconcile(run / "both-requests.jsonl", store)
    assert r.ok and r.totals["unexpected"] == 0
    assert {row["protocol"] for row in r.by_type} == {"kava", "legacy"}


def test_the_generated_ledger_reconciles_with_a_store_of_every_beacon(run, tmp_path):
    r = reconcile(run / "requests.jsonl", _store_from(run / "requests.jsonl", tmp_path / "store.duckdb"))
    assert r.ok and r.totals["sent"] == r.totals["received"] > 0
    assert r.totals["unexpected"] == 0


def test_a_beacon_missing_from_the_store_is_lost_with_its_event_type(run, tmp_path):
    first_type = duckdb.sql(
        f"select eventType from read_parquet('{run / 'events.parquet'}') order by ts limit 1"
    ).fetchall()[0][0]
    r = reconcile(run / "requests.jsonl", _store_from(run / "requests.jsonl", tmp_path / "store.duckdb", drop_first=1))
    assert r.totals["lost"] == 1
    assert [row["eventType"] for row in r.by_type if row["lost"]] == [first_type]


def test_report_writes_html_for_a_generated_partitioned_folder(run, tmp_path):
    result = CliRunner().invoke(app, ["report", str(run / "by-day"), "--html", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Play funnel" in (tmp_path / "r.html").read_text()


def _replay(ledger: Path, url: str) -> None:
    """Send every request of a ledger, as written, to the collector at `url`."""
    target = urlsplit(url)
    con = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    for line in ledger.read_bytes().splitlines():
        req = orjson.loads(line)
        body = None if req["body"] is None else req["body"].encode()
        con.request(req["method"], req["url"], body=body, headers=req["headers"])
        con.getresponse().read()
    con.close()


def test_the_collector_store_gives_the_figures_of_the_generated_file(run, tmp_path):
    with running_collector(tmp_path / "store.duckdb") as collector:
        _replay(run / "requests.jsonl", collector.url)
        assert collector.stop() == 0
    from_store = _rounded(compute(tmp_path / "store.duckdb", by=[]).protocols["legacy"].headline)
    from_file = _rounded(compute(run / "events.parquet", by=[]).protocols["legacy"].headline)
    assert from_store["count_plays"] > 0
    assert from_store == from_file
    assert reconcile(run / "requests.jsonl", tmp_path / "store.duckdb").ok


def test_the_report_of_one_file_is_the_same_on_every_run(run):
    # DuckDB's parallel float sums differ in their last bits from run to run; the report must not.
    reports = {compute(run / "both.parquet").to_json() for _ in range(4)}
    assert len(reports) == 1


def test_report_figures_are_given_to_twelve_significant_digits():
    from sim.metrics.compute import Metrics, ProtocolMetrics

    m = Metrics("x", 0, {"kava": ProtocolMetrics("kava", 1, {"avg_buffer_time": 0.1 + 0.2, "count_plays": 3})})
    assert orjson.loads(m.to_json())["protocols"]["kava"]["headline"] == {"avg_buffer_time": 0.3, "count_plays": 3}
