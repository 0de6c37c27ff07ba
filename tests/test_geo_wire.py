"""Geography from the wire: generated traffic replayed into a real collector is placed by country
as the generator meant it, from X-Forwarded-For alone (the store has no truth columns)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import orjson
import pytest

from helpers.collector import running_collector
from sim.generate import generate
from sim.metrics import compute
from sim.scenario.loader import load

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "default-mix.yaml"
# KAVA sends a VIEW every 10 s of play, so fewer KAVA sessions make as many requests.
SESSIONS = {"legacy": 500, "kava": 100}


def _replay(ledger: Path, url: str) -> int:
    """Send every request of a request file, as written, to the collector at `url`; returns how
    many were beacons (a browser's CORS preflight lines go out too, and are not stored)."""
    target = urlsplit(url)
    con = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    sent = 0
    for line in ledger.read_bytes().splitlines():
        req = orjson.loads(line)
        body = None if req["body"] is None else req["body"].encode()
        con.request(req["method"], req["url"], body=body, headers=req["headers"])
        assert con.getresponse().read() is not None
        sent += not req.get("preflight")
    con.close()
    return sent


@pytest.fixture(scope="module")
def wire(tmp_path_factory):
    """A run of each protocol: as events with truth, as requests replayed into one collector, plus
    two hand-made requests (an X-Forwarded-For chain, and none: the peer address)."""
    out = tmp_path_factory.mktemp("geo")
    components = load(SCENARIO)
    for protocol, sessions in SESSIONS.items():
        for fmt, target in (("parquet", "events.parquet"), ("requests", "requests.jsonl")):
            generate(
                components, seed=21, sessions=sessions, protocol=protocol, fmt=fmt, out=out / f"{protocol}-{target}"
            )
    store = out / "store.duckdb"
    with running_collector(store) as collector:
        sent = sum(_replay(out / f"{protocol}-requests.jsonl", collector.url) for protocol in SESSIONS)
        target = urlsplit(collector.url)
        con = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        path = "/api_v3/index.php?service=stats&action=collect&event:eventType=1&event:sessionId=geo-{}"
        for tag, headers in (("chain", {"X-Forwarded-For": "81.2.69.142, 10.0.0.1, 8.8.8.8"}), ("peer", {})):
            con.request("GET", path.format(tag), headers=headers)
            con.getresponse().read()
        con.close()
        assert collector.stop() == 0
    return out, store, sent


def _per_country(source: Path, protocol: str) -> tuple[dict[str, int], str]:
    m = compute(source, protocol=protocol, by=["country"], top=500).protocols[protocol]
    return {r["key"]: r["loads"] for r in m.breakdowns["country"] if r["loads"]}, m.methods["by country"]


@pytest.mark.parametrize("protocol", ["legacy", "kava"])
def test_loads_per_country_from_the_wire_match_the_truth_within_1_percent(wire, protocol):
    out, store, _ = wire
    truth, truth_origin = _per_country(out / f"{protocol}-events.parquet", protocol)
    located, origin = _per_country(store, protocol)
    assert truth_origin == "truth_country" and origin.startswith("geo_country")
    assert len(truth) >= 8 and "unknown" not in truth
    located.pop("unknown", None)  # the hand-made peer-address request (legacy) places nowhere
    assert set(located) == set(truth)
    for country, loads in truth.items():
        assert abs(located[country] - loads) <= 0.01 * loads, (country, located[country], loads)


def test_the_store_geolocates_every_generated_address_and_has_no_truth(wire):
    _, store, sent = wire
    con = duckdb.connect(str(store), read_only=True)
    columns = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = 'events'"
        ).fetchall()
    }
    rows = con.execute(
        "select count(*), count(geo_country) from events where sessionId is null or sessionId not like 'geo-%'"
    ).fetchall()[0]
    con.close()
    assert not any(c.startswith("truth_") for c in columns)
    assert rows == (sent, sent)


def test_the_first_forwarded_address_places_a_viewer_and_without_one_the_peer(wire):
    _, store, _ = wire
    con = duckdb.connect(str(store), read_only=True)
    got = dict(con.execute("select sessionId, geo_country from events where sessionId like 'geo-%'").fetchall())
    peers = con.execute("select distinct client_ip from events where sessionId = 'geo-peer'").fetchall()
    con.close()
    assert got == {"geo-chain": "GB", "geo-peer": None} and peers == [("127.0.0.1",)]


def test_the_report_geolocates_client_ip_of_files_with_no_truth_or_geo_columns(wire, tmp_path):
    out, _, _ = wire
    bare = tmp_path / "bare.parquet"
    events = out / "legacy-events.parquet"
    duckdb.execute(
        f"copy (select * exclude (truth_country) from read_parquet('{events}')) to '{bare}' (format parquet)"
    )
    truth, _ = _per_country(events, "legacy")
    located, origin = _per_country(bare, "legacy")
    assert origin == "client_ip geolocated (GeoLite2)"
    assert located == truth


def _stored(store_path: Path, rows: list[dict], geo=None) -> list[tuple]:
    from sim.collector.store import EventStore

    store = EventStore(store_path)
    if geo is not None:
        store._geo = geo
    store.insert(rows)
    store.close()
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        return con.execute("select client_ip, geo_country from events order by ts").fetchall()
    finally:
        con.close()


def test_the_store_geolocates_each_batch_and_odd_addresses_have_no_country(tmp_path):
    ips = ["81.2.69.142", "10.0.0.1", "nonsense", "9" * 5000, None, "8.8.8.8"]
    rows = [{"ts": float(i), "protocol": "legacy", "client_ip": ip} for i, ip in enumerate(ips)]
    assert _stored(tmp_path / "s.duckdb", rows) == list(zip(ips, ["GB", None, None, None, None, "US"]))


def test_a_failed_lookup_stores_the_rows_without_a_country(tmp_path, capfd):
    class Broken:
        def countries(self, ips):
            raise RuntimeError("lookup broke")

    rows = [{"ts": float(i), "protocol": "legacy", "client_ip": "8.8.8.8"} for i in range(3)]
    assert _stored(tmp_path / "s.duckdb", rows, Broken()) == [("8.8.8.8", None)] * 3
    assert "could not geolocate 3 events: lookup broke" in capfd.readouterr().err
