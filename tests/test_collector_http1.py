"""The collector's HTTP/1.1 layer (sim.collector.http1) on a real socket: keep-alive and pipelining in
order, bodies (length, chunked, 100-continue, over the limit), timeouts, bad requests, shutdown."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from sim.collector.http1 import HttpServer, Limits
from sim.collector.worker import new_event_loop

TEXT = b"content-type: text/plain\r\n"


class Recorder:
    """Answers `METHOD path?query body-length` after `delay(path)` seconds; records what it was handed."""

    def __init__(self, loop_holder: dict, delay=lambda path: 0.0):
        self.loop_holder = loop_holder
        self.delay = delay
        self.seen: list = []
        self.refused: list = []

    def request(self, exchange) -> None:
        self.seen.append(exchange)
        if exchange.path == "/boom":
            raise RuntimeError("a bug in the handler")
        if exchange.path == "/reset":
            exchange.reset()
            return
        if exchange.path == "/empty":
            exchange.send(204, b"", b"")
            return
        body = f"{exchange.method} {exchange.path}?{exchange.query} {len(exchange.body)}".encode()
        wait = self.delay(exchange.path)
        if wait:
            self.loop_holder["loop"].call_later(wait, exchange.send, 200, TEXT, body)
        else:
            exchange.send(200, TEXT, body)

    def refuse(self, exchange, status: int, code: str, message: str) -> None:
        self.refused.append((status, code, exchange.path))
        exchange.send(status, TEXT, code.encode())


@contextmanager
def serving(handler_factory=Recorder, **limits):
    """An HttpServer on 127.0.0.1:<ephemeral> in a thread of its own; (address, handler, server, loop)."""
    holder: dict = {}
    handler = handler_factory(holder)
    started = threading.Event()
    done = threading.Event()

    def run() -> None:
        loop = new_event_loop()
        holder["loop"] = loop
        asyncio.set_event_loop(loop)
        sock = socket.create_server(("127.0.0.1", 0))
        server = HttpServer(handler, Limits(**limits), loop)
        holder["server"] = server
        holder["address"] = sock.getsockname()
        loop.run_until_complete(server.start(sock, 128))
        started.set()
        loop.run_until_complete(_until(done))
        loop.run_until_complete(server.shutdown(timeout=5))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield holder["address"], handler, holder["server"], holder["loop"]
    finally:
        done.set()
        thread.join(15)


async def _until(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.01)


def read_answers(sock: socket.socket, count: int, timeout: float = 5.0) -> list[tuple[bytes, dict, bytes]]:
    """`count` answers (status line, headers, body) read off `sock`."""
    sock.settimeout(timeout)
    buffer = b""
    out = []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed after {len(out)} answers; pending {buffer!r}")
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        length = int(headers.get(b"content-length", b"0"))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        out.append((status, headers, buffer[:length]))
        buffer = buffer[length:]
    return out


def closed(sock: socket.socket, timeout: float = 5.0) -> bool:
    """The server closed the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_pipelined_requests_are_answered_in_order_when_their_answers_are_ready_out_of_order():
    # the first request's answer comes last: the later ones wait for it
    with serving(lambda holder: Recorder(holder, delay=lambda path: {"/1": 0.3, "/2": 0.1}.get(path, 0.0))) as (
        address,
        _handler,
        _server,
        _loop,
    ):
        with socket.create_connection(address) as sock:
            sock.sendall(b"".join(b"GET /%d?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (i, i) for i in range(1, 6)))
            answers = read_answers(sock, 5)
    assert [body for _, _, body in answers] == [b"GET /%d?n=%d 0" % (i, i) for i in range(1, 6)]
    assert all(status == b"HTTP/1.1 200 OK" and b"connection" not in headers for status, headers, _ in answers)


def test_keep_alive_serves_many_requests_on_one_connection_and_connection_close_ends_it():
    with serving() as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            for i in range(50):
                sock.sendall(b"GET /k?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                assert read_answers(sock, 1)[0][2] == b"GET /k?i=%d 0" % i
            sock.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            [(_, headers, _)] = read_answers(sock, 1)
            assert headers[b"connection"] == b"close" and closed(sock)
        with socket.create_connection(address) as sock:  # HTTP/1.0: kept when asked, and the answer says so
            for _ in range(2):
                sock.sendall(b"GET /old-kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                [(_, headers, _)] = read_answers(sock, 1)
                assert headers[b"connection"] == b"keep-alive"
        with socket.create_connection(address) as sock:  # HTTP/1.0: closed unless asked to keep it
            sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
            [(status, headers, _)] = read_answers(sock, 1)
            assert headers[b"connection"] == b"close" and closed(sock)
    assert len(handler.seen) == 54


def test_the_request_is_handed_on_as_a_server_framework_would():
    with serving() as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(
                b"GET /api_v3/a%20b%2Fc/%C3%A9?q=%20&x=1 HTTP/1.1\r\nHost: x\r\nX-Twice: 1\r\nX-TWICE: 2\r\n"
                b"User-Agent: Caf\xc3\xa9\r\n\r\n"
                b"GET http://elsewhere:1/api_v3/index.php?y=2 HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            read_answers(sock, 2)
    first, absolute = handler.seen
    assert (first.method, first.path, first.query) == ("GET", "/api_v3/a b/c/\u00e9", "q=%20&x=1")
    assert first.headers["x-twice"] == "2" and first.headers["user-agent"] == "Caf\u00e9"
    assert first.remote == "127.0.0.1"
    assert (absolute.path, absolute.query) == ("/api_v3/index.php", "y=2")


def test_bodies_by_length_and_chunked_and_after_100_continue():
    with serving() as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
            sock.sendall(
                b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            assert [a[2] for a in read_answers(sock, 2)] == [b"POST /len? 11", b"POST /chunked? 11"]
            sock.sendall(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            sock.settimeout(5)
            assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any body byte was sent
            sock.sendall(b"abc")
            assert read_answers(sock, 1)[0][2] == b"POST /expect? 3"
    assert [e.body for e in handler.seen] == [b"hello world", b"hello world", b"abc"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_refused_413_and_the_answer_reaches_a_client_still_sending(chunked):
    with serving(max_body=1000) as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            if chunked:
                sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(3):
                    sock.sendall(b"190\r\n" + b"y" * 400 + b"\r\n")
            else:
                sock.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"y" * 1000)
            [(status, headers, body)] = read_answers(sock, 1)
            assert status == b"HTTP/1.1 413 Request Entity Too Large" and body == b"REQUEST_TOO_LARGE"
            assert headers[b"connection"] == b"close"
            for _ in range(20):  # the rest of the body is read and dropped, not answered with a reset
                sock.sendall(b"y" * 8192)
            sock.shutdown(socket.SHUT_WR)
            assert closed(sock)
    assert handler.refused == [(413, "REQUEST_TOO_LARGE", "/big")] and handler.seen == []


def test_a_body_that_does_not_arrive_in_time_gets_the_handlers_408():
    with serving(body_timeout=0.3) as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            started = time.monotonic()
            [(status, _, _)] = read_answers(sock, 1)
            assert status.startswith(b"HTTP/1.1 408") and 0.25 <= time.monotonic() - started < 3
            assert closed(sock)
    assert handler.refused == [(408, "REQUEST_TIMEOUT", "/slow")]


def test_silent_connections_slow_heads_and_idle_keep_alive_are_closed_after_the_idle_timeout():
    with serving(idle_timeout=0.4) as (address, _handler, _server, _loop):
        silent = socket.create_connection(address)
        slow_head = socket.create_connection(address)
        slow_head.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n")
        kept = socket.create_connection(address)
        kept.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        read_answers(kept, 1)
        started = time.monotonic()
        for sock in (silent, slow_head, kept):
            assert closed(sock, timeout=5)
            sock.close()
        assert time.monotonic() - started < 3
        with socket.create_connection(address) as sock:  # a new client is served as ever
            sock.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answers(sock, 1)[0][2] == b"GET /after? 0"


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", b"HTTP/1.1 431 "),
    ],
)
def test_an_unparsable_request_or_an_oversized_head_is_answered_and_the_connection_closed(raw, status):
    with serving(max_head=65536) as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n" + raw)
            before, (got, headers, _) = read_answers(sock, 2)
            assert before[2] == b"GET /before? 0"  # the good request before it is answered first
            assert got.startswith(status) and headers[b"connection"] == b"close" and closed(sock)
    assert [e.path for e in handler.seen] == ["/before"]


def test_a_handler_error_is_a_500_and_the_connection_goes_on(capfd):
    with serving() as (address, _handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
            (first, _, _), (second, _, body) = read_answers(sock, 2)
    assert first == b"HTTP/1.1 500 Internal Server Error" and body == b"GET /fine? 0"
    assert "a bug in the handler" in capfd.readouterr().err


def test_a_reset_drops_the_connection_after_the_answers_before_it_and_204_has_no_length():
    with serving() as (address, _handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /reset HTTP/1.1\r\nHost: x\r\n\r\n")
            [(status, headers, _)] = read_answers(sock, 1)
            assert status == b"HTTP/1.1 204 No Content" and b"content-length" not in headers
            assert closed(sock)


def test_shutdown_answers_what_was_read_then_closes_every_connection():
    with serving(lambda holder: Recorder(holder, delay=lambda path: 0.5 if path == "/slow" else 0.0)) as (
        address,
        _handler,
        server,
        loop,
    ):
        busy = socket.create_connection(address)
        idle = socket.create_connection(address)
        idle.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        read_answers(idle, 1)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)  # read, its answer not yet due
        shut = asyncio.run_coroutine_threadsafe(server.shutdown(timeout=5), loop)
        assert closed(idle, timeout=2)
        [(status, headers, body)] = read_answers(busy, 1)
        assert body == b"GET /slow? 0" and headers[b"connection"] == b"close"
        assert closed(busy)
        shut.result(5)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(address, timeout=2).recv(1)
        busy.close()
        idle.close()


def test_a_protocol_switch_is_not_served_the_request_is_answered_and_the_connection_closed():
    with serving() as (address, handler, _server, _loop):
        with socket.create_connection(address) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            assert read_answers(sock, 1)[0][2] == b"GET /ws? 0" and closed(sock)
    assert [e.path for e in handler.seen] == ["/ws"]
