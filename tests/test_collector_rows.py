"""The collector's rows stay what they were when the hot path takes its short cuts.

Two short cuts on every request: the legacy codec types each (name, text) of a GET or form
request once per player and looks it up after that (`_TYPED_FIELDS`, `_TYPED_PARAMS`), and
`store.wire_columns` places the usual (value type, column type) pairs without calling `coerce`.
Each is checked against the long way on a varied corpus: every legacy player and encoding from
the generator, KAVA beacons, the real player's recordings under tests/oracle/recordings, and the
same requests with odd values, ks spellings, odd headers and path forms added.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from legacy_timelines import FLAVORS, generated
from sim.collector import app, store as store_module
from sim.collector.store import B, D, I, S, coerce, wire_columns
from sim.protocols.beacons import WireRequest
from sim.protocols.legacy import codec as legacy
from sim.protocols.legacy.policy import beacons as legacy_beacons

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracle"))
from oracle_recordings import load_all  # noqa: E402

ODD_VALUES = [
    "", "abc", "99999999999999999999999", "-5", "3.5", "1e3", " 7 ", "true", "false", "0", "%ZZ", "%C3%A9",
    "http://x.y/z", "a" * 60, "\x01", "9223372036854775808", "2147483648", "NaN", "inf", "0x10", "+4", "1_000",
    "\u0663",
]  # fmt: skip
ODD_KEYS = [
    "event:eventType", "event:partnerId", "event:entryId", "event:sessionId", "event:currentPoint", "event:duration",
    "event:uiconfId", "event:uiConfId", "event:seek", "format", "callback", "ks", "KS", "event:ks", "event[eventType]",
    "ignoreNull", "expiry", "hasKanalony", "apiVersion", "clientTag", "event:EventType", "eventType", "partnerId",
    "eventIndex", "position", "event:featureType", "event:isFirstInSession", "event:eventTimestamp", "service",
    "action", "kalsig", "event:newPoint", "event:referrer", "event:objectType", "event:status", "event:flags",
]  # fmt: skip


def _corpus() -> list[tuple[str, str, dict, bytes | None]]:
    requests = []
    for flavor in FLAVORS:
        made = legacy_beacons(generated(flavor), with_kava=True)
        for i in range(0, len(made), max(1, len(made) // 150)):
            wire = legacy.encode(legacy.beacon_at(made, i), legacy.ENCODINGS[i % len(legacy.ENCODINGS)])
            requests.append((wire.method, wire.url, dict(wire.headers), wire.body))
    for recording in load_all().values():
        for r in recording.requests:
            if r.method != "OPTIONS":
                requests.append((r.method, r.url, dict(r.headers), r.body.encode() if r.body is not None else None))
    rnd = random.Random(13)
    plain = list(requests)
    for _ in range(1500):
        method, url, headers, body = rnd.choice(plain)
        headers = dict(headers)
        for _ in range(rnd.randint(1, 3)):
            sep = "&" if "?" in url else "?"
            url += sep + quote(rnd.choice(ODD_KEYS), safe=":[]") + "=" + quote(rnd.choice(ODD_VALUES), safe="")
        pick = rnd.random()
        if pick < 0.1:
            headers["X-Forwarded-For"] = "10.1.2.3, 1.1.1.1"
        elif pick < 0.2:
            headers["Referer"] = "https://example.com/page?ks=secret&x=1"
        elif pick < 0.3:
            headers["X-Player-Sim-Run"] = rnd.choice(["run1:2:33:1", "r:x:1", "run9:1:99999999999999999999:1"])
        elif pick < 0.4:
            url = url.replace("/api_v3/index.php", "/api_v3/index.php/service/stats/action/collect", 1)
        elif pick < 0.45:
            method, headers["Content-Type"] = "POST", "application/x-www-form-urlencoded"
            body = (body or b"") + b"&event:eventType=3&event:partnerId=" + rnd.choice(ODD_VALUES).encode()
        requests.append((method, url, headers, body))
    return requests


CORPUS = _corpus()


def _comparable(value):
    """NaN equal to itself, and a value's type part of its identity (True is not 1)."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dict):
        return {k: (_comparable(v), type(v).__name__) for k, v in value.items()}
    return value


def _answers(collector: app.Collector) -> list:
    out = []
    for method, url, headers, body in CORPUS:
        answer = collector.handle(method, url, headers, body, "127.0.0.1")
        out.append((answer.status, answer.content_type, answer.body, _comparable(answer.row)))
    return out


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(app.time, "time", lambda: 1_700_000_000.25)
    monkeypatch.setattr(app.time, "perf_counter", lambda: 5.0)


