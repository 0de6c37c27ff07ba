"""Legacy `stats.collect` beacons on the wire: encode a Beacon as each player sends it, decode any request back.

Usage::

    b = beacon_at(chunk, 0)                 # row 0 of a legacy BeaconChunk as a Beacon
    req = encode(b)                         # GET, exactly as that row's player builds it
    assert decode(req) == b
    key = ledger_key(b)                     # "sessionId|eventType|eventTimestamp|currentPoint"

Encodings (reference sheet a.1-a.3, b.2-b.4):

* ``get``: the player's own GET. KDP: ``//api_v3/index.php?service=stats&action=collect&kalsig=…&…``
  with Flash URLVariables on keys and values (``event%3AentryId=0%5F4lxrbaw9``) and the
  referrer escaped once more by ``escape(unescape(referrer))``. mwEmbed: kWidget.api's order
  ``?service=stats&apiVersion=3.1&expiry=86400&clientTag=…&format=1&ignoreNull=1&action=collect&event:…&hasKanalony=…&ks=…&kalsig=…``,
  literal ``event:`` keys, encodeURIComponent values, referrer and userId encoded twice. v7:
  ``?service=stats&action=collect&apiVersion=3.3.0&format=1&ks=…&clientTag=…&event%3A…``,
  keys and values encodeURIComponent-ed, ``%20`` as ``+``.
* ``form``: what mwEmbed falls back to for long requests: POST ``/api_v3/index.php?service=stats``
  with the rest of the same parameter string as an ``application/x-www-form-urlencoded`` body.
  An mwEmbed ``get`` whose parameters exceed 2000 characters goes out this way by itself.
* ``json``: what the official Python client (KalturaApiClient) sends: POST
  ``/api_v3/service/stats/action/collect``, ``Content-Type: application/json``, a body of
  request params, ``"event": {field: str(value)}`` with the keys sorted and ``kalsig`` last
  (every value a string, booleans as ``True``/``False``, as that client writes them). No
  double encoding: JSON carries text as is.

`kalsig` is computed by the encoder (the server never checks it) and dropped by the decoder.
The decoder detects the encoding from the method and Content-Type, the player from the
clientTag (``kdp:``, ``kwidget:``, ``html5:`` with or without objectType), types the fields
as that player sends them and undoes its double encoding; clients it does not know get the
server's types. Malformed requests raise `DecodeError` with the offending parameter.
"""

from __future__ import annotations

import functools
import hashlib
import json
from urllib.parse import unquote

import numpy as np

from sim.protocols.beacons import Beacon, BeaconChunk, DecodeError, Scalar, WireRequest, per_distinct, row_headers
from sim.protocols.urlencoding import (
    encode_uri_component,
    encode_uri_component_plus,
    flash_url_variables,
    js_escape,
    js_number,
    js_unescape,
    php_parse_query,
)

ENCODINGS = ("get", "form", "json")
API_PATH = "/api_v3/index.php"
JSON_PATH = "/api_v3/service/stats/action/collect"
MWEMBED_MAX_GET = 2000  # kWidget.api's xhrRequest: longer parameter strings go as a form POST

# Wire order of the event fields and request params per player (a field a beacon lacks is skipped).
FIELD_ORDER = {
    "kdp": (
        "eventType",
        "clientVer",
        "eventTimestamp",
        "sessionId",
        "partnerId",
        "entryId",
        "widgetId",
        "uiconfId",
        "userId",
        "currentPoint",
        "duration",
        "seek",
        "referrer",
        "isFirstInSession",
        "objectType",
    ),
    "mwembed": (
        "eventType",
        "clientVer",
        "currentPoint",
        "duration",
        "eventTimestamp",
        "isFirstInSession",
        "objectType",
        "partnerId",
        "sessionId",
        "uiconfId",
        "seek",
        "entryId",
        "widgetId",
        "userId",
        "referrer",
        "historyEvents",
    ),
    "v7": (
        "eventType",
        "isFirstInSession",
        "eventTimestamp",
        "currentPoint",
        "duration",
        "seek",
        "hasKanalony",
        "clientVer",
        "entryId",
        "sessionId",
        "uiConfId",
        "partnerId",
        "widgetId",
        "referrer",
    ),
}
PARAM_ORDER = {
    "kdp": ("clientTag", "ignoreNull", "apiVersion", "partnerId", "ks"),
    "mwembed": ("apiVersion", "expiry", "clientTag", "format", "ignoreNull", "hasKanalony", "ks"),
    "v7": ("apiVersion", "format", "ks", "clientTag"),
}
# mwEmbed's kWidget.api base params come before `action=collect`; the rest after the event.
_MWEMBED_BEFORE_ACTION = ("nocache", "apiVersion", "expiry", "clientTag", "format", "ignoreNull")

