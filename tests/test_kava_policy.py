"""The KAVA policy sends what the v7 kava plugin sends, in its order, with its counters."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from kava_timelines import START, Timeline, random_timelines, session_chunk
from sim.protocols.kava.codec import beacon_at, encode_rows, ledger_key
from sim.protocols.kava.policy import RESPONSE_RTT_S, EventType as E, beacons
from sim.scenario.model import Scenario

QUARTILES = (E.PLAY_REACHED_25, E.PLAY_REACHED_50, E.PLAY_REACHED_75, E.PLAY_REACHED_90, E.PLAY_REACHED_100)
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def sent(*timelines, **kw):
    """Every session's beacons as (send offset from the session start, fields) lists."""
    chunk = session_chunk(list(timelines), **{k: v for k, v in kw.items() if k == "scenarios"})
    out = beacons(chunk, **{k: v for k, v in kw.items() if k != "scenarios"})
    per = [[] for _ in timelines]
    for i in range(len(out)):
        s = int(out.session[i])
        per[s].append((round(float(out.send_t[i] - chunk.sessions["start"][s]), 3), beacon_at(out, i).fields))
    return per


def types(rows):
    return [f["eventType"] for _, f in rows]


def of_type(rows, etype):
    return [(t, f) for t, f in rows if f["eventType"] == etype]


def _model_chunk(scenario: Scenario, seed: int, sessions: int = 1500):
    from sim.player.model import generate_sessions

    return next(generate_sessions(scenario, seed=seed, sessions=sessions, days=1))


ADS_SCENARIO = {
    "player": {"kava": {"ad_events": True}},
    "ads": {"preroll": {"share": 0.8}, "midroll": {"at_fractions": [0.5]}},
    "behaviour": {"play_rate": 0.9, "error_mid_stream": 0.02, "replay_after_end": 0.2},
}


@pytest.fixture(scope="module", params=["random timelines", "player model", "player model with ads"])
def generated(request):
    """Many sessions through the policy: (chunk, beacons, per-session rows)."""
    if request.param == "random timelines":
        chunk = session_chunk(random_timelines(400, seed=11))
    elif request.param == "player model":
        chunk = _model_chunk(Scenario(), seed=21)
    else:
        chunk = _model_chunk(Scenario.model_validate(ADS_SCENARIO), seed=22)
    out = beacons(chunk)
    per = [[] for _ in range(chunk.n_sessions)]
    for i in range(len(out)):
        s = int(out.session[i])
        per[s].append((float(out.send_t[i] - chunk.sessions["start"][s]), beacon_at(out, i).fields))
    return chunk, out, per


# --- a typical session, event by event --------------------------------------------------------


def test_a_watched_session_opens_with_impression_play_request_play_and_a_view():
    (rows,) = sent(Timeline(100).load(0).request(1).playing(2.5).quit(5))
    assert types(rows) == [E.IMPRESSION, E.PLAY_REQUEST, E.PLAY, E.VIEW]
    assert [f["eventIndex"] for _, f in rows] == [1, 2, 3, 4]
    play = rows[2][1]
    assert play["joinTime"] == 1.5 and play["bufferTime"] == 0 and play["actualBitrate"] == 1500 * 1000 / 1024
    assert rows[3][0] == 2.5 and rows[3][1]["playTimeSum"] == 0.0


def test_a_loaded_entry_that_is_never_played_sends_only_the_impression():
    (rows,) = sent(Timeline(100).load(0).quit(20))
    assert types(rows) == [E.IMPRESSION]
    assert rows[0][1]["loadedPlugins"] == "kava"


def test_the_first_periodic_view_comes_11_s_after_play_then_every_10_s_of_play():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).quit(45))
    views = of_type(rows, E.VIEW)
    assert [t for t, _ in views] == [2, 13, 23, 33, 43]
    # currentTime as read on the timer's tick: within a tick's jitter of the whole seconds
    sums = [f["playTimeSum"] for _, f in views]
    assert sums == pytest.approx([0, 11, 21, 31, 41], abs=0.05)
    assert sums == [f["position"] for _, f in views]  # played from 0 without a seek


