"""KAVA beacons go on the wire as v7 players send them and come back unchanged, from any player form."""

from __future__ import annotations

import orjson
import pytest

from kava_timelines import random_timelines, session_chunk
from sim.protocols.beacons import Beacon, DecodeError, WireRequest
from sim.protocols.kava.codec import beacon_at, decode, encode, encoding_at, ledger_key, parse_response
from sim.protocols.kava.policy import beacons
from sim.scenario.model import Scenario

SID = "3f2a9c1e-0b1d-4c2e-8f3a-1b2c3d4e5f60:9b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"


@pytest.fixture(scope="module", params=["random timelines", "player model"])
def generated(request):
    if request.param == "random timelines":
        chunk = session_chunk(random_timelines(150, seed=3))
    else:
        from sim.player.model import generate_sessions

        scenario = Scenario.model_validate({"partner": {"ks": "djJ8MjUwNDIwMXx"}, "behaviour": {"play_rate": 0.8}})
        chunk = next(generate_sessions(scenario, seed=4, sessions=400, days=1))
    out = beacons(chunk)
    return [beacon_at(out, i) for i in range(len(out))]


def same(a: Beacon, b: Beacon) -> bool:
    """Equal field by field, types included (1 == 1.0 is not enough)."""

    def typed(d):
        return {k: (type(v), v) for k, v in d.items()}

    return a == b and typed(a.fields) == typed(b.fields) and typed(a.params) == typed(b.params)


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["post", "get"])
def test_every_generated_beacon_survives_its_encoding(generated, encoding):
    bad = [b for b in generated if not same(decode(encode(b, encoding)), b)]
    assert not bad, bad[0]


def test_the_scenario_chooses_get_or_post_per_beacon():
    scenario = Scenario.model_validate({"player": {"kava": {"request_method": "get"}}})
    out = beacons(session_chunk(random_timelines(3, seed=4), scenarios=[scenario]))
    assert encoding_at(out, 0) == "get"
    assert encode(beacon_at(out, 0), encoding_at(out, 0)).method == "GET"


# --- what goes on the wire -----------------------------------------------------------------------


def test_post_puts_the_four_routing_params_in_the_url_and_the_rest_in_a_json_body(generated):
    view = next(b for b in generated if b.fields["eventType"] == 99)
    req = encode(view, "post")
    path, query = req.url.split("?")
    assert path == "/api_v3/index.php"
    assert [kv.split("=")[0] for kv in query.split("&")] == [
        "service",
        "action",
        "eventType",
        "partnerId",
        "entryId",
        "sessionId",
    ]
    body = orjson.loads(req.body)
    assert list(body)[:2] == ["apiVersion", "format"] and body["apiVersion"] == "3.3.0" and body["format"] == 1
    assert not {"eventType", "partnerId", "entryId", "sessionId"} & set(body)
    assert isinstance(body["eventIndex"], int) and isinstance(body["actualBitrate"], float)
    assert req.headers["Content-Type"] == "application/json"


def test_post_writes_whole_numbers_as_javascript_does():
    b = Beacon(
        "kava",
        {
            "eventType": 99,
            "partnerId": 1,
            "entryId": "1_a",
            "sessionId": SID,
            "position": 12.0,
            "playbackSpeed": 1.0,
            "bufferTime": 0.25,
        },
        {"apiVersion": "3.3.0", "format": 1},
    )
    assert b'"position":12,' in encode(b).body and b'"bufferTime":0.25' in encode(b).body


def test_get_sends_every_param_in_the_query_encoded_with_plus_for_space(generated):
    b = generated[0]
    b = Beacon("kava", {**b.fields, "referrer": "https://learn.example.edu/course/7/lecture?id=3&t=a b"}, b.params)
    req = encode(b, "get")
    assert req.method == "GET" and req.body is None
    assert req.url.startswith("/api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1&")
    assert "referrer=https%3A%2F%2Flearn.example.edu%2Fcourse%2F7%2Flecture%3Fid%3D3%26t%3Da+b" in req.url


