"""Kaltura server behaviour without a server: how a request's protocol and parameters are read
(sim.protocols.dispatch), what the API rejects or the warehouse would drop, and the bodies it
answers with (sim.collector.kaltura_api)."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import pytest

from sim.collector import kaltura_api as api
from sim.protocols.beacons import WireRequest
from sim.protocols.dispatch import DecodeError, decode_any, parse_request

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "url",
    [
        "/api_v3/index.php?service=stats&action=collect&event:eventType=3",
        "//api_v3/index.php?service=stats&action=collect&event:eventType=3",
        "/api_v3/index.php/service/stats/action/collect?event:eventType=3",
        "/api_v3/service/stats/action/collect?event:eventType=3",
        "/api_v3/index.php?service=STATS&action=Collect&event:eventType=3",
    ],
)
def test_every_stats_collect_url_form_is_legacy(url):
    assert parse_request(WireRequest("GET", url, {})).protocol == "legacy"


def test_analytics_track_event_is_kava_whatever_the_case_of_the_action():
    parsed = parse_request(WireRequest("GET", "/api_v3/index.php?service=analytics&action=trackEvent&eventType=1", {}))
    assert parsed.protocol == "kava"


def test_service_and_action_in_a_form_body_pick_the_protocol():
    parsed = parse_request(
        WireRequest("POST", "/api_v3/index.php", FORM, b"service=stats&action=collect&event:eventType=3")
    )
    assert (parsed.protocol, parsed.encoding) == ("legacy", "form")


def test_url_params_win_over_body_params():
    parsed = parse_request(
        WireRequest(
            "POST",
            "/api_v3/index.php?service=stats&action=collect&event:eventType=5",
            FORM,
            b"event:eventType=4&event:partnerId=7",
        )
    )
    assert parsed.params["event:eventType"] == "5" and parsed.params["event:partnerId"] == "7"


def test_a_json_body_nests_the_event_object_into_wire_keys_and_keeps_types():
    parsed = parse_request(
        WireRequest(
            "POST",
            "/api_v3/service/stats/action/collect",
            JSON,
            json.dumps({"event": {"eventType": 3, "seek": False}}).encode(),
        )
    )
    assert parsed.params["event:eventType"] == 3 and parsed.params["event:seek"] is False
    assert parsed.encoding == "json"


def test_php_bracket_keys_read_as_wire_keys():
    parsed = parse_request(WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&event[eventType]=3", {}))
    assert parsed.params["event:eventType"] == "3"


def test_a_broken_json_body_is_a_decode_error():
    with pytest.raises(DecodeError, match="invalid JSON"):
        parse_request(WireRequest("POST", "/api_v3/index.php", JSON, b"{"))


def test_decode_any_refuses_other_services():
    with pytest.raises(DecodeError, match="not an analytics beacon"):
        decode_any(WireRequest("GET", "/api_v3/index.php?service=media&action=list", {}))


def test_decode_any_gives_the_codecs_beacon():
    beacon = decode_any(
        WireRequest(
            "GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:partnerId=156652", {}
        )
    )
    assert beacon.protocol == "legacy"
    assert (beacon.fields["eventType"], beacon.fields["partnerId"]) == (3, 156652)


# --- validation ------------------------------------------------------------------------------


def _legacy(**params):
    return {"service": "stats", "action": "collect", **params}


@pytest.mark.parametrize(
    "params, code",
    [
        (_legacy(**{"event:eventType": "41"}), "INVALID_ENUM_VALUE"),
        (_legacy(**{"event:eventType": "0"}), "INVALID_ENUM_VALUE"),
        (_legacy(**{"event:eventType": "play"}), "INVALID_ENUM_VALUE"),
        (_legacy(**{"event:eventType": "3", "event:featureType": "2"}), "INVALID_ENUM_VALUE"),
        (_legacy(**{"event:eventType": "3", "event:referrer": "a\x0bb"}), "INVALID_PARAMETER_CHAR"),
        (_legacy(**{"event:eventType": "3", "ks": "%%%"}), "INVALID_KS"),
        (_legacy(partnerId="1"), "MISSING_MANDATORY_PARAMETER"),
        (_legacy(format="4", **{"event:eventType": "3"}), "UNKNOWN_RESPONSE_FORMAT"),
        (_legacy(format="9", callback="alert(1)", **{"event:eventType": "3"}), "INVALID_FIELD_VALUE"),
        (_legacy(format="9", **{"event:eventType": "3"}), "MISSING_MANDATORY_PARAMETER"),
    ],
)
def test_the_api_server_rejects(params, code):
    assert api.check_legacy(params).code == code


@pytest.mark.parametrize("event_type", ["1", "40", 3])
def test_every_stats_event_type_from_1_to_40_is_valid(event_type):
    assert api.check_legacy(_legacy(**{"event:eventType": event_type})) is None


def test_a_v2_ks_and_a_v1_ks_parse():
    v2 = base64.b64encode(b"v2|123|" + bytes(range(40))).decode()
    v1 = base64.b64encode(b"0123456789abcdef0123456789abcdef01234567|123;123;1700000000;0;42;user").decode()
    assert api.ks_parses(v2) and api.ks_parses(v1)
    assert not api.ks_parses(base64.b64encode(b"hello|world").decode())


def test_an_event_with_nothing_the_warehouse_needs_is_flagged_not_rejected():
    fields = {"eventType": 13, "partnerId": "p1", "uiconfId": "abc", "entryId": "rtmp://x/y", "sessionId": "s" * 51}
    assert api.legacy_flags(fields) == [
        "event_type_dropped_by_dwh",
        "partner_id_not_numeric",
        "uiconf_id_not_numeric",
        "entry_id_is_url",
        "session_id_over_50",
    ]


def test_v7s_uiConfId_is_checked_like_uiconfId():
    assert "uiconf_id_not_numeric" in api.legacy_flags({"eventType": 3, "uiConfId": "x"})


def test_a_complete_event_has_no_flags():
    assert api.legacy_flags({"eventType": 3, "partnerId": 1, "entryId": "0_a", "sessionId": "s", "uiconfId": 5}) == []


# --- responses ---------------------------------------------------------------------------------


def test_xml_is_the_default_answer_and_holds_result_1():
    reply = api.legacy_result({}, 0.0123)
    root = ET.fromstring(reply.body)
    assert (root.tag, root.findtext("result"), root.findtext("executionTime")) == ("xml", "1", "0.0123")
    assert reply.body.startswith(b'<?xml version="1.0" encoding="utf-8"?><xml>')


@pytest.mark.parametrize(
    "params, body",
    [
        ({"format": "1"}, b"true"),
        ({"format": "9", "callback": "cb"}, b"cb(true);"),
    ],
)
def test_json_and_jsonp_answers(params, body):
    assert api.legacy_result(params, 0).body == body


def test_an_error_in_xml_is_what_the_kaltura_client_reads():
    error = api.ApiError("INVALID_ENUM_VALUE", 'Invalid enumeration value "41"', {"PARAM_NAME": "eventType"})
    root = ET.fromstring(api.error_reply(error, {}, 0.001).body)
    node = root.find("result/error")
    assert (node.findtext("code"), node.findtext("objectType")) == ("INVALID_ENUM_VALUE", "KalturaAPIException")
    assert node.findtext("args/item/name") == "PARAM_NAME"


def test_an_error_in_json_has_kalturas_shape():
    error = api.ApiError("INVALID_KS", "Invalid KS", {"KSID": "x"})
    body = json.loads(api.error_reply(error, {"format": "1"}, 0).body)
    assert body == {
        "code": "INVALID_KS",
        "message": "Invalid KS",
        "objectType": "KalturaAPIException",
        "args": {"KSID": "x"},
    }


def test_kava_answers_time_and_view_events_enabled():
    assert json.loads(api.kava_result(1700000000.5, False).body) == {"time": 1700000000.5, "viewEventsEnabled": False}


# --- the fast query parser ----------------------------------------------------------------------

from urllib.parse import parse_qsl  # noqa: E402

from hypothesis import given, strategies as st  # noqa: E402

from sim.protocols.dispatch import parse_query  # noqa: E402


@given(st.text(alphabet=st.sampled_from(list("ab=&%+:2F0zé \x00[]")), max_size=40) | st.text(max_size=40))
def test_the_fast_query_parser_reads_every_query_as_phps_parsing_does(query):
    # parse_qsl with blank values kept is PHP's reading: `+` a space, keys and values decoded
    assert parse_query(query) == parse_qsl(query, keep_blank_values=True)
