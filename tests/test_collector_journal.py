"""The collector's journal: a batch is on disk whole before it is acknowledged, and a journal
damaged from outside is restored up to the damage, with the rest kept aside, not lost silently."""

from __future__ import annotations

import errno
import os

import duckdb
import orjson
import pytest

from sim.collector import writer
from sim.collector.writer import _FRAME, StoreWriter, _write_all


def test_a_short_write_on_a_filling_disk_raises_instead_of_leaving_half_a_frame(tmp_path, monkeypatch):
    path = tmp_path / "j"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    real_write = os.write
    calls = []

    def filling(fd, data):  # the kernel writes what fits, then the next write fails
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:3]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "write", filling)
    with pytest.raises(OSError) as raised:
        _write_all(fd, b"0123456789")
    os.close(fd)
    assert raised.value.errno == errno.ENOSPC and calls == [10, 7]


def _frame(rows: list[dict]) -> bytes:
    payload = orjson.dumps(rows)
    return _FRAME.pack(len(payload)) + payload


def test_a_damaged_journal_restores_the_whole_frames_before_the_damage_and_keeps_the_rest(tmp_path, capsys):
    store = tmp_path / "s.duckdb"
    good = [{"received_at": 1.0, "ts": 1.0, "protocol": "legacy", "sessionId": f"s{i}"} for i in range(3)]
    garbage = b'[{"received_at": 2.0, "sessionId": "\\q"}]'
    Path = type(tmp_path)
    Path(f"{store}.journal").write_bytes(_frame(good) + _FRAME.pack(len(garbage)) + garbage)

    w = StoreWriter(str(store), str(tmp_path / "sock"))
    try:
        assert w.replayed == 3
    finally:
        w.store.close()
    err = capsys.readouterr().err
    assert "is damaged at byte" in err and "3 requests answered before a crash were restored" in err
    assert Path(f"{store}.journal.damaged").read_bytes() == _FRAME.pack(len(garbage)) + garbage
    with duckdb.connect(str(store), read_only=True) as con:
        assert sorted(r[0] for r in con.execute("select sessionId from events").fetchall()) == ["s0", "s1", "s2"]


_VARIED = [
    "/api_v3/index.php?service=stats&action=collect&clientTag=kdp%3Av3.5.7.1&event%3AeventType=3&event%3ApartnerId=1"
    "&event%3AentryId=0_x&event%3AsessionId=A&event%3AcurrentPoint=199800&event%3Aduration=403",
    "/api_v3/index.php?service=stats&action=collect&format=1&clientTag=html5%3Av0.37.0&event%3AeventType=4"
    "&event%3ApartnerId=2&event%3AentryId=1_y&event%3AsessionId=B&event%3AcurrentPoint=101.5&hasKanalony=true",
    "/api_v3/index.php?service=stats&action=collect&event:eventType=99&event:partnerId=abc",  # rejected
    "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:partnerId=99999999999999999999999",
    "/api_v3/index.php?service=analytics&action=trackEvent&eventType=2&partnerId=3&entryId=0_z&sessionId=C"
    "&ks=djJ8MTIzfGFiYw&position=12.25&playbackSpeed=1.5",
    "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:sessionId=%C3%A9t%C3%A9%E2%9C%93"
    "&event:referrer=%22quoted%22%5Cback&event:seek=false&extraThing=%00",
    "/api_v3/index.php?service=nope&action=collect",
]


def test_journaled_batches_read_by_duckdb_store_what_the_row_path_stores(tmp_path):
    from sim.collector.app import Collector, CollectorConfig
    from sim.collector.store import EventStore

    collector = Collector(CollectorConfig())
    headers = {
        "user-agent": "UA \u2603",
        "referer": "https://e.x/p?a=1",
        "x-forwarded-for": "81.2.69.142, 10.0.0.1",
        "x-player-sim-run": "r1:0:9223372036854775807:1",
    }
    rows = [collector.handle("GET", url, headers, None, "127.0.0.1").row for url in _VARIED]
    body = b'{"event": {"eventType": 3, "partnerId": 5, "sessionId": "J", "currentPoint": 1e300}}'
    rows.append(
        collector.handle(
            "POST", "/api_v3/index.php?service=stats&action=collect", {"content-type": "application/json"}, body, "::1"
        ).row
    )
    batches = [orjson.dumps(rows[:3]), orjson.dumps([]), orjson.dumps(rows[3:])]

    w = StoreWriter(str(tmp_path / "json.duckdb"), str(tmp_path / "sock"))
    try:
        w._pending[:] = batches
        assert w.flush()
        assert w.json_fallbacks == 0  # DuckDB's reader took them (not the dict path)
    finally:
        w.store.close()
    reference = EventStore(tmp_path / "rows.duckdb")
    reference.insert([row for batch in batches for row in orjson.loads(batch)])
    reference.close()

    def stored(path):
        with duckdb.connect(str(path), read_only=True) as con:
            cur = con.execute("SELECT * FROM events ORDER BY received_at, ledger_key NULLS FIRST, path")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    got, want = stored(tmp_path / "json.duckdb"), stored(tmp_path / "rows.duckdb")
    assert len(want) == len(rows) and got == want
    assert {r["run_seq"] for r in got} == {2**63 - 1, None} and any(r["geo_country"] for r in got)


def _last_run_by_parsing(payload: bytes) -> str | None:
    for row in reversed(orjson.loads(payload)):
        if row.get("run_id"):
            return row["run_id"]
    return None


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"received_at": 1.0}],
        [{"received_at": 1.0, "run_id": "r1"}],
        [{"run_id": "r1", "a": 1}, {"run_id": "r2", "a": 2}, {"a": 3}],
        [{"run_id": "r1"}, {"run_id": None}, {"run_id": ""}],
        [{"run_id": 'a"b\\c', "x": '"run_id":"fake'}, {"path": '/x?"run_id":"no'}],
        [{"user_agent": '"run_id":"inside a string"'}],
        [{"run_id": "r1"}, {"extra": '{"run_id":"not a column"}'}],
        [{"run_id": "été-\u2603\n\t\x01"}, {"run_id": None}],
        [{"run_id": "\\"}, {"run_id": '\\\\"'}],
    ],
)
def test_the_last_run_id_found_in_a_batchs_bytes_is_the_one_parsing_finds(rows):
    payload = orjson.dumps(rows)
    assert writer.last_run_id(payload) == _last_run_by_parsing(payload)


def test_when_duckdbs_json_reader_fails_the_dict_path_stores_the_batches(tmp_path, monkeypatch):
    rows = [{"ts": 1.0, "received_at": 1.0, "protocol": "legacy", "client_ip": "81.2.69.142", "run_id": "r"}]
    w = StoreWriter(str(tmp_path / "s.duckdb"), str(tmp_path / "sock"))
    try:

        def refuse(path, con):
            raise duckdb.InvalidInputException("malformed JSON")

        monkeypatch.setattr(w.store, "insert_json", refuse)
        w._pending[:] = [orjson.dumps(rows), orjson.dumps(rows)]
        assert w.flush()
        assert w.json_fallbacks == 1 and w.store.rows == 2
        got = w._con.execute("SELECT run_id, geo_country FROM events").fetchall()
        assert got == [("r", "GB"), ("r", "GB")]
    finally:
        w.store.close()