def test_requests_carry_the_viewer_headers(generated):
    req = encode(generated[0], "post")
    assert req.headers["User-Agent"].startswith("Mozilla/5.0")
    assert req.headers["Referer"].startswith("https://")
    assert req.headers["X-Forwarded-For"] == generated[0].client_ip and generated[0].client_ip.count(".") == 3


# --- hand-written requests of real players -------------------------------------------------------


def test_decodes_a_v7_post_view():
    req = WireRequest(
        "POST",
        "/api_v3/index.php?service=analytics&action=trackEvent&eventType=99&partnerId=2504201&entryId=1_abcd1234"
        f"&sessionId={SID.replace(':', '%3A')}",
        {
            "Content-Type": "application/json",
            "User-Agent": "Mozilla/5.0",
            "Referer": "https://site/page",
            "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
        },
        b'{"apiVersion":"3.3.0","format":1,"playTimeSum":21.047,"bufferTime":0,"bufferTimeSum":0.5,'
        b'"actualBitrate":1464.84375,"averageBitrate":1464.84375,"soundMode":2,"tabMode":2,"viewabilityMode":2,'
        b'"screenMode":1,"droppedFramesRatio":-1,"eventIndex":7,"referrer":"https://site/page","deliveryType":"hls",'
        b'"playbackType":"vod","clientVer":"3.17.0","clientTag":"html5:v3.17.0","position":23.5,"playbackSpeed":1,'
        b'"playerSkin":1,"sessionStartTime":1700000000,"uiConfId":456,"kalturaApplication":"21"}',
    )
    b = decode(req)
    assert b.fields["eventType"] == 99 and b.fields["sessionId"] == SID and b.fields["eventIndex"] == 7
    assert b.fields["playTimeSum"] == 21.047 and b.fields["bufferTime"] == 0.0 and type(b.fields["bufferTime"]) is float
    assert b.fields["playbackSpeed"] == 1.0 and b.fields["droppedFramesRatio"] == -1.0
    assert b.fields["kalturaApplication"] == "21" and b.params == {"apiVersion": "3.3.0", "format": 1}
    assert (b.user_agent, b.page_url, b.client_ip) == ("Mozilla/5.0", "https://site/page", "203.0.113.9")


def test_decodes_a_v7_get_with_empty_undefined_params():
    req = WireRequest(
        "GET",
        "/api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1&playTimeSum=10.5"
        "&bufferTime=0&bufferTimeSum=0&actualBitrate=-1&averageBitrate=0&audioLanguage=&soundMode=1&tabMode=2"
        f"&viewabilityMode=2&screenMode=1&eventType=99&partnerId=2504201&entryId=1_abcd1234&sessionId={SID}"
        "&eventIndex=4&referrer=https%3A%2F%2Fsite%2Fa+page%3Fx%3D1&deliveryType=dash&playbackType=live"
        "&clientVer=3.17.0&clientTag=html5%3Av3.17.0&position=-12.5&playbackSpeed=1&playerSkin=1&userId=alice%40x.edu",
        {"User-Agent": "Mozilla/5.0"},
    )
    b = decode(req)
    assert b.fields["audioLanguage"] == ""  # undefined, named on the wire: kept as sent
    assert "audioLanguage" not in orjson.loads(encode(b, "post").body)  # JSON.stringify drops undefined
    assert "&audioLanguage=&" in encode(b, "get").url
    assert b.fields["referrer"] == "https://site/a page?x=1" and b.fields["userId"] == "alice@x.edu"
    assert b.fields["position"] == -12.5 and b.fields["actualBitrate"] == -1.0 and b.fields["soundMode"] == 1
    assert b.fields["partnerId"] == 2504201 and type(b.fields["partnerId"]) is int


