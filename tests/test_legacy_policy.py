"""The legacy stats policy: which beacons KDP, mwEmbed and v7 send for a timeline, and with which fields."""

from __future__ import annotations

import numpy as np
import pytest

from legacy_timelines import FLAVORS, START, Timeline, chunk_of, generated
from sim.player.timeline import Action, AdPosition
from sim.protocols.legacy.codec import beacon_at
from sim.protocols.legacy.policy import beacons
from sim.protocols.session_ids import guid_pool

QUARTILES = (4, 5, 6, 7)
AD_EVENTS = set(range(21, 41))


def types(b) -> list[int]:
    return b.columns["eventType"].tolist()


def rows_of(b, event_type: int) -> np.ndarray:
    return np.flatnonzero(b.columns["eventType"] == event_type)


def watch_through(duration: float = 100.0) -> Timeline:
    return Timeline(duration).load(0).request(1).playing(2).ended(2 + duration).quit(2 + duration + 5)


# --- sequence rules on every generated session ----------------------------------------------------


@pytest.fixture(scope="module", params=FLAVORS)
def generated_beacons(request):
    chunk = generated(request.param)
    return request.param, chunk, beacons(chunk, with_kava=True)


def per_session(b):
    bounds = np.flatnonzero(np.diff(b.session)) + 1
    yield from np.split(np.arange(len(b)), bounds)


def test_rows_are_grouped_by_session_in_send_order(generated_beacons):
    _, _, b = generated_beacons
    assert np.all(np.diff(b.session) >= 0)
    same = np.diff(b.session) == 0
    assert np.all(np.diff(b.columns["eventTimestamp"])[same] > 0)
    assert np.all(np.diff(b.send_t)[same] > 0)


def test_in_send_order_gives_the_same_rows_sorted_as_the_event_files_sort_them(generated_beacons):
    from sim.generate import send_order
    from sim.protocols.beacons import Strings

    _, chunk, grouped = generated_beacons
    sorted_rows = beacons(chunk, with_kava=True, in_send_order=True)
    order = send_order(grouped.send_t, chunk.sessions["session_seq"][grouped.session])
    assert sorted_rows.in_send_order and not grouped.in_send_order
    assert np.array_equal(sorted_rows.session, grouped.session[order])
    assert np.array_equal(sorted_rows.send_t, grouped.send_t[order])
    assert np.array_equal(sorted_rows.ledger_index, grouped.ledger_index[order])
    assert sorted_rows.columns.keys() == grouped.columns.keys()
    for name, col in grouped.columns.items():
        got = sorted_rows.columns[name]
        if isinstance(col, Strings):  # pools may list entries in another order: compare the texts
            assert got.texts(np.arange(len(got))) == col.texts(order), name
        else:
            assert np.array_equal(np.asarray(got), np.asarray(col)[order], equal_nan=True), name


def test_every_loaded_session_sends_widget_and_media_loaded_once(generated_beacons):
    flavor, chunk, b = generated_beacons
    for rows in per_session(b):
        t = b.columns["eventType"][rows].tolist()
        assert t.count(1) == 1 and t.count(2) == 1
        assert t[:2] == ([2, 1] if flavor == "mwembed" else [1, 2])
    assert len(np.unique(b.session)) == chunk.n_sessions


def test_media_loaded_comes_before_play_and_play_is_sent_once(generated_beacons):
    _, _, b = generated_beacons
    for rows in per_session(b):
        t = b.columns["eventType"][rows].tolist()
        assert t.count(3) <= 1
        if 3 in t:
            assert t.index(2) < t.index(3)


def test_no_quartile_before_play_and_each_quartile_once(generated_beacons):
    flavor, _, b = generated_beacons
    fired = 0
    for rows in per_session(b):
        t = b.columns["eventType"][rows].tolist()
        q = [x for x in t if x in QUARTILES]
        fired += len(q)
        assert len(q) == len(set(q))
        if flavor != "kdp":  # a seek fires the skipped ones first; KDP may reach 25 % only after a seek back
            assert q == sorted(q)
        if q:
            assert 3 in t and t.index(3) < t.index(q[0])
    assert fired > 0


def test_buffer_end_only_closes_a_buffer_start(generated_beacons):
    _, _, b = generated_beacons
    for rows in per_session(b):
        open_ = False
        for x in b.columns["eventType"][rows]:
            if x == 12:
                assert not open_
                open_ = True
            elif x == 13:
                assert open_
                open_ = False


def test_ad_and_bumper_events_come_from_kdp_only(generated_beacons):
    flavor, _, b = generated_beacons
    sent_ads = AD_EVENTS & set(types(b))
    if flavor == "kdp":
        assert {21, 22, 24, 25, 26, 27, 32, 33, 34, 35, 38} <= sent_ads
    else:
        assert sent_ads == set()