def test_view_play_time_sum_and_position_are_raw_doubles_with_the_tick_jitter():
    # the real player sent 10.966436, 10.996181, 11.045311 where the tick says 11
    rows = [
        r
        for rows in sent(*[Timeline(300, user=i % 2).load(0).request(1).playing(2).quit(45) for i in range(20)])
        for r in rows
    ]
    periodic = [f for t, f in of_type(rows, E.VIEW) if t > 2]
    assert not [f for f in periodic if float(f["playTimeSum"]).is_integer()]
    assert len({f["playTimeSum"] for f in periodic}) > len(periodic) // 2
    assert all(f["position"] == round(f["position"], 6) for f in periodic)  # currentTime: microseconds


def test_no_view_is_sent_while_paused_and_the_cadence_counts_only_playing_time():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).pause(7).resume(27).quit(60))
    views = [t for t, _ in of_type(rows, E.VIEW)]
    assert not [t for t in views if 7 < t <= 27]
    # 5 ticks before the pause, 6 more after it reach the 11th tick at 33
    assert views[:3] == [2, 33, 43]


def test_no_view_is_sent_during_a_rebuffer_and_its_seconds_go_into_the_next_view():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).stall(5, 8.0).quit(40))
    views = of_type(rows, E.VIEW)
    assert not [t for t, _ in views if 5 < t < 13]
    first_periodic = views[1][1]
    assert first_periodic["bufferTime"] == 8.0 and first_periodic["bufferTimeSum"] == 8.0
    assert views[2][1]["bufferTime"] == 0.0 and views[2][1]["bufferTimeSum"] == 8.0


def test_buffer_end_follows_buffer_start_and_resume_carries_the_buffer_sums():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).stall(5, 3.0).pause(9).resume(11).quit(12))
    assert types(rows)[4:] == [E.BUFFER_START, E.BUFFER_END, E.PAUSE, E.RESUME]
    resume = of_type(rows, E.RESUME)[0][1]
    assert resume["bufferTime"] == 3.0 and resume["bufferTimeSum"] == 3.0


def test_no_view_is_sent_during_an_ad_break():
    tl = Timeline(600).load(0).request(1).playing(2)
    tl.ad_break(5, ads=2, length=30.0, where=2).quit(80)
    (rows,) = sent(tl)
    ad_start, ad_end = 5, tl.rows[-2]["t"]
    assert not [t for t, _ in of_type(rows, E.VIEW) if ad_start < t < ad_end]
    assert not [f for _, f in rows if f["eventType"] >= 8999]  # ad beacons are opt-in


def test_ad_beacons_are_sent_when_the_scenario_opts_in_with_ad_join_time_on_ad_started():
    scenario = Scenario.model_validate({"player": {"kava": {"ad_events": True}}})
    tl = Timeline(600).load(0).request(1).ad_break(1.2, ads=1, length=20.0).playing(25).quit(30)
    (rows,) = sent(tl, scenarios=[scenario])
    ads = [f["eventType"] for _, f in rows if f["eventType"] >= 8999]
    assert ads == [
        E.AD_IMPRESSION,
        E.AD_STARTED,
        E.AD_FIRST_QUARTILE,
        E.AD_MID_POINT,
        E.AD_THIRD_QUARTILE,
        E.AD_COMPLETED,
    ]
    started = of_type(rows, E.AD_STARTED)[0][1]
    assert started["adJoinTime"] == 0.5 and started["adBreakType"] == "preroll" and started["adPosition"] == 1


# --- quartiles ---------------------------------------------------------------------------------