# Types of KalturaStatsEvent fields (and the players' extra keys) as players send them.
_INT_FIELDS = frozenset(
    {
        "eventType",
        "partnerId",
        "uiconfId",
        "uiConfId",
        "contextId",
        "featureType",
        "processDuration",
        "newPoint",
        "eventTimestamp",
    }
)
_BOOL_FIELDS = frozenset({"seek", "isFirstInSession", "hasKanalony"})
_INT_PARAMS = frozenset({"format", "ignoreNull", "expiry", "partnerId"})
_BOOL_PARAMS = frozenset({"hasKanalony"})
# currentPoint / duration per player: KDP ms / whole s, mwEmbed ms / float s, v7 float s / float s.
_POINT_TYPE = {"kdp": int, "mwembed": int, "v7": float}
_DURATION_TYPE = {"kdp": int, "mwembed": float, "v7": float}
# Free text a player encodes itself before the transport encodes it again.
_PRE_ENCODED = {"kdp": ("referrer",), "mwembed": ("referrer", "userId", "contextId", "featureType", "applicationId")}
_DROPPED_PARAMS = frozenset({"service", "action", "kalsig"})


# --- rows to beacons -----------------------------------------------------------------------------


def beacon_at(chunk: BeaconChunk, i: int) -> Beacon:
    """Row i of a legacy BeaconChunk as a typed Beacon, fields in its player's wire order."""
    cols = chunk.columns
    flavor = cols["legacy_flavor"].get(i)
    values: dict[str, Scalar] = {}
    for name, col in cols.items():
        if hasattr(col, "pool"):
            v = col.get(i)
            if v is not None:
                values[name] = v
        else:
            values[name] = col[i]
    fields: dict[str, Scalar] = {}
    for name in FIELD_ORDER[flavor]:
        source = "uiconfId" if name == "uiConfId" else name
        if source not in values:
            continue
        v = values[source]
        if name in ("eventType", "partnerId", "uiconfId", "uiConfId", "eventTimestamp"):
            v = int(v)
        elif name == "currentPoint":
            v = _POINT_TYPE[flavor](v)
        elif name == "duration":
            v = _DURATION_TYPE[flavor](v)
        elif name in ("seek", "isFirstInSession"):
            v = bool(v)
        elif name == "hasKanalony":
            if v < 0:
                continue
            v = bool(v)
        fields[name] = v
    params: dict[str, Scalar] = {}
    for name in PARAM_ORDER[flavor]:
        if name == "ignoreNull":
            params[name] = 1
        elif name == "expiry":
            params[name] = 86400
        elif name == "partnerId":
            params[name] = int(values["partnerId"])
        elif name == "format":
            if values["format"] >= 0:
                params[name] = int(values["format"])
        elif name == "hasKanalony":
            if values["hasKanalony"] >= 0:
                params[name] = bool(values["hasKanalony"])
        elif name in values:
            params[name] = values[name]
    return Beacon(
        protocol="legacy",
        fields=fields,
        params=params,
        user_agent=values.get("user_agent"),
        page_url=values.get("page_url"),
        cookie=values.get("cookie"),
        client_ip=values.get("client_ip"),
    )


