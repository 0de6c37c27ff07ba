"""Rows of the events table: BeaconChunk + SessionChunk -> an Arrow table (its columns: `sim.tables.events`).

One row per beacon. The same column names are used by the file sinks, the collector's store
and the metrics, so one SQL implementation reads any of them. A run's schema holds the wire
fields of the protocols it sends (`PROTOCOL_FIELDS`): a legacy-only file has no KAVA-only
columns.

Usage::

    builder = EventsBuilder.for_chunks([legacy_chunk, kava_chunk])   # fixes the schema
    table = builder.table(legacy_chunk, sessions)

Strings stay dictionary-encoded from the `Strings` pools and population pools: nothing on
this path creates a Python object per row.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
from numba import njit

from sim.player.timeline import Device, Outcome, SessionChunk
from sim.player.truth import TRUTH_SESSION_COLUMNS
from sim.protocols.beacons import AsciiStrings, BeaconChunk, Strings
from sim.recycled import Recycler
from sim.tables.events import (
    ALWAYS_SET,
    BIGINT,
    BOOLEAN,
    CONTEXT_COLUMNS,
    DOUBLE,
    INTEGER,
    PROTOCOL_FIELDS,
    SECRET_COLUMNS,
    STRING,
    TRUTH_COLUMNS,
    WIRE_FIELDS,
)

# Beacon columns that say how a row goes on the wire, not what it says.
TRANSPORT_ONLY = frozenset({"encoding", "legacy_flavor"})
# Integer columns mark "not sent" with -1 (the policies' convention); floats use NaN.
INT_NOT_SENT = -1

DEVICE_NAMES = [d.name.lower() for d in sorted(Device, key=int)]
OUTCOME_NAMES = [o.name.lower() for o in sorted(Outcome, key=int)]


class SchemaError(ValueError):
    """A beacon column that the events table cannot hold (a policy bug, not a user error)."""


def _type_of_column(col) -> pa.DataType:
    if isinstance(col, Strings):
        return STRING
    kind = col.dtype.kind
    if kind == "b":
        return BOOLEAN
    if kind in "iu":
        return INTEGER if col.dtype.itemsize <= 4 else BIGINT
    if kind == "f":
        return DOUBLE
    raise SchemaError(f"column of dtype {col.dtype} cannot go into the events table")


def _canonical(columns: dict[str, pa.DataType]) -> dict[str, str]:
    return {name.lower(): name for name in columns}


class EventsBuilder:
    """Builds events-table rows for one run; the schema is fixed when the builder is made."""

    def __init__(
        self,
        extra: dict[str, pa.DataType] | None = None,
        protocols: Iterable[str] | None = None,
        carried: Iterable[str] = (),
        always_sent: Iterable[str] = (),
    ):
        """`protocols`: the protocols of the run (None or an unknown one: every wire field);
        `carried`: wire fields sent beside them (kept, in contract order); `always_sent`: the
        columns every row fills (stored as required: Parquet then writes no definition levels)."""
        protocols = None if protocols is None else set(protocols)
        if protocols is None or not protocols <= PROTOCOL_FIELDS.keys():
            wire = dict(WIRE_FIELDS)
        else:
            keep = set(carried).union(*(PROTOCOL_FIELDS[p] for p in protocols))
            wire = {n: t for n, t in WIRE_FIELDS.items() if n in keep}
        for name in sorted(extra or {}):
            wire[name] = extra[name]
        self.wire = wire
        fields = [pa.field("ts", DOUBLE, nullable=False), pa.field("protocol", STRING, nullable=False)]
        required = ALWAYS_SET.union(always_sent)
        fields += [pa.field(n, t, nullable=n not in required) for n, t in wire.items()]
        fields += [pa.field(n, t, nullable=n not in required) for n, t in CONTEXT_COLUMNS.items()]
        fields += [pa.field(n, t, nullable=False) for n, t in TRUTH_COLUMNS.items()]
        self.schema = pa.schema(fields)
        self._by_lower = _canonical(wire)
        self._types = {**wire, **CONTEXT_COLUMNS}
        self._by_lower.update(_canonical(CONTEXT_COLUMNS))
        self._pool_cache: dict[int, tuple[object, pa.Array]] = {}
        self._pools_in_use: set[int] = set()
        self._chunk_id: int | None = None

    @classmethod
    def for_chunks(cls, chunks: list[BeaconChunk]) -> EventsBuilder:
        """A builder whose schema holds the wire fields of these chunks' protocols and every
        column of these chunks (unknown ones appended)."""
        known = _canonical({**WIRE_FIELDS, **CONTEXT_COLUMNS})
        extra: dict[str, pa.DataType] = {}
        carried: set[str] = set()
        always_sent: set[str] | None = None  # stored as required: what every chunk fills on every row
        for chunk in chunks:
            filled = {known.get(SECRET_COLUMNS.get(name, name).lower()) for name in chunk.always_sent} - {None}
            always_sent = filled if always_sent is None else always_sent & filled
            for name, col in chunk.columns.items():
                if name in TRANSPORT_ONLY:
                    continue
                name = SECRET_COLUMNS.get(name, name)
                if name.lower() in known:
                    carried.add(known[name.lower()])
                elif name not in extra:
                    extra[name] = _type_of_column(col)
        return cls(
            extra,
            protocols={chunk.protocol for chunk in chunks} or None,
            carried=carried,
            always_sent=always_sent or (),
        )

    # -- pools ---------------------------------------------------------------------------------

    def _dictionary(self, pool) -> pa.Array:
        """Arrow string array of a pool, converted once per run (pools are shared by chunks)."""
        if isinstance(pool, pa.Array):
            return pool
        key = id(pool)
        self._pools_in_use.add(key)
        hit = self._pool_cache.get(key)
        if hit is not None and hit[0] is pool:
            return hit[1]
        arr = pa.array(np.asarray(pool, dtype=object), type=pa.string())
        self._pool_cache[key] = (pool, arr)
        return arr

    def _next_chunk(self, sessions: SessionChunk) -> None:
        """Forget pools the previous session chunk did not use (per-chunk pools: session ids)."""
        if self._chunk_id == id(sessions):
            return
        if self._chunk_id is not None:
            self._pool_cache = {k: v for k, v in self._pool_cache.items() if k in self._pools_in_use}
        self._pools_in_use = set()
        self._chunk_id = id(sessions)

    def _coded(self, codes: np.ndarray, pool) -> pa.DictionaryArray:
        """Codes into a pool (-1: null) as a dictionary array. numpy's min and max tell both
        whether there are nulls and whether every code is inside the pool, in a fifth of the
        time of a null mask plus Arrow's check of every index."""
        codes = np.asarray(codes, dtype=np.int32)
        dictionary = self._dictionary(pool)
        lowest, highest = (int(codes.min()), int(codes.max())) if len(codes) else (0, -1)
        if lowest < -1 or highest >= len(dictionary):
            raise SchemaError(f"codes {lowest}..{highest} outside a pool of {len(dictionary)} entries")
        indices = _with_nulls(pa.int32(), codes, lowest < 0)
        return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)

    # -- one column ----------------------------------------------------------------------------

    def _convert(self, name: str, col, target: pa.DataType) -> pa.Array:
        if isinstance(col, Strings):
            if target == STRING:
                return self._coded(col.codes, col.arrow_pool() if isinstance(col, AsciiStrings) else col.pool)
            # A typed field carried as text (e.g. "true"/"false"): parse the pool once, then take.
            parsed = pa.array(np.asarray(col.pool, dtype=object), type=pa.string()).cast(target)
            codes = np.asarray(col.codes)
            return parsed.take(pa.array(codes, mask=codes < 0))
        values = np.asarray(col)
        kind = values.dtype.kind
        if target == STRING:
            raise SchemaError(f"beacon column {name}: numbers where the events table has text")
        if kind == "f":
            if target == DOUBLE:
                return _with_nulls(target, values.astype(np.float64, copy=False), True)
            mask = np.isnan(values)
            if target in (INTEGER, BIGINT):
                values = np.where(mask, 0, values).astype(target.to_pandas_dtype())
            elif target == BOOLEAN:
                values = np.where(mask, 0, values) != 0
            return pa.array(values, type=target, mask=mask if mask.any() else None)
        if kind in "iu":
            if target in (INTEGER, BIGINT):
                return _with_nulls(target, values.astype(target.to_pandas_dtype(), copy=False), kind == "i")
            mask = values == INT_NOT_SENT if kind == "i" else np.zeros(len(values), bool)
            if target == BOOLEAN:
                values = values != 0
            elif target == DOUBLE:
                values = values.astype(np.float64)
            return pa.array(values, type=target, mask=mask if mask.any() else None)
        if kind == "b":
            if target != BOOLEAN:
                values = values.astype(target.to_pandas_dtype())
            return pa.array(values, type=target)
        raise SchemaError(f"beacon column {name}: dtype {values.dtype} cannot go into the events table")

    # -- a whole chunk -------------------------------------------------------------------------

    def table(self, beacons: BeaconChunk, sessions: SessionChunk, order: np.ndarray | None = None) -> pa.Table:
        """The events-table rows of one BeaconChunk, in beacon order or in `order` (row numbers).

        Holds the columns of `schema` that the chunk fills, in schema order; `conform` adds
        the rest as nulls. Reordering here costs one gather per column as the column is
        built, where sorting the finished table would cost another pass over every column.
        """
        self._next_chunk(sessions)
        n = len(beacons)
        pick = (lambda v: v) if order is None else (lambda v: v[order])
        cols: dict[str, pa.Array] = {
            "ts": pa.array(pick(np.asarray(beacons.send_t, dtype=np.float64))),
            "protocol": self._coded(np.zeros(n, np.int32), _names([beacons.protocol])),
        }
        for raw_name, col in beacons.columns.items():
            if raw_name in TRANSPORT_ONLY:
                continue
            if raw_name in SECRET_COLUMNS:
                name = SECRET_COLUMNS[raw_name]
                col = _sent_and_not_empty(col, n)
            else:
                name = raw_name
            canonical = self._by_lower.get(name.lower())
            if canonical is None:
                raise SchemaError(
                    f"{beacons.protocol} beacon column {raw_name!r} is not in this run's events table "
                    f"(policies must send the same columns in every chunk)"
                )
            if len(col) != n:
                raise SchemaError(f"{beacons.protocol} beacon column {raw_name!r}: {len(col)} rows, want {n}")
            col = col.with_codes(pick(np.asarray(col.codes))) if isinstance(col, Strings) else pick(np.asarray(col))
            cols[canonical] = self._convert(raw_name, col, self._types[canonical])

        s = pick(np.asarray(beacons.session, dtype=np.int64))
        sc, pools = sessions.sessions, sessions.population.pools
        # Request context the policy did not supply comes from the session's identity.
        if "user_agent" not in cols:
            cols["user_agent"] = self._coded(_per_row(sc["user_agent"], s, np.int32), pools.user_agents)
        if "client_ip" not in cols:
            cols["client_ip"] = self._coded(_per_row(sc["ip"], s, np.int32), pools.ips)
        if "page_url" not in cols:
            cols["page_url"] = self._coded(_per_row(sc["referrer"], s, np.int32), pools.referrers)
        cols["truth_scenario"] = self._coded(_per_row(sc["scenario"], s, np.int32), _names(sessions.scenario_names))
        cols["truth_session_seq"] = pa.array(_per_row(sc["session_seq"], s))
        cols["truth_viewer"] = pa.array(_per_row(sc["viewer"], s))
        cols["truth_returning"] = pa.array(_per_row(sc["returning"], s))
        cols["truth_device"] = self._coded(_per_row(sc["device"], s, np.int32), _names(DEVICE_NAMES))
        cols["truth_os"] = self._coded(_per_row(sc["os"], s, np.int32), _names(pools.os_names))
        cols["truth_browser"] = self._coded(_per_row(sc["browser"], s, np.int32), _names(pools.browser_names))
        cols["truth_country"] = self._coded(_per_row(sc["country"], s, np.int32), _names(pools.country_codes))
        cols["truth_autoplay"] = pa.array(_per_row(sc["autoplay"], s))
        cols["truth_intended_fraction"] = pa.array(_per_row(sc["intended_fraction"], s, np.float64))
        cols["truth_impaired"] = pa.array(_per_row(sc["impaired"], s))
        cols["truth_outcome"] = self._coded(_per_row(sc["outcome"], s, np.int32), _names(OUTCOME_NAMES))
        cols["truth_entry_duration"] = pa.array(_per_row(sc["duration"], s, np.float64))
        cols["truth_live"] = pa.array(_per_row(sc["live"], s))
        for name in TRUTH_SESSION_COLUMNS:
            cols[f"truth_{name}"] = pa.array(_per_row(sc[name], s))

        # Only the columns this protocol sends: a column of nulls costs nothing to leave out here
        # and the sink fills it in (`conform`), so merging and sorting move less data.
        fields, arrays = [], []
        for field in self.schema:
            arr = cols.get(field.name)
            if arr is None:
                continue
            if arr.type != field.type:
                arr = arr.cast(field.type)
            if arr.null_count and not field.nullable:
                raise SchemaError(
                    f"{beacons.protocol} beacons leave {field.name!r} unset on {arr.null_count} rows, "
                    f"but their policy says it always sends it"
                )
            fields.append(field)
            arrays.append(arr)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# Per-row copies of per-session values (the truth columns): fresh memory of a chunk's rows for
