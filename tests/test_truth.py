"""Ground truth read off the timelines: the per-session columns, the report's truth figures, and
how close the measured figures come to them, for every bundled scenario."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.generate import generate
from sim.metrics import compute
from sim.player.model import generate_sessions
from sim.player.timeline import Action, Outcome
from sim.player.truth import TRUTH_SESSION_COLUMNS
from sim.scenario.loader import load

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BUNDLED = sorted(p.name for p in SCENARIOS.glob("*.yaml"))
SESSIONS = 500
SEED = 5
PLAYED = {
    int(o)
    for o in (Outcome.PARTIAL, Outcome.COMPLETED, Outcome.STALL_QUIT, Outcome.PLAYBACK_ERROR, Outcome.AD_BREAK_QUIT)
}


def _sessions(name: str, sessions: int = SESSIONS) -> dict[str, np.ndarray]:
    """The session columns of a run, and each session's actions, chunks joined."""
    cols: dict[str, list] = {}
    timelines = []
    for chunk in generate_sessions(load(SCENARIOS / name), seed=SEED, sessions=sessions):
        for k, v in chunk.sessions.items():
            cols.setdefault(k, []).append(v)
        timelines += [chunk.actions_of(i) for i in range(chunk.n_sessions)]
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["timelines"] = timelines
    return out


def _walk(acts: dict[str, np.ndarray]) -> dict[str, float]:
    """Play, ad and stall seconds of one timeline, by another route than the kernel: label each
    gap between consecutive actions with the states open over it (sets of open spans)."""
    kinds = [Action(int(k)) for k in acts["kind"]]
    t = acts["t"]
    out = {"play_s": 0.0, "ad_play_s": 0.0, "stall_s": 0.0}
    open_ = set()
    for j, kind in enumerate(kinds):
        if j and "gone" not in open_:
            gap = t[j] - t[j - 1]
            if "started" in open_ and not open_ & {"paused", "stalled", "break", "ended"}:
                out["play_s"] += gap
            if "stalled" in open_:
                out["stall_s"] += gap
            if "ad" in open_:
                out["ad_play_s"] += gap
        opens = {
            Action.PLAYING: "started",
            Action.PAUSE: "paused",
            Action.STALL_START: "stalled",
            Action.AD_BREAK_START: "break",
            Action.AD_START: "ad",
            Action.ENDED: "ended",
            Action.ERROR: "gone",
            Action.QUIT: "gone",
        }
        closes = {
            Action.RESUME: {"paused"},
            Action.STALL_END: {"stalled"},
            Action.AD_BREAK_END: {"break", "ad"},
            Action.AD_COMPLETE: {"ad"},
            Action.AD_SKIP: {"ad"},
            Action.AD_IMPRESSION: {"ad"},
            Action.REPLAY: {"ended", "paused"},
        }
        open_ -= closes.get(kind, set())
        if kind in opens:
            open_.add(opens[kind])
        if kind == Action.BUMPER_START:
            out["ad_play_s"] += acts["value"][j]
    return out


@pytest.fixture(scope="module", params=BUNDLED)
def run(request):
    return request.param, _sessions(request.param)


def test_truth_columns_are_sums_over_each_timeline(run):
    name, s = run
    for i, acts in enumerate(s["timelines"]):
        walked = _walk(acts)
        for col in ("play_s", "ad_play_s", "stall_s"):
            assert s[col][i] == pytest.approx(walked[col], abs=1e-6), (name, i, col)
        kinds = acts["kind"]
        first_frame = np.flatnonzero(kinds == Action.PLAYING)
        if len(first_frame) == 0:
            assert math.isnan(s["startup_s"][i]) and math.isnan(s["max_position_s"][i]) and s["play_s"][i] == 0
            continue
        f = first_frame[0]
        assert s["startup_s"][i] == acts["value"][f]
        assert s["max_position_s"][i] == max(
            acts["pos"][f:].max(), acts["value"][f:][kinds[f:] == Action.SEEK].max(initial=-1.0)
        )


def test_plain_plays_play_exactly_the_content_they_cover(run):
    # At speed 1 without seeks, replays or live, the playhead moves only while playing: the
    # play time is the furthest position reached.
    name, s = run
    checked = 0
    for i, acts in enumerate(s["timelines"]):
        kinds = acts["kind"]
        if (
            s["live"][i]
            or math.isnan(s["startup_s"][i])
            or (acts["speed"] != 1).any()
            or np.isin(kinds, (Action.SEEK, Action.REPLAY)).any()
        ):
            continue
        assert s["play_s"][i] == pytest.approx(s["max_position_s"][i], abs=1e-6), (name, i)
        checked += 1
    assert checked > 0 or (s["scripted"] >= 0).all(), name  # every hand-written play seeks or replays


