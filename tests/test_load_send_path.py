"""The lean live send path: closed-model arrivals, column-wise rendering of due beacons,
and the send loop's figures."""
from __future__ import annotations

import numpy as np

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
