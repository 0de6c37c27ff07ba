"""The collector's DuckDB store: the `events` table (one row per request) and its batching writer.

    store = EventStore("player-sim.duckdb")
    store.append(row)          # a dict of column -> value; returns at once
    store.close()              # flushes everything appended, then closes the database

Columns follow the events-table contract shared with the file sinks and the metrics:
`ts`, `protocol`, wire fields under their wire names (typed), request context, and the
collector-only `ledger_key` (what reconcile matches a send ledger against), `received_at`,
`remote_addr`, `accepted`, `error_code`, `flags`, `encoding`, `method`, `path`. Fields with
no column of their own go to `extra` (JSON), so nothing a request carried is dropped. A ks
is never a column: only `has_ks` and `ks_sha256` (a 16-hex-digit prefix of its digest).

One writer thread owns the connection. Rows are appended to an in-memory list and written
as one Arrow batch every `batch_rows` rows or `batch_ms` milliseconds, whichever comes
first; `close()` writes the last batch before returning, so every appended row is stored.
"""
from __future__ import annotations

import math
import sys
import threading
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from sim.geo import geo_table
from sim.sinks.events import CONTEXT_COLUMNS, WIRE_FIELDS

B, I, D, S = "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR"


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "INTEGER" if arrow_type.bit_width <= 32 else "BIGINT"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    return "VARCHAR"


# Wire fields and request context: the one events-table definition the file sinks also write.
WIRE_COLUMNS: dict[str, str] = {name: _sql_type(t) for name, t in WIRE_FIELDS.items() if name != "has_ks"}
CONTEXT: dict[str, str] = {name: _sql_type(t) for name, t in CONTEXT_COLUMNS.items()}
# What `player-sim reconcile` matches against a send ledger; files have no need of it.
LEDGER_KEY: dict[str, str] = {"ledger_key": S}
# Request-level params that are columns here but not in the files (the rest go to `extra`).
PARAM_COLUMNS: dict[str, str] = {"service": S, "action": S, "format": "INTEGER", "apiVersion": S,
                                 "hasKanalony": B, "ignoreNull": "INTEGER", "expiry": "INTEGER"}

COLUMNS: dict[str, str] = {
    "ts": D, "protocol": S,
    **WIRE_COLUMNS,
    **CONTEXT,
    **LEDGER_KEY,
    "has_ks": B, "ks_sha256": S,
    # collector only
    "received_at": D, "remote_addr": S, "accepted": B, "status": I, "error_code": S, "reason": S,
    "fault": S, "flags": S, "encoding": S, "method": S, "path": S, "service": S, "action": S,
    "extra": S,
    # where client_ip (X-Forwarded-For, else the peer) is, as Kaltura places a viewer; per batch
    "geo_country": S,
}
_BY_LOWER = {name.lower(): name for name in COLUMNS}
_ARROW = {B: pa.bool_(), I: pa.int64(), "INTEGER": pa.int32(), D: pa.float64(), S: pa.string()}
_LIMITS = {I: 2 ** 63, "INTEGER": 2 ** 31}
_SCHEMA = pa.schema([(name, _ARROW[sql_type]) for name, sql_type in COLUMNS.items()])


def column_for(name: str) -> str | None:
    """The column a wire name lands in (case-insensitive: `uiConfId` -> `uiconfId`)."""
    return _BY_LOWER.get(name.lower())


def coerce(value, sql_type: str):
    """A wire value as the column's type; raises ValueError when it does not fit."""
    kind = type(value)
    if value is None:
        return None
    if sql_type == S:
        return value if kind is str else orjson.dumps(value).decode()
    if kind is bool:
        if sql_type == B:
            return value
        raise ValueError(value)
    if sql_type == D:
        return float(value)
    if sql_type == B:
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0", ""):
            return False
        raise ValueError(value)
    if kind is int:
        number = value
    elif kind is float:
        if not value.is_integer():
            raise ValueError(value)
        number = int(value)
    else:
        number = int(value)
    limit = _LIMITS[sql_type]
    if not -limit <= number < limit:
        raise ValueError(value)
    return number


_RESOLVED: dict[str, str] = {}