def test_stalls_are_the_stall_lengths_plus_the_part_a_viewer_left_in(run):
    name, s = run
    for i, acts in enumerate(s["timelines"]):
        kinds = acts["kind"]
        ended = acts["value"][kinds == Action.STALL_END].sum()
        if len(kinds) > 1 and kinds[-1] == Action.QUIT and kinds[-2] == Action.STALL_START:
            ended += acts["t"][-1] - acts["t"][-2]
        assert s["stall_s"][i] == pytest.approx(ended, abs=1e-6), (name, i)


@pytest.fixture(scope="module", params=BUNDLED)
def report(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp("truth") / "events.parquet"
    generate(load(SCENARIOS / name), seed=SEED, sessions=SESSIONS, protocol="both", fmt="parquet", out=out)
    return name, compute(out, by=[]), _sessions(name)


def test_report_truth_is_the_sum_over_the_timelines(report):
    name, m, s = report
    played = np.isin(s["outcome"], list(PLAYED))
    # a scripted run plays each script `repeat` times whatever --sessions says
    assert m.protocols["kava"].truth["count_loads"] == len(s["outcome"])
    vod = played & ~s["live"]
    for p in ("kava", "legacy"):
        truth = m.protocols[p].truth
        assert truth["count_plays"] == played.sum(), (name, p)
        assert truth["sum_view_period_min"] == pytest.approx(s["play_s"][played].sum() / 60, rel=1e-9)
        assert truth["sum_time_viewed_min"] == truth["sum_view_period_min"]
        if played.any():
            assert truth["avg_join_time_s"] == pytest.approx(s["startup_s"][played].mean(), rel=1e-9)
            assert truth["avg_buffer_time"] == pytest.approx(
                s["stall_s"][played].sum() / s["play_s"][played].sum(), rel=1e-9
            )
        reached = s["max_position_s"] >= s["duration"] - 1e-6
        assert truth["count_plays_100"] == (vod & reached).sum(), (name, p)
        assert truth["count_plays_25"] == (vod & (s["max_position_s"] >= 0.25 * s["duration"] - 1e-6)).sum()


def test_kava_counts_plays_and_quartiles_as_the_timeline_has_them(report):
    name, m, _ = report
    k = m.protocols["kava"]
    assert k.headline["count_plays"] == k.truth["count_plays"], name
    # quartiles fire at a position rounded to 2 decimals of a percent, and 100 % on the end itself
    assert k.headline["count_plays_100"] == k.truth["count_plays_100"], name
    for q in (25, 50, 75):
        assert k.truth[f"count_plays_{q}"] <= k.headline[f"count_plays_{q}"] <= k.truth[f"count_plays_{q}"] * 1.03 + 2


def test_interval_minutes_stay_at_or_below_the_true_minutes(report):
    # VIEWs never report more than was played, beyond faster-than-1x playback (content seconds).
    name, m, _ = report
    k = m.protocols["kava"]
    if k.truth["sum_view_period_min"]:
        assert k.headline["sum_view_period_min"] <= k.truth["sum_view_period_min"] * 1.02, name


def test_the_report_says_what_a_protocol_cannot_measure(report):
    name, m, _ = report
    assert "last partial interval" in m.protocols["kava"].caveats["sum_view_period_min"]
    assert "play request" in m.protocols["legacy"].caveats["count_plays"]
    assert "wall-clock" in m.truth_definitions["minutes"]


@pytest.mark.parametrize("name", ["long-form-ads.yaml", "typical-vod.yaml"])
def test_measured_interval_minutes_are_within_5_percent_of_the_truth_on_long_content(name, tmp_path):
    out = tmp_path / "events.parquet"
    generate(load(SCENARIOS / name), seed=SEED, sessions=1500, protocol="kava", fmt="parquet", out=out)
    k = compute(out, by=[]).protocols["kava"]
    assert k.headline["sum_view_period_min"] == pytest.approx(k.truth["sum_view_period_min"], rel=0.05)
    assert k.headline["avg_buffer_time"] == pytest.approx(k.truth["avg_buffer_time"], rel=0.25)


def test_truth_columns_are_in_every_chunk_and_deterministic():
    a = _sessions("typical-vod.yaml", 300)
    b = _sessions("typical-vod.yaml", 300)
    for col in TRUTH_SESSION_COLUMNS:
        np.testing.assert_array_equal(a[col], b[col])
