"""The collector's DuckDB store: the `events` table (one row per request) and its batching writer.

    store = EventStore("player-sim.duckdb")
    store.insert([row, ...])   # dicts of column -> value, committed as one transaction
    store.close()              # checkpoints, then closes the database

Columns follow the events-table contract shared with the file sinks and the metrics:
`ts`, `protocol`, wire fields under their wire names (typed), request context, and the
collector-only `ledger_key` (what reconcile matches a send ledger against), `received_at`,
`remote_addr`, `accepted`, `error_code`, `flags`, `encoding`, `method`, `path`. Fields with
no column of their own go to `extra` (JSON), so nothing a request carried is dropped. A ks
is never a column: only `has_ks` and `ks_sha256` (a 16-hex-digit prefix of its digest).

One writer thread owns the connection (`sim.collector.writer`); each `insert()` is one
transaction holding a batch of requests, and those requests are answered only after it
committed (group commit), so a collector killed at any moment has stored every request it
answered. A store shorter than its block count (a truncated copy) is refused at open.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from sim.geo import geo_table
from sim.tables.events import CONTEXT_COLUMNS, WIRE_FIELDS

B, I, D, S = "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR"  # noqa: E741 - SQL type letters for the table below


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
PARAM_COLUMNS: dict[str, str] = {
    "service": S,
    "action": S,
    "format": "INTEGER",
    "apiVersion": S,
    "hasKanalony": B,
    "ignoreNull": "INTEGER",
    "expiry": "INTEGER",
}

COLUMNS: dict[str, str] = {
    "ts": D,
    "protocol": S,
    **WIRE_COLUMNS,
    **CONTEXT,
    **LEDGER_KEY,
    "has_ks": B,
    "ks_sha256": S,
    # collector only
    "received_at": D,
    "remote_addr": S,
    "accepted": B,
    "status": I,
    "error_code": S,
    "reason": S,
    "fault": S,
    "flags": S,
    "encoding": S,
    "method": S,
    "path": S,
    "service": S,
    "action": S,
    "extra": S,
    # where client_ip (X-Forwarded-For, else the peer) is, as Kaltura places a viewer; per batch
    "geo_country": S,
    # the load run a request belongs to (X-Player-Sim-Run: RUN:WORKER:SEQ:ATTEMPT; players never send it)
    "run_id": S,
    "run_worker": "INTEGER",
    "run_seq": I,
    "run_attempt": "INTEGER",
}
_BY_LOWER = {name.lower(): name for name in COLUMNS}
_ARROW = {B: pa.bool_(), I: pa.int64(), "INTEGER": pa.int32(), D: pa.float64(), S: pa.string()}
_LIMITS = {I: 2**63, "INTEGER": 2**31}
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
        number = float(value)
        if not math.isfinite(number):  # the link's JSON carries no inf or NaN: kept in `extra` as text
            raise ValueError(value)
        return number
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


_PLANS: dict[int, dict[str, tuple]] = {}  # id(targets) -> wire name -> (column, type, int limit)
_PLAN_TARGETS: list[dict] = []  # the targets planned for, kept so that no other dict reuses their id


def _plan(name: str, targets: dict[str, str]) -> tuple | None:
    """(column, SQL type or None, integer limit or None) of a wire name; None when no column has it."""
    column = _BY_LOWER.get(name.lower())
    if column is None:
        return None
    sql_type = targets.get(column)
    return column, sql_type, _LIMITS.get(sql_type)


def wire_columns(values: dict, targets: dict[str, str], row: dict, extra: dict) -> list[str]:
    """Put each wire value in its column (typed) or, failing that, in `extra` under its own name.

    Returns the names of the integer values no 64-bit column can hold (they go to `extra`; the
    caller stores such a request as rejected).
    """
    plans = _PLANS.get(id(targets))
    if plans is None:
        plans = {}
        if len(_PLANS) < 16:  # the collector's two sets of targets; any others are planned per call
            _PLANS[id(targets)] = plans
            _PLAN_TARGETS.append(targets)
    too_big = []
    for name, value in values.items():
        plan = plans.get(name)
        if plan is None:
            plan = _plan(name, targets)
            if plan is None:
                if value.__class__ is int and not -(2**63) <= value < 2**63:
                    too_big.append(name)
                extra[name] = value
                continue
            if len(plans) < 4096:  # bounded: names that are columns, in any spelling clients choose
                plans[name] = plan
        column, sql_type, limit = plan
        kind = value.__class__
        if kind is str:
            if sql_type == S and row.get(column) is None:
                row[column] = value  # most wire values: text into a text column
                continue
        elif kind is int:
            if not -(2**63) <= value < 2**63:
                too_big.append(name)
            elif limit is not None and -limit <= value < limit and row.get(column) is None:
                row[column] = value  # coerce's answer for an int that fits
                continue
        if sql_type is None or row.get(column) is not None:
            extra[name] = value
        else:
            try:
                row[column] = coerce(value, sql_type)
            except (ValueError, TypeError, OverflowError):
                extra[name] = value  # e.g. partnerId "abc": kept as sent, flagged elsewhere
    return too_big


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return str(value)  # JSON numbers past 64 bits: kept as their digits
    return value


def encode_extra(extra: dict) -> str | None:
    if not extra:
        return None
    return orjson.dumps({k: _json_safe(v) for k, v in extra.items()}, option=orjson.OPT_NON_STR_KEYS).decode()


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# Every column but geo_country (derived from client_ip here) as DuckDB's JSON reader is told to type it.
_JSON_NAMES = [name for name in COLUMNS if name != "geo_country"]
_JSON_COLUMNS = "{" + ", ".join(f"{sql_literal(name)}: {sql_literal(COLUMNS[name])}" for name in _JSON_NAMES) + "}"
_JSON_SELECT = ", ".join(f'"{name}"' for name in _JSON_NAMES)


def create_sql() -> str:
    columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type in COLUMNS.items())
    return f"CREATE TABLE IF NOT EXISTS events ({columns})"


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message names the file and the cause."""


