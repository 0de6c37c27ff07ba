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

    def filling(fd, data):        # the kernel writes what fits, then the next write fails
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