def ledger_key(beacon: Beacon) -> str:
    """`sessionId|eventType|eventTimestamp|currentPoint`, from wire values only. The policy sends
    a session's beacons at strictly increasing eventTimestamp, so the key is unique in a run."""
    f = beacon.fields
    point = f.get("currentPoint")
    return "|".join(
        (
            str(f.get("sessionId", "")),
            str(f.get("eventType", "")),
            str(f.get("eventTimestamp", "")),
            "" if point is None else js_number(point),
        )
    )


def flavor_of(params: dict, fields: dict) -> str | None:
    """Which player built these parameters, from its clientTag (None: another client)."""
    return _flavor(str(params.get("clientTag", "")), "objectType" in fields)


def _flavor(tag: str, has_object_type: bool) -> str | None:
    if tag.startswith("kdp:"):
        return "kdp"
    if tag.startswith("kwidget:"):
        return "mwembed"
    if tag.startswith("html5:"):
        # old mwEmbed (mw.KApi) also tagged itself html5:v…, but sends objectType
        return "mwembed" if has_object_type else "v7"
    return None


# --- encode ---------------------------------------------------------------------------------------


def encode(beacon: Beacon, encoding: str = "get") -> WireRequest:
    """The HTTP request that carries `beacon` in one of ENCODINGS."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r}: choose one of {', '.join(ENCODINGS)}")
    headers = _context_headers(beacon)
    if encoding == "json":
        headers["Content-Type"] = "application/json"
        return WireRequest("POST", JSON_PATH, headers, _json_body(beacon))
    flavor = flavor_of(beacon.params, beacon.fields)
    query = _player_query(beacon, flavor)
    rest = query[len("service=stats&") :]
    if flavor == "mwembed" and len(rest) > MWEMBED_MAX_GET:
        encoding = "form"  # kWidget.api posts what would make a GET longer than that
    if encoding == "get":
        path = "/" + API_PATH if flavor == "kdp" else API_PATH  # KDP really sends //api_v3/…
        return WireRequest("GET", f"{path}?{query}", headers)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return WireRequest("POST", f"{API_PATH}?service=stats", headers, rest.encode())


def _context_headers(beacon: Beacon) -> dict[str, str]:
    headers = {}
    for name, value in (
        ("User-Agent", beacon.user_agent),
        ("Referer", beacon.page_url),
        ("Cookie", beacon.cookie),
        ("X-Forwarded-For", beacon.client_ip),
    ):
        if value is not None:
            headers[name] = value
    return headers


def _text(value: Scalar) -> str:
    """A value as a JavaScript or ActionScript player writes it into a URL."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return js_number(value.item() if hasattr(value, "item") else value)
    return str(value)


def _player_fields(beacon: Beacon, flavor: str | None) -> list[tuple[str, str]]:
    pre = _PRE_ENCODED.get(flavor, ())
    pairs = []
    for name, value in beacon.fields.items():
        text = _text(value)
        if name in pre:
            text = _pre_encode(flavor, text)
        pairs.append((f"event:{name}", text))
    return pairs


@functools.lru_cache(maxsize=1 << 14)
def _pre_encode(flavor: str, text: str) -> str:
    """The player's own first encoding of free text (page URLs and user ids repeat: cached)."""
    return js_escape(js_unescape(text)) if flavor == "kdp" else encode_uri_component(text)


# Transport encodings per player; ids, numbers and versions are mostly plain ASCII words.
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_JS_PLAIN = _PLAIN | frozenset("-_.!~*'()")


@functools.lru_cache(maxsize=1 << 16)
def _flash(text: str) -> str:
    return text if _PLAIN.issuperset(text) else flash_url_variables(text)


@functools.lru_cache(maxsize=1 << 16)
def _uri(text: str) -> str:
    return text if _JS_PLAIN.issuperset(text) else encode_uri_component(text)


@functools.lru_cache(maxsize=1 << 16)
def _uri_plus(text: str) -> str:
    return text if _JS_PLAIN.issuperset(text) else encode_uri_component_plus(text)


