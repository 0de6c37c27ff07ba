"""KAVA beacons on the wire: `analytics.trackEvent` as v7 POST/GET and mwEmbed kAnalony requests, and back.

Encodings (kaltura/playkit-js-providers `analytics-service.ts`, `util/param.ts`):

* ``post`` (v7 default): ``POST /api_v3/index.php?service=analytics&action=trackEvent&eventType=..
  &partnerId=..&entryId=..&sessionId=..`` with ``Content-Type: application/json`` and a JSON
  body of ``apiVersion``, ``format`` and every other param (numbers stay numbers; a float
  with an integral value is written as JavaScript does, ``1`` not ``1.0``).
* ``get``: ``GET /api_v3/index.php?service=analytics&action=trackEvent&apiVersion=3.3.0&format=1&<params>``
  with keys and values ``encodeURIComponent``-ed and ``%20`` turned into ``+``.

`decode` also takes mwEmbed's kAnalony GET (``apiVersion=3.1&expiry=..&clientTag=kwidget:v..
&format=1&ignoreNull=1&..&kalsig=..``) and POST, form-encoded POST bodies and the REST-style
path ``/api_v3/service/analytics/action/trackEvent``. Values are typed by parameter name
(`INT_PARAMS`, `FLOAT_PARAMS`, the rest strings), so both encodings decode to the same Beacon;
an empty GET value means "not sent" (the v7 GET form sends undefined params as ``key=``), except for
the string params the plugin's VIEW and PLAY models leave undefined on a real player (`UNDEFINED_AS_EMPTY`):
those keep the empty string, so a beacon carrying ``""`` there goes out as ``key=`` on GET and
is left out of a JSON body (JSON.stringify drops undefined), as the player does.

    request = encode(beacon, encoding="get")
    assert decode(request) == beacon
"""

from __future__ import annotations

import math
from functools import lru_cache
from urllib.parse import urlsplit

import numpy as np
import orjson

from sim.protocols.beacons import Beacon, BeaconChunk, DecodeError, Scalar, WireRequest, per_distinct, row_headers
from sim.protocols.urlencoding import encode_uri_component_plus, php_parse_query

PATH = "/api_v3/index.php"
# Every KAVA request starts so; the encoding decides what follows.
TRACK_EVENT = f"{PATH}?service=analytics&action=trackEvent&"
URL_PARAMS = ("eventType", "partnerId", "entryId", "sessionId")
# Added by the request builders, not by the plugin's event model.
TRANSPORT_PARAMS = {"apiVersion": str, "format": int, "expiry": int, "ignoreNull": int, "kalsig": str}
INT_PARAMS = frozenset(
    {
        "eventType",
        "partnerId",
        "eventIndex",
        "uiConfId",
        "playerSkin",
        "soundMode",
        "tabMode",
        "screenMode",
        "viewabilityMode",
        "errorCode",
        "errorPosition",
        "reportType",
        "adPosition",
        "adErrorCode",
        "flavorParamsId",
        "playbackMode",
    }
)
FLOAT_PARAMS = frozenset(
    {
        "position",
        "playbackSpeed",
        "playTimeSum",
        "bufferTime",
        "bufferTimeSum",
        "actualBitrate",
        "averageBitrate",
        "joinTime",
        "canPlay",
        "targetPosition",
        "adJoinTime",
        "adCurrentTime",
        "playerJSLoadTime",
        "forwardBufferHealth",
        "manifestDownloadTime",
        "segmentDownloadTime",
        "bandwidth",
        "droppedFramesRatio",
        "targetBuffer",
        "networkConnectionOverhead",
        "sessionStartTime",  # the server's `time`, a float with its milliseconds (kava.ts echoes it as given)
    }
)
# String params a real player leaves undefined yet names on a GET (`key=`): the VIEW's audio and
# captions language with no such track, networkConnectionType where the browser has no
# navigator.connection (kava-event-model: `getNetworkConnectionType() !== ''` holds for undefined).
UNDEFINED_AS_EMPTY = frozenset({"audioLanguage", "captionsLanguage", "networkConnectionType"})
# Wire order of the event model: event-specific params first, then the common ones
# (kava-event-model.ts `getEventModel`: Object.assign(eventModel, commonModel)).
FIELD_ORDER = (
    "playTimeSum",
    "bufferTime",
    "bufferTimeSum",
    "actualBitrate",
    "averageBitrate",
    "joinTime",
    "canPlay",
    "audioLanguage",
    "captionsLanguage",
    "soundMode",
    "tabMode",
    "viewabilityMode",
    "screenMode",
    "forwardBufferHealth",
    "manifestDownloadTime",
    "segmentDownloadTime",
    "bandwidth",
    "droppedFramesRatio",
    "targetBuffer",
    "networkConnectionType",
    "networkConnectionOverhead",
    "targetPosition",
    "socialNetwork",
    "reportType",
    "errorCode",
    "errorDetails",
    "errorPosition",
    "loadedPlugins",
    "adBreakType",
    "adPosition",
    "adJoinTime",
    "adErrorCode",
    "adCurrentTime",
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
    "playbackSpeed",
    "playerSkin",
    "caption",
    "sessionStartTime",
    "ks",
    "uiConfId",
    "kalturaApplication",
    "userId",
)
STR_PARAMS = frozenset(FIELD_ORDER) - INT_PARAMS - FLOAT_PARAMS
# The 0.15 line (playkit-js-kava v0.15.1 src/kava-event-model.js) has no common playbackSpeed:
# its VIEW and SPEED models carry it among their own fields, after tabMode. Its events also
# lack playerSkin, which every event of the current line has: that tells the two apart.
FIELD_ORDER_015 = tuple(n for n in FIELD_ORDER if n != "playbackSpeed")
FIELD_ORDER_015 = (
    FIELD_ORDER_015[: FIELD_ORDER_015.index("tabMode") + 1]
    + ("playbackSpeed",)
    + FIELD_ORDER_015[FIELD_ORDER_015.index("tabMode") + 1 :]
)
LINE_MARK = "playerSkin"
DEFAULT_TRANSPORT = {"apiVersion": "3.3.0", "format": 1}


