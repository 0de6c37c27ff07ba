"""The collector's request handling: route, validate, answer as Kaltura does, record every request.

`Collector.handle(...)` is plain Python (request in, `Answer` out, the row appended to the
store before the answer exists), so it can be exercised without a server; `RSGIApp` adapts
it to granian's RSGI interface (body limit, injected delays and resets, CORS).

Routes: `/api_v3/...` (and `//api_v3/...`) beacons; `/` the live page; `/stats.json` its
figures; OPTIONS anywhere answers the CORS preflight. Everything else is a 404. Every
answer carries `Access-Control-Allow-Origin: *` so a browser player can point at it.
"""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass, field

import orjson

from sim.protocols.beacons import Beacon, WireRequest
from sim.protocols.dispatch import (LEGACY, DecodeError, ParsedRequest, beacon_from_params,
                                    codec_for, header, parse_request)

from . import kaltura_api as api
from .faults import Delay, FaultPlan
from .live import LiveStats, PAGE_HTML
from .store import PARAM_COLUMNS, WIRE_COLUMNS, EventStore, encode_extra, wire_columns

CONFIG_ENV = "PLAYER_SIM_COLLECTOR_CONFIG"
CORS = [
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "POST, GET, HEAD, OPTIONS"),
    ("access-control-allow-headers",
     "Origin, X-Requested-With, Content-Type, Accept, Range, Cache-Control, Authorization"),
]
_PARAM_TARGETS = {**PARAM_COLUMNS, "clientTag": "VARCHAR"}


@dataclass
class CollectorConfig:
    """Everything `player-sim collector` is told on its command line."""

    store: str = "player-sim.duckdb"
    host: str = "127.0.0.1"
    port: int = 8080
    fail_rate: float = 0.0
    reset_rate: float = 0.0
    slow: Delay = field(default_factory=Delay)
    view_events_enabled: bool = True
    max_body: int = 64 * 1024
    batch_rows: int = 5000
    batch_ms: float = 200.0

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> CollectorConfig:
        data = orjson.loads(text)
        data["slow"] = Delay(**data["slow"])
        return cls(**data)


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    delay: float = 0.0       # seconds to wait before answering (test-double mode)
    reset: bool = False      # close the connection instead of answering


def _strip_ks(values: dict) -> tuple[dict, str | None]:
    """The values without any ks, and the ks (never stored in clear).

    Without a ks the same dict comes back (callers only read it). The length test spares a
    `lower()` per key: a name that lower-cases to `ks` or `event:ks` has 2 or 8 characters
    (the one character whose lower case is two, `İ`, gives an `i`, which neither name holds).
    """
    for key in values:
        if (len(key) == 2 or len(key) == 8) and key.lower() in _KS_NAMES:
            break
    else:
        return values, None
    ks = None
    kept = {}
    for key, value in values.items():
        if key.lower() in _KS_NAMES:
            ks = None if value in (None, "") else str(value)
        else:
            kept[key] = value
    return kept, ks


_KS_NAMES = ("ks", "event:ks")


