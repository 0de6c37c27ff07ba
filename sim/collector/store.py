"""The collector's DuckDB store: the `events` table (one row per request) and its batching writer.

    store = EventStore("player-sim.duckdb")
    store.append(row)          # a dict of column -> value; returns at once
    store.close()              # flushes everything appended, then closes the database

Columns follow the events-table contract shared with the file sinks and the metrics:
`ts`, `protocol`, wire fields under their wire names (typed), request context, `ledger_key`,
and the collector-only `received_at`, `remote_addr`, `accepted`, `error_code`, `flags`,
`encoding`, `method`, `path`. Fields with no column of their own go to `extra` (JSON), so
nothing a request carried is dropped. A ks is never a column: only `has_ks` and
`ks_sha256` (a 16-hex-digit prefix of its digest).

One writer thread owns the connection. Rows are appended to an in-memory list and written
as one Arrow batch every `batch_rows` rows or `batch_ms` milliseconds, whichever comes
first; `close()` writes the last batch before returning, so every appended row is stored.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

B, I, D, S = "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR"

# Wire fields of both protocols (KalturaStatsEvent, KAVA common and per-event params).
WIRE_COLUMNS: dict[str, str] = {
    # shared names
    "eventType": I, "partnerId": I, "entryId": S, "sessionId": S, "userId": S, "referrer": S,
    "clientVer": S, "clientTag": S, "playlistId": S,
    # legacy KalturaStatsEvent
    "eventTimestamp": D, "uniqueViewer": S, "widgetId": S, "uiconfId": I, "currentPoint": D,
    "duration": D, "seek": B, "newPoint": D, "isFirstInSession": B, "applicationId": S,
    "contextId": I, "featureType": I, "historyEvents": S, "processDuration": I, "controlId": S,
    "objectType": S, "uid": S,
    # KAVA
    "eventIndex": I, "position": D, "playTimeSum": D, "bufferTime": D, "bufferTimeSum": D,
    "joinTime": D, "canPlay": D, "actualBitrate": D, "averageBitrate": D, "soundMode": I,
    "tabMode": I, "viewabilityMode": I, "screenMode": I, "targetPosition": D, "errorCode": S,
    "errorDetails": S, "errorPosition": I, "playbackType": S, "deliveryType": S,
    "playbackSpeed": D, "caption": S, "sessionStartTime": D, "playerSkin": I,
    "kalturaApplication": S, "kalturaApplicationVer": S, "application": S, "playerJSLoadTime": D,
    "loadedPlugins": S, "networkConnectionType": S, "networkConnectionOverhead": D,
    "audioLanguage": S, "language": S, "flavorParamsId": I, "flavorId": S, "playbackMode": I,
    "sourceEntryId": S, "socialNetwork": S, "reportType": S, "forwardBufferHealth": D,
    "manifestDownloadTime": D, "segmentDownloadTime": D, "bandwidth": D,
    "droppedFramesRatio": D, "targetBuffer": D, "virtualEventId": S, "customVar1": S,
    "customVar2": S, "customVar3": S, "playbackContext": S, "persistentSessionId": S,
    "hostingKalturaApplication": S, "hostingKalturaApplicationVersion": S,
    "relatedEntryId": S, "expectedQuality": S, "absolutePosition": D,
}

# Request-level params that are columns (the rest of them go to `extra`).
PARAM_COLUMNS: dict[str, str] = {
    "service": S, "action": S, "format": S, "apiVersion": S, "hasKanalony": B,
}

COLUMNS: dict[str, str] = {
    "ts": D, "received_at": D, "protocol": S, "accepted": B, "status": I, "error_code": S,
    "reason": S, "fault": S, "flags": S, "encoding": S, "method": S, "path": S,
    "remote_addr": S, "client_ip": S, "user_agent": S, "page_url": S, "uv": S,
    "ledger_key": S, "has_ks": B, "ks_sha256": S,
    **WIRE_COLUMNS, **PARAM_COLUMNS,
    "extra": S,
}
_BY_LOWER = {name.lower(): name for name in COLUMNS}
_ARROW = {B: pa.bool_(), I: pa.int64(), D: pa.float64(), S: pa.string()}
_INT64 = 2 ** 63


def column_for(name: str) -> str | None:
    """The column a wire name lands in (case-insensitive: `uiConfId` -> `uiconfId`)."""
    return _BY_LOWER.get(name.lower())


def coerce(value, sql_type: str):
    """A wire value as the column's type; raises ValueError when it does not fit."""
    if value is None:
        return None
    if sql_type == S:
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if sql_type == B:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0", ""):
            return False
        raise ValueError(value)
    if isinstance(value, bool):
        raise ValueError(value)
    if sql_type == I:
        number = value if isinstance(value, int) else int(str(value).strip())
        if not -_INT64 <= number < _INT64:
            raise ValueError(value)
        return number
    number = float(value)
    return number


def wire_columns(values: dict, targets: dict[str, str], row: dict, extra: dict) -> None:
    """Put each wire value in its column (typed) or, failing that, in `extra` under its own name."""
    for name, value in values.items():
        column = column_for(name)
        if column is None or column not in targets or row.get(column) is not None:
            extra[name] = value
            continue
        try:
            row[column] = coerce(value, targets[column])
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

    def __init__(self, path: str | Path, *, batch_rows: int = 2000, batch_ms: float = 100.0):
        self.path = str(path)
        self.batch_rows = batch_rows
        self.batch_s = batch_ms / 1000.0
        self._con = duckdb.connect(self.path)
        self._con.execute(create_sql())
        self._add_missing_columns()
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
        names = [name for name in COLUMNS if any(name in row for row in batch)]
        arrays = [pa.array([row.get(name) for row in batch], type=_ARROW[COLUMNS[name]]) for name in names]
        table = pa.Table.from_arrays(arrays, names=names)
        try:
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
