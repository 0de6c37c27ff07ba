"""Kaltura's server behaviour for beacons, in one place: validation, warehouse flags, response bodies.

What the API server rejects (with HTTP 200 and a KalturaAPIException body, as Kaltura does)
and what it accepts but the legacy warehouse would later drop (flags, not rejections), per
`kaltura-protocols.md` a.2-a.5; and the bodies it answers with: legacy `stats.collect` in
the `format` asked (1 JSON, 2 XML default, 3 PHP, 9 JSONP) and KAVA's
`{"time": .., "viewEventsEnabled": ..}`.

    >>> check_legacy({"event:eventType": "41"}).code
    'INVALID_ENUM_VALUE'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import orjson

from sim.protocols.event_types import LEGACY_DWH_DROPPED

FORMAT_JSON, FORMAT_XML, FORMAT_PHP, FORMAT_JSONP = 1, 2, 3, 9
KNOWN_FORMATS = (FORMAT_JSON, FORMAT_XML, FORMAT_PHP, FORMAT_JSONP)
_CALLBACK = re.compile(r"^[0-9_a-zA-Z.]*$")
# Characters XML 1.0 cannot carry; the deserializer refuses them (INVALID_PARAMETER_CHAR).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INT = re.compile(r"^\s*[-+]?\d+\s*$")
_DWH_DROPPED_TYPES = frozenset(LEGACY_DWH_DROPPED)


@dataclass
class ApiError:
    """A KalturaAPIException: code, message and args as the server fills them."""

    code: str
    message: str
    args: dict[str, str] = field(default_factory=dict)


def ks_digest(ks: str) -> str:
    """What is kept of a ks: the first 16 hex digits of its SHA-256 (a ks is never stored in clear)."""
    return hashlib.sha256(ks.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def ks_parses(ks: str) -> bool:
    """Whether the server could crack this ks: base64 of `v2|<partnerId>|...` or `<sha1>|<partnerId>;...`."""
    text = ks.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    if raw.startswith(b"v2|"):
        partner, sep, rest = raw[3:].partition(b"|")
        return bool(sep) and partner.isdigit() and len(rest) > 0
    signature, sep, fields = raw.partition(b"|")
    if not sep or not re.fullmatch(rb"[0-9a-fA-F]{40}", signature):
        return False
    partner = fields.split(b";", 1)[0]
    return partner.isdigit()


def _as_int(value) -> int | None:
    if value.__class__ is int:
        return value  # a field the codec typed
    if value.__class__ is str and value.isdigit() and value.isascii():
        return int(value)  # a param as sent: plain ASCII digits
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    return None


def response_format(params: dict) -> tuple[int | None, str | None]:
    """(format, callback) of a request; format None means UNKNOWN_RESPONSE_FORMAT."""
    raw = params.get("format")
    fmt = FORMAT_XML if raw in (None, "") else _as_int(raw)
    callback = params.get("callback")
    return (fmt if fmt in KNOWN_FORMATS else None), (None if callback is None else str(callback))


def check_format(params: dict) -> ApiError | None:
    """UNKNOWN_RESPONSE_FORMAT, or the JSONP callback rules of KalturaJsonProcSerializer."""
    fmt, callback = response_format(params)
    if fmt is None:
        return ApiError(
            "UNKNOWN_RESPONSE_FORMAT",
            f"Response format provided [{params.get('format')}] is not recognized by server",
            {"FORMAT": str(params.get("format"))},
        )
    if fmt == FORMAT_JSONP:
        if callback is None:
            return ApiError("MISSING_MANDATORY_PARAMETER", 'Missing parameter "callback"', {"PARAM_NAME": "callback"})
        if not _CALLBACK.match(callback):
            return ApiError("INVALID_FIELD_VALUE", 'Invalid value for field "callback"', {"FIELD_NAME": "callback"})
    return None


def _check_chars(params: dict) -> ApiError | None:
    try:
        text = "".join(params.values())  # GET and form params: all text, joined in C
    except TypeError:
        text = "".join([v for v in params.values() if isinstance(v, str)])
    if not _XML_INVALID.search(text):
        return None
    for key, value in params.items():
        if isinstance(value, str) and _XML_INVALID.search(value):
            return ApiError("INVALID_PARAMETER_CHAR", f'Invalid characters in parameter "{key}"', {"PARAM_NAME": key})
    return None


def _check_enum(params: dict, key: str, allowed, enum_type: str) -> ApiError | None:
    if key not in params or params[key] in (None, ""):
        return None
    value = _as_int(params[key])
    # PHP casts a non-numeric string to 0, which no stats enum holds
    if value is None or value not in allowed:
        return ApiError(
            "INVALID_ENUM_VALUE",
            f'Invalid enumeration value "{params[key]}" for parameter "{key.split(":")[-1]}", '
            f'expecting enumeration type "{enum_type}"',
            {"VALUE": str(params[key]), "PARAM_NAME": key.split(":")[-1], "ENUM": enum_type},
        )
    return None


def check_ks(params: dict) -> ApiError | None:
    """INVALID_KS for a ks the server cannot parse (collect needs none, but parses one if sent)."""
    ks = params.get("ks")
    if ks in (None, "") or ks_parses(str(ks)):
        return None
    digest = ks_digest(str(ks))
    # Kaltura echoes the ks in the message; we name only its digest
    return ApiError(
        "INVALID_KS",
        f'Invalid KS "sha256:{digest}", Error "-1,INVALID_STR"',
        {"KSID": f"sha256:{digest}", "ERR_CODE": "-1", "ERR_DESC": "INVALID_STR"},
    )


def _has_event(params: dict) -> bool:
    if "event:eventType" in params:  # every player's beacon
        return True
    for key in params:
        if key.startswith("event:"):
            return True
    return False


def check_legacy(params: dict) -> ApiError | None:
    """The first error the API server raises for a stats.collect request, or None."""
    return (
        check_format(params)
        or check_ks(params)
        or _check_chars(params)
        or (
            None
            if _has_event(params)
            else ApiError("MISSING_MANDATORY_PARAMETER", 'Missing parameter "event"', {"PARAM_NAME": "event"})
        )
        or _check_enum(params, "event:eventType", range(1, 41), "KalturaStatsEventType")
        or _check_enum(params, "event:featureType", (0, 1), "KalturaStatsFeatureType")
    )


def legacy_flags(fields: dict) -> list[str]:
    """What the legacy warehouse ETL would drop or cut in an accepted event (kaltura/dwh process_file)."""
    lower = {k.lower(): v for k, v in fields.items()}
    flags = []
    event_type = _as_int(lower.get("eventtype"))
    if event_type is None:
        flags.append("missing_event_type")
    elif event_type in _DWH_DROPPED_TYPES:
        flags.append("event_type_dropped_by_dwh")
    partner = lower.get("partnerid")
    if partner in (None, ""):
        flags.append("missing_partner_id")
    elif _as_int(partner) is None:
        flags.append("partner_id_not_numeric")
    uiconf = lower.get("uiconfid")
    if uiconf not in (None, "") and _as_int(uiconf) is None:
        flags.append("uiconf_id_not_numeric")
    entry = lower.get("entryid")
    if entry in (None, ""):
        flags.append("missing_entry_id")
    elif str(entry).lower().startswith(("http:", "https:", "rtmp:")):
        flags.append("entry_id_is_url")
    session = lower.get("sessionid")
    if session is not None:
        if str(session).lower() == "false":
            flags.append("session_id_false")
        elif len(str(session)) > 50:
            flags.append("session_id_over_50")
    return flags


def kava_flags(fields: dict) -> list[str]:
    """A KAVA event the player would never send: nothing goes out without partner, entry, type."""
    flags = []
    for name, flag in (
        ("eventType", "missing_event_type"),
        ("partnerId", "missing_partner_id"),
        ("entryId", "missing_entry_id"),
        ("sessionId", "missing_session_id"),
    ):
        if fields.get(name) in (None, ""):
            flags.append(flag)
    return flags


# --- response bodies -------------------------------------------------------------------

_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?><xml><result>'


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes


def legacy_result(params: dict, exec_time: float) -> Reply:
    """collect's `true`, in the format the request asked for (format already checked)."""
    fmt, callback = response_format(params)
    if fmt == FORMAT_JSON:
        return Reply(200, "application/json", b"true")
    if fmt == FORMAT_JSONP:
        return Reply(200, "application/javascript", f"{callback}(true);".encode())
    if fmt == FORMAT_PHP:
        return Reply(200, "text/plain", b"b:1;")
    return Reply(
        200, "text/xml", (f"{_XML_HEAD}1</result><executionTime>{exec_time:.4f}</executionTime></xml>").encode()
    )


