"""The collector's request handling: route, validate, answer as Kaltura does, record every request.

`Collector.handle(...)` is plain Python (request in, `Answer` out, the row appended to the
store before the answer exists), so it can be exercised without a server; `WorkerApp` is what a
worker process's HTTP layer (`sim.collector.http1`) hands requests to: it routes them, commits
their rows through the store link and answers (injected delays and resets, CORS).

Routes: `/api_v3/...` (and `//api_v3/...`) beacons; `/` the live page; `/stats.json` its
figures; OPTIONS anywhere answers the CORS preflight. Everything else is a 404. Every
answer carries `Access-Control-Allow-Origin: *` so a browser player can point at it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict, dataclass, field

import orjson

from sim.collector import kaltura_api as api
from sim.collector.faults import Delay, FaultPlan
from sim.collector.http1 import Exchange
from sim.collector.link import StoreLink, ask
from sim.collector.live import PAGE_HTML
from sim.collector.store import PARAM_COLUMNS, WIRE_COLUMNS, encode_extra, wire_columns
from sim.protocols.beacons import Beacon, WireRequest
from sim.protocols.dispatch import (
    LEGACY,
    DecodeError,
    ParsedRequest,
    beacon_from_params,
    codec_for,
    parse_request,
)

CONFIG_ENV = "PLAYER_SIM_COLLECTOR_CONFIG"
RUN_HEADER = "x-player-sim-run"  # RUN:WORKER:SEQ:ATTEMPT, sent by player-sim load runs only
ALLOW_ORIGIN = [("access-control-allow-origin", "*")]
CORS = [  # a preflight's answer (OPTIONS), and the pages'
    *ALLOW_ORIGIN,
    ("access-control-allow-methods", "POST, GET, HEAD, OPTIONS"),
    (
        "access-control-allow-headers",
        "Origin, X-Requested-With, Content-Type, Accept, Range, Cache-Control, Authorization",
    ),
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
    workers: int = 1
    socket: str = ""  # the store writer's Unix socket (set by server.serve)
    body_timeout_s: float = 10.0  # a request body must arrive within this
    idle_timeout_s: float = 30.0  # a connection sending no byte or no request head this long is closed

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> CollectorConfig:
        data = orjson.loads(text)
        data["slow"] = Delay(**data["slow"])
        return cls(**data)


class Answer:
    """What a request is answered; a plain class, not a dataclass: compiled (sim/compiled), its
    constructor is C, where a dataclass's generated one stays Python (4 % of a worker's time)."""

    __slots__ = ("status", "content_type", "body", "delay", "reset", "row")

    def __init__(
        self,
        status: int,
        content_type: str,
        body: bytes,
        delay: float = 0.0,  # seconds to wait before answering (test-double mode)
        reset: bool = False,  # close the connection instead of answering
        row: dict | None = None,  # what to store; the answer goes out only once it is committed
    ):
        self.status = status
        self.content_type = content_type
        self.body = body
        self.delay = delay
        self.reset = reset
        self.row = row

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.content_type!r}, {self.body[:60]!r}, row={self.row is not None})"


def _strip_ks(values: dict) -> tuple[dict, str | None]:
    """The values without any ks, and the ks (never stored in clear).

    A ks goes under many spellings (`ks`, `KS`, `event:ks`, `event[ks]`, `ks[]`, ` ks`): any name
    whose letters are `ks` or `eventks` is one. Without a ks the same dict comes back (callers
    only read it).
    """
    if _NOT_KS.issuperset(values):  # the usual case, one C-level pass: every name seen before, none a ks
        return values, None
    if "ks" in values:  # the plain spelling (a KAVA beacon's): without it, is every other name known?
        kept = dict(values)
        value = kept.pop("ks")
        if _NOT_KS.issuperset(kept):
            return kept, (str(value) if value not in (None, "") else None)
    odd = values.keys() - _NOT_KS  # the few names not known to be no ks (C-level)
    named = [key for key in odd if _is_ks_name(key)]
    if len(_NOT_KS) < 4096:  # bounded: clients choose the names
        _NOT_KS.update(odd.difference(named))  # learnt beside a ks too: most KAVA beacons carry one
    if not named:
        return values, None
    ks = None
    kept = {}
    for key, value in values.items():
        if _is_ks_name(key):
            if value not in (None, ""):
                ks = str(value)
        else:
            kept[key] = value
    return kept, ks


def _strip_nested_ks(values: dict) -> tuple[dict, str | None]:
    """The values with every ks inside an object or a list (`{"errorDetails": {"ks": ...}}`) replaced
    by its digest, and the first such ks. Without one the same dict comes back."""
    found: list[str] = []

    def scrub(value):
        if value.__class__ is dict:
            out = {}
            for key, item in value.items():
                if _is_ks_name(str(key)) and item.__class__ is not dict and item.__class__ is not list:
                    if item not in (None, ""):
                        found.append(str(item))
                        item = ks_digest_text(str(item))
                else:
                    item = scrub(item)
                out[key] = item
            return out
        if value.__class__ is list:
            return [scrub(item) for item in value]
        return value

    def scrub_text(value):
        # the codec hands a nested object on as its JSON text
        if value.__class__ is str and value[:1] in ("{", "[") and "ks" in value.lower():
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
            before = len(found)
            scrubbed = scrub(parsed)
            return orjson.dumps(scrubbed).decode() if len(found) > before else value
        return scrub(value)

    scrubbed = {key: scrub_text(value) for key, value in values.items()}
    return (scrubbed, found[0]) if found else (values, None)


_KS_NAME_CACHE: dict[str, bool] = {}
_NOT_KS: set[str] = set()  # names known not to spell a ks


# a name whose last part is `ks`: `event:ks`, `event[ks]`, and a JSON body's nested `errorDetails:ks`
# once the server-style reading flattens it
_KS_LAST_PART = re.compile(r"(?i)(?:^|[:\[])\s*ks\s*\]?\s*$")


def _is_ks_name(key: str) -> bool:
    known = _KS_NAME_CACHE.get(key)
    if known is None:
        known = bool(_KS_LAST_PART.search(key)) or (
            len(key) < 40 and "".join(ch for ch in key.lower() if ch.isalpha()) in ("ks", "eventks")
        )
        if len(_KS_NAME_CACHE) < 4096:  # bounded: clients choose the names
            _KS_NAME_CACHE[key] = known
    return known


# A ks inside a path (`/ks/<KS>`), a Referer or a Cookie: `ks=...`, `event:ks=...`, `event%3Aks=...`
_KS_IN_TEXT = re.compile(r"(?i)((?:^|[?&;,\s/])(?:event(?::|%3a|\[)?)?ks(?:\]|%5d)?(?:=|/))([^&;,#\s/]+)")


def scrub_ks(text: str | None) -> str | None:
    """`text` with every ks value replaced by its digest (`sha256:...`)."""
    if not text or ("ks" not in text and "KS" not in text and "Ks" not in text and "kS" not in text):
        return text
    return _KS_IN_TEXT.sub(lambda m: m.group(1) + ks_digest_text(m.group(2)), text)


def ks_digest_text(ks: str) -> str:
    """What is stored where a ks stood in text or in a JSON value: `sha256:` and its digest."""
    return "sha256:" + api.ks_digest(ks)


def run_columns(value: str | None) -> dict:
    """The run columns from `X-Player-Sim-Run: RUN:WORKER:SEQ:ATTEMPT` (what a load run sends)."""
    if not value:
        return {}
    parts = value.strip().split(":")
    run = parts[0][:64]
    if not run:
        return {}
    out = {"run_id": run}
    for name, text, limit in zip(("run_worker", "run_seq", "run_attempt"), parts[1:4], (2**31, 2**63, 2**31)):
        if text.isdigit() and int(text) < limit:
            out[name] = int(text)
    return out


def _by_lower_name(headers: dict[str, str]) -> dict[str, str]:
    """Headers under lower-case names, each as `dispatch.header` finds it (an exact match first).

    Names all lower-case already (what the HTTP layer hands on) give the same dict back (callers only read it).
    """
    if _LOWER_NAMES.issuperset(headers):  # one C-level pass: every name seen before in lower case
        return headers
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if name == lower or lower not in out:
            out[lower] = value
    if len(_LOWER_NAMES) < 4096:  # bounded: clients choose the names
        _LOWER_NAMES.update(name for name in headers if name == name.lower())
    return out


_LOWER_NAMES: set[str] = set()  # header names known to be in lower case


class Collector:
    """Turns requests into answers and rows; owns the store and the live figures."""

    __slots__ = ("config", "faults", "faults_active")

    def __init__(self, config: CollectorConfig):
        self.config = config
        self.faults = FaultPlan(config.fail_rate, config.reset_rate, config.slow)
        self.faults_active = self.faults.active  # read once: the plan does not change

    # --- rows -------------------------------------------------------------------------

    def _row(
        self, now: float, method: str, path: str, headers: dict, remote: str, encoding: str | None, protocol: str | None
    ) -> dict:
        """The request's own columns; `headers` by lower-case name (`_by_lower_name`)."""
        forwarded = headers.get("x-forwarded-for")
        row = {
            "ts": now,
            "received_at": now,
            "method": method,
            "path": scrub_ks(path[:2048]),
            "remote_addr": remote,
            "encoding": encoding,
            "protocol": protocol,
            "client_ip": forwarded.split(",")[0].strip() if forwarded else remote,
            "user_agent": headers.get("user-agent"),
            "page_url": scrub_ks(headers.get("referer")),
            "cookie": scrub_ks(headers.get("cookie")),
        }
        run = headers.get(RUN_HEADER)
        if run is not None:
            row.update(run_columns(run))
        return row

    def _fill_beacon(self, row: dict, beacon: Beacon, ks: str | None) -> None:
        fields, ks_field = _strip_ks(beacon.fields)
        params, ks_param = _strip_ks(beacon.params)
        ks = ks or ks_field or ks_param
        if row.get("encoding") == "json":  # only a JSON body nests objects, and a ks may hide in one
            fields, ks_nested = _strip_nested_ks(fields)
            ks = ks or ks_nested
        columns: dict = {}  # no wire column is a request column: gathered apart, added after the verdict
        extra: dict = {}
        too_big = wire_columns(fields, WIRE_COLUMNS, columns, extra) + wire_columns(
            params, _PARAM_TARGETS, columns, extra
        )
        if too_big and row.get("accepted"):
            # The API server casts such a number to its largest integer and answers as usual; the
            # warehouse cannot load it, so it is stored as rejected, the digits kept in `extra`.
            row.update(
                accepted=False,
                error_code="INTEGER_OUT_OF_RANGE",
                flags=None,
                reason=f"{', '.join(sorted(too_big))}: beyond 64-bit integers",
            )
        row.update(columns)
        row["extra"] = encode_extra(extra)
        row["has_ks"] = ks is not None
        row["ks_sha256"] = api.ks_digest(ks) if ks else None

    # --- requests ---------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes | None, remote: str) -> Answer:
        """The answer to one beacon request (`url` is path and query); the row is stored first."""
        started = time.perf_counter()
        now = time.time()
        path = url.partition("?")[0]
        named = _by_lower_name(headers)
        if method not in ("GET", "POST"):
            row = self._row(now, method, path, named, remote, None, None)
            return self.refusal(row, 405, "METHOD_NOT_ALLOWED", f"method {method} is not accepted")
        request = WireRequest(method, url, headers, body)
        try:
            parsed = parse_request(request)
        except DecodeError as exc:
            row = self._row(now, method, path, named, remote, "post", None)
            return self.refusal(row, 400, "INVALID_REQUEST_BODY", str(exc))
        row = self._row(now, method, path, named, remote, parsed.encoding, parsed.protocol)
        params, ks = _strip_ks(parsed.params)

        if parsed.protocol is None:
            error = self._service_error(parsed)
            row.update(accepted=False, status=200, error_code=error.code, reason=error.message)
            self._fill_beacon(row, beacon_from_params(parsed, request), ks)
            return self._answer(api.error_reply(error, params, time.perf_counter() - started), row)

        fault, delay = self.faults.draw() if self.faults_active else (None, 0.0)
        error = api.check_legacy(parsed.params) if parsed.protocol == LEGACY else None
        if error is not None:
            beacon = beacon_from_params(parsed, request)
            # The key comes from the codec's reading, as for accepted rows, so reconciliation
            # reports the beacon as sent-and-rejected rather than lost plus unexpected.
            row.update(
                accepted=False,
                status=200,
                error_code=error.code,
                reason=error.message,
                ledger_key=self._ledger_key(self._decode(parsed, request)[0]),
            )
        else:
            beacon, note = self._decode(parsed, request)
            flags = api.legacy_flags(beacon.fields) if parsed.protocol == LEGACY else api.kava_flags(beacon.fields)
            if note:
                flags.append(note)
            row.update(accepted=True, status=200, flags=",".join(flags) or None, ledger_key=self._ledger_key(beacon))
        self._fill_beacon(row, beacon, ks)

        if fault is not None:
            status = 503 if fault == "fail" else None
            row.update(
                accepted=False,
                fault=fault,
                status=status,
                error_code="SIMULATED_FAILURE" if fault == "fail" else "SIMULATED_RESET",
                reason=f"injected by --{fault}-rate",
            )
            if fault == "reset":
                return Answer(503, "text/plain", b"", delay=delay, reset=True, row=row)
            return Answer(
                503,
                "application/json",
                orjson.dumps({"code": "SERVICE_UNAVAILABLE", "message": "simulated failure (--fail-rate)"}),
                delay=delay,
                row=row,
            )

        elapsed = time.perf_counter() - started
        if error is not None:
            reply = api.error_reply(error, parsed.params, elapsed)
        elif parsed.protocol == LEGACY:
            reply = api.legacy_result(parsed.params, elapsed)
        else:
            reply = api.kava_result(time.time(), self.config.view_events_enabled)
        answer = self._answer(reply, row)
        answer.delay = delay
        return answer

    def refuse_transport(
        self, method: str, url: str, headers: dict, remote: str, status: int, code: str, message: str
    ) -> Answer:
        """Record and answer a request refused before it was read (too large, unreadable)."""
        row = self._row(time.time(), method, url.partition("?")[0], _by_lower_name(headers), remote, None, None)
        return self.refusal(row, status, code, message)

    def not_found(self, method: str, url: str, headers: dict, remote: str) -> Answer:
        """A path outside the API (a scanner, a browser's /favicon.ico): answered, not stored."""
        return self.refusal(
            None, 404, "NOT_FOUND", f"no such path {url.partition('?')[0][:200]!r}: beacons go to /api_v3/index.php"
        )

    # --- helpers ----------------------------------------------------------------------

    def _decode(self, parsed: ParsedRequest, request: WireRequest) -> tuple[Beacon, str | None]:
        """The codec's Beacon; the server-style reading when the codec refuses what Kaltura takes."""
        codec = codec_for(parsed.protocol)
        if codec is None:
            return beacon_from_params(parsed, request), None
        try:
            if parsed.query is not None:  # parsed already: hand them on
                return codec.decode_pairs(request, parsed.query), None
            return codec.decode(request), None
        except (ValueError, KeyError, TypeError, OverflowError) as exc:  # DecodeError is a ValueError
            return beacon_from_params(parsed, request), f"codec_refused:{type(exc).__name__}"

    @staticmethod
    def _ledger_key(beacon: Beacon) -> str | None:
        codec = codec_for(beacon.protocol)
        if codec is None:
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
            return api.ApiError(
                "SERVICE_DOES_NOT_EXISTS", f'Service "{parsed.service}" does not exists', {"SERVICE": parsed.service}
            )
        if not parsed.action:
            return api.ApiError("ACTION_NOT_SPECIFIED", "Action name was not specified, please specify one")
        return api.ApiError(
            "ACTION_DOES_NOT_EXISTS",
            f'Action "{parsed.action}" does not exists for service "{parsed.service}"',
            {"ACTION": parsed.action, "SERVICE": parsed.service},
        )

    def refusal(self, row: dict | None, status: int, code: str, message: str) -> Answer:
        """Kaltura's error answer with `status`; `row` (when there is one) records the refusal."""
        if row is not None:
            row.update(accepted=False, status=status, error_code=code, reason=message)
        return Answer(
            status,
            "application/json",
            orjson.dumps({"code": code, "message": message, "objectType": "KalturaAPIException", "args": {}}),
            row=row,
        )

    @staticmethod
    def _answer(reply: api.Reply, row: dict | None = None) -> Answer:
        return Answer(reply.status, reply.content_type, reply.body, row=row)