def _by_lower_name(headers: dict[str, str]) -> dict[str, str]:
    """Headers under lower-case names, each as `dispatch.header` finds it (an exact match first)."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if name == lower or lower not in out:
            out[lower] = value
    return out


class Collector:
    """Turns requests into answers and rows; owns the store and the live figures."""

    def __init__(self, config: CollectorConfig, store: EventStore):
        self.config = config
        self.store = store
        self.faults = FaultPlan(config.fail_rate, config.reset_rate, config.slow)
        self.live = LiveStats(store)

    # --- rows -------------------------------------------------------------------------

    def _row(self, now: float, method: str, path: str, headers: dict, remote: str,
             encoding: str | None, protocol: str | None) -> dict:
        """The request's own columns; `headers` by lower-case name (`_by_lower_name`)."""
        forwarded = headers.get("x-forwarded-for")
        return {
            "ts": now, "received_at": now, "method": method, "path": path[:2048],
            "remote_addr": remote, "encoding": encoding, "protocol": protocol,
            "client_ip": forwarded.split(",")[0].strip() if forwarded else remote,
            "user_agent": headers.get("user-agent"), "page_url": headers.get("referer"),
            "cookie": headers.get("cookie"),
        }

    def _fill_beacon(self, row: dict, beacon: Beacon, ks: str | None) -> None:
        fields, ks_field = _strip_ks(beacon.fields)
        params, ks_param = _strip_ks(beacon.params)
        ks = ks or ks_field or ks_param
        extra: dict = {}
        wire_columns(fields, WIRE_COLUMNS, row, extra)
        wire_columns(params, _PARAM_TARGETS, row, extra)
        row["extra"] = encode_extra(extra)
        row["has_ks"] = ks is not None
        row["ks_sha256"] = api.ks_digest(ks) if ks else None

    def _record(self, row: dict) -> bool:
        """Append the row; False when the store is closing (the request must not be acknowledged)."""
        try:
            self.store.append(row)
            return True
        except RuntimeError:
            return False

    # --- requests ---------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
               remote: str) -> Answer:
        """The answer to one beacon request (`url` is path and query); the row is stored first."""
        started = time.perf_counter()
        now = time.time()
        path = url.partition("?")[0]
        named = _by_lower_name(headers)
        if method not in ("GET", "POST"):
            row = self._row(now, method, path, named, remote, None, None)
            return self._refuse(row, 405, "METHOD_NOT_ALLOWED", f"method {method} is not accepted")
        request = WireRequest(method, url, headers, body)
        try:
            parsed = parse_request(request)
        except DecodeError as exc:
            row = self._row(now, method, path, named, remote, "post", None)
            return self._refuse(row, 400, "INVALID_REQUEST_BODY", str(exc))
        row = self._row(now, method, path, named, remote, parsed.encoding, parsed.protocol)
        params, ks = _strip_ks(parsed.params)

        if parsed.protocol is None:
            error = self._service_error(parsed)
            row.update(accepted=False, status=200, error_code=error.code, reason=error.message)
            self._fill_beacon(row, beacon_from_params(parsed, request), ks)
            if not self._record(row):
                return self._closing()
            return self._answer(api.error_reply(error, params, time.perf_counter() - started))

        fault, delay = self.faults.draw() if self.faults.active else (None, 0.0)
        error = api.check_legacy(parsed.params) if parsed.protocol == LEGACY else None
        if error is not None:
            beacon = beacon_from_params(parsed, request)
            # The key comes from the codec's reading, as for accepted rows, so reconciliation
            # reports the beacon as sent-and-rejected rather than lost plus unexpected.
            row.update(accepted=False, status=200, error_code=error.code, reason=error.message,
                       ledger_key=self._ledger_key(self._decode(parsed, request)[0]))
        else:
            beacon, note = self._decode(parsed, request)
            flags = (api.legacy_flags(beacon.fields) if parsed.protocol == LEGACY
                     else api.kava_flags(beacon.fields))
            if note:
                flags.append(note)
            row.update(accepted=True, status=200, flags=",".join(flags) or None,
                       ledger_key=self._ledger_key(beacon))
        self._fill_beacon(row, beacon, ks)

        if fault is not None:
            status = 503 if fault == "fail" else None
            row.update(accepted=False, fault=fault, status=status,
                       error_code="SIMULATED_FAILURE" if fault == "fail" else "SIMULATED_RESET",
                       reason=f"injected by --{fault}-rate")
            if not self._record(row):
                return self._closing()
            if fault == "reset":
                return Answer(503, "text/plain", b"", delay=delay, reset=True)
            return Answer(503, "application/json",
                          orjson.dumps({"code": "SERVICE_UNAVAILABLE",
                                        "message": "simulated failure (--fail-rate)"}), delay=delay)

        if not self._record(row):
            return self._closing()
        elapsed = time.perf_counter() - started
        if error is not None:
            reply = api.error_reply(error, parsed.params, elapsed)
        elif parsed.protocol == LEGACY:
            reply = api.legacy_result(parsed.params, elapsed)
        else:
            reply = api.kava_result(time.time(), self.config.view_events_enabled)
        answer = self._answer(reply)
        answer.delay = delay
        return answer

    def refuse_transport(self, method: str, url: str, headers: dict, remote: str, status: int,
                         code: str, message: str) -> Answer:
        """Record and answer a request refused before it was read (too large, unreadable)."""
        row = self._row(time.time(), method, url.partition("?")[0], _by_lower_name(headers), remote, None, None)
        return self._refuse(row, status, code, message)

    def not_found(self, method: str, url: str, headers: dict, remote: str) -> Answer:
        return self.refuse_transport(method, url, headers, remote, 404, "NOT_FOUND",
                                     f"no such path {url.partition('?')[0][:200]!r}: beacons go to /api_v3/index.php")

    # --- helpers ----------------------------------------------------------------------

    def _decode(self, parsed: ParsedRequest, request: WireRequest) -> tuple[Beacon, str | None]:
        """The codec's Beacon; the server-style reading when the codec refuses what Kaltura takes."""
        codec = codec_for(parsed.protocol)
        if codec is None:
            return beacon_from_params(parsed, request), None
        try:
            if parsed.query is not None and hasattr(codec, "decode_pairs"):   # parsed already: hand them on
                return codec.decode_pairs(request, parsed.query), None
            return codec.decode(request), None
        except (ValueError, KeyError, TypeError) as exc:   # DecodeError is a ValueError
            return beacon_from_params(parsed, request), f"codec_refused:{type(exc).__name__}"

    @staticmethod
    def _ledger_key(beacon: Beacon) -> str | None:
        codec = codec_for(beacon.protocol)
        if codec is None or not hasattr(codec, "ledger_key"):
            return None
        try:
            return codec.ledger_key(beacon)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @staticmethod
    def _service_error(parsed: ParsedRequest) -> api.ApiError:
        if not parsed.service:
            return api.ApiError("SERVICE_NOT_SPECIFIED", "Service name was not specified, please specify one")
        if parsed.service not in ("stats", "analytics"):
            return api.ApiError("SERVICE_DOES_NOT_EXISTS", f'Service "{parsed.service}" does not exists',
                                {"SERVICE": parsed.service})
        if not parsed.action:
            return api.ApiError("ACTION_NOT_SPECIFIED", "Action name was not specified, please specify one")
        return api.ApiError("ACTION_DOES_NOT_EXISTS",
                            f'Action "{parsed.action}" does not exists for service "{parsed.service}"',
                            {"ACTION": parsed.action, "SERVICE": parsed.service})

    def _refuse(self, row: dict, status: int, code: str, message: str) -> Answer:
        row.update(accepted=False, status=status, error_code=code, reason=message)
        self._record(row)
        return Answer(status, "application/json",
                      orjson.dumps({"code": code, "message": message, "objectType": "KalturaAPIException",
                                    "args": {}}))

    @staticmethod
    def _answer(reply: api.Reply) -> Answer:
        return Answer(reply.status, reply.content_type, reply.body)

    @staticmethod
    def _closing() -> Answer:
        return Answer(503, "application/json",
                      b'{"code":"SERVICE_UNAVAILABLE","message":"collector is shutting down"}')


