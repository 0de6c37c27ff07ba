"""Analytics-tab figures computed from hand-built events tables with known answers."""

from __future__ import annotations

import json

import pytest

from events_tables import kava, legacy, write
from sim.metrics import compute

IMPRESSION, PLAY_REQUEST, PLAY, Q25, Q50, Q75, Q100, ERROR, VIEW = 1, 2, 3, 11, 12, 13, 14, 98, 99


@pytest.fixture
def parquet(tmp_path):
    def _write(rows):
        return write(rows, tmp_path / "events.parquet")

    return _write


def headline(path, protocol="kava", **kw):
    return compute(path, **kw).protocols[protocol].headline


def test_play_rate_is_plays_over_impressions(parquet):
    rows = [kava(IMPRESSION, session=f"s{i}") for i in range(4)] + [kava(PLAY_REQUEST), kava(PLAY)]
    h = headline(parquet(rows))
    assert (h["count_loads"], h["count_plays"], h["load_play_ratio"]) == (4, 1, 0.25)


def test_drop_off_is_the_mean_last_quartile_per_play(parquet):
    # Kaltura's own example: plays watching 20 % and 80 % score (0 + 0.75) / 2.
    rows = [
        kava(PLAY, session="a"),
        kava(PLAY, session="b"),
        kava(Q25, session="b"),
        kava(Q50, session="b"),
        kava(Q75, session="b"),
    ]
    h = headline(parquet(rows))
    assert h["avg_view_drop_off"] == pytest.approx(0.375)
    assert (h["count_plays_25"], h["count_plays_75"], h["count_plays_100"]) == (1, 1, 0)


def test_play_through_ratio_counts_100_percent_beacons_over_plays(parquet):
    rows = [kava(PLAY, session=s) for s in "abcd"] + [kava(Q100, session="a")]
    assert headline(parquet(rows))["play_through_ratio"] == 0.25


def test_quartile_minutes_use_duration_times_last_quartile_reached(parquet):
    # 4 min of a 10-min video reaches 25 %: Kaltura counts 2.5 min.
    rows = [kava(PLAY, truth_entry_duration=600.0), kava(Q25, position=150.0, truth_entry_duration=600.0)]
    h = headline(parquet(rows))
    assert h["sum_time_viewed_min"] == pytest.approx(2.5)


def test_kava_duration_is_estimated_from_positions_without_truth(parquet):
    rows = [
        kava(PLAY),
        kava(Q25, position=150.0),
        kava(Q50, position=300.0),
        kava(Q75, position=450.0),
        kava(Q100, position=600.0),
    ]
    m = compute(parquet(rows)).protocols["kava"]
    assert m.headline["sum_time_viewed_min"] == pytest.approx(10.0)
    assert "estimated from positions" in m.methods["sum_time_viewed_min"]


def test_legacy_quartile_minutes_use_the_duration_field(parquet):
    # 50 min of a 60-min video reaches 75 %: 45 min.
    rows = [legacy(3, duration=3600), legacy(4, duration=3600), legacy(5, duration=3600), legacy(6, duration=3600)]
    assert headline(parquet(rows), "legacy")["sum_time_viewed_min"] == pytest.approx(45.0)


def test_view_minutes_add_the_largest_play_time_sum_of_each_segment(parquet):
    # A 30-s pause resets eventIndex and playTimeSum: 30 s before the reset plus 20 s after.
    views = [(4, 0), (5, 10), (6, 20), (7, 30), (1, 0), (2, 10), (3, 20)]
    rows = [kava(PLAY)] + [kava(VIEW, eventIndex=i, playTimeSum=float(p)) for i, p in views]
    assert headline(parquet(rows))["sum_view_period_min"] * 60 == pytest.approx(50.0)


def test_a_reset_after_a_short_segment_keeps_the_short_segment(parquet):
    # 2.5 s played, a long pause resets the counters, then 10 s more: eventIndex drops, playTimeSum does not.
    rows = [kava(PLAY), kava(VIEW, eventIndex=4, playTimeSum=2.5), kava(VIEW, eventIndex=2, playTimeSum=10.0)]
    assert headline(parquet(rows))["sum_view_period_min"] * 60 == pytest.approx(12.5)


def test_a_duplicated_view_does_not_add_play_time(parquet):
    views = [(4, 0), (5, 10), (5, 10), (6, 20)]
    rows = [kava(PLAY)] + [kava(VIEW, eventIndex=i, playTimeSum=float(p)) for i, p in views]
    assert headline(parquet(rows))["sum_view_period_min"] * 60 == pytest.approx(20.0)