def test_the_corpus_holds_accepted_flagged_rejected_and_refused_requests(fixed_clock):
    rows = [answer[3] for answer in _answers(app.Collector(app.CollectorConfig()))]
    codes = {row["error_code"][0] for row in rows if row.get("error_code", (None,))[0]}
    flags = {row["flags"][0] for row in rows if row.get("flags", (None,))[0]}
    assert {"INVALID_ENUM_VALUE", "INTEGER_OUT_OF_RANGE", "INVALID_KS", "UNKNOWN_RESPONSE_FORMAT"} <= codes
    assert any("codec_refused" in f for f in flags) and any("event_type_dropped_by_dwh" in f for f in flags)
    assert sum(1 for row in rows if row.get("accepted", (None,))[0] is True) > len(rows) // 3
    assert sum(1 for row in rows if row.get("extra", (None,))[0]) > 100  # values that fit no column


def test_rows_typed_from_the_memo_equal_rows_typed_afresh(fixed_clock, monkeypatch):
    legacy._TYPED_PARAMS.clear()
    for known in legacy._TYPED_FIELDS.values():
        known.clear()
    cold = _answers(app.Collector(app.CollectorConfig()))
    warm = _answers(app.Collector(app.CollectorConfig()))
    assert sum(len(known) for known in legacy._TYPED_FIELDS.values()) > 100  # the memo was used
    monkeypatch.setattr(legacy, "_TYPED_MAX", -1)  # emptied before every request: every value typed afresh
    afresh = _answers(app.Collector(app.CollectorConfig()))
    for n, (a, b, c) in enumerate(zip(cold, warm, afresh)):
        assert a == b == c, CORPUS[n][:2]


def test_decoded_beacons_equal_with_and_without_the_memo(monkeypatch):
    requests = [WireRequest(m, url, h, body) for m, url, h, body in CORPUS if "service=stats" in url]

    def decoded():
        out = []
        for request in requests:
            try:
                beacon = legacy.decode(request)
            except ValueError as exc:  # DecodeError: the same refusal either way
                out.append(str(exc))
                continue
            out.append((_comparable(beacon.fields), _comparable(beacon.params), beacon.user_agent, beacon.client_ip))
        return out

    warm = decoded()
    monkeypatch.setattr(legacy, "_TYPED_MAX", -1)
    assert decoded() == warm
    assert sum(1 for d in warm if isinstance(d, str)) > 10  # refusals are in the corpus too


def test_the_memo_stays_bounded(monkeypatch):
    monkeypatch.setattr(legacy, "_TYPED_MAX", 50)
    base = "/api_v3/index.php?service=stats&action=collect&clientTag=kdp%3Av3.5&event:eventType=3&event:sessionId="
    for n in range(400):
        legacy.decode(WireRequest("GET", f"{base}s{n}&event:currentPoint={n}", {}))
    assert len(legacy._TYPED_FIELDS["kdp"]) <= 51 + 4


VALUES = [
    None, "", "x", "12", True, False, 0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63,
    -(2**63), -(2**63) - 1, 2**70, 0.0, 1.5, -2.0, float("nan"), float("inf"), 3.0, {"a": 1}, [1, 2],
]  # fmt: skip


@pytest.mark.parametrize("sql_type", [S, I, "INTEGER", D, B])
def test_wire_columns_places_every_value_as_coerce_types_it(sql_type):
    targets = {"eventType": sql_type}
    for value in VALUES:
        row: dict = {}
        extra: dict = {}
        wire_columns({"eventType": value}, targets, row, extra)
        try:
            expected = coerce(value, sql_type)
        except (ValueError, TypeError, OverflowError):
            assert extra == {"eventType": value} and row == {}, (value, sql_type)
            continue
        if expected is None:  # a None value: coerce keeps None, the column stays empty
            assert row.get("eventType") is None
            continue
        assert _comparable({"v": row["eventType"]}) == _comparable({"v": expected}), (value, sql_type)
        assert extra == {}


def test_wire_columns_sends_a_second_spelling_of_a_column_to_extra():
    row, extra = {}, {}
    wire_columns({"uiconfId": 5, "uiConfId": 6, "status": 1}, store_module.WIRE_COLUMNS, row, extra)
    assert row == {"uiconfId": 5} and extra == {"uiConfId": 6, "status": 1}
