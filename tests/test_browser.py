"""What the viewer's browser does to a beacon request: its headers, Origin, Referer, cookies and
the CORS preflight, as Chromium, Firefox and Safari do it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sim.protocols.browser import FLASH, OFF, XHR, browser_of, chromium_brands, max_age, sent_headers

CHROME_131 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
CHROME_ANDROID_126 = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
EDGE_124 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80"
)
FIREFOX_128 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_17 = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
CHROME_70 = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Safari/537.36"
)
PAGE = "https://learn.example.edu/course/7/lecture?id=3"
TARGET = "analytics.kaltura.com"
POST_URL = "/api_v3/index.php?service=analytics&action=trackEvent&eventType=3&partnerId=1&entryId=1_a&sessionId=s"


def codec_headers(ua: str, content_type: str | None = "application/json", cookie: str | None = "uv=uv_1") -> dict:
    headers = {"User-Agent": ua, "Referer": PAGE, "X-Forwarded-For": "81.2.3.4"}
    if cookie:
        headers["Cookie"] = cookie
    if content_type:
        headers["Content-Type"] = content_type
    return headers


@pytest.mark.parametrize(
    "major, brand, expected",
    [
        # what these releases send, as captured from the browsers
        (120, "Google Chrome", '"Not_A Brand";v="8", "Chromium";v="120", "Google Chrome";v="120"'),
        (122, "Google Chrome", '"Chromium";v="122", "Not(A:Brand";v="24", "Google Chrome";v="122"'),
        (124, "Google Chrome", '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
        (126, "Google Chrome", '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"'),
        (131, "Google Chrome", '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'),
    ],
)
def test_sec_ch_ua_lists_the_brands_with_chromiums_grease_in_its_order(major, brand, expected):
    assert (
        browser_of(
            f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
        ).sec_ch_ua
        == expected
    )
    assert ", ".join(f'"{b}";v="{v}"' for b, v in chromium_brands(major, brand)) == expected


def test_a_cross_origin_kava_post_from_chrome_carries_origin_the_pages_origin_as_referer_and_no_cookie():
    headers, preflight = sent_headers(codec_headers(CHROME_131), "POST", XHR, TARGET)
    assert headers["Origin"] == "https://learn.example.edu"
    assert headers["Referer"] == "https://learn.example.edu/"
    assert "Cookie" not in headers
    assert headers["sec-ch-ua"] == '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'
    assert (headers["sec-ch-ua-mobile"], headers["sec-ch-ua-platform"]) == ("?0", '"Windows"')
    assert (headers["Sec-Fetch-Site"], headers["Sec-Fetch-Mode"], headers["Sec-Fetch-Dest"]) == (
        "cross-site",
        "cors",
        "empty",
    )
    assert headers["Accept"] == "*/*" and headers["Accept-Language"] == "en-US,en;q=0.9"
    assert headers["Accept-Encoding"] == "gzip, deflate, br, zstd"
    assert headers["X-Forwarded-For"] == "81.2.3.4" and headers["Content-Type"] == "application/json"


def test_the_json_post_needs_a_preflight_naming_its_method_and_content_type():
    _, preflight = sent_headers(codec_headers(CHROME_131), "POST", XHR, TARGET)
    assert preflight["Access-Control-Request-Method"] == "POST"
    assert preflight["Access-Control-Request-Headers"] == "content-type"
    assert preflight["Origin"] == "https://learn.example.edu"
    assert preflight["User-Agent"] == CHROME_131
    assert "Content-Type" not in preflight and "Cookie" not in preflight


@pytest.mark.parametrize("method, content_type", [("GET", None), ("POST", "application/x-www-form-urlencoded")])
def test_a_get_and_a_form_post_are_simple_requests_without_preflight_but_with_origin(method, content_type):
    headers, preflight = sent_headers(codec_headers(CHROME_131, content_type), method, XHR, "stats.kaltura.com")
    assert preflight is None
    assert headers["Origin"] == "https://learn.example.edu" and "Cookie" not in headers


def test_a_mobile_chrome_says_so_in_its_client_hints():
    headers, _ = sent_headers(codec_headers(CHROME_ANDROID_126), "POST", XHR, TARGET)
    assert (headers["sec-ch-ua-mobile"], headers["sec-ch-ua-platform"]) == ("?1", '"Android"')


def test_edge_names_itself_in_sec_ch_ua():
    assert browser_of(EDGE_124).sec_ch_ua == '"Chromium";v="124", "Microsoft Edge";v="124", "Not-A.Brand";v="99"'


@pytest.mark.parametrize("ua, language", [(FIREFOX_128, "en-US,en;q=0.5"), (SAFARI_17, "en-US,en;q=0.9")])
def test_firefox_and_safari_send_their_own_headers_without_client_hints(ua, language):
    headers, preflight = sent_headers(codec_headers(ua), "POST", XHR, TARGET)
    assert not [h for h in headers if h.lower().startswith("sec-ch-ua")]
    assert headers["Accept-Language"] == language
    assert headers["Origin"] == "https://learn.example.edu" and headers["Referer"] == "https://learn.example.edu/"
    assert headers["Sec-Fetch-Mode"] == "cors" and "Cookie" not in headers
    assert preflight["Access-Control-Request-Method"] == "POST"


def test_a_browser_from_before_the_2020_referrer_policy_sends_the_full_page_and_no_fetch_metadata():
    headers, _ = sent_headers(codec_headers(CHROME_70, None), "GET", XHR, "stats.kaltura.com")
    assert headers["Referer"] == PAGE
    assert not [h for h in headers if h.lower().startswith(("sec-ch-ua", "sec-fetch"))]
    assert headers["Origin"] == "https://learn.example.edu"


def test_flash_sends_the_browsers_cookies_and_neither_origin_nor_preflight():
    headers, preflight = sent_headers(codec_headers(CHROME_70, None), "GET", FLASH, "stats.kaltura.com")
    assert preflight is None
    assert headers["Cookie"] == "uv=uv_1" and "Origin" not in headers


def test_a_same_origin_get_sends_cookies_and_no_origin():
    headers, preflight = sent_headers(codec_headers(CHROME_131, None), "GET", XHR, "learn.example.edu")
    assert preflight is None and "Origin" not in headers
    assert headers["Cookie"] == "uv=uv_1" and headers["Referer"] == PAGE
    assert headers["Sec-Fetch-Site"] == "same-origin"


def test_a_sibling_host_is_same_site():
    headers, _ = sent_headers(codec_headers(CHROME_131), "POST", XHR, "stats.example.edu")
    assert headers["Sec-Fetch-Site"] == "same-site" and headers["Origin"] == "https://learn.example.edu"


def test_with_the_browser_off_the_codec_headers_go_as_they_are():
    original = codec_headers(CHROME_131)
    assert sent_headers(original, "POST", OFF, TARGET) == (original, None)


@pytest.mark.parametrize(
    "ua, answer, kept",
    [
        (CHROME_131, "86400", 7200.0),
        (CHROME_131, None, 5.0),
        (CHROME_131, "600", 600.0),
        (CHROME_131, "0", 0.0),
        (FIREFOX_128, "86400", 86400.0),
        (SAFARI_17, "86400", 600.0),
        (CHROME_131, "junk", 5.0),
    ],
)
def test_a_preflight_result_is_kept_for_max_age_capped_by_the_engine_and_5_s_without_one(ua, answer, kept):
    assert max_age(answer, browser_of(ua)) == kept


# --- request files: preflight lines before the requests that need them ---------------------------


def request_file(tmp_path, scenario: dict, protocol: str = "kava", sessions: int = 60) -> list[dict]:
    import orjson

    from sim.generate import generate
    from sim.scenario.model import Scenario

    out = tmp_path / f"{protocol}-{len(list(tmp_path.iterdir()))}.jsonl"
    stats = generate(
        Scenario.model_validate(scenario), seed=5, sessions=sessions, protocol=protocol, fmt="requests", out=out
    )
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert stats.beacons == sum(1 for line in lines if not line.get("preflight"))
    assert stats.preflights == sum(1 for line in lines if line.get("preflight"))
    return lines


def preflights_by_session_url(lines: list[dict]) -> dict:
    """{(session, url): [(ts, preflighted?)]} of the POSTs, checking each preflight line goes
    right before its request."""
    seen: dict = {}
    for i, line in enumerate(lines):
        if line["method"] != "POST":
            continue
        before = lines[i - 1] if i else {}
        preflighted = bool(before.get("preflight")) and before["url"] == line["url"]
        sid = line["url"].split("sessionId=")[1]
        seen.setdefault((sid, line["url"]), []).append((line["ts"], preflighted))
    return seen


def test_a_request_file_marks_each_preflight_and_puts_it_right_before_its_request(tmp_path):
    lines = request_file(tmp_path, {})
    preflights = [(i, line) for i, line in enumerate(lines) if line.get("preflight")]
    assert preflights
    for i, line in preflights:
        request = lines[i + 1]
        assert line["method"] == "OPTIONS" and "key" not in line and line["body"] is None
        assert (request["method"], request["url"], request["ts"]) == ("POST", line["url"], line["ts"])
        assert line["headers"]["Origin"] == request["headers"]["Origin"]
        assert line["headers"]["Access-Control-Request-Method"] == "POST"


def test_without_a_max_age_from_the_server_a_preflight_is_kept_5_s(tmp_path):
    # Kaltura's API server answers OPTIONS without Access-Control-Max-Age (api_v3/web/index.php)
    checked = 0
    for sends in preflights_by_session_url(request_file(tmp_path, {})).values():
        fresh_until = -1.0
        for ts, preflighted in sends:
            assert preflighted == (ts >= fresh_until)
            if preflighted:
                fresh_until = ts + 5.0
            checked += 1
    assert checked > 100


def test_with_the_servers_max_age_each_url_is_preflighted_once_per_page_view(tmp_path):
    lines = request_file(tmp_path, {"player": {"browser": {"preflight_max_age_s": 86400}}})
    sends = preflights_by_session_url(lines)
    # Chromium keeps a result at most 2 h; these sessions are shorter
    assert all([p for _, p in s] == [True] + [False] * (len(s) - 1) for s in sends.values())
    assert any(len(s) > 1 for s in sends.values())  # VIEWs repeat their URL


def test_with_the_browser_off_requests_go_as_the_codec_made_them(tmp_path):
    lines = request_file(tmp_path, {"player": {"browser": {"enabled": False}}}, protocol="both", sessions=20)
    assert not [line for line in lines if line.get("preflight") or line["method"] == "OPTIONS"]
    assert all("Origin" not in line["headers"] for line in lines)
    assert all(urlsplit(line["headers"]["Referer"]).path not in ("", "/") for line in lines)  # the whole page


def test_legacy_beacons_of_an_html5_player_are_simple_xhr_gets_with_origin_and_no_cookie(tmp_path):
    lines = request_file(tmp_path, {"player": {"legacy_flavor": "mwembed"}}, protocol="legacy", sessions=20)
    assert lines and not [line for line in lines if line.get("preflight")]
    assert all("Origin" in line["headers"] and "Cookie" not in line["headers"] for line in lines)


def test_kdp_beacons_go_through_flash_with_the_browsers_cookie(tmp_path):
    lines = request_file(
        tmp_path, {"player": {"legacy_flavor": "kdp", "version": "3.9.9"}}, protocol="legacy", sessions=20
    )
    assert lines and all(
        line["headers"]["Cookie"].startswith("uv=uv_") and "Origin" not in line["headers"] for line in lines
    )


def test_reconcile_leaves_the_preflight_lines_of_a_request_file_out(tmp_path):
    import duckdb
    import orjson

    from sim.metrics.reconcile import reconcile
    from sim.protocols.beacons import WireRequest
    from sim.protocols.dispatch import codec_for, decode_any

    lines = request_file(tmp_path, {}, sessions=20)
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    con.execute("create table events (ledger_key varchar, protocol varchar, eventType integer, accepted boolean)")
    for line in lines:
        if not line.get("preflight"):
            beacon = decode_any(WireRequest(line["method"], line["url"], line["headers"], line["body"].encode()))
            con.execute(
                "insert into events values (?, 'kava', ?, true)",
                [codec_for("kava").ledger_key(beacon), beacon.fields["eventType"]],
            )
    con.close()
    result = reconcile(ledger, tmp_path / "store.duckdb")
    assert result.ok and result.totals["unexpected"] == 0
    assert result.totals["sent"] == sum(1 for line in lines if not line.get("preflight")) < len(lines)


# --- against what a real player in Chromium sent ---------------------------------------------------


def test_the_headers_are_those_a_real_player_in_chromium_sent_in_their_order():
    import json
    from pathlib import Path

    recorded = json.loads((Path(__file__).parent / "fixtures" / "chromium-kava-headers.json").read_text())
    ua, page = recorded["user_agent"], recorded["page_url"]
    for method, request in recorded["requests"].items():
        sent = request["headers"]
        codec = {"User-Agent": ua, "Referer": page}
        if method in ("OPTIONS", "POST"):  # the preflight is the JSON POST's
            codec["Content-Type"] = "application/json"
        headers, preflight = sent_headers(
            codec, "POST" if method == "OPTIONS" else method, XHR, request["beacon_origin"]
        )
        ours = preflight if method == "OPTIONS" else headers
        # Host and Content-Length are the connection's to write (the sender puts them where Chromium does)
        assert list(ours.items()) == [(k, v) for k, v in sent if k not in ("Host", "Content-Length")], method
        assert (preflight is not None) == (method != "GET")


def test_the_api_clients_json_post_of_legacy_beacons_goes_without_browser(tmp_path):
    import orjson

    from sim.generate import generate
    from sim.scenario.model import Scenario

    out = tmp_path / "client.jsonl"
    generate(Scenario(), seed=5, sessions=10, protocol="legacy", fmt="requests", out=out, encoding={"legacy": "json"})
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert lines and {line["method"] for line in lines} == {"POST"}
    assert not [line for line in lines if "Origin" in line["headers"] or line.get("preflight")]
