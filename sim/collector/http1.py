"""The collector's HTTP/1.1 server side: an asyncio protocol per connection on httptools' parser.

    server = HttpServer(handler, limits, loop)
    await server.start(sock, backlog)          # then requests reach handler.request(exchange)
    exchange.send(200, head, body)             # any time later, from the event loop; answers go out in order
    await server.shutdown()                    # stop accepting, answer what was asked, close

Why its own layer rather than a server library: the collector answers a beacon only once its row is
committed, so every answer is written from a callback. Measured with wrk on 2 cores (bench_collector's
floor), granian's minimal RSGI app cost 20-25 us of CPU a request, most of it in handing each request
from its I/O threads to the event loop as a new asyncio Task; this protocol on uvloop costs 8-10 us.
httptools (llhttp, MagicStack's binding used by uvicorn) parses; this module keeps the connection:

- keep-alive (HTTP/1.1's default, HTTP/1.0 when asked), pipelined requests answered in order;
- Content-Length and chunked bodies, `Expect: 100-continue`;
- a body over `max_body` is answered 413 without reading it: the answer, then a half-close, and what
  the client still sends is read and dropped until it closes (a reset could destroy the answer);
- a connection that sends no complete request head within `idle_timeout` seconds (new, or between
  requests) is closed; a body not whole within `body_timeout` seconds gets the handler's 408;
- a head over `max_head` bytes gets 431, an unparsable request 400, and the connection is closed.

A handler has two methods: `request(exchange)` for a whole request and `refuse(exchange, status, code,
message)` for one refused before its body was read (413, 408). Each calls `exchange.send` or
`exchange.reset` exactly once, at once or later.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote

import httptools

# connection states, for the timeout sweep
_HEAD = 0  # waiting for a request head (a new connection, or between keep-alive requests): idle timeout
_BODY = 1  # head read, body arriving: body timeout
_BUSY = 2  # requests read, answers pending: no timeout (the answer waits for the store)
_DRAIN = 3  # refused mid-body, answer sent, half-closed: the rest is dropped until the client closes

PIPELINE_LIMIT = 64  # requests read ahead of their answers on one connection before reading pauses
DRAIN_TIMEOUT_S = 5.0


@dataclass
class Limits:
    """Bytes a request may take and seconds a client may wait (see the module's list)."""

    max_body: int = 64 * 1024
    max_head: int = 64 * 1024
    idle_timeout: float = 30.0
    body_timeout: float = 10.0


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_RESET = object()  # an exchange's response when the connection is to be dropped unanswered
_HEADER_NAMES: dict[bytes, str] = {}  # raw name -> lower-case text, learnt (bounded)


class _Clock:
    """The Date header, formatted once a second."""

    second = -1
    line = b""

    @classmethod
    def date_line(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return cls.line


class Exchange:
    """One request and, once sent, its answer's bytes."""

    __slots__ = (
        "connection", "method", "path", "query", "headers", "body", "remote", "keep_alive", "http10", "response",
    )  # fmt: skip

    def __init__(self, connection, method: str, path: str, query: str, headers: dict, remote: str):
        self.connection = connection
        self.method = method
        self.path = path  # percent-decoded, as a server framework hands it on
        self.query = query  # as sent
        self.headers = headers  # lower-case names; a repeated header keeps its last value
        self.body = b""
        self.remote = remote
        self.keep_alive = True
        self.http10 = False  # an HTTP/1.0 request: keep-alive only when both sides say so
        self.response: bytes | object | None = None  # the answer's bytes, or _RESET

    def send(self, status: int, head: bytes, body: bytes) -> None:
        """Answer: `head` is header lines (`name: value\\r\\n` each); length, date and connection are added."""
        if self.response is not None:
            return
        line = _STATUS_LINES.get(status) or _status_line(status)
        # no length on a 204 (RFC 9110 8.6)
        tail = b"content-length: %d\r\n\r\n" % len(body) if status != 204 else b"\r\n"
        if not self.keep_alive or self.connection.closing:
            tail = b"connection: close\r\n" + tail
        elif self.http10:
            tail = b"connection: keep-alive\r\n" + tail
        self.response = b"".join((line, head, _Clock.date_line(), tail, body))
        self.connection.answered()

    def reset(self) -> None:
        """Drop the connection without an answer (once the answers before this one are out)."""
        if self.response is None:
            self.response = _RESET
            self.connection.answered()


class Connection(asyncio.Protocol):
    """One client connection: parses requests, hands them to the handler, writes answers in order."""

    # attributes in slots: read a dozen times a request, and a slot is cheaper to reach than a dict entry
    __slots__ = (
        "server", "handler", "limits", "loop", "transport", "parser", "remote", "pending", "state", "since", "in_head",
        "head_bytes", "closing", "ended", "finished", "paused", "refused", "_url", "_head_size", "_headers",
        "_body", "_body_size", "_current",
    )  # fmt: skip

    def __init__(self, server):  # an HttpServer
        self.server = server
        self.handler = server.handler
        self.limits = server.limits
        self.loop = server.loop
        self.transport = None
        self.parser = None
        self.remote = ""
        self.pending: deque[Exchange] = deque()  # read, not yet written (in arrival order)
        self.state = _HEAD
        self.since = 0.0  # when the state began (the loop's clock)
        self.in_head = True
        self.head_bytes = 0  # bytes received while a head is incomplete (a head that never ends)
        self.closing = False  # write what is pending, then close
        self.ended = False  # the client closed its side
        self.finished = False  # the last answer is written: nothing more is read or written
        self.paused = False
        self.refused = False  # refused mid-request: nothing more is parsed
        self._url = b""
        self._head_size = 0  # bytes of the request head parsed so far
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._current: Exchange | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if peer else ""
        self.parser = httptools.HttpRequestParser(self)
        self.since = self.loop.time()
        self.server.connections.add(self)

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        self.transport = None
        self.pending.clear()  # their rows are committed all the same; nobody is left to answer

    def data_received(self, data: bytes) -> None:
        if self.refused:  # a refused body's rest, or bytes after a request that closes the connection
            return
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # a protocol switch is not served: the request is answered as any other (the parser stops
            # before its body), then the connection closes
            self.refused = True
            self.closing = True
            if not self.pending:
                self._finish()
                self.transport.close()
            return
        except httptools.HttpParserError as exc:
            self._fail(400, f"unparsable request ({exc})")
            return
        if self.in_head and self.head_bytes > self.limits.max_head:
            self._fail(431, f"request head over {self.limits.max_head} bytes")

    def eof_received(self):
        self.ended = True
        if self.state == _DRAIN or not self.pending:
            return None  # close
        self.closing = True  # the client sent all it will: answer, then close
        return True

    def pause_writing(self) -> None:  # the client does not read its answers: read no more requests
        self._pause()

    def resume_writing(self) -> None:
        if self.paused and len(self.pending) < PIPELINE_LIMIT:
            self.paused = False
            self.transport.resume_reading()

    # --- httptools callbacks --------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        text = _HEADER_NAMES.get(name)
        if text is None:
            text = name.decode("latin-1").lower()
            if len(_HEADER_NAMES) < 4096:  # bounded: clients choose the names
                _HEADER_NAMES[name] = text
        self._headers[text] = value.decode("utf-8", "replace")

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        if self._head_size > self.limits.max_head:  # a whole head that came in one read
            self._fail(431, f"request head over {self.limits.max_head} bytes")
            return
        self._head_size = 0
        url, self._url = self._url, b""
        headers, self._headers = self._headers, {}
        exchange = Exchange(self, self.parser.get_method().decode("latin-1"), *_split_url(url), headers, self.remote)
        self._current = exchange
        length = headers.get("content-length")
        if length is not None or "transfer-encoding" in headers:
            limit = self.limits.max_body
            if length is not None and length.isdigit() and int(length) > limit:
                self._refuse_body(exchange, 413, "REQUEST_TOO_LARGE", f"request body over {limit} bytes")
                return
            if length != "0":
                self.state = _BODY
                self.since = self.loop.time()
                if headers.get("expect", "").lower() == "100-continue" and not self.pending:
                    self.transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        if self.refused:
            return
        self._body_size += len(chunk)
        if self._body_size > self.limits.max_body:
            limit = self.limits.max_body
            self._refuse_body(self._current, 413, "REQUEST_TOO_LARGE", f"request body over {limit} bytes")
            return
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        exchange, self._current = self._current, None
        if self._body:
            exchange.body = b"".join(self._body)
            self._body = []
            self._body_size = 0
        exchange.keep_alive = self.parser.should_keep_alive()
        if exchange.keep_alive and self.parser.get_http_version() == "1.0":
            exchange.http10 = True
        self.in_head = True
        self.state = _BUSY
        pending = self.pending
        pending.append(exchange)
        if len(pending) >= PIPELINE_LIMIT:
            self._pause()
        try:
            self.handler.request(exchange)
        except Exception:  # a bug in the handler: said on stderr, the request answered 500
            self.server.failed(exchange)

    # --- answers --------------------------------------------------------------------------

    def answered(self) -> None:
        """An exchange has its answer: write every answer that is due, in order."""
        if self.finished:
            return
        pending = self.pending
        transport = self.transport
        while pending and pending[0].response is not None:
            exchange = pending.popleft()
            if transport is None:
                continue
            if exchange.response is _RESET:
                self._finish()
                transport.abort()
                return
            transport.write(exchange.response)
            if not exchange.keep_alive or (self.closing and not pending):
                self._close_after_answer()
                return
        if transport is None or pending:
            return
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if self.state == _BUSY:
            self.state = _HEAD
            self.since = self.loop.time()

    def _close_after_answer(self) -> None:
        still_sending = self.refused or self.state == _BODY
        self._finish()
        if still_sending and not self.ended and self.transport.can_write_eof():
            # the client may still be sending the refused body: half-close so the answer is read
            self.transport.write_eof()
            self.state = _DRAIN
            self.since = self.loop.time()
        else:
            self.transport.close()

    def _finish(self) -> None:
        self.finished = True
        self.refused = True  # whatever still arrives is dropped
        self.pending.clear()

    # --- refusals and timeouts ------------------------------------------------------------

    def _refuse_body(self, exchange: Exchange, status: int, code: str, message: str) -> None:
        """Refuse the request whose body is arriving; the connection closes after the answer."""
        self.refused = True
        self.in_head = False
        self._body = []
        self.state = _BUSY
        exchange.keep_alive = False
        self.pending.append(exchange)
        try:
            self.handler.refuse(exchange, status, code, message)
        except Exception:
            self.server.failed(exchange)

    def _fail(self, status: int, message: str) -> None:
        """Answer an unreadable request (after the answers before it) and close."""
        self.refused = True
        self.in_head = False
        exchange = Exchange(self, "", "", "", {}, self.remote)
        exchange.keep_alive = False
        self.pending.append(exchange)
        exchange.send(status, b"content-type: text/plain\r\n", message.encode() + b"\n")

    def _pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def expire(self, now: float) -> None:
        """Apply the timeouts (the server's sweep calls this)."""
        limits = self.limits
        if self.state == _HEAD:
            if now - self.since >= limits.idle_timeout and not self.pending:
                self.transport.close()
        elif self.state == _BODY:
            if now - self.since >= limits.body_timeout and self._current is not None:
                message = f"request body not received within {limits.body_timeout:g} s"
                self._refuse_body(self._current, 408, "REQUEST_TIMEOUT", message)
        elif self.state == _DRAIN:
            if now - self.since >= DRAIN_TIMEOUT_S:
                self.transport.close()

    def shut(self) -> None:
        """Server shutdown: close now when idle, else once the pending answers are written."""
        self.closing = True
        if self.state == _HEAD and not self.pending and self.transport is not None:
            self.transport.close()


def _split_url(url: bytes) -> tuple[str, str]:
    """(percent-decoded path, query as sent) of a request target (origin or absolute form)."""
    text = url.decode("utf-8", "replace")
    if not text.startswith("/"):  # absolute form (a proxy's): the path of the URL
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:  # CONNECT's host:port, `*`: handed on as they are
            return text, ""
        path = (parsed.path or b"/").decode("utf-8", "replace")
        query = (parsed.query or b"").decode("utf-8", "replace")
    else:
        path, _, query = text.partition("?")
        query = query.partition("#")[0]
    if "%" in path:
        path = unquote(path)
    return path, query


class HttpServer:
    """The connections of one worker process: accept, sweep the timeouts, shut down gracefully."""

    def __init__(self, handler, limits: Limits, loop: asyncio.AbstractEventLoop):
        self.handler = handler
        self.limits = limits
        self.loop = loop
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        # a connection goes within its timeout plus one interval
        self.interval = min(1.0, max(0.05, min(limits.idle_timeout, limits.body_timeout) / 4))
        self._reported = 0

    async def start(self, sock, backlog: int) -> None:
        """Serve the listening socket `sock` (this worker's own: see sim.collector.server)."""
        self._server = await self.loop.create_server(lambda: Connection(self), sock=sock, backlog=backlog)
        self._sweeper = self.loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.expire(now)
        self._sweeper = self.loop.call_later(self.interval, self._sweep)

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop accepting; let every request already read be answered; close every connection."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shut()
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def failed(self, exchange: Exchange) -> None:
        """The handler raised while `exchange` was being handled (call from its `except`): the exception
        on stderr, the request answered 500."""
        self._report(exchange)
        exchange.send(500, b"content-type: text/plain\r\n", b"internal error\n")

    def _report(self, exchange: Exchange) -> None:
        """The exception, on stderr (the first hundred: a bug repeats on every request)."""
        self._reported += 1
        if self._reported <= 100:
            print(
                f"[ERROR] collector: {exchange.method} {exchange.path[:200]!r} failed:\n{traceback.format_exc()}",
                file=sys.stderr,
                flush=True,
            )