def test_anonymous_viewers_collapse_into_one_unique_viewer(parquet):
    rows = [
        kava(PLAY, session="a", userId="u1"),
        kava(PLAY, session="b", userId="u2"),
        kava(PLAY, session="c", userId="u1"),
        kava(PLAY, session="d"),
        kava(PLAY, session="e", userId=""),
        kava(IMPRESSION, session="f", userId="u3"),
    ]
    h = headline(parquet(rows))
    assert h["unique_viewers"] == 3  # u1, u2, anonymous
    assert h["unique_known_users"] == 3  # u1, u2, u3 (any event)


def test_exits_before_start_subtract_plays_and_errors_before_start(parquet):
    rows = (
        [kava(PLAY_REQUEST, session=s) for s in "abcde"]
        + [kava(PLAY, session=s) for s in "abc"]
        + [kava(ERROR, session="d", errorPosition=1), kava(ERROR, session="a", errorPosition=2, position=40.0)]
    )
    h = headline(parquet(rows))
    assert (h["count_ebvs"], h["ebvs_ratio"]) == (1, 0.2)


def test_buffer_ratio_is_view_buffer_time_over_play_time(parquet):
    rows = [
        kava(PLAY, bufferTime=5.0),
        kava(VIEW, eventIndex=4, playTimeSum=0.0, bufferTime=0.0),
        kava(VIEW, eventIndex=5, playTimeSum=10.0, bufferTime=1.5),
        kava(VIEW, eventIndex=6, playTimeSum=20.0, bufferTime=0.5),
    ]
    assert headline(parquet(rows))["avg_buffer_time"] == pytest.approx(2.0 / 20.0)


def test_session_error_rate_is_error_sessions_over_viewing_sessions(parquet):
    rows = [kava(VIEW, session=s, eventIndex=4, playTimeSum=0.0) for s in "abcd"] + [
        kava(ERROR, session="b", errorPosition=2)
    ]
    assert headline(parquet(rows))["avg_session_error_rate"] == 0.25


def test_join_time_and_bitrate_average_over_the_beacons_that_report_them(parquet):
    rows = [
        kava(PLAY, session="a", joinTime=1.0),
        kava(PLAY, session="b", joinTime=2.0),
        kava(VIEW, actualBitrate=1000.0),
        kava(VIEW, actualBitrate=2000.0),
        kava(VIEW, actualBitrate=-1.0),
    ]
    h = headline(parquet(rows))
    assert (h["avg_join_time_s"], h["avg_bitrate_kbps"]) == (1.5, 1500.0)


def test_kava_ad_events_are_counted_when_present(parquet):
    rows = [kava(8999), kava(8999), kava(9000), kava(9005), kava(9009)]
    h = headline(parquet(rows))
    assert [h[k] for k in ("count_ad_impressions", "count_ad_starts", "count_ad_completions", "count_ad_clicks")] == [
        2,
        1,
        1,
        1,
    ]


def test_legacy_ad_starts_and_clicks_come_from_kdp_ad_events(parquet):
    rows = [legacy(24), legacy(25), legacy(27), legacy(28), legacy(32)]
    h = headline(parquet(rows), "legacy")
    assert (h["count_ad_starts"], h["count_ad_clicks"], h["count_ad_impressions"]) == (3, 1, None)


def test_legacy_loads_are_media_loaded_and_raw_counts_keep_discarded_types(parquet):
    rows = [legacy(1), legacy(2), legacy(2, session="L2"), legacy(12), legacy(13), legacy(3)]
    m = compute(parquet(rows)).protocols["legacy"]
    assert (m.headline["count_loads"], m.headline["count_plays"]) == (2, 1)
    assert (m.event_counts["1"], m.event_counts["12"], m.event_counts["13"]) == (1, 1, 1)


def test_both_protocols_are_reported_side_by_side_with_their_own_rules(parquet):
    # eventType 2 is a play request in KAVA and a load in legacy.
    rows = [kava(IMPRESSION), kava(PLAY_REQUEST), legacy(2), legacy(2, session="L2")]
    m = compute(parquet(rows))
    assert m.protocols["kava"].headline["count_loads"] == 1
    assert m.protocols["legacy"].headline["count_loads"] == 2


def test_protocol_option_keeps_one_protocol(parquet):
    rows = [kava(IMPRESSION), legacy(2)]
    assert list(compute(parquet(rows), protocol="legacy").protocols) == ["legacy"]


def _truth(seq, outcome, viewer, fraction=0.5, duration=600.0):
    return dict(
        truth_session_seq=seq,
        truth_outcome=outcome,
        truth_viewer=viewer,
        truth_intended_fraction=fraction,
        truth_entry_duration=duration,
    )