# --- encoding -----------------------------------------------------------------------------------


def js_number(value: int | float) -> str:
    """A number as JavaScript's String(n) writes it (integral floats without `.0`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _json_value(value: Scalar) -> Scalar:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def _text(value: Scalar) -> str:
    return value if isinstance(value, str) else js_number(value)


def _headers(beacon: Beacon) -> dict[str, str]:
    headers = {}
    if beacon.user_agent is not None:
        headers["User-Agent"] = beacon.user_agent
    if beacon.page_url is not None:
        headers["Referer"] = beacon.page_url
    if beacon.client_ip is not None:
        headers["X-Forwarded-For"] = beacon.client_ip
    if beacon.cookie is not None:
        headers["Cookie"] = beacon.cookie
    return headers


# Keys and most values repeat from beacon to beacon (ids, URLs, versions): quote each once.
_quoted = lru_cache(maxsize=1 << 16)(encode_uri_component_plus)


def _query(pairs) -> str:
    return "&".join(f"{_quoted(k)}={_quoted(v) if isinstance(v, str) else js_number(v)}" for k, v in pairs)


def encode(beacon: Beacon, encoding: str = "post") -> WireRequest:
    """The HTTP request a v7 player sends for `beacon` (`encoding` "post" or "get")."""
    if beacon.protocol != "kava":
        raise ValueError(f"encode: beacon protocol is {beacon.protocol!r}, want 'kava'")
    transport = {**DEFAULT_TRANSPORT, **beacon.params}
    headers = _headers(beacon)
    if encoding == "post":
        missing = [k for k in URL_PARAMS if k not in beacon.fields]
        if missing:
            raise ValueError(f"encode: beacon lacks {', '.join(missing)}")
        url = TRACK_EVENT + _query((k, beacon.fields[k]) for k in URL_PARAMS)
        body = {k: _json_value(v) for k, v in transport.items()}
        body.update((k, _json_value(v)) for k, v in beacon.fields.items() if k not in URL_PARAMS and v != "")
        headers["Content-Type"] = "application/json"
        return WireRequest("POST", url, headers, orjson.dumps(body))
    if encoding == "get":
        url = TRACK_EVENT + _query([*transport.items(), *beacon.fields.items()])
        return WireRequest("GET", url, headers, None)
    raise ValueError(f"encode: unknown encoding {encoding!r} (use 'post' or 'get')")


# --- decoding -----------------------------------------------------------------------------------


def _typed(key: str, value, where: str) -> Scalar | None:
    """`value` as the type the parameter has; None for "not sent"."""
    if value is None:
        return None
    if value == "":
        return "" if where == "query" and key in UNDEFINED_AS_EMPTY else None
    # fast paths: the type the param already has (JSON bodies, our own GET strings)
    vtype = type(value)
    if vtype is float and key in FLOAT_PARAMS:
        return value if math.isfinite(value) else _typed_slow(key, value, where)
    if vtype is int and key in INT_PARAMS:
        return value
    if vtype is str:  # a GET or form value: text, or the number it spells (what `_typed_slow` reads)
        if key in STR_PARAMS:
            return value
        if key in _INT_KEYS:
            try:
                return int(value)
            except ValueError:
                pass
        elif key in FLOAT_PARAMS:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
    return _typed_slow(key, value, where)


_INT_KEYS = INT_PARAMS | {key for key, kind in TRANSPORT_PARAMS.items() if kind is int}
assert not _INT_KEYS & FLOAT_PARAMS and not STR_PARAMS & (_INT_KEYS | FLOAT_PARAMS)


def _typed_slow(key: str, value, where: str) -> Scalar | None:
    kind = TRANSPORT_PARAMS.get(key)
    if key in INT_PARAMS or kind is int:
        if isinstance(value, bool):
            raise DecodeError(f"{where}: parameter {key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if number.is_integer():
                return int(number)
            raise DecodeError(f"{where}: parameter {key}: expected an integer, got {value!r}") from None
    if key in FLOAT_PARAMS:
        if isinstance(value, bool):
            raise DecodeError(f"{where}: parameter {key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DecodeError(f"{where}: parameter {key}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise DecodeError(f"{where}: parameter {key}: expected a finite number, got {value!r}")
        return number
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()  # e.g. errorDetails sent as an object
    if kind is str or key in STR_PARAMS or where != "body":
        return value if isinstance(value, str) else js_number(value)
    return value  # an unknown JSON param keeps its JSON type


def _header(headers: dict[str, str], name: str) -> str | None:
    name = name.lower()
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def _body_params(request: WireRequest) -> dict[str, object]:
    body = request.body or b""
    if not body.strip():
        return {}
    ctype = (_header(request.headers, "Content-Type") or "").lower()
    if "form-urlencoded" in ctype:
        try:
            return dict(php_parse_query(body.decode("utf-8")))
        except UnicodeDecodeError:
            raise DecodeError("body: not UTF-8") from None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise DecodeError(f"body: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise DecodeError(f"body: expected a JSON object, got {type(data).__name__}")
    return data


def _path_and_query(url: str) -> tuple[str, str]:
    """`urlsplit(url)`'s path and query; split here for the plain `/path?query` every player sends."""
    plain = url[:1] == "/" and url[1:2] != "/" and "#" not in url
    if plain and "\t" not in url and "\r" not in url and "\n" not in url:  # what urlsplit would cut or remove
        path, _, query = url.partition("?")
        return path, query
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise DecodeError(f"url: {e}") from None
    return parts.path, parts.query


