"""The collector's one store writer: owns the DuckDB store, commits the workers' batches, answers queries.

    writer = StoreWriter("events.duckdb", socket_path)   # opens (and checks) the store
    writer.start()                                       # serves the Unix socket in threads
    ...
    writer.close()                                       # stops serving, checkpoints, closes

It runs in the collector's main process, so DuckDB has one writer however many HTTP worker
processes (`--workers N`) answer requests; the workers reach it through `link`.

Durability: each batch is appended to a journal (`STORE.journal`, length-prefixed JSON) and
fsync'ed before its worker answers the requests in it; an inserter thread moves journaled
batches into DuckDB every `flush_ms` (up to 1 s under a heavy stream, so that each insert
carries thousands of rows; one transaction, which also records how far the journal is in the
store), then empties the journal. A collector killed at any moment replays the rest
of the journal on start. Why not commit each batch to DuckDB directly: an insert into the
~70-column events table costs about the same for 1 row as for 1,000 (~0.3 ms a column on
this machine), so small batches committed straight to DuckDB capped the collector far below
what a journal append and fsync allow. A batch that cannot be journaled (disk full), or any
batch while DuckDB refuses inserts, is answered with its error: the worker answers 503 and
the writer says so on stderr.

Queries run on their own connection and cursor, off the commit path: `stats` (the live
figures), `export` (the columns reconcile needs, to a Parquet file, for `player-sim
reconcile` while this process holds DuckDB's lock). `STORE.collector.json` beside the store
names the socket and the URL while the collector runs.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from sim.atomic import write_atomic
from sim.collector.link import LinkError, recv_frame, send_frame
from sim.collector.live import LiveStats
from sim.collector.store import EventStore, sql_literal

EXPORT_COLUMNS = (
    "ledger_key",
    "protocol",
    "eventType",
    "accepted",
    "error_code",
    "run_id",
    "run_worker",
    "run_seq",
    "run_attempt",
)


def sidecar_path(store: str | os.PathLike) -> Path:
    """Where a running collector says how to reach it: `STORE.collector.json`."""
    return Path(f"{os.fspath(store)}.collector.json")


_FRAME = struct.Struct("<I")

_RUN_KEY = b'"run_id":"'
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def last_run_id(payload: bytes) -> str | None:
    """The last non-empty run_id of a batch (a JSON array of flat rows), found in its bytes rather
    than by parsing the batch (orjson.loads of every batch cost ~3 us a row). Within a JSON string
    every quote is escaped, so `"run_id":"` occurs only where a row's run_id key and a string value
    start; rows whose run_id is null or "" are passed over."""
    end = len(payload)
    while (at := payload.rfind(_RUN_KEY, 0, end)) >= 0:
        match = _JSON_STRING.match(payload, at + len(_RUN_KEY) - 1)
        if match is not None and match.end() > match.start() + 2:
            text = match.group()
            return text[1:-1].decode() if b"\\" not in text else orjson.loads(text)
        end = at
    return None


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte or raise: a short write (the disk filling up) is retried, and the next
    write raises ENOSPC, so a batch is never acknowledged with part of its frame on disk."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "no space left on device")
        view = view[written:]


class StoreWriter:
    def __init__(self, store: str, socket_path: str, *, flush_ms: float = 200.0, flush_rows: int = 20000):
        self.path = store
        self.socket_path = socket_path
        self.journal_path = f"{store}.journal"
        self.flush_s = flush_ms / 1000.0
        self.flush_max_s = max(self.flush_s, 1.0)
        self.flush_target_rows = 5000
        self._batch_path = os.path.join(os.path.dirname(os.path.abspath(socket_path)), "batch.json")
        self.json_fallbacks = 0  # inserts that DuckDB's JSON reader could not do (the dict path did)
        self.flush_rows = flush_rows
        self.store = EventStore(store)
        # One DuckDB thread: the inserts cost less CPU a row on one thread than on two (24.0 against
        # 27.8 us a request, bench_store_writer), and the other core is the HTTP workers'. Queries
        # here (the live figures, exports) run on it too.
        self.store.reader().execute("SET threads = 1")
        self.live = LiveStats(self.store)
        self._journal_lock = threading.Lock()  # appends to the journal, the pending list
        self._db_lock = threading.Lock()  # DuckDB writes
        self._wake = threading.Condition(self._journal_lock)
        self._pending: list[bytes] = []  # journaled batches not yet in DuckDB
        self._pending_rows = 0
        self._server: socket.socket | None = None
        self._closed = False
        self._broken: str | None = None  # why DuckDB refused the last insert
        self._failing_since: float | None = None
        self._failed_batches = 0
        self._failed_rows = 0
        self._last_shout = 0.0
        self.current_run: str | None = None
        self.metrics = None
        self._con = self.store.reader()
        self.store.prepare_json_insert(self._con)
        self._con.execute("CREATE TABLE IF NOT EXISTS collector_journal (journal_offset BIGINT)")
        if not self._con.execute("SELECT count(*) FROM collector_journal").fetchall()[0][0]:
            self._con.execute("INSERT INTO collector_journal VALUES (0)").fetchall()
        self.replayed = self._replay()
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._journal_size = os.fstat(self._fd).st_size
        self._inserter = threading.Thread(target=self._insert_loop, name="store-inserter", daemon=True)

    # --- the journal: durable before the answer, in DuckDB soon after --------------------

    def _replay(self) -> int:
        """Rows a killed collector had journaled (and answered) but not yet inserted go in now."""
        done = self._con.execute("SELECT journal_offset FROM collector_journal").fetchall()[0][0]
        try:
            data = Path(self.journal_path).read_bytes()
        except FileNotFoundError:
            data = b""
        batches, at = [], done if done <= len(data) else len(data)
        first = at
        while at + _FRAME.size <= len(data):
            (size,) = _FRAME.unpack_from(data, at)
            if at + _FRAME.size + size > len(data):
                break  # a frame cut short by the kill: never acknowledged
            batches.append(data[at + _FRAME.size : at + _FRAME.size + size])
            at += _FRAME.size + size
        rows = []
        for n, batch in enumerate(batches):
            try:
                rows.extend(orjson.loads(batch))
            except orjson.JSONDecodeError:
                # Appends are whole frames or cut back (_write_all, ftruncate), so this is damage from
                # outside: keep the bytes from here on for a person to look at, and say so.
                start = first + sum(_FRAME.size + len(b) for b in batches[:n])
                Path(f"{self.journal_path}.damaged").write_bytes(data[start:])
                print(
                    f"player-sim collector: {self.journal_path} is damaged at byte {start:,}; the "
                    f"{len(data) - start:,} bytes from there are kept in {self.journal_path}.damaged",
                    file=sys.stderr,
                    flush=True,
                )
                at = start
                break
        if rows:
            self._insert_rows(rows, at)  # a crash before the truncation below replays nothing twice
            print(
                f"player-sim collector: {len(rows):,} requests answered before a crash were restored "
                f"from {self.journal_path}",
                file=sys.stderr,
                flush=True,
            )
        os.truncate(self.journal_path, 0) if data else None
        self._set_offset(0)
        return len(rows)

    def _set_offset(self, offset: int) -> None:
        self._con.execute("UPDATE collector_journal SET journal_offset = ?", [offset]).fetchall()

    def _in_one_transaction(self, insert, journal_end: int):
        """`insert(con)` and how far the journal is now in the store, in one transaction; insert's result."""
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            result = insert(con)
            con.execute("UPDATE collector_journal SET journal_offset = ?", [journal_end]).fetchall()
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        return result

    def _insert_rows(self, rows: list[dict], journal_end: int) -> None:
        """One transaction: the rows and how far the journal is now in the store."""
        self._in_one_transaction(lambda con: self.store.insert(rows, con), journal_end)

    def _insert_json(self, batches: list[bytes], journal_end: int) -> bool:
        """Like `_insert_rows`, the rows read from the batches by DuckDB's JSON reader (a fraction of the
        CPU of parsing them into Python dicts); False, with nothing inserted, when that fails: the
        caller then takes the dict path, so no row waits on this one (and a DuckDB that refuses
        every insert fails there too, with its own error)."""
        path = None
        try:
            path = self._write_batches(batches)
            self.store.rows += self._in_one_transaction(lambda con: self.store.insert_json(path, con), journal_end)
        except (duckdb.Error, OSError):
            self.json_fallbacks += 1
            return False
        finally:
            if path is not None:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return True

    def _insert_loop(self) -> None:
        wait, last = self.flush_s, time.monotonic()
        while True:
            with self._wake:
                if not self._closed and self._pending_rows < self.flush_rows:
                    self._wake.wait(wait)
                closing = self._closed
                rows = self._pending_rows
            now = time.monotonic()
            self.flush()
            if closing:
                return
            wait, last = self._next_wait(rows / max(now - last, 1e-3)), now

    def _next_wait(self, rows_per_s: float) -> float:
        """How long the inserter waits next. A DuckDB insert costs ~25 ms whatever its size, so under a
        heavy stream it waits longer (up to `flush_max_s`) and each insert carries ~`flush_target_rows`
        rows; a light stream is in the store within `flush_s`."""
        return min(self.flush_max_s, max(self.flush_s, rows_per_s / self.flush_target_rows * self.flush_max_s))

    def flush(self) -> bool:
        """Insert every journaled batch into DuckDB; True when nothing is left pending."""
        with self._db_lock:
            with self._journal_lock:
                batches, end = self._pending, self._journal_size
                self._pending, self._pending_rows = [], 0
            if not batches:
                return True
            started = time.perf_counter()
            count = sum(batch.count(b'"received_at"') for batch in batches)  # every row has one
            try:
                if not self._insert_json(batches, end):
                    self._insert_rows([row for batch in batches for row in orjson.loads(batch)], end)
            except (duckdb.Error, pa.ArrowException, OverflowError, ValueError, TypeError, OSError) as exc:
                with self._journal_lock:  # kept, in order, for the next try (and in the journal)
                    self._pending[:0] = batches
                    self._pending_rows += count
                self._broken = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self._shout(
                    count,
                    f"cannot insert into DuckDB ({self._broken}); they are kept in "
                    f"{self.journal_path} and new requests are answered 503",
                )
                return False
            self._broken = None
            if self.metrics is not None:
                self.metrics.INSERT.observe(time.perf_counter() - started)
                self.metrics.STORE_ROWS.set(self.store.rows)
            with self._journal_lock:
                if not self._pending and self._journal_size == end:
                    # everything journaled is in the store: start the journal afresh
                    os.ftruncate(self._fd, 0)
                    self._journal_size = 0
                    self._set_offset(0)
            return True

    def _write_batches(self, batches: list[bytes]) -> str:
        """The journaled batches (JSON arrays of rows) as one JSON array in a file, for DuckDB's reader."""
        path = self._batch_path
        with open(path, "wb") as out:
            out.write(b"[")
            first = True
            for batch in batches:
                inner = batch[1:-1].strip()
                if inner:
                    out.write(inner if first else b"," + inner)
                    first = False
            out.write(b"]")
        return path

    def start(self, url: str | None = None) -> None:
        from sim.collector import metrics  # after server.serve set PROMETHEUS_MULTIPROC_DIR

        self.metrics = metrics
        metrics.STORE_ROWS.set(self.store.rows)
        last = self._con.execute(
            "SELECT run_id FROM events WHERE run_id IS NOT NULL ORDER BY received_at DESC LIMIT 1"
        ).fetchall()
        self.current_run = last[0][0] if last else None
        self.live.current_run = lambda: self.current_run
        self._inserter.start()
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
        write_atomic(
            sidecar,
            orjson.dumps(
                {"url": url, "socket": self.socket_path, "pid": os.getpid(), "store": os.path.abspath(self.path)}
            ),
        )

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
        """Append the batch to the journal and fsync it: from then on it survives a crash."""
        if payload == b"[]":
            return {"ok": True}
        rows = payload.count(b'"received_at"')  # every row has one; a count, not a parse
        if self._broken is not None:
            return self._failed(rows, self._broken)
        started = time.perf_counter()
        with self._journal_lock:
            if self._closed:
                return {"ok": False, "error": "collector is shutting down"}
            before = self._journal_size
            try:
                _write_all(self._fd, _FRAME.pack(len(payload)) + payload)
                os.fdatasync(self._fd)
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, before)  # no half frame before the next one
                except OSError:
                    pass
                return self._failed(rows, f"cannot write {self.journal_path} ({exc.strerror or exc})")
            self._journal_size = before + _FRAME.size + len(payload)
            self._pending.append(payload)
            self._pending_rows += rows
            if self._pending_rows >= self.flush_rows:
                self._wake.notify()
        elapsed = time.perf_counter() - started
        run = last_run_id(payload)
        if run is not None:
            self.current_run = run
        if self._failing_since is not None:
            print(
                f"player-sim collector: the store takes requests again ({self._failed_rows:,} requests "
                f"in {self._failed_batches:,} batches were answered 503 and not stored)",
                file=sys.stderr,
                flush=True,
            )
            self._failing_since = None
            self._failed_batches = self._failed_rows = 0
        m = self.metrics
        m.COMMIT.observe(elapsed)
        m.BATCH_ROWS.observe(rows)
        return {"ok": True}

    def _failed(self, rows: int, reason: str) -> dict:
        self._failed_batches += 1
        self._failed_rows += rows
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._shout(rows, "answered 503 and NOT stored")
        if self.metrics is not None:
            self.metrics.STORE_ERRORS.inc()
        return {"ok": False, "error": f"the store cannot take requests ({reason})"}

    def _shout(self, rows: int, what: str) -> None:
        now = time.monotonic()
        if now - self._last_shout >= 1.0:  # loud, but one line a second, not one per batch
            self._last_shout = now
            reason = self._broken or "see above"
            print(
                f"player-sim collector: STORE WRITE FAILED: {rows:,} requests {what} "
                f"({self._failed_rows:,} answered 503 so far): {self.path}: {reason}",
                file=sys.stderr,
                flush=True,
            )

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
        """The columns reconcile reads, of every answered row (of `runs` when given), to Parquet at `path`."""
        if not self.flush():
            return {"ok": False, "error": f"the store cannot take the journaled rows ({self._broken})"}
        columns = ", ".join(f'"{c}"' for c in EXPORT_COLUMNS)
        where = ""
        if runs:
            where = " WHERE run_id IN (" + ", ".join(sql_literal(str(r)) for r in runs) + ")"
        con = self.store.reader()
        try:
            con.execute(f"COPY (SELECT {columns} FROM events{where}) TO {sql_literal(path)} (FORMAT parquet)")
        finally:
            con.close()
        return {"ok": True, "path": path}

    def close(self) -> None:
        """Stop serving, insert what is journaled, then checkpoint and close the store."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        if self._inserter.is_alive():
            self._inserter.join()
        flushed = self.flush()
        if not flushed:
            print(
                f"player-sim collector: the rows left in {self.journal_path} go into the store at the next start",
                file=sys.stderr,
                flush=True,
            )
        os.close(self._fd)
        if flushed and self._journal_size == 0:
            Path(self.journal_path).unlink(missing_ok=True)  # everything is in the store
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.socket_path)
            except OSError:
                pass
        sidecar_path(self.path).unlink(missing_ok=True)
        with self._db_lock:
            self._con.close()
            self.store.close()