def test_playback_fires_each_quartile_when_the_playhead_reaches_it():
    (rows,) = sent(Timeline(100).load(0).request(1).playing(2).ended().quit(105))
    quartiles = [(t, f["eventType"]) for t, f in rows if f["eventType"] in QUARTILES]
    assert [q for _, q in quartiles] == list(QUARTILES)
    # percent rounded to 2 decimals: 25 % is reached at 24.5 s of content, and the plugin sees
    # it on the next timeupdate (every 250 ms); 100 % from 99.5 s, at the latest at the end
    for (t, _), reached in zip(quartiles, (24.5, 49.5, 74.5, 89.5, 99.5)):
        assert 2 + reached <= t <= 2 + min(reached + 0.25, 100)


def test_the_end_of_the_media_sends_100_percent_then_a_pause_at_the_duration():
    (rows,) = sent(Timeline(100).load(0).request(1).playing(2).ended().quit(105))
    assert types(rows)[-2:] == [E.PLAY_REACHED_100, E.PAUSE]
    t, pause = rows[-1]
    assert t == 102.0 and pause["position"] == 100.0


def test_a_replay_is_a_burst_of_seek_to_0_buffering_and_replay_without_a_session_start_time():
    runs = sent(
        *[Timeline(60, user=i % 2).load(0).request(1).playing(2).ended().replay(64 + i).quit(80 + i) for i in range(16)]
    )
    resumed = 0
    for rows in runs:
        at = types(rows).index(E.SEEK)
        burst = rows[at : at + 5]
        assert [f["eventType"] for _, f in burst[:4]] == [E.SEEK, E.BUFFER_START, E.BUFFER_END, E.REPLAY]
        assert {t for t, _ in burst[:4]} == {burst[0][0]}
        assert burst[0][1]["targetPosition"] == 0.0 and burst[0][1]["position"] == 0.0
        # the end's PAUSE cleared sessionStartTime; the burst's answers come after it
        assert not [f for _, f in burst[:4] if "sessionStartTime" in f]
        if burst[4][1]["eventType"] == E.RESUME:  # a second `playing` (a browser race)
            resumed += 1
            assert "sessionStartTime" not in burst[4][1] and burst[4][0] == burst[0][0]
        # the first answer read with the timer running again (the SEEK's) sets a new one
        first = rows[1][1]["sessionStartTime"]  # the IMPRESSION's answer, at the session's start
        later = [f for t, f in rows if t > burst[0][0]]
        assert later and all(f["sessionStartTime"] - first == pytest.approx(burst[0][0], abs=0.01) for f in later)
    assert 0 < resumed < len(runs)


def test_a_seek_from_10_to_80_percent_fires_25_50_and_75_once_right_after_the_seek():
    (rows,) = sent(Timeline(100).load(0).request(1).playing(2).seek(12, to=80).quit(14))
    after_seek = types(rows)[types(rows).index(E.SEEK) :]
    assert after_seek[:4] == [E.SEEK, E.PLAY_REACHED_25, E.PLAY_REACHED_50, E.PLAY_REACHED_75]
    assert [types(rows).count(q) for q in QUARTILES[:3]] == [1, 1, 1]
    assert of_type(rows, E.SEEK)[0][1]["targetPosition"] == 80.0


def test_quartiles_are_not_sent_again_after_a_replay():
    (rows,) = sent(Timeline(60).load(0).request(1).playing(2).ended().replay(64).ended().quit(130))
    assert [types(rows).count(q) for q in QUARTILES] == [1, 1, 1, 1, 1]
    assert E.REPLAY in types(rows)


def test_a_backward_seek_fires_no_quartile_and_is_not_counted_as_play_time():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).seek(10, to=0).quit(14))
    assert not [q for q in types(rows) if q in QUARTILES]
    view = of_type(rows, E.VIEW)[1][1]  # at 13 s: 8 s before the seek, 3 s after
    assert view["playTimeSum"] == pytest.approx(11.0, abs=0.05) and view["position"] == pytest.approx(3.0, abs=0.05)


# --- reset after a long pause -------------------------------------------------------------------