class RSGIApp:
    """granian RSGI adapter: one Collector per worker process, its store closed on shutdown."""

    def __init__(self, config: CollectorConfig):
        self.config = config
        self.collector: Collector | None = None

    def __rsgi_init__(self, loop) -> None:
        self.collector = Collector(self.config, EventStore(self.config.store, batch_rows=self.config.batch_rows,
                                                           batch_ms=self.config.batch_ms))

    def __rsgi_del__(self, loop) -> None:
        if self.collector is not None:
            self.collector.store.close()

    async def __rsgi__(self, scope, proto) -> None:
        if scope.proto != "http":
            return
        collector = self.collector
        method = scope.method.upper()
        path = scope.path
        url = path + ("?" + scope.query_string if scope.query_string else "")
        headers = dict(scope.headers.items())
        remote = scope.client.rsplit(":", 1)[0] if scope.client else ""

        if method == "OPTIONS":
            proto.response_empty(204, CORS + [("access-control-max-age", "86400")])
            return
        if path == "/" and method in ("GET", "HEAD"):
            proto.response_bytes(200, CORS + [("content-type", "text/html; charset=utf-8")], PAGE_HTML)
            return
        if path == "/stats.json" and method in ("GET", "HEAD"):
            body = orjson.dumps(collector.live.snapshot())
            proto.response_bytes(200, CORS + [("content-type", "application/json"),
                                              ("cache-control", "no-store")], body)
            return
        if method == "HEAD":
            proto.response_empty(200, CORS)
            return
        if not (path.startswith("/api_v3") or path.startswith("//api_v3")):
            self._send(proto, collector.not_found(method, url, headers, remote))
            return

        body = None
        if method == "POST":
            body = await self._read_body(proto, headers)
            if body is None:
                self._send(proto, collector.refuse_transport(
                    method, url, headers, remote, 413, "REQUEST_TOO_LARGE",
                    f"request body over {self.config.max_body} bytes"))
                return
        answer = collector.handle(method, url, headers, body, remote)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        if answer.reset:
            # RSGI cannot drop a socket; a response whose promised body never comes closes the
            # connection before any byte reaches the client (curl: "empty reply from server").
            transport = proto.response_stream(answer.status, [("content-length", "64")])
            await transport.send_bytes(b" ")
            return
        self._send(proto, answer)

    async def _read_body(self, proto, headers: dict) -> bytes | None:
        """The body, or None when it is over the limit (read no further than the limit)."""
        limit = self.config.max_body
        length = header(headers, "content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            return None
        chunks, size = [], 0
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _send(proto, answer: Answer) -> None:
        headers = _ANSWER_HEADERS.get(answer.content_type)
        if headers is None:     # the few content types answers carry: built once each
            headers = _ANSWER_HEADERS[answer.content_type] = CORS + [("content-type", answer.content_type)]
        proto.response_bytes(answer.status, headers, answer.body)


_ANSWER_HEADERS: dict[str, list[tuple[str, str]]] = {}


def app_from_env() -> RSGIApp:
    """granian's factory: the worker process reads its configuration from the environment."""
    return RSGIApp(CollectorConfig.from_json(os.environ[CONFIG_ENV]))