def test_units_per_flavor(generated_beacons):
    flavor, chunk, b = generated_beacons
    point, duration = b.columns["currentPoint"], b.columns["duration"]
    true_duration = chunk.sessions["duration"][b.session]
    if flavor == "v7":
        assert np.all(point <= true_duration + 1e-9)  # float seconds
        assert np.any(point != np.floor(point))
        assert np.array_equal(duration, true_duration)
    else:
        assert np.all(point == np.floor(point))  # whole milliseconds
        assert np.all(point <= true_duration * 1000)
        assert point.max() > true_duration.max()  # clearly not seconds
        want = np.floor(true_duration) if flavor == "kdp" else true_duration
        assert np.array_equal(duration, want)


def test_live_sessions_send_no_quartiles(generated_beacons):
    _, chunk, b = generated_beacons
    live_rows = chunk.sessions["live"][b.session]
    assert live_rows.any()
    assert not np.isin(b.columns["eventType"][live_rows], QUARTILES).any()


def test_v7_sends_no_fullscreen_share_download_or_report(generated_beacons):
    flavor, _, b = generated_beacons
    ui = {9, 10, 11, 14, 15} & set(types(b))
    assert ui == (set() if flavor == "v7" else ({9, 10, 11, 14, 15} if flavor == "kdp" else {9, 10, 14, 15}))


def test_ledger_index_counts_sends_within_a_session(generated_beacons):
    _, _, b = generated_beacons
    for rows in per_session(b):
        assert b.ledger_index[rows].tolist() == list(range(1, len(rows) + 1))


# --- when each player fires --------------------------------------------------------------------------


def test_kdp_sends_play_on_the_first_frame_mwembed_and_v7_on_the_play_request():
    tl = lambda: Timeline().load(0).request(1).playing(4).quit(10)  # noqa: E731
    for flavor, at in (("kdp", 4), ("mwembed", 1), ("v7", 1)):
        b = beacons(chunk_of([tl()], flavor))
        play = rows_of(b, 3)[0]
        assert b.send_t[play] == pytest.approx(START + at)


@pytest.mark.parametrize("flavor, reached_at", [("kdp", 97.5), ("mwembed", 98.0), ("v7", 100.0)])
def test_play_reached_100_fires_at_98_percent_in_kdp_and_mwembed_and_at_the_end_in_v7(flavor, reached_at):
    b = beacons(chunk_of([watch_through()], flavor))
    row = rows_of(b, 7)[0]
    # KDP rounds the percent first: Math.round(97.5) = 98
    assert b.send_t[row] == pytest.approx(START + 2 + reached_at, abs=1e-3)


def test_kdp_quartiles_fire_at_the_rounded_percent():
    b = beacons(chunk_of([watch_through()], "kdp"))
    assert b.columns["currentPoint"][rows_of(b, 4)[0]] == 24500


def test_a_kdp_seek_suppresses_the_quartiles_it_jumps_over():
    tl = Timeline().load(0).request(1).playing(2).seek(12, to=60).ended(52).quit(55)
    b = beacons(chunk_of([tl], "kdp"))
    assert [x for x in types(b) if x in QUARTILES] == [6, 7]


def test_an_mwembed_seek_past_50_percent_fires_25_then_50_on_the_next_monitor_ticks():
    tl = Timeline().load(0).request(1).playing(2).seek(12, to=60).quit(20)
    b = beacons(chunk_of([tl], "mwembed"))
    seek, q25, q50 = rows_of(b, 17)[0], rows_of(b, 4)[0], rows_of(b, 5)[0]
    assert seek < q25 < q50
    assert b.send_t[q25] - b.send_t[seek] == pytest.approx(0.25)
    assert b.send_t[q50] - b.send_t[seek] == pytest.approx(0.5)
    assert 6 not in types(b)


def test_a_v7_seek_past_50_percent_fires_25_and_50_right_after_the_seek():
    tl = Timeline().load(0).request(1).playing(2).seek(12, to=60).quit(40)
    b = beacons(chunk_of([tl], "v7"))
    t = types(b)
    i = t.index(17)
    assert t[i + 1 : i + 3] == [4, 5]
    assert b.send_t[rows_of(b, 5)[0]] == pytest.approx(START + 12, abs=0.01)


def test_quartiles_fire_once_per_play_even_after_a_replay():
    tl = Timeline().load(0).request(1).playing(2).ended(102).replay(105).ended(205).quit(210)
    for flavor in FLAVORS:
        t = types(beacons(chunk_of([tl], flavor)))
        assert [x for x in t if x in QUARTILES] == [4, 5, 6, 7]
        assert t.count(16) == 1