_FILE_HEADER = 3 * 4096  # DuckDB's file headers before the first block

# DuckDB checkpoints when its write-ahead log reaches this. Its default, 16 MB, is ~27k rows of
# the events table, a checkpoint every ~3 s at 10k requests/s; they cost a fifth of the insert's
# CPU (500k rows in 10k-row inserts, final checkpoint included: 17.8 us a row; 14.1 at 64 MB;
# 13.6 at 256 MB). 64 MB (~110k rows) keeps a checkpoint's pause of the inserter (so how late
# rows reach the live page) near 0.4 s, and the replay of a crashed store's log short (~0.5 s).
CHECKPOINT_MB = 64


def check_whole(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """Refuse a store shorter than its own block count says (a truncated copy): DuckDB opens one
    and fails only when a query reaches a missing block, long after requests were acknowledged."""
    if path == ":memory:" or not Path(path).is_file():
        return
    block_size, total_blocks = con.execute(
        "SELECT block_size, total_blocks FROM pragma_database_size() LIMIT 1"
    ).fetchall()[0]
    expected = _FILE_HEADER + block_size * total_blocks if total_blocks else 0
    actual = Path(path).stat().st_size
    if actual < expected:
        raise StoreError(
            f"{path}: the store is truncated ({actual:,} bytes, its blocks need {expected:,}); "
            "restore it from a copy or start a new store"
        )


class EventStore:
    """The `events` table of one DuckDB file; `insert()` commits a batch of rows in one transaction.

    Owned by one thread of the collector's writer (`sim.collector.writer`); readers take a cursor.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            self._con = duckdb.connect(self.path)
            check_whole(self._con, self.path)
            self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_MB}MB'")
            self._con.execute(create_sql())
            self._add_missing_columns()
            self._geo = geo_table()  # read before the first request, not in the first batch
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the DuckDB store ({str(exc).splitlines()[0]})") from None
        self.rows = self._con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        self._names = tuple(COLUMNS)

    def _add_missing_columns(self) -> None:
        """A store from an older version gains new columns (never loses any)."""
        have = {
            r[0].lower()
            for r in self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'events'"
            ).fetchall()
        }
        for name, sql_type in COLUMNS.items():
            if name.lower() not in have:
                self._con.execute(f'ALTER TABLE events ADD COLUMN "{name}" {sql_type}')

    def insert(self, batch: list[dict], con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Insert `batch` (rows as dicts of column -> value) as one Arrow table, on `con` (in the
        caller's transaction) or on the store's own connection (one transaction); raises on failure."""
        present = set().union(*batch)
        names = [name for name in COLUMNS if name in present]
        table = pa.Table.from_pylist(batch, schema=pa.schema([_SCHEMA.field(n) for n in names]))
        self.insert_table(table, con)

    def insert_table(self, table: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> None:
        if "client_ip" in table.column_names and "geo_country" not in table.column_names:
            table = table.append_column("geo_country", self._countries(table["client_ip"]))
        quoted = ", ".join(f'"{n}"' for n in table.column_names)
        con = con or self._con
        con.register("_batch", table)
        try:
            con.execute(f"INSERT INTO events ({quoted}) SELECT {quoted} FROM _batch").fetchall()
        finally:
            con.unregister("_batch")
        self.rows += table.num_rows

    def prepare_json_insert(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make `insert_json` work on `con` (a connection's own functions: the geo lookup)."""
        con.create_function(
            "_player_sim_geo_country",
            self._countries,
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
        )

    def insert_json(self, path: str, con: duckdb.DuckDBPyConnection) -> int:
        """Insert the rows of the JSON array file at `path` (rows as `insert` takes them), read and typed
        by DuckDB's JSON reader straight into the table, geo_country looked up on the way (no Arrow
        table in between: a third of the insert's CPU); on `con`, prepared by `prepare_json_insert`,
        in the caller's transaction. Returns the number of rows (the caller adds them to `rows` once
        committed); raises duckdb.Error when the reader or the insert fails."""
        source = f"read_json({sql_literal(path)}, format='array', columns={_JSON_COLUMNS})"
        return con.execute(
            f"INSERT INTO events ({_JSON_SELECT}, geo_country) "
            f"SELECT {_JSON_SELECT}, _player_sim_geo_country(client_ip) FROM {source}"
        ).fetchall()[0][0]

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A connection for queries from another thread (sees what has been committed)."""
        return self._con.cursor()

    def _countries(self, ips) -> pa.Array:
        """geo_country of a batch; a lookup that fails leaves it null rather than cost the rows."""
        try:
            return self._geo.countries(ips)
        except Exception as exc:  # noqa: BLE001 - geolocation is derived; the rows must be stored
            print(f"player-sim collector: could not geolocate {len(ips)} events: {exc}", file=sys.stderr, flush=True)
            return pa.nulls(len(ips), pa.string())

    def close(self) -> None:
        """Checkpoint and close the database; a failure to checkpoint leaves the WAL (replayed on open)."""
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            print(
                f"player-sim collector: {self.path}: checkpoint failed ({str(exc).splitlines()[0]}); "
                "the store's write-ahead log keeps every committed row",
                file=sys.stderr,
                flush=True,
            )
        finally:
            self._con.close()
