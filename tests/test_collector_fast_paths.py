"""The collector's fast paths read every request as their general paths do.

`Collector.handle` runs on every beacon, so its steps take shortcuts for what players send (plain
digits, names seen before, a plain `/path?query`, lower-case header names) and fall back to the
general reading otherwise. Each shortcut is checked here against that general reading, on
hypothesis-made input and on the generator's own beacons through `handle`.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kava_timelines import random_timelines, session_chunk
from legacy_timelines import FLAVORS, generated
from sim.collector import app, store
from sim.collector.app import Collector, CollectorConfig
from sim.protocols.beacons import DecodeError, WireRequest
from sim.protocols.kava import codec as kava, policy as kava_policy
from sim.protocols.legacy import codec as legacy, policy as legacy_policy


def outcome(fn, *args):
    """What `fn(*args)` gives: ("ok", value, its type) or ("raises", the exception's type)."""
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return ("raises", type(exc))
    if isinstance(value, float) and math.isnan(value):
        return ("ok", "nan", float)
    return ("ok", value, type(value))


NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.sampled_from(list("0123456789 .-+e_x٣")), max_size=22),
    st.sampled_from(["", " 7 ", "1" * 19, "1" * 400, "0012", "1_000", "1e400", "NaN", "true", "1.0"]),
)


# --- KAVA ----------------------------------------------------------------------------------------

URLS = st.text(alphabet=st.sampled_from(list("/?#:&=a%\t\r\n[] .")), max_size=30) | st.sampled_from(
    ["/api_v3/index.php?a=1", "//api_v3/index.php?a=1", "/p#f?q", "/p?q#f", "http://h/p?q", " /p?q", "/p\t?q"]
)


@given(URLS)
def test_kava_splits_a_url_as_urlsplit_does(url):
    try:
        expected = urlsplit(url)
    except ValueError:
        with pytest.raises(DecodeError):
            kava._path_and_query(url)
        return
    assert kava._path_and_query(url) == (expected.path, expected.query)


@given(
    st.sampled_from(sorted(kava.INT_PARAMS | kava.FLOAT_PARAMS | kava.STR_PARAMS | set(kava.TRANSPORT_PARAMS))), NUMBERS
)
def test_kava_reads_a_text_value_as_its_general_reading_does(key, value):
    if value == "":
        return  # "not sent": handled before either reading
    for where in ("query", "body"):
        assert outcome(kava._typed, key, value, where) == outcome(kava._typed_slow, key, value, where)


@given(st.lists(st.sampled_from(list(kava.FIELD_ORDER) + ["zz", "aa"]), unique=True, max_size=20))
def test_kava_fields_come_back_in_the_event_models_order_whatever_order_they_came_in(names):
    fields = dict.fromkeys(names, 1)
    order = kava.FIELD_ORDER if kava.LINE_MARK in fields else kava.FIELD_ORDER_015
    expected = [k for k in order if k in fields] + [k for k in names if k not in order]
    for _ in range(2):  # the second time from the cache
        assert list(kava._wire_order(tuple(names))) == expected


# --- legacy --------------------------------------------------------------------------------------


@given(NUMBERS, st.sampled_from([None, int, float]))
def test_legacy_number_reader_reads_as_as_number(value, kind):
    assert outcome(legacy._number_reader("w", kind), value) == outcome(legacy._as_number, "w", value, kind)


@given(st.one_of(NUMBERS, st.sampled_from(["true", "false", "0", "1", "", " False ", "yes"]), st.booleans()))
def test_legacy_bool_reader_reads_as_phps_cast(value):
    expected = value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "")
    assert legacy._as_bool(value) is expected


def test_a_bad_field_is_reported_before_a_bad_param_and_a_missing_event_before_both():
    url = "/api_v3/index.php?service=stats&action=collect&format=x&event:eventType=y&clientTag=html5:v1"
    with pytest.raises(DecodeError, match="event:eventType"):
        legacy.decode(WireRequest("GET", url, {}))
    with pytest.raises(DecodeError, match="format"):
        legacy.decode(WireRequest("GET", url.replace("eventType=y", "eventType=3"), {}))
    with pytest.raises(DecodeError, match="missing parameter event"):
        legacy.decode(WireRequest("GET", "/api_v3/index.php?service=stats&action=collect&format=x", {}))


# --- the collector's own steps -------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["ks", "KS", "Ks", "event:ks", "event[ks]", "ks[]", " ks", "eventKs", "eventType", "partnerId"]),
    st.sampled_from(sorted(store.COLUMNS)).map(lambda n: n.upper() if len(n) % 2 else n),
    st.text(max_size=8),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**31, -(2**31) - 1, 2**64]),
    st.floats(),
    st.text(max_size=6),
    NUMBERS,
)