def unstored(reason: str) -> Answer:
    """The answer to a request whose row could not be committed: nothing was stored, so not a 200."""
    return Answer(
        503,
        "application/json",
        orjson.dumps(
            {"code": "SERVICE_UNAVAILABLE", "message": reason, "objectType": "KalturaAPIException", "args": {}}
        ),
    )


class WorkerApp:
    """A worker process's request handling (the handler of `sim.collector.http1`): one Collector; rows
    go to the store writer and each request is answered once its row is committed."""

    __slots__ = ("config", "loop", "metrics", "_latency", "_counters", "_tally", "collector", "link")

    def __init__(self, config: CollectorConfig, loop: asyncio.AbstractEventLoop):
        from sim.collector import metrics  # after server.serve set PROMETHEUS_MULTIPROC_DIR

        self.config = config
        self.loop = loop
        self.metrics = metrics
        self._latency = metrics.LATENCY.labels("beacon")
        self._counters: dict = {}
        self._tally = metrics.Tally(loop)
        self.collector = Collector(config)
        self.link = StoreLink(config.socket, loop)

    async def close(self) -> None:
        """Commit what waits for the store, then close the link."""
        await self.link.close()

    # --- the handler's two entries (sim.collector.http1) ----------------------------------

    def request(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        method = exchange.method  # upper case: the parser takes no other
        path = exchange.path
        if method == "OPTIONS":
            exchange.send(204, _PREFLIGHT_HEAD, b"")
            return
        if not _is_api(path):
            self._other(exchange, method, path)
            return
        if method == "HEAD":
            exchange.send(200, _CORS_HEAD, b"")
            return
        url = _url(exchange)
        body = exchange.body if method == "POST" else None
        answer = self.collector.handle(method, url, exchange.headers, body, exchange.remote)
        if answer.delay > 0:
            self.loop.call_later(answer.delay, self._commit_and_send, exchange, answer, started)
        else:
            self._commit_and_send(exchange, answer, started)

    def refuse(self, exchange: Exchange, status: int, code: str, message: str) -> None:
        """A request refused before its body was read: a body over the limit (413), or too slow (408)."""
        started = time.perf_counter()
        if not _is_api(exchange.path):  # answered, not stored, as every request outside the API
            self._send(exchange, self.collector.refusal(None, status, code, message))
            return
        answer = self.collector.refuse_transport(
            exchange.method, _url(exchange), exchange.headers, exchange.remote, status, code, message
        )
        self._commit_and_send(exchange, answer, started)

    # --- answers --------------------------------------------------------------------------

    def _commit_and_send(self, exchange: Exchange, answer: Answer, started: float) -> None:
        if answer.row is None:
            self._finish(exchange, answer, None, started)
        else:
            self.link.submit_then(answer.row, self._committed, (exchange, answer, started))

    def _committed(self, waiting: tuple, result: dict) -> None:
        exchange, answer, started = waiting
        try:
            if result["ok"]:
                self._finish(exchange, answer, None, started)
            else:
                unstored_answer = unstored(result.get("error") or "the store cannot take requests")
                unstored_answer.row = answer.row
                self._finish(exchange, unstored_answer, "unstored", started)
        except Exception:  # never into the link's reading of the writer's answer
            exchange.connection.server.failed(exchange)

    def _finish(self, exchange: Exchange, answer: Answer, outcome: str | None, started: float) -> None:
        self._count(answer.row, outcome, started)
        if answer.reset:
            exchange.reset()
        else:
            self._send(exchange, answer)

    def _count(self, row: dict | None, outcome: str | None, started: float) -> None:
        m = self.metrics
        tally = self._tally
        tally.observe(self._latency, time.perf_counter() - started)
        if row is None:
            return
        protocol = row.get("protocol") or "none"
        event_type = row.get("eventType")
        if outcome is None:
            if row.get("fault"):
                outcome = "faulted"
            elif row.get("accepted"):
                outcome = "accepted"
                if row.get("flags"):
                    tally.count(m.FLAGGED.labels(protocol, m.event_label(protocol, event_type)))
            else:
                outcome = "rejected" if row.get("status") == 200 else "refused"
        key = (protocol, event_type, outcome)
        counter = self._counters.get(key)
        if counter is None:  # label children looked up once each (a bounded set: see event_label)
            counter = m.REQUESTS.labels(protocol, m.event_label(protocol, event_type), outcome)
            if len(self._counters) < 10000:
                self._counters[key] = counter
        tally.count(counter)

    def _other(self, exchange: Exchange, method: str, path: str) -> None:
        """The page, its figures, /metrics and any other path: answered, never stored."""
        started = time.perf_counter()
        route = "other"
        if path == "/" and method in ("GET", "HEAD"):
            route = "page"
            exchange.send(200, _PAGE_HEAD, PAGE_HTML if method == "GET" else b"")
        elif path == "/stats.json" and method in ("GET", "HEAD"):
            route = "stats"
            # the scan runs in the store writer, on its own cursor; this worker only waits for it
            self._off_loop(exchange, route, started, _STATS_HEAD, self._stats)
            return
        elif path == "/metrics" and method in ("GET", "HEAD"):
            route = "metrics"
            self._tally.flush()  # this worker's figures up to now
            head = b"content-type: " + self.metrics.CONTENT_TYPE.encode() + b"\r\n"
            self._off_loop(exchange, route, started, head, self.metrics.scrape)
            return
        elif path == "/favicon.ico":
            exchange.send(204, _FAVICON_HEAD, b"")
        elif method == "HEAD":
            exchange.send(404, _CORS_HEAD, b"")
        else:
            self._send(exchange, self.collector.not_found(method, path, {}, ""))
        self.metrics.LATENCY.labels(route).observe(time.perf_counter() - started)

    def _stats(self) -> bytes:
        return orjson.dumps(ask(self.config.socket, {"q": "stats"}))

    def _off_loop(self, exchange: Exchange, route: str, started: float, head: bytes, produce) -> None:
        """Answer with what `produce()` returns, run on a thread (a scan or a scrape takes milliseconds)."""

        def done(future) -> None:
            try:
                body = future.result()
            except Exception as exc:  # the writer gone, a scrape failing: said, not a traceback
                self._send(exchange, unstored(f"{route} unavailable: {exc}"))
            else:
                exchange.send(200, head, body if exchange.method != "HEAD" else b"")
            self.metrics.LATENCY.labels(route).observe(time.perf_counter() - started)

        self.loop.run_in_executor(None, produce).add_done_callback(done)

    @staticmethod
    def _send(exchange: Exchange, answer: Answer) -> None:
        head = _ANSWER_HEADS.get(answer.content_type)
        if head is None:  # the few content types answers carry: built once each
            # Allow-Methods and Allow-Headers count only in a preflight's answer (the Fetch standard), so a
            # beacon's answer carries Allow-Origin alone
            head = _ANSWER_HEADS[answer.content_type] = _head(ALLOW_ORIGIN + [("content-type", answer.content_type)])
        exchange.send(answer.status, head, answer.body)


def _url(exchange: Exchange) -> str:
    """Path and query, as `Collector.handle` takes them."""
    return exchange.path + "?" + exchange.query if exchange.query else exchange.path


def _is_api(path: str) -> bool:
    return path.startswith("/api_v3") or path.startswith("//api_v3")


def _head(headers: list[tuple[str, str]]) -> bytes:
    """Header lines as `sim.collector.http1` writes them."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)


_ANSWER_HEADS: dict[str, bytes] = {}
_CORS_HEAD = _head(CORS)
_PREFLIGHT_HEAD = _head(CORS + [("access-control-max-age", "86400")])
_PAGE_HEAD = _head(CORS + [("content-type", "text/html; charset=utf-8")])
_STATS_HEAD = _head(CORS + [("content-type", "application/json"), ("cache-control", "no-store")])
_FAVICON_HEAD = _head(CORS + [("cache-control", "max-age=86400")])
