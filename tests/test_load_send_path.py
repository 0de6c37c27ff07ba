"""The lean live send path: closed-model arrivals, column-wise rendering of due beacons,
and the send loop's figures."""
from __future__ import annotations

import numpy as np
import pytest

from sim.load.schedule import ClosedArrivals


def test_closed_model_steady_start_rate_is_viewers_over_session_length_plus_idle_gap():
    arrivals = ClosedArrivals(1000, np.random.default_rng(10), start=0.0, idle_gap=4.0, ramp_up=5.0)
    starts = np.concatenate([arrivals.assign(np.full(4096, 1.0)) for _ in range(6)])
    per_5s = np.histogram(starts, bins=np.arange(10.0, 80.0, 5.0))[0]
    # 1000 / (1 + 4) = 200 sessions/s, 1000 per 5 s bin
    assert (abs(per_5s / 1000.0 - 1) < 0.15).all()


def test_closed_model_one_viewers_idle_gap_never_holds_back_another_viewers_session():
    arrivals = ClosedArrivals(1000, np.random.default_rng(11), start=0.0, idle_gap=5.0, ramp_up=10.0)
    starts = arrivals.assign(np.full(3000, 0.5))
    # without a rate cap no two sessions are pushed to start at the same instant
    assert len(np.unique(starts)) == len(starts)
    assert (np.diff(starts) >= 0).all()


# --- legacy requests encoded column-wise, ahead of their send times -------------------------

@pytest.fixture(scope="module", params=[(f, k) for f in ("kdp", "mwembed", "v7") for k in (False, True)],
                ids=lambda p: f"{p[0]}-{'with' if p[1] else 'without'}-kava")
def legacy_chunk(request):
    from legacy_timelines import generated

    from sim.protocols.legacy.policy import beacons
    flavor, with_kava = request.param
    return beacons(generated(flavor, sessions=300), with_kava=with_kava)


def one_by_one(chunk, rows):
    from sim.protocols.legacy.codec import beacon_at, encode, ledger_key
    beacons = [beacon_at(chunk, int(i)) for i in rows]
    return [encode(b) for b in beacons], [ledger_key(b) for b in beacons]


def test_column_wise_legacy_requests_and_ledger_keys_are_byte_for_byte_those_of_encode(legacy_chunk):
    from sim.protocols.legacy.codec import encode_rows
    rows = np.arange(len(legacy_chunk))
    assert encode_rows(legacy_chunk, rows) == one_by_one(legacy_chunk, rows)


def test_column_wise_encoding_of_scattered_rows_matches_row_by_row(legacy_chunk):
    from sim.protocols.legacy.codec import encode_rows
    rows = np.random.default_rng(12).choice(len(legacy_chunk), 200, replace=False)
    assert encode_rows(legacy_chunk, rows) == one_by_one(legacy_chunk, rows)


def test_an_mwembed_request_too_long_for_a_get_still_goes_as_a_form_post(monkeypatch):
    from legacy_timelines import generated

    from sim.protocols.legacy import codec
    from sim.protocols.legacy.policy import beacons
    chunk = beacons(generated("mwembed", sessions=40))
    rows = np.arange(len(chunk))
    monkeypatch.setattr(codec, "MWEMBED_MAX_GET", 700)     # about half the rows are now too long
    requests, keys = codec.encode_rows(chunk, rows)
    assert {r.method for r in requests} == {"GET", "POST"}
    assert (requests, keys) == one_by_one(chunk, rows)


@pytest.fixture(scope="module")
def vod():
    from pathlib import Path

    from sim.scenario.loader import load
    return load(Path(__file__).resolve().parents[1] / "scenarios" / "typical-vod.yaml")


def test_a_queue_hands_out_the_requests_encode_would_build_across_blocks_and_compactions(vod, monkeypatch):
    from sim.load.schedule import BeaconQueue, OpenArrivals, Schedule, Timebase, protocol_adapters, session_stream
    monkeypatch.setattr(BeaconQueue, "COMPACT_MIN", 16)
    monkeypatch.setattr(BeaconQueue, "BLOCK", 7)
    t0 = 1_000_000.0
    schedule = Schedule(session_stream(vod, 3, chunk_size=64), OpenArrivals(50.0, np.random.default_rng(1), t0),
                        Timebase(t0, 20.0), protocol_adapters("legacy"))
    schedule.refill(t0 + 30.0, budget=3)
    expected = {}
    for q in schedule.queues:
        requests, keys = one_by_one(q.chunk, range(len(q)))
        expected.update(zip(keys, requests))
    handed = {}
    now = t0
    while schedule.pending:
        now += 0.5
        for _, queue, row in schedule.pop_due(now):
            out = queue.render(row, late=0.0)
            handed[out.key] = out.request
            assert out.head == "".join(f"{k}: {v}\r\n" for k, v in out.request.headers.items()).encode()
        schedule.compact()
    assert handed == expected