def strip_ks_reference(values: dict) -> tuple[dict, str | None]:
    ks, kept = None, {}
    for key, value in values.items():
        if app._is_ks_name(key):
            if value not in (None, ""):
                ks = str(value)
        else:
            kept[key] = value
    return kept, ks


@given(st.dictionaries(NAMES, VALUES, max_size=8))
def test_a_ks_is_stripped_as_the_ordered_reading_strips_it(values):
    for _ in range(2):  # the second time with the names seen before
        kept, ks = app._strip_ks(values)
        assert (kept, ks) == strip_ks_reference(values)
        assert list(kept) == [k for k in values if not app._is_ks_name(k)]


def wire_reference(values: dict, targets: dict, row: dict, extra: dict) -> list[str]:
    """Every value through `column_for` and `coerce`: the general reading."""
    for name, value in values.items():
        column = store.column_for(name)
        sql_type = targets.get(column) if column else None
        if sql_type is None or row.get(column) is not None:
            extra[name] = value
            continue
        try:
            row[column] = store.coerce(value, sql_type)
        except (ValueError, TypeError, OverflowError):
            extra[name] = value
    return [name for name, value in values.items() if value.__class__ is int and not -(2**63) <= value < 2**63]


def typed(d: dict) -> list:
    return [(k, type(v), "nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()]


@settings(max_examples=300)
@given(st.dictionaries(NAMES, VALUES, max_size=12), st.sampled_from(["wire", "param"]))
def test_wire_columns_place_every_value_as_coerce_does(values, which):
    targets = store.WIRE_COLUMNS if which == "wire" else app._PARAM_TARGETS
    for _ in range(2):  # the second time from the per-name plans
        row, extra, ref_row, ref_extra = {}, {}, {}, {}
        too_big = store.wire_columns(values, targets, row, extra)
        assert too_big == wire_reference(values, targets, ref_row, ref_extra)
        assert typed(row) == typed(ref_row) and typed(extra) == typed(ref_extra)


@given(
    st.dictionaries(
        st.sampled_from(["referer", "Referer", "cookie", "COOKIE", "user-agent", "x-forwarded-for"]),
        st.text(max_size=3),
    )
)
def test_headers_by_lower_name_are_read_as_the_loop_reads_them(headers):
    expected: dict = {}
    for name, value in headers.items():
        if name == name.lower() or name.lower() not in expected:
            expected[name.lower()] = value
    for _ in range(2):
        assert list(app._by_lower_name(headers).items()) == list(expected.items())


# --- generator beacons through handle ------------------------------------------------------------


def _generator_requests() -> list[WireRequest]:
    out = []
    for flavor in FLAVORS:
        b = legacy_policy.beacons(generated(flavor, sessions=60), with_kava=True)
        rows = np.arange(0, len(b), max(1, len(b) // 150))
        out += legacy.encode_rows(b, rows)[0]
        out += [legacy.encode(legacy.beacon_at(b, int(i)), enc) for i in rows[:40] for enc in legacy.ENCODINGS]
    b = kava_policy.beacons(session_chunk(random_timelines(40, seed=3)))
    rows = np.arange(0, len(b), max(1, len(b) // 300))
    out += kava.encode_rows(b, rows)[0]
    out += [kava.encode(kava.beacon_at(b, int(i)), "get") for i in rows]
    return out


def test_generator_beacons_are_stored_as_their_codec_reads_them_and_alike_every_time():
    collector = Collector(CollectorConfig())
    requests = _generator_requests()
    assert len(requests) > 600

    def answer(req):
        a = collector.handle(req.method, req.url, {k.lower(): v for k, v in req.headers.items()}, req.body, "10.0.0.1")
        row = {k: v for k, v in a.row.items() if k not in ("ts", "received_at")}
        return a.status, a.content_type, row

    first = [answer(r) for r in requests]
    for req, (status, _, row) in zip(requests, first):
        assert status == 200 and row["accepted"] is True, (req, row)
        beacon = (legacy if row["protocol"] == "legacy" else kava).decode(req)
        for name, value in {**beacon.params, **beacon.fields}.items():
            column = store.column_for(name)
            if name.lower() in ("ks", "kalsig") or column is None or column not in row:
                continue
            sql_type = store.COLUMNS[column]
            assert row[column] == store.coerce(value, sql_type), (name, row)
    # names, spellings and plans are cached: a second pass in another order reads alike
    order = np.random.default_rng(0).permutation(len(requests))
    for i in order:
        assert answer(requests[i])[2] == first[i][2]