def test_a_pause_of_31_s_resets_event_index_and_sums_but_keeps_the_session_id():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).stall(4, 2.0).pause(20).resume(60.5).quit(75))
    resume_at = types(rows).index(E.RESUME)
    assert rows[resume_at][1]["eventIndex"] == 1
    assert rows[resume_at][1]["bufferTimeSum"] == 0.0
    next_view = of_type(rows[resume_at:], E.VIEW)[0][1]
    assert next_view["eventIndex"] == 2 and next_view["playTimeSum"] == pytest.approx(10.5, abs=0.05)
    assert len({f["sessionId"] for _, f in rows}) == 1


def test_a_view_repeating_the_last_play_time_sum_is_not_sent():
    # playbackRate 0: the timer ticks but currentTime stands, so playTimeSum repeats the last VIEW's
    tl = Timeline(300).load(0).request(1).playing(2).act(11, 2, value=0.0, speed=0.0).quit(40)
    (rows,) = sent(tl)
    assert [f["playTimeSum"] for _, f in of_type(rows, E.VIEW)] == [0.0]


def test_a_pause_shorter_than_the_reset_keeps_counting():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).pause(20).resume(45).quit(50))
    indexes = [f["eventIndex"] for _, f in rows]
    assert indexes == list(range(1, len(rows) + 1))


def test_session_start_time_is_the_first_answer_and_a_pause_clears_it():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).pause(10.5).resume(20.7).quit(25))
    sst = [f.get("sessionStartTime") for _, f in rows]
    # the server's `time`, a float with milliseconds: its clock halfway through the round trip
    first_time = START + RESPONSE_RTT_S / 2
    assert sst[0] is None and set(sst[1:5]) == {first_time} and not first_time.is_integer()
    pause_at, resume_at = types(rows).index(E.PAUSE), types(rows).index(E.RESUME)
    assert sst[pause_at] == first_time  # PAUSE still holds it; its answer, read while paused, clears it
    assert sst[resume_at] is None
    assert set(sst[resume_at + 1 :]) == {round(START + 20.7 + RESPONSE_RTT_S / 2, 3)}


def test_events_in_one_burst_go_out_before_any_answer_sets_the_session_start_time():
    # IMPRESSION, PLAY_REQUEST and PLAY in the same instant: none has an answer yet
    (rows,) = sent(Timeline(300).load(0).request(0).playing(0).quit(20))
    assert [f.get("sessionStartTime") for _, f in rows[:4]] == [None] * 4
    assert of_type(rows, E.VIEW)[1][1]["sessionStartTime"] == START + RESPONSE_RTT_S / 2


def test_view_events_disabled_by_the_server_stops_every_view():
    (rows,) = sent(Timeline(300).load(0).request(1).playing(2).quit(60), view_events_enabled=False)
    assert E.VIEW not in types(rows) and E.PLAY in types(rows)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeline, position",
    [
        (Timeline(100).load(0).error(1), 3),
        (Timeline(100).load(0).request(1).error(3), 1),
        (Timeline(100).load(0).request(1).playing(2).error(30), 2),
    ],
)
def test_error_position_tells_where_the_player_failed(timeline, position):
    (rows,) = sent(timeline.quit(timeline.t + 1))
    error = of_type(rows, E.ERROR)[0][1]
    assert error["errorPosition"] == position and error["errorCode"] == 3016
    assert '"code":3016' in error["errorDetails"]


# --- common parameters ----------------------------------------------------------------------


def test_common_params_name_the_partner_entry_player_and_viewer():
    scenario = Scenario.model_validate(
        {
            "partner": {"partner_id": 1234, "uiconf_id": 555, "ks": "djJ8MTIzNHx"},
            "player": {"version": "3.18.2", "delivery": "dash"},
        }
    )
    (rows,) = sent(Timeline(100, user=1, entry=2).load(0).quit(1), scenarios=[scenario])
    f = rows[0][1]
    assert (f["partnerId"], f["uiConfId"], f["ks"], f["entryId"]) == (1234, 555, "djJ8MTIzNHx", "1_entry002")
    assert (f["clientVer"], f["clientTag"], f["deliveryType"], f["playbackType"]) == (
        "3.18.2",
        "html5:v3.18.2",
        "dash",
        "vod",
    )
    assert f["userId"] == "bob smith" and f["kalturaApplication"] == "21" and f["playerSkin"] == 1
    assert f["referrer"].startswith("https://") and f["playbackSpeed"] == 1.0


