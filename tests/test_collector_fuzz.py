"""Bad input never stops the collector: hypothesis throws malformed paths, queries, headers and
bodies at a real running collector, which must answer every one (never a 5xx), record every
one sent to the API (other paths are answered, not stored), exit cleanly on SIGTERM and leave a store that opens."""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, given, settings, strategies as st

from helpers.collector import running_collector

ANSWERED = {200, 400, 404, 405, 413}
PATHS = st.one_of(
    st.sampled_from(
        [
            "/api_v3/index.php",
            "//api_v3/index.php",
            "/api_v3/service/stats/action/collect",
            "/api_v3/index.php/service/analytics/action/trackEvent",
            "/api_v3/",
            "/api_v3/index.php/a/b/c",
        ]
    ),
    st.text(max_size=40).map(lambda t: "/api_v3/" + quote(t, safe="/%:")),
    st.text(min_size=1, max_size=40).map(lambda t: "/x" + quote(t, safe="/%")),
)
KEYS = st.one_of(
    st.sampled_from(
        [
            "service",
            "action",
            "format",
            "callback",
            "ks",
            "event:eventType",
            "event%3AeventType",
            "event:featureType",
            "event:partnerId",
            "event:entryId",
            "event:sessionId",
            "eventType",
            "partnerId",
            "event[eventType]",
            "event:",
        ]
    ),
    st.text(max_size=12),
)
VALUES = st.one_of(
    st.sampled_from(
        [
            "stats",
            "collect",
            "analytics",
            "trackEvent",
            "1",
            "2",
            "9",
            "41",
            "-1",
            "99999999999999999999999",
            "NaN",
            "true",
            "false",
            "",
            "%zz",
            "%00",
            "%0b",
        ]
    ),
    st.text(max_size=30),
)
QUERIES = st.lists(st.tuples(KEYS, VALUES), max_size=8).map(
    lambda pairs: "&".join(f"{quote(k, safe=':%[]')}={quote(v, safe='%')}" for k, v in pairs)
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=600),
    QUERIES.map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.just(b"event:referrer=" + b"y" * 70_000),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
HEADERS = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Forwarded-For", "Cookie", "Referer", "User-Agent", "Accept", "X-Junk"]),
    st.one_of(
        st.sampled_from(
            [
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "text/plain",
                "uv=uv_0123",
                'uv="broken',
            ]
        ),
        HEADER_TEXT,
    ),
    max_size=5,
)
REQUESTS = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE"]),
        "path": PATHS,
        "query": QUERIES,
        "headers": HEADERS,
        "body": BODIES,
    }
)


def _send(host: str, port: int, request: dict) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        url = request["path"] + ("?" + request["query"] if request["query"] else "")
        connection.request(request["method"], url, body=request["body"], headers=request["headers"])
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_malformed_requests_all_get_an_answer_and_a_row_and_the_store_survives(tmp_path):
    sent = []
    with running_collector(tmp_path / "fuzz.duckdb") as collector:
        where = urlsplit(collector.url)

        @settings(
            max_examples=250,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(REQUESTS)
        def answered(request):
            status = _send(where.hostname, where.port, request)
            assert status in ANSWERED, f"{status} for {request!r}"
            sent.append(request)

        answered()
        assert collector.stop() == 0
        complaints = collector.proc.stderr.read()
        stored = collector.rows("SELECT count(*) AS n, count(*) FILTER (accepted) AS ok FROM events")[0]
    assert len(sent) >= 100
    assert "Traceback" not in complaints and "rror" not in complaints, complaints[-2000:]
    api = [r for r in sent if r["path"].startswith(("/api_v3", "//api_v3"))]  # other paths are not stored
    assert stored["n"] == len(api)
    assert stored["ok"] <= len(api)
