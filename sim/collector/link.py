"""The link between the collector's HTTP workers and its one store writer: framed messages on a Unix socket.

    link = StoreLink(socket_path, loop)        # in a worker process, on its event loop
    result = await link.submit(row)            # {"ok": True} once the batch holding the row is committed
    link.submit_then(row, callback, arg)       # the same, without a future: callback(arg, result)
    ask(socket_path, {"q": "stats"})           # a query (live figures, an export for reconcile)

A frame is a 4-byte little-endian length, one kind byte and the payload (JSON). Kinds: `B` a
batch of rows (answer: `{"ok": true}` once committed, or `{"ok": false, "error": ...}`), `Q`
a query (answer: its JSON result).

Group commit: rows submitted while a batch is being committed wait for it to finish and go
together as the next batch, so a batch closes as soon as the previous one committed (a few
ms) and its size grows with the load instead of the latency.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import orjson

_HEAD = struct.Struct("<IB")
MAX_FRAME = 1 << 30


class LinkError(OSError):
    """The writer cannot be reached or answered out of turn."""


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(_HEAD.pack(len(payload), kind[0]) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        if not chunk:
            raise LinkError("the store writer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """(kind, payload), or None at a clean end of the connection."""
    first = sock.recv(_HEAD.size)
    if not first:
        return None
    head = first if len(first) == _HEAD.size else first + _recv_exact(sock, _HEAD.size - len(first))
    size, kind = _HEAD.unpack(head)
    if size > MAX_FRAME:
        raise LinkError(f"a frame of {size} bytes")
    return bytes([kind]), _recv_exact(sock, size)


def connect(path: str, timeout: float | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def ask(path: str, query: dict, timeout: float = 120.0) -> dict:
    """One query to the writer at `path`; its JSON answer."""
    with connect(path, timeout) as sock:
        send_frame(sock, b"Q", orjson.dumps(query))
        frame = recv_frame(sock)
    if frame is None:
        raise LinkError("the store writer closed the connection")
    return orjson.loads(frame[1])


def _resolve(future: asyncio.Future, result: dict) -> None:
    if not future.done():
        future.set_result(result)


class StoreLink(asyncio.Protocol):
    """A worker's side: `submit(row)` resolves once the row's batch is committed (or failed).

    The Unix socket is read and written by the worker's own event loop (an asyncio protocol), so a
    batch costs no thread hand-off: one write, one answer read when the loop next polls.
    """

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop, max_batch: int = 20000):
        self.path = path
        self.loop = loop
        self.max_batch = max_batch
        sock = connect(path)  # here, so a writer that is not there fails the worker's start
        sock.setblocking(False)
        self._rows: list[dict] = []
        self._waiters: list[tuple] = []  # (callback, arg) of each queued row
        self._inflight: list[tuple] | None = None
        self._busy = False
        self._closed = False
        self._lost: str | None = None
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._attach = asyncio.ensure_future(loop.create_unix_connection(lambda: self, sock=sock), loop=loop)
        self._attach.add_done_callback(self._attached)

    def _attached(self, task: asyncio.Future) -> None:
        if task.cancelled() or task.exception() is not None:  # rows must not wait for a link that never came
            self.connection_lost(task.exception() if not task.cancelled() else None)

    def submit(self, row: dict) -> asyncio.Future:
        """A future set to `{"ok": bool, ...}` when the row's batch is committed or has failed."""
        future = self.loop.create_future()
        self.submit_then(row, _resolve, future)
        return future

    def submit_then(self, row: dict, callback, arg) -> None:
        """`callback(arg, {"ok": bool, ...})` when the row's batch is committed or has failed (the
        collector's answers are written from here: no future, no task, no extra loop turn)."""
        if self._closed or self._lost is not None:
            callback(arg, {"ok": False, "error": self._lost or "collector is shutting down"})
            return
        self._rows.append(row)
        self._waiters.append((callback, arg))
        if not self._busy and len(self._rows) == 1:
            # rows of this loop turn join the batch; it leaves before the loop waits for I/O again
            self.loop.call_soon(self._flush)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self._transport = transport
        self._flush()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEAD.size:
            size, _kind = _HEAD.unpack_from(buffer)
            if len(buffer) < _HEAD.size + size:
                return
            payload = bytes(buffer[_HEAD.size : _HEAD.size + size])
            del buffer[: _HEAD.size + size]
            try:
                result = orjson.loads(payload)
            except ValueError as exc:  # orjson's errors are ValueErrors
                result = {"ok": False, "error": f"the store writer answered garbage ({exc})"}
            self._done(result)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = f"the store writer is unreachable ({exc or 'it closed the connection'})"
        self._transport = None
        failed = {"ok": False, "error": self._lost}
        if self._inflight is not None:
            self._done(failed)
        waiters, self._rows, self._waiters = self._waiters, [], []
        for callback, arg in waiters:
            callback(arg, failed)

    # --- batches --------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._busy or not self._rows or self._transport is None:
            return
        if len(self._rows) <= self.max_batch:  # the usual case: take the lists whole
            rows, waiters, self._rows, self._waiters = self._rows, self._waiters, [], []
        else:
            rows, waiters = self._rows[: self.max_batch], self._waiters[: self.max_batch]
            del self._rows[: self.max_batch], self._waiters[: self.max_batch]
        try:
            payload = orjson.dumps(rows)
        except (TypeError, ValueError) as exc:  # a row JSON cannot carry: this batch fails, the link stays
            failed = {"ok": False, "error": f"the batch cannot be sent to the store writer ({exc})"}
            for callback, arg in waiters:
                callback(arg, failed)
            self.loop.call_soon(self._flush)
            return
        self._busy = True
        self._inflight = waiters
        self._transport.write(_HEAD.pack(len(payload), ord("B")) + payload)

    def _done(self, result: dict) -> None:
        waiters, self._inflight = self._inflight or [], None
        self._busy = False
        for callback, arg in waiters:
            callback(arg, result)
        if self._rows:
            self._flush()

    async def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then close the link."""
        self._closed = True
        deadline = self.loop.time() + timeout
        if not self._attach.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._attach), timeout)
            except (TimeoutError, OSError):
                pass
        while (self._busy or self._rows) and self._transport is not None and self.loop.time() < deadline:
            self._flush()
            await asyncio.sleep(0.005)
        if self._transport is not None:
            self._transport.close()