def test_decodes_an_mwembed_kanalony_get_with_its_base_params():
    req = WireRequest(
        "GET",
        "/api_v3/index.php?service=analytics&apiVersion=3.1&expiry=86400&clientTag=kwidget%3Av2.101&format=1"
        "&ignoreNull=1&action=trackEvent&eventType=3&partnerId=243342&entryId=1_sf5ovm7u"
        f"&sessionId={SID}&eventIndex=3&flavorId=1_8z3vnbvw&referrer=https%3A%2F%2Fsite%2Fv&deliveryType=hls"
        "&playbackType=vod&position=0&bufferTime=0.2&bufferTimeSum=0.2&actualBitrate=800&joinTime=1.2"
        "&kalsig=5d41402abc4b2a76b9719d911017c592",
        {},
    )
    b = decode(req)
    assert b.params == {
        "apiVersion": "3.1",
        "expiry": 86400,
        "format": 1,
        "ignoreNull": 1,
        "kalsig": "5d41402abc4b2a76b9719d911017c592",
    }
    assert b.fields["clientTag"] == "kwidget:v2.101" and b.fields["flavorId"] == "1_8z3vnbvw"
    assert b.fields["joinTime"] == 1.2 and b.fields["eventType"] == 3


def test_decodes_an_mwembed_post_with_literal_url_values_and_an_object_error_details():
    req = WireRequest(
        "POST",
        f"/api_v3/index.php?service=analytics&action=trackEvent&eventType=98&partnerId=243342&entryId=1_sf5ovm7u&sessionId={SID}",
        {"content-type": "application/json;charset=UTF-8"},
        b'{"eventIndex":"5","errorCode":7003,"errorDetails":{"code":7003,"severity":2},"errorPosition":2,'
        b'"position":"31.2","clientTag":"kwidget:v2.101","apiVersion":"3.1","format":1}',
    )
    b = decode(req)
    assert b.fields["eventIndex"] == 5 and b.fields["position"] == 31.2
    assert orjson.loads(b.fields["errorDetails"]) == {"code": 7003, "severity": 2}


def test_decodes_the_rest_style_path_and_a_form_body():
    req = WireRequest(
        "POST",
        "/api_v3/service/analytics/action/trackEvent",
        {"Content-Type": "application/x-www-form-urlencoded"},
        f"eventType=2&partnerId=1&entryId=1_a&sessionId={SID}&eventIndex=2&position=0".encode(),
    )
    b = decode(req)
    assert b.fields["eventType"] == 2 and b.fields["position"] == 0.0


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&eventType=3", {}),
            "not analytics.trackEvent",
        ),
        (
            WireRequest(
                "GET",
                f"/api_v3/index.php?service=analytics&action=trackEvent&eventType=3&partnerId=1&sessionId={SID}",
                {},
            ),
            "missing entryId",
        ),
        (
            WireRequest(
                "GET",
                "/api_v3/index.php?service=analytics&action=trackEvent&eventType=three&partnerId=1&entryId=a&sessionId=s",
                {},
            ),
            "parameter eventType",
        ),
        (
            WireRequest(
                "GET",
                "/api_v3/index.php?service=analytics&action=trackEvent&eventType=3&partnerId=1&entryId=a&sessionId=s&position=x",
                {},
            ),
            "parameter position",
        ),
        (
            WireRequest(
                "POST",
                "/api_v3/index.php?service=analytics&action=trackEvent",
                {"Content-Type": "application/json"},
                b"{nope",
            ),
            "body: not JSON",
        ),
        (
            WireRequest(
                "POST",
                "/api_v3/index.php?service=analytics&action=trackEvent",
                {"Content-Type": "application/json"},
                b"[1]",
            ),
            "expected a JSON object",
        ),
    ],
)
def test_malformed_requests_raise_a_decode_error_naming_the_problem(request_, message):
    with pytest.raises(DecodeError, match=message):
        decode(request_)


# A GET VIEW of the real player (kaltura-player-js 3.17.95 + playkit-js-kava 0.15.1 in Chromium),
# as it reached the beacon endpoint: a float sessionStartTime and the empty undefined keys.
REAL_GET_VIEW = (
    "/api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1&playTimeSum=10.966436"
    "&bufferTime=0&bufferTimeSum=0&actualBitrate=-1&averageBitrate=0&audioLanguage=&captionsLanguage="
    "&soundMode=2&tabMode=2&playbackSpeed=1&droppedFramesRatio=0.004&networkConnectionType=4g&eventType=99"
    "&partnerId=1980101&entryId=1_oracle24&sessionId=f2b23252-abc4-510c-ed07-830ba108818b%3A07098b07-0f34-f8f0-"
    "d584-9345e5ba0a2b&eventIndex=6&referrer=http%3A%2F%2Flocalhost%3A39033%2Foracle%2Freplay-get.html%3Fcampaign"
    "%3Doracle&deliveryType=url&playbackType=vod&clientVer=3.17.95&clientTag=html5%3Av3.17.95&position=10.966436"
    "&sessionStartTime=1796166941.453&uiConfId=47306783"
)