# each costs a page fault per 4 KiB; Arrow arrays made over them hold them until the rows are written.
_PER_ROW = Recycler(keep=64)


def _per_row(values: np.ndarray, rows: np.ndarray, dtype=None) -> np.ndarray:
    """values[rows] (as `dtype`), in an array reused from earlier chunks once nothing holds it."""
    values = np.asarray(values, dtype=dtype)  # per session: small
    return np.take(values, rows, out=_PER_ROW.take(rows.shape, values.dtype), mode="clip")  # rows are valid


def _with_nulls(arrow_type: pa.DataType, values: np.ndarray, may_have_nulls: bool) -> pa.Array:
    """An Arrow array over `values` (no copy) where NaN, or an integer's INT_NOT_SENT, is null.
    The validity bitmap is built in one compiled pass: a numpy mask handed to `pa.array` costs
    a pass to make it, one to see whether it has a null, and Arrow's slower packing of it."""
    values = np.ascontiguousarray(values)
    bitmap, nulls = None, 0
    if may_have_nulls and len(values):
        packed, nulls = _validity(values, values.dtype.kind == "f")
        bitmap = pa.py_buffer(packed) if nulls else None
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


@njit(cache=True)
def _validity(values, is_float):
    """(Arrow validity bitmap, null count): a float is null where NaN, an integer where INT_NOT_SENT."""
    n = values.shape[0]
    bitmap = np.empty((n + 7) >> 3, np.uint8)
    nulls = 0
    for b in range(bitmap.shape[0]):
        byte = 0
        for i in range(b << 3, min(n, (b << 3) + 8)):
            v = values[i]
            if (v != v) if is_float else (v == INT_NOT_SENT):
                nulls += 1
            else:
                byte |= 1 << (i & 7)
        bitmap[b] = byte
    return bitmap, nulls