def _player_query(beacon: Beacon, flavor: str | None) -> str:
    events = _player_fields(beacon, flavor)
    params = [(k, _text(v)) for k, v in beacon.params.items()]
    if flavor == "kdp":
        pairs = events + params
        kalsig = _md5("".join(k + v for k, v in sorted(pairs + [("service", "stats"), ("action", "collect")])))
        body = "&".join(f"{_flash(k)}={_flash(v)}" for k, v in pairs)
        return f"service=stats&action=collect&kalsig={kalsig}&{body}"
    if flavor == "mwembed":
        before = [(k, v) for k, v in params if k in _MWEMBED_BEFORE_ACTION]
        after = [(k, v) for k, v in params if k not in _MWEMBED_BEFORE_ACTION]
        pairs = before + [("action", "collect")] + events + after
        query = "service=stats&" + "&".join(f"{k}={_uri(v)}" for k, v in pairs)
        return f"{query}&kalsig={_md5(query)}"
    pairs = params + events
    return "service=stats&action=collect&" + "&".join(f"{_uri_plus(k)}={_uri_plus(v)}" for k, v in pairs)


def _py_text(value: Scalar) -> str:
    """A value as the Python client writes it (`six.text_type`): True, 12, 12.5."""
    if hasattr(value, "item"):
        value = value.item()
    return str(value)


def _json_body(beacon: Beacon) -> bytes:
    body: dict[str, object] = {}
    for name in ("clientTag", "apiVersion", "format"):
        if name in beacon.params:
            body[name] = _py_text(beacon.params[name])
    for name, value in beacon.params.items():
        if name not in body and name != "ks":
            body[name] = _py_text(value)
    body["event"] = {k: _py_text(beacon.fields[k]) for k in sorted(beacon.fields)}
    if "ks" in beacon.params:
        body["ks"] = _py_text(beacon.params["ks"])
    body["kalsig"] = _md5(json.dumps(body))
    return json.dumps(body).encode()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


# --- many rows at once (the live sender's fast path) ----------------------------------------------

# `_context_headers` of a row: (header, column it comes from), in that order
_HEADER_COLUMNS = (
    ("User-Agent", "user_agent"),
    ("Referer", "page_url"),
    ("Cookie", "cookie"),
    ("X-Forwarded-For", "client_ip"),
)


def encode_rows(chunk: BeaconChunk, rows: np.ndarray) -> tuple[list[WireRequest], list[str]]:
    """`encode(beacon_at(chunk, i))` and `ledger_key` of it for each i in `rows`, byte for byte,
    built column by column: each pool string is encoded once, numbers are formatted per
    column, and a row costs a join and (kdp, mwembed) an md5. Rows of one session share
    one headers dict (read it, do not change it). Rows this path does not cover (a
    clientTag that names another player than the row's flavor, an mwEmbed GET long enough
    to go as a form POST) take `encode(beacon_at(...))`.
    """
    rows = np.asarray(rows, np.int64)
    n = len(rows)
    requests: list[WireRequest | None] = [None] * n
    keys: list[str | None] = [None] * n
    if n == 0:
        return [], []
    cols = chunk.columns
    headers = row_headers(cols, rows, _HEADER_COLUMNS)
    flavor_col = cols["legacy_flavor"]
    flavor_codes = flavor_col.codes[rows]
    wire_flavor = _wire_flavors(cols, rows)
    for code in np.unique(flavor_codes):
        flavor = flavor_col.pool[code] if code >= 0 else None
        group = np.flatnonzero((flavor_codes == code) & (wire_flavor == (flavor or "")))
        if flavor in FIELD_ORDER and len(group):
            _encode_group(cols, flavor, rows[group], group, headers, requests, keys)
    for j in range(n):
        if requests[j] is None:  # what the column path does not cover
            beacon = beacon_at(chunk, int(rows[j]))
            requests[j] = encode(beacon)
            keys[j] = ledger_key(beacon)
    return requests, keys


