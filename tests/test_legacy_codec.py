"""The legacy stats codec: each player's bytes on the wire, and decoding them (and real traffic) back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from legacy_timelines import FLAVORS, Timeline, chunk_of, generated
from sim.protocols.beacons import Beacon, DecodeError, WireRequest
from sim.protocols.legacy.codec import ENCODINGS, beacon_at, decode, encode, ledger_key
from sim.protocols.legacy.policy import beacons

# Two stats.collect requests from KDP 3.5.7.1 in a 2011 Apache access log
# (kaltura/dwh:tests/source/pa-apache1-ssl_access_log-2011-06-18.log): request line, User-Agent, uv cookie.
KDP_2011_QUARTILE = (
    "//api_v3/index.php?service=stats&action=collect&event%3Auid=72FB9B49%2D1B8A%2D407F%2D132A%2D9C6C15F38FD9"
    "&event%3ApartnerId=156652&event%3Aduration=403&event%3AobjectType=KalturaStatsEvent"
    "&event%3AcurrentPoint=199800&event%3Areferrer=https%253A%2F%2Fbyuh%2Einstructure%2Ecom%2Fcourses%2F36824"
    "%2Fquizzes%2F38106&event%3AclientVer=3%2E0%3Av3%2E5%2E7%2E1&event%3AuiconfId=3309432"
    "&event%3AeventTimestamp=1308294351787&clientTag=kdp%3Av3%2E5%2E7%2E1"
    "&event%3AsessionId=1E83138E%2DD43C%2D8DBB%2D407C%2D9C68E52DDFBE"
    "&ks=NDRjNGE2MzZhNmMwM2Q0N2ZlNzM2YTI0ZjgwNzg0MGMyMzkwYWM3OXwxNTY2NTI7MTU2NjUyOzEzMDgzODA1NzA7MDsxMzA4Mjk0MTcwLjYw"
    "MDI7MDt2aWV3Oio7Ow%3D%3D&event%3AentryId=0%5F4lxrbaw9&event%3AisFirstInSession=false&event%3AeventType=5"
    "&ignoreNull=1&event%3Aseek=false&event%3AapplicationId=myApp1"
)
KDP_2011_WIDGET_LOADED = (
    "//api_v3/index.php?service=stats&action=collect&ignoreNull=1&event%3AentryId=0%5F4lxrbaw9"
    "&event%3Areferrer=https%253A%2F%2Fbyuh%2Einstructure%2Ecom%2Fcourses%2F36824%2Fquizzes%2F38106"
    "&event%3AisFirstInSession=false&event%3ApartnerId=156652&event%3AeventType=1"
    "&event%3AobjectType=KalturaStatsEvent&event%3AsessionId=23DB108F%2DC99B%2D62AE%2D7844%2D9C719B48E891"
    "&event%3Aduration=0&event%3Aseek=false&event%3AcurrentPoint=0&event%3AuiconfId=3309432"
    "&clientTag=kdp%3Av3%2E5%2E7%2E1&event%3Auid=A0DCC197%2D6FC4%2D3D0D%2DE3EE%2D9C71A28BE211"
    "&event%3AeventTimestamp=1308294715459&event%3AclientVer=3%2E0%3Av3%2E5%2E7%2E1"
)
KDP_2011_HEADERS = {
    "User-Agent": "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.2.17) Gecko/20110420 Firefox/3.6.17 "
    "(.NET CLR 3.5.30729) SearchToolbar/1.2",
    "Cookie": "uv=uv_76b016dce56c0f6047945bcaf68cf7f7",
    "X-Forwarded-For": "72.235.218.12",
}


def sample_rows(b, n: int = 120, seed: int = 0) -> np.ndarray:
    """The first beacon of every event type plus a random sample: every kind of row, quickly."""
    _, first = np.unique(b.columns["eventType"], return_index=True)
    picked = np.random.default_rng(seed).choice(len(b), size=min(n, len(b)), replace=False)
    return np.union1d(first, picked)


@pytest.fixture(scope="module", params=FLAVORS)
def generated_beacons(request):
    return request.param, beacons(generated(request.param), with_kava=True)


def one(flavor: str, row: int = 0, **kw) -> Beacon:
    tl = Timeline().load(0).request(1).playing(2).seek(20, to=31.4159).quit(40)
    return beacon_at(beacons(chunk_of([tl], flavor, **kw), with_kava=True), row)


# --- round trip -------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_decode_gives_back_the_encoded_beacon_field_by_field_with_types(generated_beacons, encoding):
    _, b = generated_beacons
    for i in sample_rows(b):
        beacon = beacon_at(b, int(i))
        back = decode(encode(beacon, encoding))
        assert back == beacon
        assert {k: type(v) for k, v in back.fields.items()} == {k: type(v) for k, v in beacon.fields.items()}
        assert {k: type(v) for k, v in back.params.items()} == {k: type(v) for k, v in beacon.params.items()}


def test_ledger_keys_are_unique_over_generated_sessions_of_every_flavor():
    keys, n = set(), 0
    for flavor in FLAVORS:
        b = beacons(generated(flavor), with_kava=True)
        n += len(b)
        keys |= {ledger_key(beacon_at(b, i)) for i in range(len(b))}
    assert len(keys) == n


def test_the_ledger_key_survives_the_wire():
    b = one("v7", row=4)
    assert ledger_key(decode(encode(b, "get"))) == ledger_key(b)
    assert ledger_key(b) == "|".join([b.fields["sessionId"], "4", str(b.fields["eventTimestamp"]), "31.4159"])


# --- each player's bytes ---------------------------------------------------------------------------


def test_kdp_get_uses_the_double_slash_path_and_flash_url_variables():
    req = encode(one("kdp", version="3.5.7.1"))
    assert req.method == "GET"
    assert req.url.startswith("//api_v3/index.php?service=stats&action=collect&kalsig=")
    assert "event%3AclientVer=3%2E0%3Av3%2E5%2E7%2E1" in req.url
    assert "event%3AentryId=1%5Flecture01" in req.url
    assert "clientTag=kdp%3Av3%2E5%2E7%2E1" in req.url


def test_kdp_escapes_the_referrer_once_more_and_the_user_id_once():
    url = encode(one("kdp")).url
    assert (
        "event%3Areferrer=https%253A%2F%2Flearn%2Eexample%2Eedu%2Fcourse%2F7%2Flecture%253Fid%253D3%2526t%253Da%2520b"
        in url
    )
    assert "event%3AuserId=alice%40example%2Eedu" in url


def test_mwembed_get_follows_kwidget_api_order_with_literal_event_keys():
    url = encode(one("mwembed", version="2.80")).url
    path, query = url.split("?", 1)
    assert path == "/api_v3/index.php"
    keys = [pair.split("=", 1)[0] for pair in query.split("&")]
    assert keys[:7] == ["service", "apiVersion", "expiry", "clientTag", "format", "ignoreNull", "action"]
    assert keys[7:9] == ["event:eventType", "event:clientVer"]
    assert keys[-2:] == ["hasKanalony", "kalsig"]
    assert "clientTag=kwidget%3Av2.80" in query


def test_mwembed_encodes_referrer_and_user_id_twice():
    query = encode(one("mwembed")).url
    assert "event:referrer=https%253A%252F%252Flearn.example.edu%252Fcourse%252F7%252Flecture&" in query
    assert "event:userId=alice%2540example.edu&" in query


def test_v7_get_encodes_keys_and_writes_spaces_as_plus():
    tl = Timeline().load(0).quit(1)
    b = beacon_at(beacons(chunk_of([tl], "v7", version="0.37.0")), 0)
    query = encode(b).url.split("?", 1)[1]
    assert query.startswith("service=stats&action=collect&apiVersion=3.3.0&format=1&ks=&clientTag=html5%3Av0.37.0&")
    assert "event%3AeventType=1&" in query and "event%3AuiConfId=47313123" in query
    assert "event%3Areferrer=https%3A%2F%2Flearn.example.edu%2Fcourse%2F7%2Flecture%3Fid%3D3%26t%3Da+b" in query


def test_only_kdp_and_v7_match_the_apache_short_circuit():
    assert "service=stats&action=collect" in encode(one("kdp")).url
    assert "service=stats&action=collect" in encode(one("v7")).url
    assert "service=stats&action=collect" not in encode(one("mwembed")).url


def test_v7_sends_float_seconds_as_javascript_writes_them():
    query = encode(one("v7", row=4)).url
    assert "event%3AcurrentPoint=31.4159&" in query
    assert "event%3Aduration=100&" in query


def test_form_is_a_post_of_the_same_parameters_to_index_php():
    b = one("mwembed")
    get, form = encode(b, "get"), encode(b, "form")
    assert form.method == "POST" and form.url == "/api_v3/index.php?service=stats"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert get.url.endswith(form.body.decode())


def test_mwembed_posts_a_form_when_its_get_would_exceed_2000_characters():
    short, long_ = one("mwembed"), one("mwembed", ks="x" * 2000)
    assert encode(short, "get").method == "GET"
    req = encode(long_, "get")
    assert req.method == "POST" and req.url == "/api_v3/index.php?service=stats"
    assert decode(req) == long_
    assert encode(one("v7", ks="x" * 2000), "get").method == "GET"


def test_json_is_what_the_python_client_posts():
    req = encode(one("kdp", ks="djJ8MTIzfA=="), "json")
    assert req.method == "POST" and req.url == "/api_v3/service/stats/action/collect"
    assert req.headers["Content-Type"] == "application/json"
    body = json.loads(req.body)
    assert list(body) == ["clientTag", "apiVersion", "ignoreNull", "partnerId", "event", "ks", "kalsig"]
    assert list(body["event"]) == sorted(body["event"])
    assert body["event"]["seek"] == "False" and body["event"]["eventType"] == "1"
    assert body["event"]["referrer"] == "https://learn.example.edu/course/7/lecture?id=3&t=a b"


def test_requests_carry_the_viewer_context_headers():
    b = one("v7")
    for encoding in ENCODINGS:
        h = encode(b, encoding).headers
        assert h["User-Agent"] == b.user_agent and h["Referer"] == b.page_url
        assert h["Cookie"].startswith("uv=uv_") and h["X-Forwarded-For"] == "203.0.113.7"


# --- decoding real and unusual requests --------------------------------------------------------------


def test_a_2011_kdp_quartile_line_decodes_to_typed_fields():
    b = decode(WireRequest("GET", KDP_2011_QUARTILE, dict(KDP_2011_HEADERS)))
    assert b.fields == {
        "uid": "72FB9B49-1B8A-407F-132A-9C6C15F38FD9",
        "partnerId": 156652,
        "duration": 403,
        "objectType": "KalturaStatsEvent",
        "currentPoint": 199800,
        "referrer": "https://byuh.instructure.com/courses/36824/quizzes/38106",
        "clientVer": "3.0:v3.5.7.1",
        "uiconfId": 3309432,
        "eventTimestamp": 1308294351787,
        "sessionId": "1E83138E-D43C-8DBB-407C-9C68E52DDFBE",
        "entryId": "0_4lxrbaw9",
        "isFirstInSession": False,
        "eventType": 5,
        "seek": False,
        "applicationId": "myApp1",
    }
    assert b.params["clientTag"] == "kdp:v3.5.7.1" and b.params["ignoreNull"] == 1
    assert b.params["ks"].endswith("==")
    assert b.cookie == "uv=uv_76b016dce56c0f6047945bcaf68cf7f7" and b.client_ip == "72.235.218.12"


def test_a_2011_kdp_widget_loaded_line_survives_a_re_encoding():
    b = decode(WireRequest("GET", KDP_2011_WIDGET_LOADED, dict(KDP_2011_HEADERS)))
    assert b.fields["eventType"] == 1 and b.fields["duration"] == 0
    again = encode(b, "get")
    assert "event%3Areferrer=https%253A%2F%2Fbyuh%2Einstructure%2Ecom%2Fcourses" in again.url
    assert decode(again) == b


def test_the_path_form_of_the_action_is_understood():
    req = WireRequest("GET", "/api_v3/index.php/service/stats/action/collect?event:eventType=3&event:partnerId=1", {})
    assert decode(req).fields == {"eventType": 3, "partnerId": 1}


def test_url_parameters_win_over_the_form_body():
    req = WireRequest(
        "POST",
        "/api_v3/index.php?service=stats&action=collect&event:eventType=3",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"event:eventType=4&event:partnerId=9",
    )
    assert decode(req).fields == {"eventType": 3, "partnerId": 9}


def test_json_from_another_client_gets_the_server_types():
    body = {
        "clientTag": "python-26-10-22",
        "format": "2",
        "event": {"eventType": "3", "currentPoint": "1500", "duration": "12.5", "seek": "True"},
    }
    b = decode(
        WireRequest(
            "POST",
            "/api_v3/service/stats/action/collect",
            {"Content-Type": "application/json"},
            json.dumps(body).encode(),
        )
    )
    assert b.fields == {"eventType": 3, "currentPoint": 1500, "duration": 12.5, "seek": True}
    assert b.params == {"clientTag": "python-26-10-22", "format": 2}


def test_a_case_insensitive_action_and_plus_for_space_are_accepted():
    req = WireRequest("GET", "/api_v3/index.php?service=stats&action=Collect&event:eventType=2&event:entryId=a+b", {})
    assert decode(req).fields == {"eventType": 2, "entryId": "a b"}


@pytest.mark.parametrize(
    "request_, message",
    [
        (WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&ks=x", {}), "missing parameter event"),
        (
            WireRequest("GET", "/api_v3/index.php?service=analytics&action=trackEvent&eventType=1", {}),
            "not stats.collect",
        ),
        (
            WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=three", {}),
            "event:eventType",
        ),
        (
            WireRequest(
                "GET", "/api_v3/index.php?service=stats&action=collect&event:currentPoint=1.5&clientTag=kdp:v3", {}
            ),
            "event:currentPoint",
        ),
        (
            WireRequest("POST", "/api_v3/service/stats/action/collect", {"Content-Type": "application/json"}, b"{nope"),
            "JSON body",
        ),
        (
            WireRequest("POST", "/api_v3/service/stats/action/collect", {"Content-Type": "application/json"}, b"[1]"),
            "expected an object",
        ),
        (WireRequest("OPTIONS", "/api_v3/index.php?service=stats&action=collect", {}), "GET or POST"),
    ],
)
def test_malformed_requests_raise_a_decode_error_naming_the_problem(request_, message):
    with pytest.raises(DecodeError, match=message):
        decode(request_)


def test_an_unknown_encoding_is_refused():
    with pytest.raises(ValueError, match="encoding"):
        encode(one("kdp"), "xml")


def test_kdp_double_slash_is_read_as_a_path_not_a_host():
    req = WireRequest("GET", "//api_v3/index.php/service/stats/action/collect?event:eventType=3", {})
    assert decode(req).fields == {"eventType": 3}