def test_kdp_reports_every_seek_mwembed_and_v7_de_bounce_2_seconds():
    tl = Timeline().load(0).request(1).playing(2).seek(5, to=10).seek(6, to=12).seek(9, to=14).quit(12)
    assert types(beacons(chunk_of([tl], "kdp"))).count(17) == 3
    for flavor in ("mwembed", "v7"):
        # 6 s is within 2 s of 5 s; 9 s is 3 s after the (unreported) 6 s seek
        assert types(beacons(chunk_of([tl], flavor))).count(17) == 2


def test_the_seek_flag_is_set_after_the_first_reported_seek_except_in_mwembed():
    tl = Timeline().load(0).request(1).playing(2).seek(5, to=10).stall(8, 1).quit(12)
    for flavor, after in (("kdp", True), ("v7", True), ("mwembed", False)):
        b = beacons(chunk_of([tl], flavor))
        seek = rows_of(b, 17)[0]
        assert not b.columns["seek"][: seek + 1].any()
        assert b.columns["seek"][seek + 1 :].tolist() == [after] * (len(b) - seek - 1)


def test_mwembed_sends_nothing_while_an_ad_plays_and_kdp_sends_the_ad_events():
    def tl():  # fullscreen entered while the pre-roll plays
        pre = AdPosition.PREROLL
        return (
            Timeline()
            .load(0)
            .request(1)
            .act(Action.AD_BREAK_START, 1.5, 1, pre)
            .act(Action.AD_START, 1.5, 30, pre)
            .act(Action.AD_FIRST_QUARTILE, 9, 0, pre)
            .act(Action.ENTER_FULLSCREEN, 10)
            .act(Action.AD_MIDPOINT, 16.5, 0, pre)
            .act(Action.AD_THIRD_QUARTILE, 24, 0, pre)
            .act(Action.AD_COMPLETE, 31.5, 0, pre)
            .act(Action.AD_BREAK_END, 31.5, 0, pre)
            .playing(32)
            .quit(40)
        )

    kdp = types(beacons(chunk_of([tl()], "kdp")))
    mw = types(beacons(chunk_of([tl()], "mwembed")))
    assert kdp == [1, 2, 24, 32, 33, 34, 3]
    assert mw == [2, 1, 3]


def test_kdp_maps_midroll_postroll_and_bumpers_to_their_own_ids():
    tl = (
        Timeline()
        .load(0)
        .request(1)
        .playing(2)
        .ad_break(50, AdPosition.MIDROLL)
        .act(Action.BUMPER_START, 80, 5, AdPosition.PREROLL)
        .act(Action.BUMPER_CLICK, 81, 0, AdPosition.PREROLL)
        .ad_break(90, AdPosition.POSTROLL)
        .act(Action.BUMPER_START, 120, 5, AdPosition.POSTROLL)
        .quit(130)
    )
    t = [x for x in types(beacons(chunk_of([tl], "kdp"))) if x in AD_EVENTS]
    assert t == [25, 35, 36, 37, 21, 23, 26, 38, 39, 40, 22]


def test_fullscreen_changes_are_de_bounced_by_state_and_not_sent_by_v7():
    on, off = Action.ENTER_FULLSCREEN, Action.EXIT_FULLSCREEN
    tl = Timeline().load(0).request(1).playing(2).act(on, 3).act(on, 4).act(off, 5).act(off, 6).quit(8)
    assert [x for x in types(beacons(chunk_of([tl], "kdp"))) if x in (14, 15)] == [14, 15]
    assert not {14, 15} & set(types(beacons(chunk_of([tl], "v7"))))


def test_two_sends_in_the_same_millisecond_go_out_one_millisecond_apart():
    b = beacons(chunk_of([Timeline().load(0).quit(1)], "kdp"))
    assert b.columns["eventTimestamp"].tolist() == [int(START * 1000), int(START * 1000) + 1]


# --- fields per flavor -------------------------------------------------------------------------------


def test_kdp_fields():
    b = beacon_at(beacons(chunk_of([watch_through()], "kdp", version="3.5.7.1")), 0)
    f = b.fields
    assert f["clientVer"] == "3.0:v3.5.7.1" and b.params["clientTag"] == "kdp:v3.5.7.1"
    assert f["objectType"] == "KalturaStatsEvent" and f["isFirstInSession"] is False
    assert f["userId"] == "alice@example.edu" and f["widgetId"] == "_2504201" and f["uiconfId"] == 47313123
    assert f["eventTimestamp"] == int(START * 1000)
    assert "hasKanalony" not in f and "hasKanalony" not in b.params and "historyEvents" not in f
    assert isinstance(f["currentPoint"], int) and isinstance(f["duration"], int)