def test_truth_gives_true_plays_completions_and_viewers_beside_measured(parquet):
    rows = [
        kava(IMPRESSION, session="a", **_truth(1, "completed", 7)),
        kava(PLAY, session="a", **_truth(1, "completed", 7)),
        kava(IMPRESSION, session="b", **_truth(2, "partial", 8)),
        kava(PLAY, session="b", **_truth(2, "partial", 8)),
        kava(IMPRESSION, session="c", **_truth(3, "no_play", 9)),
        kava(IMPRESSION, session="d", **_truth(4, "PARTIAL", 7)),
    ]  # its PLAY beacon was lost
    m = compute(parquet(rows)).protocols["kava"]
    assert (m.headline["count_plays"], m.truth["count_plays"]) == (2, 3)
    assert m.truth["count_plays_100"] == 1
    assert m.truth["unique_viewers"] == 2  # viewers 7 and 8
    assert m.truth["sum_time_viewed_min"] == pytest.approx(10 + 5 + 5)


def test_no_truth_columns_means_no_truth(parquet):
    assert compute(parquet([kava(PLAY)])).protocols["kava"].truth == {}


def test_rejected_rows_in_a_store_are_not_counted(tmp_path):
    rows = [kava(PLAY, session="a", accepted=True), kava(PLAY, session="b", accepted=False)]
    m = compute(write(rows, tmp_path / "store.duckdb"))
    assert m.protocols["kava"].headline["count_plays"] == 1
    assert m.notes == ["1 row(s) the collector rejected (accepted = false) are not counted"]


def test_legacy_rows_the_warehouse_would_drop_are_left_out_of_the_headline(tmp_path):
    rows = [
        legacy(3),
        legacy(3, session="L2", flags="session_id_over_50,missing_entry_id"),
        legacy(3, session="L3", flags="session_id_over_50"),
    ]  # cut, not dropped
    m = compute(write(rows, tmp_path / "store.duckdb")).protocols["legacy"]
    assert (m.headline["count_plays"], m.event_counts["3"]) == (2, 3)


CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


def test_device_os_and_browser_come_from_the_user_agent_without_truth(parquet):
    rows = [
        kava(PLAY, session="a", user_agent=CHROME_WIN),
        kava(PLAY, session="b", user_agent=SAFARI_IPHONE),
        kava(PLAY, session="c", user_agent=SAFARI_IPHONE),
    ]
    m = compute(parquet(rows)).protocols["kava"]
    keyed = {d: {r["key"]: r["plays"] for r in m.breakdowns[d]} for d in ("device", "os", "browser")}
    assert keyed == {
        "device": {"mobile": 2, "desktop": 1},
        "os": {"ios": 2, "windows": 1},
        "browser": {"safari": 2, "chrome": 1},
    }
    assert m.methods["by device"] == "user_agent classifier"


def test_truth_device_wins_over_the_user_agent(parquet):
    rows = [kava(PLAY, user_agent=CHROME_WIN, truth_device="CTV")]
    m = compute(parquet(rows)).protocols["kava"]
    assert m.breakdowns["device"] == [{"key": "ctv", "loads": 0, "plays": 1, "events": 1, "play_rate": None}]
    assert m.methods["by device"] == "truth_device"


def test_top_entries_are_ranked_by_plays_and_cut_at_top(parquet):
    rows = (
        [kava(PLAY, session=f"a{i}", entry="0_a") for i in range(3)]
        + [kava(PLAY, session="b", entry="0_b")]
        + [kava(PLAY, session=f"c{i}", entry="0_c") for i in range(2)]
    )
    entries = compute(parquet(rows), by="entry", top=2).protocols["kava"].breakdowns["entry"]
    assert [(r["key"], r["plays"]) for r in entries] == [("0_a", 3), ("0_c", 2)]


def test_hour_breakdown_shifts_by_the_time_zone_offset(parquet):
    rows = [kava(PLAY, ts=1_767_225_600.0 + 3600 * 23.5)]  # 23:30 UTC
    m = compute(parquet(rows), by=["hour", "day"], tz_offset_min=120).protocols["kava"]
    assert m.breakdowns["hour"][0]["key"] == "01"
    assert m.breakdowns["day"][0]["key"] == "2026-01-02"


def test_metrics_serialise_to_json(parquet):
    doc = json.loads(compute(parquet([kava(IMPRESSION), kava(PLAY)])).to_json())
    assert doc["protocols"]["kava"]["headline"]["load_play_ratio"] == 1.0


def test_unknown_breakdown_is_refused_with_its_name(parquet):
    with pytest.raises(ValueError, match="by: unknown breakdown 'city'"):
        compute(parquet([kava(PLAY)]), by="city")