def test_a_real_players_get_view_decodes_with_its_float_session_start_time_and_goes_out_unchanged():
    b = decode(WireRequest("GET", REAL_GET_VIEW, {}))
    assert b.fields["sessionStartTime"] == 1796166941.453
    assert (b.fields["audioLanguage"], b.fields["captionsLanguage"]) == ("", "")
    assert b.fields["networkConnectionType"] == "4g" and b.fields["droppedFramesRatio"] == 0.004
    assert encode(b, "get").url == REAL_GET_VIEW


def test_a_float_session_start_time_stays_exact_through_post_and_get():
    b = Beacon(
        "kava",
        {
            "eventType": 3,
            "partnerId": 1,
            "entryId": "1_a",
            "sessionId": SID,
            "eventIndex": 3,
            "position": 0.0,
            "sessionStartTime": 1796166940.224,
        },
        {"apiVersion": "3.3.0", "format": 1},
    )
    post = encode(b, "post")
    assert b'"sessionStartTime":1796166940.224' in post.body
    assert "sessionStartTime=1796166940.224" in encode(b, "get").url
    for request in (post, encode(b, "get")):
        assert decode(request).fields["sessionStartTime"] == 1796166940.224
    # a whole-second answer stays a number JavaScript writes without ".0"
    whole = Beacon("kava", {**b.fields, "sessionStartTime": 1700000000.0}, b.params)
    assert b'"sessionStartTime":1700000000,' in encode(whole, "post").body or encode(whole, "post").body.endswith(
        b'"sessionStartTime":1700000000}'
    )


def test_a_015_get_view_names_the_undefined_languages_and_a_post_leaves_them_out():
    scenario = Scenario.model_validate({"player": {"kava": {"version": "0.15"}}})
    tl = random_timelines(6, seed=5)
    out = beacons(session_chunk(tl, scenarios=[scenario]))
    views = [i for i in range(len(out)) if out.columns["eventType"][i] == 99]
    assert views and all(encoding_at(out, i) == "get" for i in views)  # 0.15's default
    for i in views:
        b = beacon_at(out, i)
        url = encode(b, "get").url
        assert "&audioLanguage=&" in url and ("&captionsLanguage=&" in url or "&captionsLanguage=" in url)
        assert same(decode(encode(b, "get")), b)
        assert "audioLanguage" not in orjson.loads(encode(b, "post").body)


# --- the server's answer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"time":1700000000,"viewEventsEnabled":true}', (1700000000, True)),
        (b'{"time":1700000000.25,"viewEventsEnabled":false}', (1700000000.25, False)),
        (b"1700000000", (1700000000, True)),
        (b"1700000000.731", (1700000000.731, True)),
        (b'{"time":1700000000}', (1700000000, False)),  # kava.ts assigns the missing flag: VIEWs stop
    ],
)
def test_parse_response_reads_both_shapes(body, expected):
    assert parse_response(body) == expected


@pytest.mark.parametrize(
    "body", [b"<xml/>", b'{"code":"INVALID_KS","message":"bad","objectType":"KalturaAPIException"}', b'"text"', b"true"]
)
def test_parse_response_rejects_anything_else(body):
    with pytest.raises(DecodeError):
        parse_response(body)


# --- ledger keys -----------------------------------------------------------------------------------


def test_the_ledger_key_is_the_same_before_and_after_the_wire(generated):
    for b in generated[:200]:
        assert ledger_key(decode(encode(b, "get"))) == ledger_key(b) == ledger_key(decode(encode(b, "post")))