def _wire_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """Field names in the event model's order (its line's), then any others as they came."""
    order = [k for k in (FIELD_ORDER if LINE_MARK in names else FIELD_ORDER_015) if k in names]
    known = set(order)
    return tuple(order + [k for k in names if k not in known])


_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}  # field names as received -> in wire order


def decode(request: WireRequest) -> Beacon:
    """The Beacon a trackEvent request carries (v7 POST/GET, kAnalony GET/POST)."""
    return decode_pairs(request, None)


def decode_pairs(request: WireRequest, query: list[tuple[str, str]] | None) -> Beacon:
    """`decode` for a request whose query string is already parsed.

    `query` is `php_parse_query` of the text after the URL's `?` (the collector parses each
    request once); it is used when that text is the URL's query as `urlsplit` reads it (no
    fragment, no characters urlsplit drops), and the query is parsed here otherwise.
    """
    path, query_text = _path_and_query(request.url)
    if query is None or query_text != request.url.partition("?")[2]:
        query = php_parse_query(query_text)
    rest_style = "/service/analytics/action/trackevent" in path.lower()
    values = dict(query)
    body = _body_params(request) if request.method == "POST" else None
    if body:
        values.update(body)  # the body wins; a key keeps its place from the query
    from_body = body.keys() if body else ()
    service = values.pop("service", None)
    action = values.pop("action", None)
    if not rest_style and (str(service).lower() != "analytics" or str(action).lower() != "trackevent"):
        raise DecodeError(f"url: not analytics.trackEvent (service={service!r}, action={action!r})")
    fields: dict[str, Scalar] = {}
    params: dict[str, Scalar] = {}
    for key, raw in values.items():
        kind = raw.__class__
        if (kind is str and raw and key in STR_PARAMS) or (kind is int and key in INT_PARAMS):
            typed = raw  # `_typed`'s answer for a value of its param's type, without the call
        else:
            typed = _typed(key, raw, "body" if key in from_body else "query")
        if typed is None:
            continue
        (params if key in TRANSPORT_PARAMS else fields)[key] = typed
    missing = [k for k in URL_PARAMS if k not in fields]
    if missing:
        raise DecodeError(f"request: missing {', '.join(missing)}")
    names = tuple(fields)
    order = _ORDERS.get(names)
    if order is None:
        order = _wire_order(names)
        if len(_ORDERS) < 4096:  # bounded: clients choose the names
            _ORDERS[names] = order
    ordered = fields if order == names else {k: fields[k] for k in order}
    headers = {k.lower(): v for k, v in request.headers.items()}
    client_ip = headers.get("x-forwarded-for")
    if client_ip is not None:
        client_ip = client_ip.split(",")[0].strip()
    return Beacon(
        protocol="kava",
        fields=ordered,
        params=params,
        user_agent=headers.get("user-agent"),
        page_url=headers.get("referer"),
        cookie=headers.get("cookie"),
        client_ip=client_ip,
    )