def _sent_and_not_empty(col, n: int) -> np.ndarray:
    """Whether a secret was sent, per row (an empty value counts as not sent)."""
    if not isinstance(col, Strings):
        return np.ones(n, bool)
    filled = np.array([bool(v) for v in col.pool], dtype=bool)
    codes = np.asarray(col.codes)
    return (codes >= 0) & filled[np.maximum(codes, 0)] if len(filled) else np.zeros(n, bool)


_NAME_POOLS: dict[tuple, np.ndarray] = {}


def _names(names) -> np.ndarray:
    """A stable pool object for a short list of names, so its Arrow form is cached."""
    key = tuple(names)
    pool = _NAME_POOLS.get(key)
    if pool is None:
        pool = _NAME_POOLS[key] = np.array(key, dtype=object)
    return pool


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly the columns of `schema`, in order; missing ones are all null."""
    if table.schema == schema:
        return table
    n = table.num_rows
    names = set(table.schema.names)
    unknown = names - set(schema.names)
    if unknown:
        raise SchemaError(f"rows carry columns the file's schema lacks: {', '.join(sorted(unknown))}")
    arrays = []
    for field in schema:
        if field.name in names:
            col = table.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        elif not field.nullable and n:
            raise SchemaError(f"rows lack the column {field.name!r}, which their policies say they always send")
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)