def _wire_flavors(cols, rows: np.ndarray) -> np.ndarray:
    """`flavor_of` per row ("" for another client), from the clientTag and objectType columns."""
    n = len(rows)
    tag_codes = cols["clientTag"].codes[rows] if "clientTag" in cols else np.full(n, -1, np.int32)
    has_object = (cols["objectType"].codes[rows] >= 0) if "objectType" in cols else np.zeros(n, bool)
    pool = cols["clientTag"].pool if "clientTag" in cols else ()

    def flavor(key: int) -> str:
        code, obj = divmod(key, 2)
        tag = pool[code - 1] if code > 0 else ""
        if tag.startswith("html5:"):
            return "mwembed" if obj else "v7"
        return "kdp" if tag.startswith("kdp:") else "mwembed" if tag.startswith("kwidget:") else ""

    return np.array(per_distinct((tag_codes.astype(np.int64) + 1) * 2 + has_object, flavor), object)


def _whole_text(v) -> str:
    """A number `beacon_at` makes an int (truncating), as `_text` writes it."""
    return str(int(v))


def _bool_text(v) -> str:
    return "true" if v else "false"


def _field_column(cols, flavor: str, name: str, rows: np.ndarray):
    """(values per row, text of one value or None when not sent) of field `name`, or None
    when the chunk has no such column. The text is `_text` after `beacon_at`'s typing."""
    source = "uiconfId" if name == "uiConfId" else name
    col = cols.get(source)
    if col is None:
        return None
    if hasattr(col, "pool"):
        pool = col.pool
        if name in _PRE_ENCODED.get(flavor, ()):
            return col.codes[rows], lambda c: None if c < 0 else _pre_encode(flavor, pool[c])
        return col.codes[rows], lambda c: None if c < 0 else pool[c]
    values = col[rows]
    if name in ("eventType", "partnerId", "uiconfId", "uiConfId", "eventTimestamp"):
        return values, _whole_text
    if name in ("currentPoint", "duration"):
        kind = (_POINT_TYPE if name == "currentPoint" else _DURATION_TYPE)[flavor]
        return values, _whole_text if kind is int else lambda v: js_number(float(v))
    if name in ("seek", "isFirstInSession"):
        return values != 0, _bool_text
    if name == "hasKanalony":
        return values, lambda v: None if v < 0 else _bool_text(v)
    return values, _text


def _param_column(cols, name: str, rows: np.ndarray):
    """Like `_field_column` for request param `name`."""
    if name in ("ignoreNull", "expiry"):
        text = "1" if name == "ignoreNull" else "86400"
        return np.zeros(len(rows), np.int8), lambda _: text
    if name == "partnerId":
        return cols["partnerId"][rows], _whole_text
    if name == "format":
        return cols[name][rows], lambda v: None if v < 0 else str(int(v))
    if name == "hasKanalony":
        return cols[name][rows], lambda v: None if v < 0 else _bool_text(v)
    col = cols.get(name)
    if col is None:
        return None
    if hasattr(col, "pool"):
        pool = col.pool
        return col.codes[rows], lambda c: None if c < 0 else pool[c]
    return col[rows], _text