def test_anonymous_viewers_send_no_user_id():
    (rows,) = sent(Timeline(100, user=-1).load(0).quit(1))
    assert "userId" not in rows[0][1]


def test_live_position_is_the_negative_offset_from_the_edge_and_no_quartile_fires():
    tl = Timeline(3600, live=True).load(0)
    tl.pos = 3600 - 300  # joined 5 min behind the edge
    (rows,) = sent(tl.request(1).playing(2).quit(40))
    view = of_type(rows, E.VIEW)[1][1]
    assert view["position"] == pytest.approx(-289.0, abs=0.05) and view["playbackType"] == "dvr"
    assert not [q for q in types(rows) if q in QUARTILES]
    assert of_type(rows, E.VIEW)[0][1]["playTimeSum"] == 10  # live adds the interval per report


def test_captions_and_speed_are_carried_as_common_params_after_they_change():
    tl = Timeline(300).load(0).request(1).playing(2)
    tl.act(12, 5, value=1.0).act(11, 6, value=1.5, speed=1.5).quit(20)
    (rows,) = sent(tl)
    captions = of_type(rows, E.CAPTIONS)[0][1]
    speed = of_type(rows, E.SPEED)[0][1]
    assert captions["caption"] == "es" and speed["playbackSpeed"] == 1.5 and speed["caption"] == "es"


# --- rules over many generated sessions --------------------------------------------------------


def test_every_session_opens_with_an_impression(generated):
    _, _, per = generated
    assert all(rows and rows[0][1]["eventType"] == E.IMPRESSION for rows in per)


def test_play_request_comes_before_play_and_play_once_per_entry(generated):
    _, _, per = generated
    for rows in per:
        t = types(rows)
        assert t.count(E.PLAY) <= 1 and t.count(E.PLAY_REQUEST) <= 1
        if E.PLAY in t:
            assert E.PLAY_REQUEST in t[: t.index(E.PLAY)]


def test_no_quartile_before_play_and_each_quartile_at_most_once(generated):
    _, _, per = generated
    for rows in per:
        t = types(rows)
        for q in QUARTILES:
            assert t.count(q) <= 1
            if q in t:
                assert E.PLAY in t[: t.index(q)]


def test_buffer_end_follows_buffer_start(generated):
    _, _, per = generated
    for rows in per:
        open_buffer = False
        for etype in types(rows):
            if etype == E.BUFFER_START:
                assert not open_buffer
                open_buffer = True
            elif etype == E.BUFFER_END:
                assert open_buffer
                open_buffer = False


def test_periodic_views_are_at_least_10_s_apart_and_never_while_paused(generated):
    _, _, per = generated
    checked = 0
    for rows in per:
        paused = False
        last_view_t = None
        for t, f in rows:
            etype = f["eventType"]
            if etype == E.PAUSE:
                paused = True
            elif etype in (E.RESUME, E.ERROR, E.REPLAY):
                paused = False
            elif etype == E.VIEW:
                assert not paused
                after_play = rows[rows.index((t, f)) - 1][1]["eventType"] == E.PLAY
                if last_view_t is not None and not after_play:
                    assert t - last_view_t >= 10 - 1e-9
                    checked += 1
                last_view_t = t
    assert checked > 100


def test_no_view_is_sent_while_rebuffering(generated):
    _, _, per = generated
    for rows in per:
        buffering = False
        for _, f in rows:
            if f["eventType"] in (E.BUFFER_START, E.BUFFER_END):
                buffering = f["eventType"] == E.BUFFER_START
            assert not (buffering and f["eventType"] == E.VIEW)


