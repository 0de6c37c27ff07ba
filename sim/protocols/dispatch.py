"""Which protocol an incoming HTTP request speaks, and its parameters as Kaltura's server merges them.

    >>> req = WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&event:eventType=3", {})
    >>> parse_request(req).protocol
    'legacy'

Kaltura's API front controller takes its parameters from three places: path segments read
as key/value pairs (`/api_v3/index.php/service/stats/action/collect`, and the Apache rewrite
of `/api_v3/service/...` to that form), the query string, and the body (form-encoded, or a
JSON object when `Content-Type: application/json`). Body params are merged first and URL
params win. Nested objects (`{"event": {"eventType": 3}}` from JSON, `event[eventType]=3`
from PHP-style forms) are flattened to the wire's `event:eventType` keys.

`decode_any` then hands the request to the protocol's own codec, the same module the
generator encodes with, so the collector and the generator cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson

from sim.protocols.beacons import Beacon, DecodeError, Scalar, WireRequest
from sim.protocols.registry import PROTOCOLS, Codec
from sim.protocols.urlencoding import php_parse_query as parse_query  # noqa: F401 - once per request on the hot path

LEGACY = "legacy"
KAVA = "kava"

# service/action pairs (lower-cased, as the dispatcher compares them) -> protocol
_ACTIONS = {spec.service_action: name for name, spec in PROTOCOLS.items()}
_BRACKETS = re.compile(r"\[([^\]]*)\]")


@dataclass
class ParsedRequest:
    """A request's merged parameters and where they came from."""

    protocol: str | None  # "legacy", "kava", or None for any other service/action
    service: str | None
    action: str | None
    params: dict[str, Scalar | None] = field(default_factory=dict)  # flattened, URL wins
    encoding: str = "get"  # get | form | json | post (a POST whose body held no params)
    query: list[tuple[str, str]] | None = None  # the URL query's pairs as `parse_query` read them


def _flat_key(key: str) -> str:
    """`event[eventType]` -> `event:eventType` (PHP nests both forms the same way)."""
    if "[" in key:
        head, _, _ = key.partition("[")
        parts = _BRACKETS.findall(key)
        return ":".join([head, *parts])
    return key


def _flatten_json(obj: dict, prefix: str, out: dict) -> None:
    for key, value in obj.items():  # as orjson reads it: str keys, exact dict and list types
        name = prefix + key if prefix else key
        kind = value.__class__
        if kind is dict:
            _flatten_json(value, name + ":", out)
        elif kind is list:
            # Kaltura arrays of objects; no beacon field is a list, keep the JSON text
            out[name] = orjson.dumps(value).decode()
        else:
            out[name] = value


@functools.lru_cache(maxsize=256)
def path_params(path: str) -> dict[str, str]:
    """Key/value pairs from the path after `/api_v3/` and an optional `index.php`.

    Cached (clients post to a handful of paths): callers only read the dict.
    """
    segments = [s for s in path.split("/") if s]
    if segments and segments[0].lower() == "api_v3":
        segments = segments[1:]
    if segments and segments[0].lower() == "index.php":
        segments = segments[1:]
    pairs = {}
    for i in range(0, len(segments) - 1, 2):
        pairs[unquote(segments[i])] = unquote(segments[i + 1])
    return pairs


def header(headers: dict[str, str], name: str) -> str | None:
    """A header by case-insensitive name."""
    if name in headers:
        return headers[name]
    lname = name.lower()
    for key, value in headers.items():
        if key.lower() == lname:
            return value
    return None


def body_params(request: WireRequest) -> tuple[dict[str, Scalar | None], str]:
    """Parameters carried by the body and the encoding name; raises DecodeError on a bad body."""
    if request.method != "POST":
        return {}, "get"
    body = request.body or b""
    ctype = (header(request.headers, "content-type") or "").lower()
    if "json" in ctype:
        text = body.strip()
        if not text:
            return {}, "post"
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"request body: invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            # PHP only reads a JSON object as params; anything else carries none
            return {}, "post"
        out: dict[str, Scalar | None] = {}
        _flatten_json(obj, "", out)
        return out, "json"
    if not body:
        return {}, "post"
    if "multipart/" in ctype:
        return {}, "post"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("request body: not UTF-8 form data") from None
    return {_flat_key(k): v for k, v in parse_query(text)}, "form"


def parse_request(request: WireRequest) -> ParsedRequest:
    """Merge body, query and path params as Kaltura's `getRequestParams` does (URL wins)."""
    path, _, query = request.url.partition("?")
    params, encoding = body_params(request)
    pairs = parse_query(query)
    if "[" in query or "%5" in query:  # a PHP array key (`event[eventType]`, `event%5BeventType%5D`) may be in it
        for key, value in pairs:
            params[key if "[" not in key else _flat_key(key)] = value
    else:
        params.update(pairs)
    params.update(path_params(path))
    service = params.get("service")
    action = params.get("action")
    service = str(service).lower() if service not in (None, "") else None
    action = str(action).lower() if action not in (None, "") else None
    protocol = _ACTIONS.get((service, action)) if service and action else None
    return ParsedRequest(protocol, service, action, params, encoding, pairs)


def codec_for(protocol: str | None) -> Codec | None:
    """The protocol's codec (from `sim.protocols.registry`), or None for a name it does not hold."""
    spec = PROTOCOLS.get(protocol)
    return spec.codec if spec is not None else None


def _typed(value: Scalar | None) -> Scalar | None:
    """A GET/form value as the JSON type it spells (the codecs type fields the same way)."""
    if not isinstance(value, str):
        return value
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*(e[-+]?\d+)?", value, re.IGNORECASE):
        return float(value)
    return value


def beacon_from_params(parsed: ParsedRequest, request: WireRequest) -> Beacon:
    """A Beacon straight from merged params: the fallback when a codec is absent or refuses."""
    fields: dict[str, Scalar] = {}
    params: dict[str, Scalar] = {}
    for key, value in parsed.params.items():
        if value is None:
            continue
        if parsed.protocol == LEGACY:
            if key.startswith("event:"):
                fields[key[6:]] = _typed(value)
            else:
                params[key] = value
        elif key in (
            "service",
            "action",
            "apiVersion",
            "format",
            "ks",
            "clientTag",
            "ignoreNull",
            "expiry",
            "kalsig",
            "nocache",
        ):
            params[key] = value
        else:
            fields[key] = _typed(value)
    forwarded = header(request.headers, "x-forwarded-for")
    return Beacon(
        protocol=parsed.protocol or LEGACY,
        fields=fields,
        params=params,
        user_agent=header(request.headers, "user-agent"),
        page_url=header(request.headers, "referer"),
        cookie=header(request.headers, "cookie"),
        client_ip=forwarded.split(",")[0].strip() if forwarded else None,
    )


def decode_any(request: WireRequest) -> Beacon:
    """The Beacon a stats.collect or analytics.trackEvent request carries.

    Picks the protocol from service/action (query, path segments or body) and decodes with
    that protocol's codec. Raises DecodeError for any other request or a malformed one.
    """
    parsed = parse_request(request)
    if parsed.protocol is None:
        raise DecodeError(
            f"not an analytics beacon: service={parsed.service!r} action={parsed.action!r} "
            "(expected stats.collect or analytics.trackEvent)"
        )
    codec = codec_for(parsed.protocol)
    if codec is None:
        return beacon_from_params(parsed, request)
    return codec.decode(request)