def _encode_group(
    cols, flavor: str, rows: np.ndarray, slots: np.ndarray, headers: list, requests: list, keys: list
) -> None:
    """Rows of one player flavor: fill `requests` and `keys` at `slots`."""
    n = len(rows)
    fields = [
        (f"event:{name}", column)
        for name in FIELD_ORDER[flavor]
        if (column := _field_column(cols, flavor, name, rows)) is not None
    ]
    params = [(name, column) for name in PARAM_ORDER[flavor] if (column := _param_column(cols, name, rows)) is not None]

    def pieces(key: str, column, encode_key, encode_value) -> list[str | None]:
        """`key=value` per row, transport-encoded once per distinct value."""
        values, text = column
        k = encode_key(key) + "="
        if text is _whole_text and len(values) and values.min() >= 0:
            # digits only: every transport leaves them as they are, and most are distinct
            return [k + t for t in map(str, values.astype(np.int64).tolist())]
        return per_distinct(values, lambda v: None if (t := text(v)) is None else k + encode_value(t))

    def plain(column) -> list[str | None]:
        return per_distinct(column[0], column[1])

    none = [None] * n
    by_name = dict(fields)
    sessions, types, stamps, points = (
        plain(by_name[k]) if k in by_name else none
        for k in ("event:sessionId", "event:eventType", "event:eventTimestamp", "event:currentPoint")
    )
    long_rows = ()
    if flavor == "kdp":
        pairs = fields + params
        body = [pieces(k, c, _flash, _flash) for k, c in pairs]
        # kalsig: md5 of every key+value in key order, service and action included
        signed = sorted(
            [(k, pieces(k, c, str, str)) for k, c in pairs]
            + [("service", ["service=stats"] * n), ("action", ["action=collect"] * n)],
            key=lambda kt: kt[0],
        )
        signed_cols = [[None if p is None else p.replace("=", "", 1) for p in t] for _, t in signed]
        path = "/" + API_PATH
        queries = [
            f"service=stats&action=collect&kalsig={_md5(''.join(filter(None, sig)))}&{'&'.join(filter(None, parts))}"
            for sig, parts in zip(zip(*signed_cols), zip(*body))
        ]
    elif flavor == "mwembed":
        before = [(k, c) for k, c in params if k in _MWEMBED_BEFORE_ACTION]
        after = [(k, c) for k, c in params if k not in _MWEMBED_BEFORE_ACTION]
        body = (
            [pieces(k, c, str, _uri) for k, c in before]
            + [["action=collect"] * n]
            + [pieces(k, c, str, _uri) for k, c in fields + after]
        )
        queries = []
        long_rows = []
        for j, parts in enumerate(zip(*body)):
            query = "service=stats&" + "&".join(filter(None, parts))
            query = f"{query}&kalsig={_md5(query)}"
            if len(query) - len("service=stats&") > MWEMBED_MAX_GET:
                long_rows.append(j)  # kWidget.api posts it as a form: the general path
            queries.append(query)
        path = API_PATH
    else:
        body = [pieces(k, c, _uri_plus, _uri_plus) for k, c in params + fields]
        queries = ["service=stats&action=collect&" + "&".join(filter(None, parts)) for parts in zip(*body)]
        path = API_PATH
    skip = set(long_rows)
    for j, slot in enumerate(slots.tolist()):
        if j in skip:
            continue
        requests[slot] = WireRequest("GET", f"{path}?{queries[j]}", headers[slot])
        point = points[j]
        keys[slot] = f"{sessions[j] or ''}|{types[j] or ''}|{stamps[j] or ''}|{'' if point is None else point}"


# --- decode ---------------------------------------------------------------------------------------


def decode(request: WireRequest) -> Beacon:
    """The Beacon a `stats.collect` request carries, whichever player or client sent it."""
    # not urlsplit: KDP's `//api_v3/index.php` would read as a host name
    return decode_pairs(request, php_parse_query(request.url.partition("?")[2]))


