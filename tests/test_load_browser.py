"""Live load as a browser sends it: real CORS preflights (OPTIONS) with their own statistics row,
the browser's headers on the wire, same-millisecond bursts sent concurrently. A recording proxy
on 127.0.0.1 sits in front of a real collector and sees every request as it arrives."""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from helpers.collector import running_collector

ROOT = Path(__file__).resolve().parents[1]


class RecordingProxy:
    """Forwards every request to `upstream` and records (arrival time, method, url, headers in
    wire order). `refuse_preflights` answers OPTIONS 404 itself; `delay` holds each answer."""

    def __init__(self, upstream: str, *, refuse_preflights: bool = False, delay: float = 0.0):
        self.seen: list[tuple[float, str, str, list[tuple[str, str]]]] = []
        lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    proxy.seen.append((arrived, self.command, self.path, list(self.headers.items())))
                if delay:
                    time.sleep(delay)
                if refuse_preflights and self.command == "OPTIONS":
                    status, headers, answer = 404, [], b"no"
                else:
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    conn.request(
                        self.command,
                        self.path,
                        body=body or None,
                        headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                    )
                    reply = conn.getresponse()
                    status, headers, answer = reply.status, reply.getheaders(), reply.read()
                    conn.close()
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_OPTIONS = _any

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a burst opens many connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Recorded:
    """What Locust's `request` event was told."""

    def __init__(self):
        self.rows: list[dict] = []

    def fire(self, **kw):
        self.rows.append(kw)


class FakeEvents:
    def __init__(self):
        self.request = Recorded()


def run_sender(
    target: str,
    tmp_path: Path,
    *,
    protocol: str = "both",
    seconds: float = 4.0,
    scale: float = 20.0,
    rate: float = 15.0,
    concurrency: int = 16,
    flavor: str | None = None,
):
    import gevent

    from sim.load.schedule import OpenArrivals, Schedule, Timebase, protocol_adapters, session_stream
    from sim.load.sender import Ledger, Sender
    from sim.scenario.loader import load

    components = load(ROOT / "scenarios" / "typical-vod.yaml")
    if flavor is not None:
        for c in components:
            c.scenario = c.scenario.model_copy(
                update={"player": c.scenario.player.model_copy(update={"legacy_flavor": flavor})}
            )
    t0 = time.time() + 0.3
    schedule = Schedule(
        session_stream(components, 9, chunk_size=32),
        OpenArrivals(rate, np.random.default_rng(3), t0),
        Timebase(t0, scale),
        protocol_adapters(protocol),
        target=target,
    )
    schedule.refill(t0)
    events = FakeEvents()
    sender = Sender(schedule, target, events=events, ledger=Ledger(tmp_path / "ledger.jsonl"), concurrency=concurrency)
    loop = gevent.spawn(sender.run)
    gevent.sleep(seconds)
    sender.stop()
    loop.join(timeout=5)
    assert sender.drain(timeout=30)
    sender.close()
    return sender, events.request.rows


@pytest.fixture(scope="module")
def browsed(tmp_path_factory):
    """A run of both protocols through the recording proxy into a real collector."""
    tmp = tmp_path_factory.mktemp("browsed")
    with running_collector(tmp / "store.duckdb") as collector:
        proxy = RecordingProxy(collector.url)
        try:
            sender, fired = run_sender(proxy.url, tmp, flavor="v7")  # today's browsers for both plugins
        finally:
            proxy.close()
        assert collector.stop() == 0
    return sender, fired, proxy.seen, tmp


def test_each_kava_post_url_is_preflighted_once_per_page_view_before_its_first_post(browsed):
    sender, _, seen, _ = browsed
    options = [url for _, method, url, _ in seen if method == "OPTIONS"]
    posts = [url for _, method, url, _ in seen if method == "POST"]
    assert len(options) > 20
    # the collector answers Access-Control-Max-Age 86400, which Chromium keeps 2 h: once per URL
    # (a URL names the session and the event type)
    assert sorted(options) == sorted(set(posts))
    first_post = {}
    for i, (_, method, url, _) in enumerate(seen):
        if method == "POST":
            first_post.setdefault(url, i)
    first_options = {url: i for i, (_, method, url, _) in reversed(list(enumerate(seen))) if method == "OPTIONS"}
    assert all(first_options[url] < first_post[url] for url in first_options)
    assert sender.summary()["preflights"] == {"sent": len(options), "failed": 0}


def test_preflights_have_a_statistics_row_of_their_own(browsed):
    sender, fired, seen, _ = browsed
    preflights = [row for row in fired if row["name"] == "kava preflight"]
    assert len(preflights) == sum(1 for _, method, _, _ in seen if method == "OPTIONS")
    assert {row["request_type"] for row in preflights} == {"OPTIONS"}
    assert not [row for row in fired if row["exception"] is not None]
    assert sum(1 for row in fired if row["name"] != "kava preflight") == sender.sent


