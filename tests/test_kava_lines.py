"""The two kava plugin lines (`player.kava.version`) and what a real player's beacons carry.

The 0.15 expectations are what the real player (kaltura-player-js 3.17.95 + playkit-js-kava
0.15.1 in Chromium, GET) sent for a progressive mp4; the current line's differences are
cited in sim/protocols/kava/policy.py from the plugin's source.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from helpers.collector import running_collector
from kava_timelines import Timeline, session_chunk
from sim.protocols.kava.codec import beacon_at, encode, encoding_at
from sim.protocols.kava.policy import EventType as E, beacons
from sim.scenario.errors import ScenarioError
from sim.scenario.model import KavaSettings, Scenario

COMMON_015 = {
    "service",
    "action",
    "apiVersion",
    "format",
    "eventType",
    "partnerId",
    "entryId",
    "sessionId",
    "eventIndex",
    "referrer",
    "deliveryType",
    "playbackType",
    "clientVer",
    "clientTag",
    "position",
    "uiConfId",
}
# The parameter set per event type of the real player's GET beacons (sessionStartTime where it held one).
REAL_015_GET = {
    E.IMPRESSION: COMMON_015,
    E.PLAY_REQUEST: COMMON_015 | {"sessionStartTime"},
    E.PLAY: COMMON_015
    | {
        "sessionStartTime",
        "bufferTime",
        "bufferTimeSum",
        "actualBitrate",
        "joinTime",
        "canPlay",
        "networkConnectionType",
    },
    E.VIEW: COMMON_015
    | {
        "sessionStartTime",
        "playTimeSum",
        "bufferTime",
        "bufferTimeSum",
        "actualBitrate",
        "averageBitrate",
        "audioLanguage",
        "captionsLanguage",
        "soundMode",
        "tabMode",
        "playbackSpeed",
        "droppedFramesRatio",
        "networkConnectionType",
    },
    E.PLAY_REACHED_25: COMMON_015 | {"sessionStartTime"},
    E.PLAY_REACHED_50: COMMON_015 | {"sessionStartTime"},
    E.PLAY_REACHED_75: COMMON_015 | {"sessionStartTime"},
    E.PLAY_REACHED_100: COMMON_015 | {"sessionStartTime"},
    E.PAUSE: COMMON_015 | {"sessionStartTime"},
    E.SEEK: COMMON_015 | {"targetPosition"},  # in the replay burst: no sessionStartTime
    E.BUFFER_START: COMMON_015,
    E.BUFFER_END: COMMON_015,
    E.REPLAY: COMMON_015,
    E.RESUME: COMMON_015 | {"bufferTime", "bufferTimeSum", "actualBitrate"},  # after the 36 s pause's reset
}
OLD = {"player": {"kava": {"version": "0.15"}, "delivery": "url", "version": "3.17.95"}}


def wire(timelines, scenario: dict):
    """Every beacon as (event type, query+body params as sent, encoding)."""
    out = beacons(session_chunk(timelines, scenarios=[Scenario.model_validate(scenario)]))
    rows = []
    for i in range(len(out)):
        request = encode(beacon_at(out, i), encoding_at(out, i))
        params = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        if request.body:
            params.update(orjson.loads(request.body))
        rows.append((int(params["eventType"]), params, request.method, int(out.session[i])))
    return rows


def typical(user: int = -1, duration: float = 24):
    return [
        Timeline(duration, user=user).load(0).request(1.8).playing(1.85).ended().replay(27.9).pause(36.1).quit(38),
        Timeline(duration, user=user).load(0).request(1).playing(1.2).pause(5).resume(45).quit(50),
    ]


# --- the scenario setting ------------------------------------------------------------------------------


def test_the_version_picks_the_request_method_unless_one_is_given():
    assert KavaSettings().version == "current" and KavaSettings().method == "post"
    assert KavaSettings(version="0.15").method == "get"
    assert KavaSettings(version="0.15", request_method="post").method == "post"
    assert KavaSettings.model_validate({"version": 0.15}).version == "0.15"  # YAML `version: 0.15`


def test_an_unknown_version_is_refused_naming_the_field(tmp_path):
    from sim.scenario.loader import load

    path = tmp_path / "s.yaml"
    path.write_text("player:\n  kava:\n    version: '1.2'\n")
    with pytest.raises(ScenarioError) as err:
        load(path)
    assert "player.kava.version" in str(err.value) and "0.15" in str(err.value)


def test_the_json_schema_offers_both_lines():
    from sim.cli.schema import scenario_schema

    kava = scenario_schema()["$defs"]["KavaSettings"]["properties"]
    assert kava["version"]["enum"] == ["0.15", "current"] and kava["version"]["default"] == "current"


# --- the 0.15 line matches the real player --------------------------------------------------------------


def test_015_get_sends_the_real_players_parameter_set_per_event_type():
    seen: dict[int, set] = {}
    for etype, params, method, _ in wire(typical(), OLD):
        assert method == "GET"
        seen.setdefault(etype, set()).add(frozenset(params))
    for etype, keys in REAL_015_GET.items():
        assert frozenset(keys) in seen.pop(etype), etype
    assert not seen, f"event types the real player did not send: {sorted(seen)}"


def test_015_get_view_names_the_undefined_languages_empty_and_post_leaves_them_out():
    get = [p for e, p, _, _ in wire(typical(), OLD) if e == E.VIEW]
    assert get and all(p["audioLanguage"] == "" and p["captionsLanguage"] == "" for p in get)
    post = [
        p
        for e, p, _, _ in wire(
            typical(), {**OLD, "player": {**OLD["player"], "kava": {"version": "0.15", "request_method": "post"}}}
        )
        if e == E.VIEW
    ]
    assert post and not [p for p in post if "audioLanguage" in p or "captionsLanguage" in p]


def test_015_sends_no_90_percent_no_fullscreen_and_a_pre_playing_error_position_1():
    tl = Timeline(100, user=-1).load(0).request(1).playing(2)
    tl.act(9, 5, screen=2).act(10, 6, screen=1).act(15, 7)
    rows = wire([tl.ended().quit(110), Timeline(100).load(0).error(1).quit(2)], OLD)
    types = [e for e, _, _, s in rows if s == 0]
    assert E.PLAY_REACHED_90 not in types and E.PLAY_REACHED_100 in types
    assert not {E.ENTER_FULLSCREEN, E.EXIT_FULLSCREEN, E.SHARE_CLICKED} & set(types)
    assert [p["errorPosition"] for e, p, _, s in rows if e == E.ERROR] == ["1"]


def test_015_views_go_on_through_a_rebuffer_and_current_views_do_not():
    tl = Timeline(300, user=-1).load(0).request(1).playing(2).stall(10, 12.0).quit(40)
    old = [(p, s) for e, p, _, s in wire([tl], OLD) if e == E.VIEW]
    current = [p for e, p, _, _ in wire([tl], {"player": {"delivery": "url"}}) if e == E.VIEW]
    stalled = [p for p, _ in old if p["position"] == "8"]
    assert len(stalled) == 1 and float(stalled[0]["bufferTime"]) == pytest.approx(3.0, abs=0.01)  # 10..13 s
    assert not [p for p in current if p["position"] == 8]


def test_a_run_mixing_both_lines_goes_into_the_events_table():
    from sim.sinks import EventsBuilder

    scenarios = [Scenario.model_validate(OLD), Scenario()]
    chunk = session_chunk(
        [
            Timeline(60, scenario=0).load(0).request(1).playing(2).quit(30),
            Timeline(60, scenario=1).load(0).request(1).playing(2).quit(30),
        ],
        scenarios=scenarios,
    )
    out = beacons(chunk)
    table = EventsBuilder.for_chunks([out]).table(out, chunk)
    skins = table.column("playerSkin").to_pylist()
    assert None in skins and 1 in skins
    assert "" in table.column("audioLanguage").to_pylist()


# --- the current line ---------------------------------------------------------------------------------


def test_current_line_adds_the_common_params_and_view_modes_of_its_source():
    rows = wire(typical(user=0), {"player": {"delivery": "url"}})
    assert all(m == "POST" for _, _, m, _ in rows)
    assert all(p["playerSkin"] == 1 and p["kalturaApplication"] == "21" and "playbackSpeed" in p for _, p, _, _ in rows)
    views = [p for e, p, _, _ in rows if e == E.VIEW]
    assert all({"viewabilityMode", "screenMode"} <= set(p) and "captionsLanguage" not in p for p in views)
    assert E.PLAY_REACHED_90 in {e for e, _, _, _ in rows}
    assert rows[0][1]["loadedPlugins"] == "kava"


def test_network_connection_type_comes_from_chromium_browsers_off_ios_only():
    # population(): user agent 0 is Chrome on Windows, 1 Safari on iOS
    for scenario, method in (({}, "POST"), ({"player": {"kava": {"request_method": "get"}}}, "GET")):
        chunk = session_chunk(
            [Timeline(60).load(0).request(1).playing(2).quit(30)] * 2, scenarios=[Scenario.model_validate(scenario)]
        )
        chunk.sessions["browser"][:] = [0, 1]
        chunk.sessions["os"][:] = [0, 1]
        chunk.sessions["impaired"][:] = [True, False]
        out = beacons(chunk)
        for i in range(len(out)):
            b = beacon_at(out, i)
            etype, session = b.fields["eventType"], int(out.session[i])
            conn = b.fields.get("networkConnectionType")
            if etype not in (E.PLAY, E.VIEW):
                assert conn is None
            elif session == 0:
                assert conn == "3g"  # effectiveType of the impaired network
            else:
                assert conn == ("" if method == "GET" else None)


# --- quality figures ---------------------------------------------------------------------------------


def test_adaptive_streams_fill_the_quality_fields_from_the_bitrate_and_network():
    rows = wire(
        [Timeline(300).load(0).request(1).playing(2).seek(30, to=100).quit(80)], {"player": {"delivery": "hls"}}
    )
    views = [p for e, p, _, _ in rows if e == E.VIEW]
    assert len(views) >= 6
    first, periodic = views[0], views[1:]
    assert first["manifestDownloadTime"] > 0 and first["networkConnectionOverhead"] > 0
    assert not [p for p in periodic if "manifestDownloadTime" in p]  # VOD: one manifest, before PLAY
    for p in views:
        assert 0 < p["forwardBufferHealth"] <= 1 and p["targetBuffer"] == 30
        assert p["bandwidth"] > 1500 and 0 < p["segmentDownloadTime"] < 6  # faster than real time
        assert p["droppedFramesRatio"] >= 0
    # the buffer fills after the start and again after the seek
    assert views[1]["forwardBufferHealth"] > first["forwardBufferHealth"]
    after_seek = [p for p in periodic if p["position"] > 100]
    assert after_seek[0]["forwardBufferHealth"] < views[2]["forwardBufferHealth"]


def test_progressive_playback_has_no_adapter_figures_but_dropped_frames():
    views = [
        p
        for e, p, _, _ in wire([Timeline(300).load(0).request(1).playing(2).quit(80)], {"player": {"delivery": "url"}})
        if e == E.VIEW
    ]
    assert views and all("droppedFramesRatio" in p for p in views)
    assert not [
        p
        for p in views
        if {
            "forwardBufferHealth",
            "targetBuffer",
            "bandwidth",
            "segmentDownloadTime",
            "manifestDownloadTime",
            "networkConnectionOverhead",
        }
        & set(p)
    ]
    assert views[0]["droppedFramesRatio"] == 0  # no frames yet before the first report


def test_quality_fields_are_the_same_for_the_same_seed():
    a = wire([Timeline(300).load(0).request(1).playing(2).quit(80)], {"player": {"delivery": "dash"}})
    b = wire([Timeline(300).load(0).request(1).playing(2).quit(80)], {"player": {"delivery": "dash"}})
    assert a == b


# --- a real player's beacons in the collector --------------------------------------------------------

REAL_PLAY_POST = (
    "/api_v3/index.php?service=analytics&action=trackEvent&eventType=3&partnerId=1980101&entryId=1_oracle24"
    "&sessionId=f2b23252-abc4-510c-ed07-830ba108818b%3A07098b07-0f34-f8f0-d584-9345e5ba0a2b",
    b'{"apiVersion":"3.3.0","format":1,"bufferTime":0,"bufferTimeSum":0,"actualBitrate":-1,"joinTime":0.078,'
    b'"canPlay":0.331,"networkConnectionType":"4g","eventIndex":3,"referrer":"http://localhost:39033/oracle/r.html",'
    b'"deliveryType":"url","playbackType":"vod","clientVer":"3.17.95","clientTag":"html5:v3.17.95","position":0,'
    b'"sessionStartTime":1796166940.224,"uiConfId":47306783}',
)
REAL_VIEW_GET = (
    "/api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1&playTimeSum=10.966436"
    "&bufferTime=0&bufferTimeSum=0&actualBitrate=-1&averageBitrate=0&audioLanguage=&captionsLanguage="
    "&soundMode=2&tabMode=2&playbackSpeed=1&droppedFramesRatio=0.004&networkConnectionType=4g&eventType=99"
    "&partnerId=1980101&entryId=1_oracle24&sessionId=f2b23252-abc4-510c-ed07-830ba108818b%3A07098b07-0f34-f8f0-"
    "d584-9345e5ba0a2b&eventIndex=6&referrer=http%3A%2F%2Flocalhost%3A39033%2Foracle%2Fr.html&deliveryType=url"
    "&playbackType=vod&clientVer=3.17.95&clientTag=html5%3Av3.17.95&position=10.966436"
    "&sessionStartTime=1796166941.453&uiConfId=47306783"
)


def test_the_collector_accepts_a_real_players_float_session_start_time_on_get_and_post(tmp_path):
    with running_collector(tmp_path / "c.duckdb") as c:
        for method, url, body in (("GET", REAL_VIEW_GET, None), ("POST", *REAL_PLAY_POST)):
            request = urllib.request.Request(
                c.url + url, data=body, method=method, headers={"Content-Type": "application/json"} if body else {}
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert isinstance(orjson.loads(answer.read())["time"], float)
        c.stop()
        rows = c.rows(
            'SELECT "eventType", accepted, flags, "sessionStartTime", "audioLanguage", '
            '"networkConnectionType", "droppedFramesRatio" FROM events ORDER BY "eventType"'
        )
    assert [(r["eventType"], r["accepted"], r["flags"]) for r in rows] == [(3, True, None), (99, True, None)]
    assert [r["sessionStartTime"] for r in rows] == [1796166940.224, 1796166941.453]
    assert (rows[1]["audioLanguage"], rows[1]["networkConnectionType"], rows[1]["droppedFramesRatio"]) == (
        "",
        "4g",
        0.004,
    )