def decode_pairs(request: WireRequest, query: list[tuple[str, str]]) -> Beacon:
    """`decode` for a request whose query string is already parsed.

    `query` is `php_parse_query` of the text after the URL's `?`: the collector parses each
    request once and hands the pairs on.
    """
    headers = {k.lower(): v for k, v in request.headers.items()}
    path = request.url.partition("?")[0]
    if request.method == "GET":
        encoding, raw = "get", dict(query)
    elif request.method == "POST":
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            encoding, raw = "json", _json_params(request.body)
        else:
            encoding = "form"
            try:
                body = (request.body or b"").decode()
            except UnicodeDecodeError as e:
                raise DecodeError(f"form body is not UTF-8: {e}") from None
            raw = dict(php_parse_query(body))
        raw.update(query)  # URL parameters win over the body, as in PHP
    else:
        raise DecodeError(f"method {request.method}: stats.collect takes GET or POST")
    raw.update(_path_params(path))

    service, action = str(raw.get("service", "")).lower(), str(raw.get("action", "")).lower()
    if service != "stats" or action != "collect":
        raise DecodeError(f"not stats.collect: service={raw.get('service')!r} action={raw.get('action')!r}")
    # One pass: fields typed as they come (the player is known from the raw params already);
    # a param's error is raised after the fields', as when fields were read first.
    flavor = _flavor(str(raw.get("clientTag", "")), "event:objectType" in raw)
    plans = _KEY_PLANS[flavor, encoding == "json"]
    fields = {}
    params = {}
    param_error = None
    for key, value in raw.items():
        plan = plans.get(key)
        if plan is None:
            plan = _key_plan(key, flavor, encoding)
            if len(plans) < 4096:  # bounded: clients choose the names
                plans[key] = plan
        name, reader, is_field = plan
        if is_field:
            fields[name] = value if reader is _as_string and value.__class__ is str else reader(value)
        elif reader is not None:
            try:
                params[name] = reader(value)
            except DecodeError as e:
                param_error = param_error or e
    if not fields:
        raise DecodeError("missing parameter event: no event:* field in the request")
    if param_error is not None:
        raise param_error
    forwarded = headers.get("x-forwarded-for")
    return Beacon(
        protocol="legacy",
        fields=fields,
        params=params,
        user_agent=headers.get("user-agent"),
        page_url=headers.get("referer"),
        cookie=headers.get("cookie"),
        client_ip=forwarded.split(",")[0].strip() if forwarded else None,
    )


def _json_params(body: bytes | None) -> dict[str, object]:
    try:
        data = json.loads(body or b"")
    except ValueError as e:
        raise DecodeError(f"JSON body: {e}") from None
    if not isinstance(data, dict):
        raise DecodeError("JSON body: expected an object")
    flat: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, (dict, list)):
                    raise DecodeError(f"JSON body: {key}.{sub}: expected a scalar")
                flat[f"{key}:{sub}"] = v
        elif isinstance(value, list):
            raise DecodeError(f"JSON body: {key}: expected a scalar")
        else:
            flat[key] = value
    return flat


@functools.lru_cache(maxsize=256)
def _path_params(path: str) -> dict[str, str]:
    """`/api_v3/service/stats/action/collect` and `/api_v3/index.php/service/…`: key/value segments.

    Cached: players post to a handful of paths. Callers only read the dict.
    """
    segments = [s for s in path.split("#", 1)[0].split("/") if s]
    if "api_v3" not in segments:
        return {}
    rest = segments[segments.index("api_v3") + 1 :]
    if rest and rest[0] == "index.php":
        rest = rest[1:]
    return {unquote(rest[k]): unquote(rest[k + 1]) for k in range(0, len(rest) - 1, 2)}


def _field_value(name: str, value: object, flavor: str | None, encoding: str) -> Scalar:
    if isinstance(value, str) and encoding != "json" and name in _PRE_ENCODED.get(flavor, ()):
        value = _pre_decode(flavor, name, value)
    where = f"event:{name}"
    if name in _BOOL_FIELDS:
        return _as_bool(value)
    if name == "currentPoint" and flavor is not None:
        return _as_number(where, value, _POINT_TYPE[flavor])
    if name == "duration" and flavor is not None:
        return _as_number(where, value, _DURATION_TYPE[flavor])
    if name in _INT_FIELDS or name in ("currentPoint", "duration"):
        return _as_number(where, value, None)
    return _as_string(value)


def _field_readers(flavor: str | None, encoding: str) -> dict[str, object]:
    """`_field_value` for each known field name, resolved once per player and encoding.

    Names the player encodes itself are left out (they take the general path), as are names
    no player sends.
    """
    names = {name for order in FIELD_ORDER.values() for name in order}
    names |= _INT_FIELDS | _BOOL_FIELDS
    readers: dict[str, object] = {}
    if encoding != "json":
        names -= set(_PRE_ENCODED.get(flavor, ()))
    for name in names:
        where = f"event:{name}"
        if name in _BOOL_FIELDS:
            readers[name] = _as_bool
        elif name in ("currentPoint", "duration") and flavor is not None:
            kind = (_POINT_TYPE if name == "currentPoint" else _DURATION_TYPE)[flavor]
            readers[name] = _number_reader(where, kind)
        elif name in _INT_FIELDS or name in ("currentPoint", "duration"):
            readers[name] = _number_reader(where, None)
        else:
            readers[name] = _as_string
    return readers


