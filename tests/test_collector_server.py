"""The collector as a browser player, a Kaltura client or a load generator meets it: a real
`player-sim collector` subprocess on 127.0.0.1 (port 0), requests written by hand from the
protocol sheet, answers checked, then the process stopped and its DuckDB store read.

One collector serves the whole exchange below (each request named by its User-Agent, which
the store keeps), so the module starts one process, not one per test."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import requests

from helpers.collector import collector_command, running_collector

LEGACY_FIELDS = "event:eventType=3&event:partnerId=156652&event:entryId=0_4lxrbaw9&event:sessionId={sid}"
KS_V2 = "djJ8MTIzfHNlY3JldHNlY3JldA=="  # base64("v2|123|secretsecret"): a ks the server can parse

# name -> (method, path and query, extra headers, body)
EXCHANGE = {
    "get_literal_keys": ("GET", "/api_v3/index.php?service=stats&action=collect&" + LEGACY_FIELDS, {}, None),
    "get_encoded_keys": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&event%3AeventType=3"
        "&event%3ApartnerId=156652&event%3AentryId=0_4lxrbaw9&event%3AsessionId={sid}",
        {},
        None,
    ),
    "get_kdp_double_slash": (
        "GET",
        "//api_v3/index.php?service=stats&action=collect&event%3AeventType=3"
        "&event%3AentryId=0%5F4lxrbaw9&event%3ApartnerId=156652&event%3AsessionId={sid}",
        {},
        None,
    ),
    "get_path_segments": ("GET", "/api_v3/index.php/service/stats/action/collect?" + LEGACY_FIELDS, {}, None),
    "get_rewritten_path": ("GET", "/api_v3/service/stats/action/collect?" + LEGACY_FIELDS, {}, None),
    "get_mwembed_order": (
        "GET",
        "/api_v3/index.php?service=stats&apiVersion=3.1&expiry=86400&clientTag=kwidget%3Av2.90"
        "&format=1&ignoreNull=1&action=collect&" + LEGACY_FIELDS,
        {},
        None,
    ),
    "get_jsonp": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=9&callback=mw.cb_1&" + LEGACY_FIELDS,
        {},
        None,
    ),
    "form_post": (
        "POST",
        "/api_v3/index.php?service=stats",
        {"Content-Type": "application/x-www-form-urlencoded"},
        ("action=collect&format=1&" + LEGACY_FIELDS).encode(),
    ),
    "json_post": (
        "POST",
        "/api_v3/service/stats/action/collect",
        {"Content-Type": "application/json"},
        json.dumps(
            {"format": 1, "event": {"eventType": 3, "partnerId": 156652, "entryId": "0_4lxrbaw9", "sessionId": "{sid}"}}
        ).encode(),
    ),
    "url_wins_over_body": (
        "POST",
        "/api_v3/index.php?service=stats&action=collect&event:eventType=5",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"event:eventType=4&event:partnerId=156652&event:entryId=0_x&event:sessionId={sid}",
    ),
    "legacy_with_ks": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=1&ks=" + KS_V2 + "&" + LEGACY_FIELDS,
        {},
        None,
    ),
    "kava_get": (
        "GET",
        "/api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1"
        "&eventType=99&partnerId=123&entryId=1_abcd1234&sessionId={sid}&eventIndex=5&playTimeSum=20.5"
        "&position=21.25&referrer=https%3A%2F%2Fsite%2Fpage",
        {},
        None,
    ),
    "kava_post": (
        "POST",
        "/api_v3/index.php?service=analytics&action=trackEvent&eventType=3&partnerId=123"
        "&entryId=1_abcd1234&sessionId={sid}",
        {"Content-Type": "application/json"},
        json.dumps(
            {
                "eventIndex": 3,
                "position": 0,
                "joinTime": 1.25,
                "apiVersion": "3.3.0",
                "format": 1,
                "clientTag": "html5:v3.17.0",
            }
        ).encode(),
    ),
    "bad_event_type": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=41&event:sessionId={sid}",
        {},
        None,
    ),
    "bad_feature_type": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&event:eventType=3&event:featureType=2&event:sessionId={sid}",
        {},
        None,
    ),
    "xml_invalid_char": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=3"
        "&event:userId=a%01b&event:sessionId={sid}",
        {},
        None,
    ),
    "bad_ks": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=1&ks=not-a-real-ks-12345"
        "&event:eventType=3&event:sessionId={sid}",
        {},
        None,
    ),
    "no_event": ("GET", "/api_v3/index.php?service=stats&action=collect&format=1&partnerId=1", {}, None),
    "unknown_format": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=77&event:eventType=3&event:sessionId={sid}",
        {},
        None,
    ),
    "dwh_flags": (
        "GET",
        "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=12"
        "&event:partnerId=abc&event:uiconfId=x1&event:entryId=http://cdn/x.mp4&event:sessionId=false",
        {},
        None,
    ),
    "bad_json_body": (
        "POST",
        "/api_v3/index.php?service=stats&action=collect",
        {"Content-Type": "application/json"},
        b"{not json",
    ),
    "too_large": (
        "POST",
        "/api_v3/index.php?service=stats&action=collect",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"event:referrer=" + b"x" * 70_000,
    ),
    "not_api": ("GET", "/wp-login.php", {}, None),
}


def _send(url: str, name: str):
    method, path, headers, body = EXCHANGE[name]
    sid = f"sid-{name}"
    path = path.replace("{sid}", sid)
    body = body.replace(b"{sid}", sid.encode()) if body else body
    # http.client would normalise nothing, but requests collapses nothing either: send the path as is
    return requests.request(method, url + path, headers={"User-Agent": name, **headers}, data=body, timeout=10)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """name -> (response, stored rows for that request), plus the OPTIONS preflight answer."""
    store = tmp_path_factory.mktemp("collector") / "events.duckdb"
    with running_collector(store) as collector:
        answers = {name: _send(collector.url, name) for name in EXCHANGE}
        answers["__options"] = requests.options(collector.url + "/api_v3/index.php", timeout=10)
        assert collector.stop() == 0
        rows = collector.rows()
    by_agent: dict[str, list[dict]] = {}
    for row in rows:
        by_agent.setdefault(row["user_agent"], []).append(row)
    return {name: (answer, by_agent.get(name, [])) for name, answer in answers.items()}


def _one(exchange, name):
    answer, rows = exchange[name]
    assert len(rows) == 1, f"{name}: {len(rows)} rows stored"
    return answer, rows[0]


# --- accepted legacy encodings -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["get_literal_keys", "get_encoded_keys", "get_kdp_double_slash", "get_path_segments", "get_rewritten_path"]
)
def test_a_legacy_get_in_any_url_form_is_answered_in_xml_and_stored_typed(exchange, name):
    answer, row = _one(exchange, name)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert re.fullmatch(
        r'<\?xml version="1.0" encoding="utf-8"\?><xml><result>1</result>'
        r"<executionTime>[0-9.]+</executionTime></xml>",
        answer.text,
    )
    assert (row["protocol"], row["accepted"], row["encoding"], row["method"]) == ("legacy", True, "get", "GET")
    assert row["path"] == EXCHANGE[name][1].partition("?")[0]
    assert (row["eventType"], row["partnerId"], row["entryId"]) == (3, 156652, "0_4lxrbaw9")
    assert row["sessionId"] == f"sid-{name}"
    assert row["ts"] == row["received_at"] and row["ts"] > 1.6e9


def test_format_1_is_answered_with_json_true(exchange):
    answer, row = _one(exchange, "get_mwembed_order")
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.text == "true"
    assert row["format"] == 1 and row["apiVersion"] == "3.1" and row["clientTag"] == "kwidget:v2.90"


def test_format_9_wraps_true_in_the_callback(exchange):
    answer, _ = _one(exchange, "get_jsonp")
    assert answer.text == "mw.cb_1(true);"


def test_a_form_post_is_accepted_as_form(exchange):
    answer, row = _one(exchange, "form_post")
    assert answer.text == "true"
    assert (row["encoding"], row["accepted"], row["eventType"]) == ("form", True, 3)


def test_a_json_post_with_a_nested_event_object_is_accepted(exchange):
    answer, row = _one(exchange, "json_post")
    assert answer.text == "true"
    assert (row["encoding"], row["path"], row["sessionId"]) == (
        "json",
        "/api_v3/service/stats/action/collect",
        "sid-json_post",
    )


def test_url_params_win_over_body_params(exchange):
    _, row = _one(exchange, "url_wins_over_body")
    assert row["eventType"] == 5


def test_a_ks_is_kept_only_as_a_digest(exchange):
    answer, row = _one(exchange, "legacy_with_ks")
    assert answer.text == "true"
    assert row["has_ks"] is True and re.fullmatch(r"[0-9a-f]{16}", row["ks_sha256"])
    assert all(KS_V2 not in str(v) for v in row.values())


# --- KAVA ----------------------------------------------------------------------------------


def test_a_kava_get_is_answered_with_time_and_view_events_enabled(exchange):
    answer, row = _one(exchange, "kava_get")
    body = answer.json()
    assert set(body) == {"time", "viewEventsEnabled"} and body["viewEventsEnabled"] is True
    assert abs(body["time"] - row["received_at"]) < 5
    assert (row["protocol"], row["eventType"], row["eventIndex"]) == ("kava", 99, 5)
    assert (row["playTimeSum"], row["position"], row["referrer"]) == (20.5, 21.25, "https://site/page")


def test_a_kava_json_post_is_stored_with_url_and_body_params(exchange):
    answer, row = _one(exchange, "kava_post")
    assert answer.json()["viewEventsEnabled"] is True
    assert (row["encoding"], row["eventType"], row["joinTime"], row["clientTag"]) == ("json", 3, 1.25, "html5:v3.17.0")
    assert row["ledger_key"]


# --- Kaltura's validation: HTTP 200 with a KalturaAPIException body -----------------------


@pytest.mark.parametrize(
    "name, code",
    [
        ("bad_event_type", "INVALID_ENUM_VALUE"),
        ("xml_invalid_char", "INVALID_PARAMETER_CHAR"),
        ("bad_ks", "INVALID_KS"),
        ("no_event", "MISSING_MANDATORY_PARAMETER"),
    ],
)
def test_what_the_api_server_rejects_gets_its_error_in_json_and_is_stored_rejected(exchange, name, code):
    answer, row = _one(exchange, name)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["code"], body["objectType"]) == (code, "KalturaAPIException")
    assert (row["accepted"], row["error_code"]) == (False, code)
    assert row["reason"] == body["message"]


def test_an_invalid_feature_type_is_rejected_in_xml_by_default(exchange):
    answer, row = _one(exchange, "bad_feature_type")
    assert "<code>INVALID_ENUM_VALUE</code>" in answer.text and "<error>" in answer.text
    assert row["error_code"] == "INVALID_ENUM_VALUE"


def test_an_unknown_format_is_rejected_in_xml(exchange):
    answer, _ = _one(exchange, "unknown_format")
    assert "<code>UNKNOWN_RESPONSE_FORMAT</code>" in answer.text


def test_the_invalid_ks_error_never_echoes_the_ks(exchange):
    answer, row = _one(exchange, "bad_ks")
    assert "not-a-real-ks-12345" not in answer.text
    assert all("not-a-real-ks-12345" not in str(v) for v in row.values())


def test_what_the_warehouse_would_drop_is_accepted_and_flagged(exchange):
    answer, row = _one(exchange, "dwh_flags")
    assert answer.text == "true" and row["accepted"] is True
    assert set(row["flags"].split(",")) >= {
        "event_type_dropped_by_dwh",
        "partner_id_not_numeric",
        "uiconf_id_not_numeric",
        "entry_id_is_url",
        "session_id_false",
    }
    assert json.loads(row["extra"])["partnerId"] == "abc"


# --- transport-level garbage -----------------------------------------------------------------


def test_a_malformed_json_body_gets_400_and_is_recorded(exchange):
    answer, row = _one(exchange, "bad_json_body")
    assert answer.status_code == 400 and "invalid JSON" in answer.json()["message"]
    assert (row["accepted"], row["status"]) == (False, 400)


def test_a_body_over_64_kib_gets_413(exchange):
    answer, row = _one(exchange, "too_large")
    assert answer.status_code == 413
    assert row["error_code"] == "REQUEST_TOO_LARGE"


def test_a_path_outside_the_api_gets_404_and_is_not_stored(exchange):
    answer, rows = exchange["not_api"]
    assert answer.status_code == 404 and rows == []


def test_every_answer_carries_cors_and_options_is_a_preflight(exchange):
    preflight = exchange["__options"][0]
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "POST, GET, HEAD, OPTIONS"
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert all(a.headers.get("access-control-allow-origin") == "*" for a, _ in exchange.values())


# --- command line ----------------------------------------------------------------------------


def test_a_bad_slow_ms_spec_is_a_clear_message_and_exit_2(tmp_path):
    done = subprocess.run(
        collector_command("--port", "0", "--store", str(tmp_path / "s.duckdb"), "--slow-ms", "lognormal:fast"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--slow-ms 'lognormal:fast'" in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_a_clear_message(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            collector_command("--port", str(port), "--store", str(tmp_path / "s.duckdb")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"--port {port}" in done.stderr and "in use" in done.stderr and "Traceback" not in done.stderr


def test_workers_that_cannot_start_stop_the_collector_at_once_with_a_message(tmp_path):
    # here the store writer's socket is missing, so each worker fails as it attaches to the store
    import time

    from sim.collector.app import CollectorConfig
    from sim.collector.server import ServeError, _start_workers, listen_on

    config = CollectorConfig(store=str(tmp_path / "s.duckdb"), port=0, workers=2, socket=str(tmp_path / "missing.sock"))
    listeners = listen_on("127.0.0.1", 0, 2, 128)
    started = time.monotonic()
    try:
        with pytest.raises(ServeError, match=r"a collector worker exited with status [1-9]"):
            _start_workers(config, listeners, 128)
    finally:
        for listener in listeners:
            listener.close()
    assert time.monotonic() - started < 60  # not the 120 s start deadline