def wire_columns(values: dict, targets: dict[str, str], row: dict, extra: dict) -> None:
    """Put each wire value in its column (typed) or, failing that, in `extra` under its own name."""
    for name, value in values.items():
        column = _RESOLVED.get(name)
        if column is None:
            column = _BY_LOWER.get(name.lower())
            if column is None:
                extra[name] = value
                continue
            _RESOLVED[name] = column       # bounded: only names that are columns are cached
        sql_type = targets.get(column)
        if sql_type is None or row.get(column) is not None:
            extra[name] = value
        elif value.__class__ is str and sql_type == S:
            row[column] = value            # most wire values: text into a text column
        else:
            try:
                row[column] = coerce(value, sql_type)
            except (ValueError, TypeError, OverflowError):
                extra[name] = value      # e.g. partnerId "abc": kept as sent, flagged elsewhere


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def encode_extra(extra: dict) -> str | None:
    if not extra:
        return None
    return orjson.dumps({k: _json_safe(v) for k, v in extra.items()},
                        option=orjson.OPT_NON_STR_KEYS).decode()


def create_sql() -> str:
    columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type in COLUMNS.items())
    return f"CREATE TABLE IF NOT EXISTS events ({columns})"


class EventStore:
    """Appends event rows to `events` in batches from one writer thread."""

    def __init__(self, path: str | Path, *, batch_rows: int = 5000, batch_ms: float = 200.0):
        self.path = str(path)
        self.batch_rows = batch_rows
        self.batch_s = batch_ms / 1000.0
        self._con = duckdb.connect(self.path)
        self._con.execute(create_sql())
        self._add_missing_columns()
        self._geo = geo_table()     # read before the first request, not in the first batch
        self._pending: list[dict] = []
        self._cond = threading.Condition()
        self._closing = False
        self.rows_written = 0
        self.write_errors = 0
        self._writer = threading.Thread(target=self._run, name="events-writer", daemon=True)
        self._writer.start()

    def _add_missing_columns(self) -> None:
        """A store from an older version gains new columns (never loses any)."""
        have = {r[0].lower() for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'").fetchall()}
        for name, sql_type in COLUMNS.items():
            if name.lower() not in have:
                self._con.execute(f'ALTER TABLE events ADD COLUMN "{name}" {sql_type}')

    def append(self, row: dict) -> None:
        """Queue one row; raises RuntimeError once the store is closing (the caller must not ack)."""
        with self._cond:
            if self._closing:
                raise RuntimeError("event store is closed")
            self._pending.append(row)
            if len(self._pending) >= self.batch_rows:
                self._cond.notify()

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A connection for queries from another thread (sees what has been flushed)."""
        return self._con.cursor()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(self.batch_s)
                if len(self._pending) < self.batch_rows and not self._closing:
                    # let a batch fill for up to batch_ms before writing it
                    self._cond.wait(self.batch_s)
                batch, self._pending = self._pending, []
                closing = self._closing
            if batch:
                self._write(batch)
            if closing:
                with self._cond:
                    rest, self._pending = self._pending, []
                if rest:
                    self._write(rest)
                return

    def _write(self, batch: list[dict]) -> None:
        present = set().union(*batch)
        names = [name for name in COLUMNS if name in present]
        try:
            table = pa.Table.from_pylist(batch, schema=pa.schema([_SCHEMA.field(n) for n in names]))
            if "client_ip" in names:
                names.append("geo_country")
                table = table.append_column("geo_country", self._countries(table["client_ip"]))
            self._con.register("_batch", table)
            quoted = ", ".join(f'"{n}"' for n in names)
            self._con.execute(f"INSERT INTO events ({quoted}) SELECT {quoted} FROM _batch")
            self._con.unregister("_batch")
            self.rows_written += len(batch)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive one bad batch
            # A batch that cannot be written is a bug; say so loudly and keep the collector up.
            self.write_errors += 1
            print(f"player-sim collector: could not store {len(batch)} events: {exc}",
                  file=sys.stderr, flush=True)

    def _countries(self, ips) -> pa.Array:
        """geo_country of a batch; a lookup that fails leaves it null rather than cost the rows."""
        try:
            return self._geo.countries(ips)
        except Exception as exc:  # noqa: BLE001 - geolocation is derived; the rows must be stored
            print(f"player-sim collector: could not geolocate {len(ips)} events: {exc}", file=sys.stderr, flush=True)
            return pa.nulls(len(ips), pa.string())

    def close(self) -> None:
        """Write every appended row, then close the database. Safe to call twice."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        self._writer.join()
        self._con.execute("CHECKPOINT")
        self._con.close()