def test_event_index_rises_by_one_except_where_the_plugin_resets(generated):
    _, _, per = generated
    restarts = 0
    for rows in per:
        prev, prev_type, paused = 0, None, False
        for _, f in rows:
            index, etype = f["eventIndex"], f["eventType"]
            if index != prev + 1:
                # only a long pause (the timer's reset) or an error (the plugin's reset) restarts it
                assert index == 1 and (paused or prev_type == E.ERROR), (prev, index, etype)
                restarts += 1
            if etype == E.PAUSE:
                paused = True
            elif etype in (E.RESUME, E.ERROR, E.REPLAY):
                paused = False
            prev, prev_type = index, etype
    assert restarts > 0


def test_session_ids_are_two_lowercase_guids_one_per_session(generated):
    _, _, per = generated
    ids = []
    for rows in per:
        session_ids = {f["sessionId"] for _, f in rows}
        assert len(session_ids) == 1
        (sid,) = session_ids
        assert re.fullmatch(f"{GUID}:{GUID}", sid)
        ids.append(sid)
    assert len(set(ids)) == len(ids)


def test_vod_position_stays_within_the_entry(generated):
    chunk, _, per = generated
    for s, rows in enumerate(per):
        if not chunk.sessions["live"][s]:
            d = chunk.sessions["duration"][s]
            assert all(0 <= f["position"] <= d for _, f in rows)


def test_beacons_are_in_send_order_within_a_session(generated):
    _, _, per = generated
    for rows in per:
        times = [t for t, _ in rows]
        assert times == sorted(times)


def _ledger_keys(chunk):
    """The ledger key of every row, as the column-wise encoder gives them."""
    return encode_rows(chunk, np.arange(len(chunk)))[1]


def test_ledger_keys_are_unique_even_across_resets(generated):
    _, out, _ = generated
    keys = _ledger_keys(out)
    assert len(set(keys)) == len(keys)
    assert np.count_nonzero(out.columns["eventIndex"] == 1) > len(out.columns["sessionId"].pool)  # resets happened
    assert keys[:50] == [ledger_key(beacon_at(out, i)) for i in range(50)]


def test_the_same_chunk_gives_the_same_beacons():
    timelines = random_timelines(30, seed=5)
    a = beacons(session_chunk(timelines))
    b = beacons(session_chunk(timelines))
    assert _ledger_keys(a) == _ledger_keys(b)
    assert np.array_equal(a.send_t, b.send_t)


def test_no_view_is_sent_during_an_ad_break_in_player_model_sessions():
    chunk = _model_chunk(Scenario.model_validate(ADS_SCENARIO), seed=23)
    out = beacons(chunk)
    etype = out.columns["eventType"]
    assert np.count_nonzero(etype == E.AD_STARTED) > 50
    checked = 0
    for s in range(chunk.n_sessions):
        acts = chunk.actions_of(s)
        starts = acts["t"][acts["kind"] == 30]
        ends = acts["t"][acts["kind"] == 40]
        views = out.send_t[(out.session == s) & (etype == E.VIEW)] - chunk.sessions["start"][s]
        for a, b in zip(starts, ends):
            assert not np.any((views > a) & (views < b))
            checked += 1
    assert checked > 100


def test_rows_in_send_order_are_the_grouped_rows_in_the_pipelines_send_order(generated):
    """`in_send_order=True` gives the rows `sim.generate.send_order` puts the grouped ones in,
    column by column, so files written either way are the same."""
    from sim.generate import send_order
    from sim.protocols.beacons import Strings

    chunk, grouped, _ = generated
    ordered = beacons(chunk, in_send_order=True)
    assert ordered.in_send_order and not grouped.in_send_order
    rows = send_order(grouped.send_t, chunk.sessions["session_seq"][grouped.session.astype(np.int64)])
    np.testing.assert_array_equal(ordered.send_t, grouped.send_t[rows])
    np.testing.assert_array_equal(ordered.session, grouped.session[rows])
    np.testing.assert_array_equal(ordered.ledger_index, grouped.ledger_index[rows])
    assert ordered.columns.keys() == grouped.columns.keys()
    for name, col in grouped.columns.items():
        got = ordered.columns[name]
        if isinstance(col, Strings):
            np.testing.assert_array_equal(got.codes, np.asarray(col.codes)[rows], err_msg=name)
            assert list(got.pool) == list(col.pool), name
        else:
            np.testing.assert_array_equal(got, np.asarray(col)[rows], err_msg=name)