def _error_json(error: ApiError) -> bytes:
    return orjson.dumps(
        {"code": error.code, "message": error.message, "objectType": "KalturaAPIException", "args": error.args}
    )


def _error_xml(error: ApiError, exec_time: float) -> bytes:
    args = "".join(
        f"<item><objectType>KalturaApiExceptionArg</objectType><name>{escape(k)}</name>"
        f"<value>{escape(v)}</value></item>"
        for k, v in error.args.items()
    )
    return (
        f"{_XML_HEAD}<error><objectType>KalturaAPIException</objectType>"
        f"<code>{escape(error.code)}</code><message>{escape(error.message)}</message>"
        f"<args>{args}</args></error></result><executionTime>{exec_time:.4f}</executionTime></xml>"
    ).encode()


def error_reply(error: ApiError, params: dict, exec_time: float, status: int = 200) -> Reply:
    """A KalturaAPIException in the asked format; XML when the format itself is the problem."""
    fmt, callback = response_format(params)
    if (
        error.code in ("INVALID_FIELD_VALUE", "MISSING_MANDATORY_PARAMETER")
        and error.args.get("PARAM_NAME", error.args.get("FIELD_NAME")) == "callback"
    ):
        fmt = FORMAT_JSON  # the JSONP serializer itself failed; answer plain JSON
    if fmt == FORMAT_JSON:
        return Reply(status, "application/json", _error_json(error))
    if fmt == FORMAT_JSONP:
        return Reply(status, "application/javascript", f"{callback}(".encode() + _error_json(error) + b");")
    return Reply(status, "text/xml", _error_xml(error, exec_time))


def kava_result(now: float, view_events_enabled: bool) -> Reply:
    """analytics.trackEvent's answer: server time and whether the player should send VIEWs."""
    return Reply(
        200, "application/json", orjson.dumps({"time": round(now, 3), "viewEventsEnabled": view_events_enabled})
    )
