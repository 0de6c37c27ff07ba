"""The collector's one store writer: owns the DuckDB store, commits the workers' batches, answers queries.

    writer = StoreWriter("events.duckdb", socket_path)   # opens (and checks) the store
    writer.start()                                       # serves the Unix socket in threads
    ...
    writer.close()                                       # stops serving, checkpoints, closes

It runs in the collector's main process, so DuckDB has one writer however many HTTP worker
processes (`--workers N`) answer requests; the workers reach it through `link`. Each batch
is one transaction, acknowledged to its worker only once committed; a batch the store cannot
take (disk full, a broken file) is answered with its error, the worker answers its requests
503, and the writer says so on stderr.

Queries run on their own connection and cursor, off the commit path: `stats` (the live
figures), `export` (the columns reconcile needs, to a Parquet file, for `player-sim
reconcile` while this process holds DuckDB's lock). `STORE.collector.json` beside the store
names the socket and the URL while the collector runs.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from .link import LinkError, recv_frame, send_frame
from .live import LiveStats
from .store import EventStore, StoreError

EXPORT_COLUMNS = ("ledger_key", "protocol", "eventType", "accepted", "error_code", "run_id", "run_worker",
                  "run_seq", "run_attempt")


def sidecar_path(store: str | os.PathLike) -> Path:
    """Where a running collector says how to reach it: `STORE.collector.json`."""
    return Path(f"{os.fspath(store)}.collector.json")


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class StoreWriter:
    def __init__(self, store: str, socket_path: str):
        self.path = store
        self.socket_path = socket_path
        self.store = EventStore(store)
        self.live = LiveStats(self.store)
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._closed = False
        self._failing_since: float | None = None
        self._failed_batches = 0
        self._failed_rows = 0
        self._last_shout = 0.0
        self.current_run: str | None = None
        self.metrics = None

    def start(self, url: str | None = None) -> None:
        from . import metrics          # after server.serve set PROMETHEUS_MULTIPROC_DIR

        self.metrics = metrics
        metrics.STORE_ROWS.set(self.store.rows)
        self.live.current_run = lambda: self.current_run
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        server.listen(256)
        self._server = server
        threading.Thread(target=self._accept, name="store-writer", daemon=True).start()
        self.announce(url)

    def announce(self, url: str | None) -> None:
        sidecar = sidecar_path(self.path)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_bytes(orjson.dumps({"url": url, "socket": self.socket_path, "pid": os.getpid(),
                                      "store": os.path.abspath(self.path)}))
        os.replace(tmp, sidecar)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="store-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    frame = recv_frame(conn)
                except (OSError, LinkError):
                    return
                if frame is None:
                    return
                kind, payload = frame
                answer = self._commit(payload) if kind == b"B" else self._query(payload)
                try:
                    send_frame(conn, b"A", orjson.dumps(answer))
                except OSError:
                    return

    # --- batches ----------------------------------------------------------------------

    def _commit(self, payload: bytes) -> dict:
        rows = orjson.loads(payload)
        if not rows:
            return {"ok": True}
        started = time.perf_counter()
        try:
            with self._lock:
                if self._closed:
                    return {"ok": False, "error": "collector is shutting down"}
                self.store.insert(rows)
        except (duckdb.Error, pa.ArrowException, OverflowError, ValueError, TypeError, OSError) as exc:
            return self._failed(len(rows), exc)
        elapsed = time.perf_counter() - started
        for row in reversed(rows):
            run = row.get("run_id")
            if run:
                self.current_run = run
                break
        if self._failing_since is not None:
            print(f"player-sim collector: the store takes requests again ({self._failed_rows:,} requests "
                  f"in {self._failed_batches:,} batches were answered 503 and not stored)",
                  file=sys.stderr, flush=True)
            self._failing_since = None
            self._failed_batches = self._failed_rows = 0
        m = self.metrics
        m.COMMIT.observe(elapsed)
        m.BATCH_ROWS.observe(len(rows))
        m.STORE_ROWS.set(self.store.rows)
        return {"ok": True}

    def _failed(self, rows: int, exc: BaseException) -> dict:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        now = time.monotonic()
        self._failed_batches += 1
        self._failed_rows += rows
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_shout >= 1.0:      # loud, but one line a second, not one per batch
            self._last_shout = now
            print(f"player-sim collector: STORE WRITE FAILED, requests answered 503 and NOT stored "
                  f"({self._failed_rows:,} so far): {self.path}: {reason}", file=sys.stderr, flush=True)
        if self.metrics is not None:
            self.metrics.STORE_ERRORS.inc()
        return {"ok": False, "error": f"the store cannot take requests ({reason})"}

    # --- queries ----------------------------------------------------------------------

    def _query(self, payload: bytes) -> dict:
        try:
            query = orjson.loads(payload)
            kind = query.get("q")
            if kind == "stats":
                return self.live.snapshot()
            if kind == "export":
                return self._export(query["path"], query.get("runs"))
            return {"ok": False, "error": f"unknown query {kind!r}"}
        except (duckdb.Error, KeyError, ValueError, TypeError, AttributeError, OSError) as exc:
            return {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}

    def _export(self, path: str, runs: list[str] | None) -> dict:
        """The columns reconcile reads, of every committed row (of `runs` when given), to Parquet at `path`."""
        columns = ", ".join(f'"{c}"' for c in EXPORT_COLUMNS)
        where = ""
        if runs:
            where = " WHERE run_id IN (" + ", ".join(_sql_str(str(r)) for r in runs) + ")"
        con = self.store.reader()
        try:
            con.execute(f"COPY (SELECT {columns} FROM events{where}) TO {_sql_str(path)} (FORMAT parquet)")
        finally:
            con.close()
        return {"ok": True, "path": path}

    def close(self) -> None:
        """Stop serving, then checkpoint and close the store (every acknowledged batch is committed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        sidecar_path(self.path).unlink(missing_ok=True)
        with self._lock:
            self.store.close()