def test_mwembed_fields():
    b = beacon_at(beacons(chunk_of([watch_through()], "mwembed", version="2.80"), with_kava=True), 2)
    f = b.fields
    assert f["eventType"] == 3 and f["clientVer"] == "2.80" and b.params["clientTag"] == "kwidget:v2.80"
    assert f["historyEvents"] == "111" + "0" * 21 + "-3-3"
    assert f["referrer"] == "https://learn.example.edu/course/7/lecture"  # parent URL without its query
    assert b.page_url == "https://learn.example.edu/course/7/lecture?id=3&t=a b"
    assert b.params["hasKanalony"] is True and "uiConfId" not in f
    assert isinstance(f["currentPoint"], int) and isinstance(f["duration"], float)


def test_mwembed_before_2_61_sends_no_has_kanalony():
    b = beacon_at(beacons(chunk_of([watch_through()], "mwembed", version="2.60"), with_kava=True), 0)
    assert "hasKanalony" not in b.params


def test_v7_fields():
    b = beacon_at(beacons(chunk_of([watch_through()], "v7", version="0.37.0"), with_kava=False), 0)
    f = b.fields
    assert f["uiConfId"] == 47313123 and "uiconfId" not in f
    assert f["widgetId"] == "_2504201" and f["hasKanalony"] is False
    assert "userId" not in f and "objectType" not in f and "historyEvents" not in f
    assert b.params == {"apiVersion": "3.3.0", "format": 1, "ks": "", "clientTag": "html5:v0.37.0"}
    part1, part2 = f["sessionId"].split(":")
    assert len(part1) == len(part2) == 36 and f["sessionId"] == f["sessionId"].lower()
    assert isinstance(f["currentPoint"], float)


def test_session_ids_follow_each_players_format_and_differ_between_sessions():
    tls = [watch_through(), watch_through()]
    kdp = beacons(chunk_of(tls, "kdp")).columns["sessionId"]
    mw = beacons(chunk_of(tls, "mwembed")).columns["sessionId"]
    assert kdp.get(0) == kdp.get(0).upper() and len(kdp.get(0)) == 36
    assert mw.get(0) == mw.get(0).lower() and mw.get(0).count("-") == 4
    assert len(set(kdp.pool)) == 2


def test_a_session_id_spells_its_random_bytes_in_hex_high_digit_first():
    random_bytes = np.arange(64, dtype=np.uint8).reshape(2, 32) * 7
    data, offsets = guid_pool(random_bytes, np.array([True, False]), np.array([False, True]))
    ids = [bytes(data[a:b]).decode() for a, b in zip(offsets[:-1], offsets[1:])]

    def guid(raw: bytes) -> str:
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    assert ids == [
        guid(random_bytes[0, :16].tobytes()).upper(),
        guid(random_bytes[1, :16].tobytes()) + ":" + guid(random_bytes[1, 16:].tobytes()),
    ]


def test_anonymous_viewers_send_no_user_id():
    b = beacons(chunk_of([Timeline(user=-1).load(0).quit(1)], "kdp"))
    assert b.columns["userId"].codes.tolist() == [-1, -1]


def test_the_uv_cookie_is_stable_per_viewer_across_chunks_of_a_run():
    one = beacons(chunk_of([Timeline(viewer=5).load(0).quit(1)], "kdp")).columns["cookie"]
    two = beacons(chunk_of([Timeline(viewer=9).load(0).quit(1), Timeline(viewer=5).load(0).quit(1)], "v7"))
    cookie = two.columns["cookie"]
    assert cookie.get(len(two) - 1) == one.get(0)
    assert cookie.get(0) != one.get(0)
    assert len(one.get(0)) == len("uv=uv_") + 32


def test_the_request_context_comes_from_the_session_pools():
    b = beacon_at(beacons(chunk_of([watch_through()], "v7")), 0)
    assert b.user_agent.startswith("Mozilla/5.0") and b.client_ip == "203.0.113.7"
    assert b.page_url == b.fields["referrer"]


def test_a_chunk_may_mix_flavors_and_each_session_follows_its_own():
    kdp, v7 = chunk_of([watch_through()], "kdp"), chunk_of([watch_through()], "v7")
    kdp.scenarios.append(v7.scenarios[0])
    kdp.sessions["scenario"][:] = 1
    b = beacons(kdp)
    assert b.columns["legacy_flavor"].get(0) == "v7"
    assert "uiConfId" in beacon_at(b, 0).fields