# --- responses ----------------------------------------------------------------------------------


def parse_response(body: bytes) -> tuple[float, bool]:
    """(server time, viewEventsEnabled) from a trackEvent response.

    Both shapes the plugin accepts: `{"time": 1700000000, "viewEventsEnabled": true}` or a
    bare number. The time stays as the server gave it (a float with milliseconds): the plugin
    echoes it unchanged as sessionStartTime. Like kava.ts, an object without
    `viewEventsEnabled` turns VIEWs off (the plugin assigns the missing value); a bare number
    leaves them on.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        try:
            data = float(text)
        except ValueError:
            raise DecodeError(f"response: neither JSON nor a number: {text[:80]!r}") from None
    if isinstance(data, bool):
        raise DecodeError(f"response: expected an object or a number, got {data!r}")
    if isinstance(data, (int, float)):
        return _finite_time(data), True
    if isinstance(data, dict):
        if data.get("objectType") == "KalturaAPIException":
            raise DecodeError(f"response: server error {data.get('code')}: {data.get('message')}")
        time = data.get("time")
        if isinstance(time, bool) or not isinstance(time, (int, float)):
            try:
                time = float(time)
            except (TypeError, ValueError):
                raise DecodeError(f"response: field time: expected a number, got {time!r}") from None
        return _finite_time(time), bool(data.get("viewEventsEnabled"))
    raise DecodeError(f"response: expected an object or a number, got {type(data).__name__}")


def _finite_time(time) -> float:
    time = float(time)
    if not math.isfinite(time):
        raise DecodeError(f"response: field time: expected a finite number, got {time!r}")
    return time


# --- columns to beacons -------------------------------------------------------------------------

REQUEST_CONTEXT = ("user_agent", "page_url", "client_ip")
NOT_WIRE = frozenset({*REQUEST_CONTEXT, "encoding", *TRANSPORT_PARAMS})


def _cell(column, i: int) -> Scalar | None:
    if isinstance(column, np.ndarray):
        value = column[i]
        if column.dtype.kind == "f":
            return None if np.isnan(value) else float(value)
        if column.dtype.kind in "iu":
            return None if value < 0 else int(value)
        if column.dtype.kind == "b":
            return bool(value)
        return value
    return column.get(i)


def _plan(chunk: BeaconChunk, order: tuple[str, ...] = FIELD_ORDER) -> list[tuple[str, str, object, object]]:
    """How to read each wire column of `chunk`: (name, kind, values, pool), in wire order."""
    cols = chunk.columns
    names = [n for n in order if n in cols]
    names += [n for n in cols if n not in NOT_WIRE and n not in order]
    plan = []
    for name in names:
        column = cols[name]
        if isinstance(column, np.ndarray):
            plan.append((name, column.dtype.kind, column, None))
        else:
            plan.append((name, "s", column.codes, column.pool))
    return plan


_last_plan: tuple = (None, None)  # (chunk, plans) of the chunk read last: rows are read chunk by chunk


def _old_line(chunk: BeaconChunk) -> np.ndarray | None:
    """Per row: the beacon is of the 0.15 line (no playerSkin); None when no row is."""
    mark = chunk.columns.get(LINE_MARK)
    if not isinstance(mark, np.ndarray):
        return None
    old = mark < 0
    return old if old.any() else None


def beacon_at(chunk: BeaconChunk, i: int) -> Beacon:
    """Row `i` of a KAVA BeaconChunk as a Beacon (params in the plugin's wire order)."""
    global _last_plan
    cached_chunk, plans = _last_plan  # one read: another thread may swap the pair meanwhile
    if cached_chunk is not chunk:
        old = _old_line(chunk)
        plans = (_plan(chunk), None if old is None else _plan(chunk, FIELD_ORDER_015), old)
        _last_plan = (chunk, plans)
    plan = plans[0] if plans[2] is None or not plans[2][i] else plans[1]
    fields: dict[str, Scalar] = {}
    for name, kind, values, pool in plan:
        if kind == "s":
            code = values[i]
            if code >= 0:
                fields[name] = pool[code]
        elif kind == "f":
            value = float(values[i])
            if value == value:
                fields[name] = value
        elif kind in "iu":
            value = int(values[i])
            if value >= 0:
                fields[name] = value
        else:
            fields[name] = _cell(values, i)
    cols = chunk.columns
    params = {}
    for k in TRANSPORT_PARAMS:
        if k in cols:
            value = _cell(cols[k], i)
            if value is not None:
                params[k] = value
    context = {k: (_cell(cols[k], i) if k in cols else None) for k in REQUEST_CONTEXT}
    return Beacon(protocol="kava", fields=fields, params=params, **context)


def encoding_at(chunk: BeaconChunk, i: int) -> str:
    """How row `i` goes on the wire ("post" or "get"), from the scenario's `player.kava.request_method`."""
    column = chunk.columns.get("encoding")
    return (column.get(i) if column is not None else None) or "post"


def ledger_key(beacon: Beacon) -> str:
    """A key naming one KAVA beacon, from what is on the wire.

    sessionId and eventIndex alone repeat after a pause reset or an error (eventIndex starts
    again at 1), so the key adds the event type, the position and the running sums.
    """
    f = beacon.fields
    parts = [str(f.get("sessionId")), str(f.get("eventIndex")), str(f.get("eventType"))]
    for name in ("position", "playTimeSum", "bufferTimeSum", "targetPosition"):
        value = f.get(name)
        parts.append("" if value is None else js_number(float(value)))
    return ":".join(parts)


# --- many rows at once, ahead of their send times (the live sender's fast path) ------------------

SESSION_START = "sessionStartTime"
# `_headers` of a row: (header, column it comes from), in that order
_HEADER_COLUMNS = (("User-Agent", "user_agent"), ("Referer", "page_url"), ("X-Forwarded-For", "client_ip"))


class Prepared:
    """A KAVA request encoded ahead of its send time but for `sessionStartTime`, which only
    the live server's first answer gives: `request(None)` is `encode` of the beacon without
    it, `request(t)` with `sessionStartTime` t in its wire place."""

    __slots__ = ("method", "prefix", "head", "tail", "headers", "key", "holds_start", "event_type", "start")

    def __init__(self, method, prefix, head, tail, headers, key, holds_start, event_type, start=None):
        self.method = method  # "POST": the body's members are split; "GET": the query's
        self.prefix = prefix  # POST: the whole URL; GET: the URL up to the split params
        self.head, self.tail = head, tail  # members / params before and after sessionStartTime
        self.headers, self.key = headers, key
        self.holds_start = holds_start  # the player holds a sessionStartTime for this beacon
        self.event_type = event_type
        self.start = start  # the sessionStartTime the beacon itself holds (None: none)

    def request(self, session_start: float | None) -> WireRequest:
        head, tail = self.head, self.tail
        if self.method == "POST":
            start = b'"sessionStartTime":' + js_number(session_start).encode() if session_start is not None else b""
            body = b"{" + b",".join(p for p in (head, start, tail) if p) + b"}"
            return WireRequest("POST", self.prefix, self.headers, body)
        start = f"sessionStartTime={js_number(session_start)}" if session_start is not None else ""
        return WireRequest("GET", self.prefix + "&".join(p for p in (head, start, tail) if p), self.headers, None)


def prepare_rows(chunk: BeaconChunk, rows: np.ndarray) -> list[Prepared]:
    """`Prepared` requests for `rows`, built column by column: each distinct value is
    serialised once (JSON for a POST body, the query text for a GET). Rows the columns
    cannot carry (a POST without its URL params) take `encode(beacon_at(...))`'s path."""
    rows = np.asarray(rows, np.int64)
    n = len(rows)
    cols = chunk.columns
    plan = _plan(chunk)
    if any(kind not in "sfiub" for _, kind, _, _ in plan):
        return [_prepare_one(chunk, int(i)) for i in rows]
    # each wire column: (raw values for rows, raw -> value as beacon_at types it, None: not sent)
    raw = {name: _column(kind, data, pool, rows) for name, kind, data, pool in plan}
    transport = [
        (k, v) for k in {**DEFAULT_TRANSPORT, **TRANSPORT_PARAMS} if (v := _transport_column(cols, k, rows)) is not None
    ]
    encodings = cols["encoding"].texts(rows) if "encoding" in cols else [None] * n
    # `_headers` of each row: a JSON body (any encoding but "get") adds its Content-Type
    headers = row_headers(
        cols,
        rows,
        _HEADER_COLUMNS,
        np.array([e != "get" for e in encodings], np.int64),
        ({}, {"Content-Type": "application/json"}),
    )
    old = _old_line(chunk)
    old = None if old is None else old[rows].tolist()

    def parts(plan_names: list[str]) -> tuple:
        """(POST pieces, GET pieces) of a wire order: each (params before, after sessionStartTime)."""
        split = plan_names.index(SESSION_START) if SESSION_START in plan_names else len(plan_names)
        before, after = plan_names[:split], plan_names[split + 1 :]
        return (
            (
                transport + [(k, raw[k]) for k in before if k not in URL_PARAMS],
                [(k, raw[k]) for k in after if k not in URL_PARAMS],
            ),
            (transport + [(k, raw[k]) for k in before], [(k, raw[k]) for k in after]),
        )

    line_parts = (
        parts([name for name, _, _, _ in plan]),
        parts([name for name, _, _, _ in _plan(chunk, FIELD_ORDER_015)]) if old is not None else None,
    )
    none = [None] * n

    def values(name: str) -> list:
        if name not in raw:
            return none
        data, typed = raw[name]
        return per_distinct(data, typed)

    starts, types = values(SESSION_START), values("eventType")
    key_parts = [values(k) for k in ("sessionId", "eventIndex", "eventType")]
    key_sums = [values(k) for k in ("position", "playTimeSum", "bufferTimeSum", "targetPosition")]
    url_params = [values(k) for k in URL_PARAMS]
    url_query = list(
        zip(
            *[
                per_distinct(
                    raw[k][0],
                    lambda v, key=k, typed=raw[k][1]: None if (t := typed(v)) is None else _query_param(key, t),
                )
                if k in raw
                else none
                for k in URL_PARAMS
            ]
        )
    )
    members: dict[tuple, tuple] = {}  # per (encoding, line): (pieces before, pieces after), row by row

    def pieces(encoding: str, line: int) -> tuple:
        if (encoding, line) not in members:
            member = _json_member if encoding == "post" else _query_param
            members[encoding, line] = tuple(
                list(
                    zip(
                        *[
                            per_distinct(
                                data, lambda v, key=k, typed=typed: None if (t := typed(v)) is None else member(key, t)
                            )
                            for k, (data, typed) in part
                        ]
                    )
                )
                or [()] * n
                for part in line_parts[line][0 if encoding == "post" else 1]
            )
        return members[encoding, line]

    out: list[Prepared | None] = [None] * n
    for j in range(n):
        encoding = encodings[j] or "post"
        if encoding == "post":
            if any(p[j] is None for p in url_params):
                out[j] = _prepare_one(chunk, int(rows[j]))
                continue
            heads, tails = pieces("post", 1 if old is not None and old[j] else 0)
            prefix = TRACK_EVENT + "&".join(url_query[j])
            head, tail = b",".join(filter(None, heads[j])), b",".join(filter(None, tails[j]))
            method = "POST"
        elif encoding == "get":
            heads, tails = pieces("get", 1 if old is not None and old[j] else 0)
            prefix = TRACK_EVENT
            head, tail = "&".join(filter(None, heads[j])), "&".join(filter(None, tails[j]))
            method = "GET"
        else:
            out[j] = _prepare_one(chunk, int(rows[j]))
            continue
        key = ":".join(
            [str(p[j]) for p in key_parts] + ["" if p[j] is None else js_number(float(p[j])) for p in key_sums]
        )
        out[j] = Prepared(
            method, prefix, head, tail, headers[j], key, starts[j] is not None, int(types[j] or 0), starts[j]
        )
    return out


def encode_rows(chunk: BeaconChunk, rows: np.ndarray) -> tuple[list[WireRequest], list[str]]:
    """`encode(beacon_at(chunk, i), encoding_at(chunk, i))` and `ledger_key` of it for each i
    in `rows`, byte for byte, built column by column (`prepare_rows` with each beacon's own
    sessionStartTime)."""
    prepared = prepare_rows(chunk, rows)
    return [p.request(p.start) for p in prepared], [p.key for p in prepared]


def _prepare_one(chunk: BeaconChunk, i: int) -> Prepared:
    """`Prepared` for one row through `beacon_at` and `encode` (the general path)."""
    beacon = beacon_at(chunk, i)
    start = beacon.fields.pop(SESSION_START, None)
    holds = start is not None
    request = encode(beacon, encoding_at(chunk, i))
    key = ledger_key(beacon)
    event_type = int(beacon.fields.get("eventType", 0))
    if holds:
        beacon.fields[SESSION_START] = 0
        with_start = encode(beacon, encoding_at(chunk, i))
        marker = b'"sessionStartTime":0' if request.method == "POST" else "sessionStartTime=0"
        text = with_start.body if request.method == "POST" else with_start.url
        at = text.index(marker)
        head, tail = text[:at], text[at + len(marker) :]
        if request.method == "POST":
            head, tail = head[1:].rstrip(b","), tail[:-1].lstrip(b",")
            return Prepared("POST", request.url, head, tail, request.headers, key, True, event_type, start)
        return Prepared(
            "GET",
            TRACK_EVENT,
            head[len(TRACK_EVENT) :].rstrip("&"),
            tail.lstrip("&"),
            request.headers,
            key,
            True,
            event_type,
            start,
        )
    if request.method == "POST":
        return Prepared("POST", request.url, request.body[1:-1], b"", request.headers, key, False, event_type)
    return Prepared("GET", TRACK_EVENT, request.url[len(TRACK_EVENT) :], "", request.headers, key, False, event_type)


def _column(kind: str, data, pool, rows: np.ndarray) -> tuple[np.ndarray, object]:
    """A wire column for `rows`: (raw values, raw -> the value `beacon_at` gives, None when
    the row does not send it)."""
    if kind == "s":
        return data[rows], lambda c: None if c < 0 else pool[c]
    if kind == "f":
        return data[rows], lambda v: None if v != v else float(v)
    if kind in "iu":
        return data[rows], lambda v: None if v < 0 else int(v)
    return data[rows], bool


def _transport_column(cols, key: str, rows: np.ndarray) -> tuple[np.ndarray, object] | None:
    """A transport param as `_column` gives one: the column's value (`_cell`), else the
    default; None when no row sends it."""
    default = DEFAULT_TRANSPORT.get(key)
    column = cols.get(key)
    if column is None:
        return None if default is None else (np.zeros(len(rows), np.int8), lambda _: default)
    if isinstance(column, np.ndarray):
        kind = column.dtype.kind
        _, typed = _column(kind if kind in "fiu" else "b", column, None, rows)
        return column[rows], lambda v: default if (t := typed(v)) is None else t
    pool = column.pool
    return column.codes[rows], lambda c: default if c < 0 else pool[c]


def _json_member(key: str, value) -> bytes:
    if value == "":
        return b""  # undefined: JSON.stringify leaves the member out
    return orjson.dumps(key) + b":" + orjson.dumps(_json_value(value))


def _query_param(key: str, value) -> str:
    return f"{_quoted(key)}={_quoted(value) if isinstance(value, str) else js_number(value)}"