def test_beacons_arrive_with_origin_the_pages_origin_as_referer_and_no_cookie(browsed):
    from sim.protocols.browser import browser_of

    _, _, seen, _ = browsed
    beacons = [(method, dict(headers)) for _, method, _, headers in seen if method in ("GET", "POST")]
    assert {m for m, _ in beacons} == {"GET", "POST"}
    trimmed = 0
    for _, headers in beacons:
        origin = headers["Origin"]
        assert origin.startswith("https://") and origin.count("/") == 2
        if browser_of(headers["User-Agent"]).trims_referrer:
            assert headers["Referer"] == origin + "/"
            trimmed += 1
        assert "Cookie" not in headers
        assert headers["Accept"] == "*/*" and headers["X-Forwarded-For"]
    assert trimmed > len(beacons) / 2


def test_a_chrome_post_goes_on_the_wire_in_chromiums_header_order(browsed):
    _, _, seen, _ = browsed
    chrome = [
        [k for k, _ in headers]
        for _, method, _, headers in seen
        if method == "POST" and "sec-ch-ua" in dict(headers) and "Referer" in dict(headers)
    ]
    assert chrome
    assert chrome[0] == [
        "Host",
        "Connection",
        "Content-Length",
        "sec-ch-ua-platform",
        "User-Agent",
        "sec-ch-ua",
        "Content-Type",
        "sec-ch-ua-mobile",
        "Accept",
        "Origin",
        "Sec-Fetch-Site",
        "Sec-Fetch-Mode",
        "Sec-Fetch-Dest",
        "Referer",
        "Accept-Encoding",
        "Accept-Language",
        "X-Forwarded-For",
    ]


def test_the_ledger_holds_the_beacons_only_and_reconciles(browsed):
    import orjson

    from sim.metrics.reconcile import reconcile

    sender, _, _, tmp = browsed
    lines = [orjson.loads(line) for line in (tmp / "ledger.jsonl").read_bytes().splitlines()]
    assert len(lines) == sender.sent > 50 and not [line for line in lines if line["method"] == "OPTIONS"]
    result = reconcile(tmp / "ledger.jsonl", tmp / "store.duckdb")
    assert result.ok and result.totals["sent"] == sender.sent and result.totals["unexpected"] == 0


def test_a_refused_preflight_stops_the_beacon_as_a_browser_does(tmp_path):
    import orjson

    with running_collector(tmp_path / "store.duckdb") as collector:
        proxy = RecordingProxy(collector.url, refuse_preflights=True)
        try:
            sender, fired = run_sender(proxy.url, tmp_path, protocol="kava", seconds=2.5)
        finally:
            proxy.close()
    assert not [1 for _, method, _, _ in proxy.seen if method == "POST"]  # no POST got through
    lines = [orjson.loads(line) for line in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    assert lines and all(line["error"] == "CORS preflight: HTTP 404" for line in lines)
    assert sender.failures == {"CORS preflight: HTTP 404": len(lines)}
    assert sender.summary()["preflights"]["failed"] == sender.preflights > 0


def test_a_same_millisecond_burst_goes_out_at_once_and_may_arrive_out_of_order(tmp_path):
    import re

    # every answer takes 0.4 s: sent one after another, a burst's requests would arrive 0.4 s apart
    with running_collector(tmp_path / "store.duckdb") as collector:
        proxy = RecordingProxy(collector.url, delay=0.4)
        try:
            sender, _ = run_sender(
                proxy.url, tmp_path, protocol="kava", seconds=4.0, scale=5.0, rate=12.0, concurrency=256
            )  # room for every send in flight
        finally:
            proxy.close()
    posts: dict[str, list[tuple[float, int]]] = {}
    for arrived, method, url, _ in proxy.seen:
        if method == "POST":
            sid = re.search(r"sessionId=([^&]+)", url).group(1)
            et = int(re.search(r"eventType=(\d+)", url).group(1))
            posts.setdefault(sid, []).append((arrived, et))
    # PLAY (3) and the VIEW (99) right after it go out in the same millisecond
    first = [{et: t for t, et in reversed(beacons)} for beacons in posts.values()]
    pairs = [(f[3], f[99]) for f in first if 3 in f and 99 in f]
    assert len(pairs) >= 8 and max(abs(view - play) for play, view in pairs) < 0.2
    # sent side by side, each after its own preflight: the later eventIndex arrives first now and then
    assert [1 for play, view in pairs if view < play]