def _number_reader(where: str, kind: type | None):
    """`_as_number(where, value, kind)` as a one-argument function, plain digits read inline."""
    to_number = float if kind is float else int

    def read(value: object) -> int | float:
        if value.__class__ is str and len(value) <= 18 and value.isdigit() and value.isascii():
            return to_number(value)
        return _as_number(where, value, kind)

    return read


def _key_plan(key: str, flavor: str | None, encoding: str) -> tuple[str, object, bool]:
    """(name, reader, is a field) of a raw parameter; reader None for a param the decoder drops."""
    if key.startswith("event:"):
        name = key[6:]
        reader = (_FIELD_READERS if encoding != "json" else _JSON_FIELD_READERS)[flavor].get(name)
        if reader is None:

            def reader(value: object, name=name) -> Scalar:
                return _field_value(name, value, flavor, encoding)

        return name, reader, True
    return key, None if key in _DROPPED_PARAMS else _PARAM_READERS.get(key, _as_string), False


@functools.lru_cache(maxsize=1 << 14)
def _pre_decode(flavor: str, name: str, text: str) -> str:
    return js_unescape(text) if flavor == "kdp" else _decode_uri_component(name, text)


def _decode_uri_component(name: str, text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise DecodeError(f"event:{name}: bad percent-encoding in {text!r}") from None


def _as_string(value: object) -> str:
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    known = _BOOL_TEXT.get(value) if value.__class__ is str else None
    if known is not None:
        return known
    text = str(value).strip().lower()
    if text in ("false", "0", ""):
        return False
    return True  # PHP's (bool) cast of any other string


def _as_number(where: str, value: object, kind: type | None = None) -> int | float:
    """An int or float parameter; kind None keeps whole numbers as int."""
    if value.__class__ is str:
        if len(value) <= 18 and value.isdigit() and value.isascii():  # most values on the wire
            return float(value) if kind is float else int(value)
        number = _text_number(where, value)
    elif isinstance(value, bool):
        raise DecodeError(f"{where}: expected a number, got {value!r}")
    elif isinstance(value, (int, float)):
        number = value
    else:
        number = _text_number(where, value)
    if kind is float:
        try:
            return float(number)
        except OverflowError:  # an integer of over 308 digits
            raise DecodeError(f"{where}: a number of {len(str(number))} digits, beyond a double") from None
    if isinstance(number, float) and number.is_integer():
        return int(number)
    if kind is int and isinstance(number, float):
        raise DecodeError(f"{where}: expected a whole number, got {value!r}")
    return number


def _text_number(where: str, value: object) -> int | float:
    text = str(value).strip()
    if "." not in text:  # int() never takes a point: spare the exception
        try:
            return int(text)
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        raise DecodeError(f"{where}: expected a number, got {text!r}") from None


_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "": False}  # what players send
_PARAM_READERS = {
    **{name: _as_bool for name in _BOOL_PARAMS},
    **{name: _number_reader(name, None) for name in _INT_PARAMS},
}
_FLAVORS = (*FIELD_ORDER, None)
# raw key -> `_key_plan`, per (player, JSON body): keys repeat from request to request
_KEY_PLANS: dict[tuple[str | None, bool], dict] = {(flavor, json): {} for flavor in _FLAVORS for json in (False, True)}
_FIELD_READERS = {flavor: _field_readers(flavor, "get") for flavor in _FLAVORS}
_JSON_FIELD_READERS = {flavor: _field_readers(flavor, "json") for flavor in _FLAVORS}
