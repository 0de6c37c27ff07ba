"""`player-sim generate`: global send order, determinism, atomic output and the command line."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import sink_chunks as sc
from sim.generate import SendOrderMerge, stream_rows


def _hand_beacons(chunk, protocol):
    out = []
    if protocol in ("legacy", "both"):
        out.append(sc.legacy(chunk, per_session=6, gap=30.0))
    if protocol in ("kava", "both"):
        out.append(sc.kava(chunk, per_session=4, gap=30.0, offset=0.0))
    return out


def _hand_keys(chunk):
    return pa.array([f"{chunk.ledger_session.get(i)}:{chunk.ledger_index[i]}" for i in range(len(chunk))])


def _chunks(n_chunks=4, per_chunk=5, spacing=20.0):
    """Sessions every `spacing` s; each lasts 150 s, so it outlives the next chunks' starts."""
    pop = sc.population()
    for c in range(n_chunks):
        seq0 = c * per_chunk
        starts = sc.T0 + spacing * np.arange(seq0, seq0 + per_chunk)
        yield sc.sessions(starts, seq0=seq0, pop=pop)


def _stream(protocol="both", **kw):
    return list(stream_rows(_chunks(**kw), protocol=protocol, fmt="parquet",
                            beacons_of=_hand_beacons, keys_of=_hand_keys))


def test_rows_come_out_in_global_send_order_across_chunks():
    tables = _stream()
    ts = np.concatenate([t.column("ts").to_numpy() for t in tables])
    assert len(ts) == 4 * 5 * (6 + 4)
    assert np.all(np.diff(ts) >= 0)


def test_rows_are_released_before_the_run_ends():
    tables = _stream()
    assert len(tables) > 1
    assert tables[0].num_rows < sum(t.num_rows for t in tables) / 2


def test_at_equal_send_times_legacy_precedes_kava_and_each_session_keeps_its_order():
    table = pa.concat_tables(_stream())
    rows = table.select(["ts", "protocol", "truth_session_seq", "ledger_key"]).to_pylist()
    first_instant = [r for r in rows if r["ts"] == sc.T0]
    assert [r["protocol"] for r in first_instant] == ["legacy", "kava"]
    per_session = [r["ledger_key"] for r in rows if r["truth_session_seq"] == 7 and r["protocol"] == "legacy"]
    assert per_session == [f"sess-7:{i}" for i in range(1, 7)]


def test_pending_rows_stay_bounded_by_the_longest_session():
    merge = SendOrderMerge()
    per_chunk_rows = 5 * 6
    worst = 0
    for chunk in _chunks(n_chunks=40):
        b = sc.legacy(chunk, per_session=6, gap=30.0)
        table = pa.table({"ts": b.send_t})
        merge.push([(table, b.send_t, chunk.sessions["session_seq"][b.session])], float(chunk.sessions["start"].min()))
        worst = max(worst, merge.pending)
    # a session lasts 150 s and chunks start 100 s apart: at most two chunks' rows wait
    assert worst <= 2 * per_chunk_rows


def test_a_chunk_starting_before_rows_already_released_is_refused():
    merge = SendOrderMerge()
    late, early = sc.sessions(sc.T0 + np.array([1000.0])), sc.sessions(sc.T0 + np.array([0.0]))
    for chunk in (late, late):
        b = sc.legacy(chunk)
        merge.push([(pa.table({"ts": b.send_t}), b.send_t, chunk.sessions["session_seq"][b.session])], sc.T0 + 1000.0)
    b = sc.legacy(early)
    with pytest.raises(RuntimeError, match="start order"):
        merge.push([(pa.table({"ts": b.send_t}), b.send_t, early.sessions["session_seq"][b.session])], sc.T0)