def _columns_copy(out) -> dict:
    from sim.protocols.beacons import Strings

    got = {name: np.array(col.codes if isinstance(col, Strings) else col) for name, col in out.columns.items()}
    got["send_t"], got["session"] = np.array(out.send_t), np.array(out.session)
    return got


def _assert_same_columns(out, expected: dict) -> None:
    got = _columns_copy(out)
    assert got.keys() == expected.keys()
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def test_columns_still_held_keep_their_values_while_later_chunks_reuse_memory():
    """The float columns come out of arrays reused from chunk to chunk once nothing holds
    them: results still held (as the send-order merge and the writers hold them) must not
    change under later chunks, and a chunk made again gives the same rows."""
    # the other chunk is smaller: its columns fit in the first one's arrays
    first_chunk, other_chunk = _model_chunk(Scenario(), seed=31), _model_chunk(Scenario(), seed=32, sessions=1000)
    held = beacons(first_chunk, in_send_order=True)
    expected = _columns_copy(held)
    arrow_position = pa.array(held.columns["position"])  # an Arrow array made over a column, no copy
    for _ in range(3):
        beacons(other_chunk, in_send_order=True)
        _assert_same_columns(held, expected)
    _assert_same_columns(beacons(first_chunk, in_send_order=True), expected)
    np.testing.assert_array_equal(arrow_position.to_numpy(zero_copy_only=False), expected["position"])


def test_a_chunk_with_more_beacons_than_the_kernels_rows_runs_it_again(monkeypatch):
    """The kernel writes into rows sized from the previous chunk; a chunk that sends more
    (here: room for 0.5 beacons an action, far too few) is run again with enough rows and
    gives the same beacons as one that fit."""
    import threading

    import sim.protocols.kava.policy as policy

    chunk = _model_chunk(Scenario(), seed=33)
    expected = _columns_copy(beacons(chunk))
    monkeypatch.setattr(policy, "_SCRATCH", threading.local())
    monkeypatch.setattr(policy, "BEACONS_PER_ACTION", 0.5)
    calls = []
    run = policy._run
    monkeypatch.setattr(policy, "_run", lambda *a: calls.append(a[-3].shape[0]) or run(*a))
    _assert_same_columns(beacons(chunk), expected)
    assert len(calls) == 2 and calls[0] < calls[1]
    calls.clear()
    _assert_same_columns(beacons(chunk), expected)  # now the rows are large enough: one run
    assert len(calls) == 1


def test_events_rows_still_held_keep_their_values_while_later_chunks_reuse_memory():
    """The events builder gathers per-session values (the truth columns) into arrays reused from
    chunk to chunk once nothing holds them: a table still held keeps its values."""
    from sim.sinks import EventsBuilder

    first_chunk, other_chunk = _model_chunk(Scenario(), seed=34), _model_chunk(Scenario(), seed=35, sessions=1000)
    first = beacons(first_chunk, in_send_order=True)
    builder = EventsBuilder.for_chunks([first])
    held = builder.table(first, first_chunk)
    expected = {
        name: np.array(held.column(name).to_numpy(zero_copy_only=False))
        for name in held.column_names
        if name.startswith("truth_")
    }
    assert len(expected) > 15
    for _ in range(3):
        other = beacons(other_chunk, in_send_order=True)
        builder.table(other, other_chunk)
        for name, values in expected.items():
            np.testing.assert_array_equal(held.column(name).to_numpy(zero_copy_only=False), values, err_msg=name)
