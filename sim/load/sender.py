"""Sending due beacons: keep-alive pools, many requests in flight, lateness, failures, ledger.

A `Sender` is shared by the few Locust users of one process; each user calls
`sender.run()` which loops: top up the schedule, take what is due and queue it for that
user's send greenlets, each of which renders a row and sends it over its own keep-alive
`Connection` (a lean HTTP/1.1 client: a request is one prepared buffer). A slow target keeps
them busy, later sends then go out late and are counted as late; the schedule itself never
moves (no coordinated omission). Every send fires Locust's `request` event (one statistics row per
beacon type) and, with a ledger, becomes one JSON line. A request the viewer's browser would
precede with a CORS preflight gets one first, on the same connection, unless the session's
page view holds a fresh result for its URL: a real OPTIONS request with a statistics row of
its own ("kava preflight"), counted in the summary and not in the ledger. A failed preflight
stops the beacon, as in a browser: the beacon counts as failed ("CORS preflight: ...").

    sender = Sender(schedule, "http://127.0.0.1:8080", events=env.events, ledger=Ledger(path))
    gevent.spawn(sender.run)      # in each Locust user's task
    ...
    sender.drain(); sender.close()
"""

from __future__ import annotations

import errno
import gc
import heapq
import logging
import os
import socket
import time
from collections import Counter, deque
from pathlib import Path
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.socket
import gevent.ssl
import numpy as np
import orjson

from sim.load.schedule import BeaconQueue, Outgoing, Schedule, ScheduleStats, header_lines
from sim.tables.ledger import ledger_line

log = logging.getLogger("player-sim")
KEEP_ALIVE = b"Connection: keep-alive\r\n"


class SendFailed(Exception):
    """A failed send, named by kind ("HTTP 503", "connection refused", "timeout" ...)."""


class BadResponse(Exception):
    """An answer that is not HTTP/1.x."""


class Incomplete(ConnectionResetError):
    """The connection ended before the answer was whole."""

    def __init__(self, received: bool):
        super().__init__(errno.ECONNRESET, "connection closed before the answer was whole")
        self.received = received  # some of the answer had arrived


def failure_kind(exc: BaseException) -> str:
    """A short stable name for what went wrong on the wire."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout, gevent.Timeout)):
        return "timeout"
    if isinstance(exc, ConnectionResetError | BrokenPipeError) or getattr(exc, "errno", None) in (
        errno.ECONNRESET,
        errno.EPIPE,
    ):
        return "connection reset"
    if isinstance(exc, BadResponse):
        return "bad response"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


class LatenessHistogram:
    """Send lateness (actual - scheduled) in 1 ms buckets up to 10 min, plus the maximum."""

    BUCKETS = 600_000

    def __init__(self):
        self.counts = np.zeros(self.BUCKETS + 1, np.int64)
        self.max = 0.0

    def add(self, late_s: float) -> None:
        ms = int(late_s * 1000.0) if late_s > 0 else 0
        self.counts[ms if ms < self.BUCKETS else self.BUCKETS] += 1
        if late_s > self.max:
            self.max = late_s

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def over(self, threshold_s: float) -> int:
        """How many sends started `threshold_s` or more late (to the millisecond)."""
        return int(self.counts[int(round(threshold_s * 1000.0)) :].sum())

    def quantile(self, q: float) -> float:
        """The q-quantile in seconds (upper edge of its 1 ms bucket); 0 when empty."""
        total = self.counts.sum()
        if total == 0:
            return 0.0
        bucket = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return min((bucket + 1) / 1000.0, self.max) if bucket < self.BUCKETS else self.max

    def to_sparse(self) -> dict:
        nz = np.flatnonzero(self.counts)
        return {"buckets": nz.tolist(), "counts": self.counts[nz].tolist(), "max": self.max}

    def merge_sparse(self, data: dict) -> None:
        np.add.at(self.counts, np.asarray(data["buckets"], np.int64), np.asarray(data["counts"], np.int64))
        self.max = max(self.max, float(data["max"]))


class Ledger:
    """Every send as one ledger line (`sim.tables.ledger`: `{ts, method, url, headers, body, protocol, key}`
    plus `run`, `seq`, `failed`, `error`), written to a temporary file beside `path` and renamed into place by
    `close()`: the ledger is whole or absent."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.file = open(self.tmp, "wb", buffering=1 << 20)
        self.lines = 0

    def write(
        self,
        ts: float,
        out: Outgoing,
        error: str | None,
        run: str | None = None,
        seq: int | None = None,
        attempts: int = 1,
    ) -> None:
        req = out.request
        body = req.body
        line = ledger_line(
            ts,
            req.method,
            req.url,
            req.headers,
            body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else body,
            out.protocol,
            out.key,
            run=run,
            seq=seq,
            attempts=attempts,
            error=error,
        )
        self.write_line(orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE))

    def write_line(self, line: bytes) -> None:
        """One JSON line, as is (newline included)."""
        self.file.write(line)
        self.lines += 1

    def close(self) -> Path:
        if not self.file.closed:
            self.file.close()
            os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
            self.tmp.unlink(missing_ok=True)


def merge_ledgers(parts: list[Path], out: Path, expected_lines: int | None = None) -> int:
    """The workers' ledgers `parts` as one ledger at `out`, written whole, then the parts
    removed; returns the lines written. A k-way merge by `ts`, read and written line by line:
    each part is in the order its worker completed the sends, so the whole is in send order
    but for sends that overlapped in flight. With `expected_lines`, a different count (parts
    that are not the ones the workers wrote) raises ValueError and leaves the parts as they
    were and `out` unwritten."""
    files = [open(part, "rb") for part in parts]
    merged = Ledger(out)
    try:
        keyed = [((orjson.loads(line)["ts"], line) for line in f) for f in files]
        for _, line in heapq.merge(*keyed, key=lambda item: item[0]):
            merged.write_line(line if line.endswith(b"\n") else line + b"\n")
        if expected_lines is not None and merged.lines != expected_lines:
            raise ValueError(f"the ledgers hold {merged.lines} lines, the workers wrote {expected_lines}")
        merged.close()
    except BaseException:
        merged.abort()
        raise
    finally:
        for f in files:
            f.close()
    for part in parts:
        part.unlink()
    return merged.lines


def worker_ledger_path(path: str, worker_index: int | None) -> str:
    """The ledger path of one worker in a distributed run (`ledger.jsonl` -> `ledger.w1.jsonl`)."""
    if worker_index is None:
        return path
    p = Path(path)
    suffix = "".join(p.suffixes) or ""
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    return str(p.with_name(f"{stem}.w{worker_index}{suffix}"))


class Connection:
    """One keep-alive HTTP/1.1 connection to the target, used by one send greenlet at a time.

    Leaner than a general client (geventhttpclient costs ~75 us of CPU a request, this
    ~15 us): the request goes out as one buffer, the answer is read by Content-Length,
    chunks or to the end of the connection. A connection the target closed while idle is
    reopened and the request sent once more, as HTTP clients do.

        conn = Connection("http://127.0.0.1:8080", timeout=10)
        status, body = conn.exchange(b"GET /api_v3/index.php?... HTTP/1.1\r\nHost: ...\r\n\r\n")
    """

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url)
        self.secure = parts.scheme == "https"
        self.address = (parts.hostname or "127.0.0.1", parts.port or (443 if self.secure else 80))
        self.host_line = f"Host: {parts.netloc}\r\n".encode("idna" if not parts.netloc.isascii() else "ascii")
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.head = b""  # the last answer's status line and headers, lower-cased

    def _open(self):
        sock = gevent.socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.secure:
            sock = gevent.ssl.create_default_context().wrap_socket(sock, server_hostname=self.address[0])
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock, self.buf = None, b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send `request` (whole HTTP bytes); the answer's (status, body)."""
        reused = self.sock is not None
        try:
            return self._exchange(self.sock or self._open(), request)
        except Incomplete as exc:
            self.close()
            if not reused or exc.received:
                raise
        except (ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
        except BaseException:
            self.close()
            raise
        try:  # the target had closed the idle connection: once more on a new one
            return self._exchange(self._open(), request)
        except BaseException:
            self.close()
            raise

    def _exchange(self, sock, request: bytes) -> tuple[int, bytes]:
        # send() rather than sendall(): gevent's sendall asks the socket for its buffer
        # size on every call, and a request fits in one send almost always
        sent = sock.send(request)
        while sent < len(request):
            sent += sock.send(memoryview(request)[sent:])
        return self._answer(sock)

    def _fill(self, sock, buf: bytes, received: bool = True) -> bytes:
        data = sock.recv(65536)
        if not data:
            raise Incomplete(received or bool(buf))
        return buf + data

    def _answer(self, sock) -> tuple[int, bytes]:
        """Read one answer: (status, body); keeps what follows it for the next one."""
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf = self._fill(sock, buf, received=False)
        head = buf[:end]
        if head[:5] != b"HTTP/":
            raise BadResponse(head[:40])
        try:
            status = int(head[9:12])
        except ValueError:
            raise BadResponse(head[:40]) from None
        lower = self.head = head.lower()
        buf = buf[end + 4 :]
        if 100 <= status < 200:  # an interim answer: the real one follows
            self.buf = buf
            return self._answer(sock)
        keep = b"\r\nconnection: close" not in lower and head[5:8] != b"1.0"
        at = lower.find(b"\r\ncontent-length:")
        if status in (204, 304):
            body = b""
        elif at >= 0:
            stop = lower.find(b"\r\n", at + 2)
            try:
                length = int(lower[at + 17 : stop if stop >= 0 else len(lower)])
            except ValueError:
                raise BadResponse(head[:40]) from None
            while len(buf) < length:
                buf = self._fill(sock, buf)
            body, buf = buf[:length], buf[length:]
        elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower:
            body, buf = self._chunked(sock, buf)
        else:  # no length: the answer runs to the end of the connection
            while data := sock.recv(65536):
                buf += data
            body, buf, keep = buf, b"", False
        if keep:
            self.buf = buf
        else:
            self.close()
        return status, body

    def _chunked(self, sock, buf: bytes) -> tuple[bytes, bytes]:
        """A chunked body and what follows it."""
        body = []
        while True:
            while (line_end := buf.find(b"\r\n")) < 0:
                buf = self._fill(sock, buf)
            try:
                size = int(buf[:line_end].split(b";", 1)[0], 16)
            except ValueError:
                raise BadResponse(buf[:40]) from None
            buf = buf[line_end + 2 :]
            if size == 0:  # optional trailers, then an empty line
                while not buf.startswith(b"\r\n") and (end := buf.find(b"\r\n\r\n")) < 0:
                    buf = self._fill(sock, buf)
                rest = buf[2:] if buf.startswith(b"\r\n") else buf[end + 4 :]
                return b"".join(body), rest
            while len(buf) < size + 2:
                buf = self._fill(sock, buf)
            body.append(buf[:size])
            buf = buf[size + 2 :]


class SendLane:
    """One user's `concurrency` send greenlets, each with its own keep-alive connection,
    taking due rows from a shared deque: a row is rendered by the greenlet that sends it,
    right before it sends (fresh player state), with no hand-off in between."""

    def __init__(self, sender: Sender, concurrency: int):
        self.sender, self.concurrency = sender, concurrency
        self.due: deque = deque()  # (scheduled time, queue, row)
        self.wake = gevent.event.Event()
        self.sending = 0  # greenlets between taking a row and finishing its send
        self.connections = [Connection(sender.host, sender.timeout) for _ in range(concurrency)]
        self.workers = [gevent.spawn(self._work, c) for c in self.connections]

    def _work(self, conn: Connection) -> None:
        due, wake, send = self.due, self.wake, self.sender._send
        popleft, now = due.popleft, time.time
        while True:
            if not due:
                wake.clear()
                wake.wait()
                continue
            sched_t, queue, row = popleft()
            self.sending += 1
            try:
                # rendered at once: from here on nothing refers to the row's number, so the
                # schedule may compact while this send is in flight
                out = queue.render(row, now() - sched_t)
                if out is not None:
                    send(conn, queue, out, sched_t)
            except Exception:  # a fault of ours, not the target's: say so, keep the lane whole
                log.exception("player-sim: a beacon could not be rendered or sent")
            finally:
                self.sending -= 1

    @property
    def idle(self) -> bool:
        return not self.due and not self.sending

    def kill(self) -> None:
        gevent.killall(self.workers)
        for conn in self.connections:
            conn.close()


class Sender:
    """Takes due beacons from a `Schedule` and sends them; see the module docstring."""

    def __init__(
        self,
        schedule: Schedule,
        host: str,
        *,
        events=None,
        ledger: Ledger | None = None,
        concurrency: int = 64,
        retries: int = 0,
        timeout: float = 10.0,
        late_threshold: float = 0.25,
        tick: float = 0.005,
        run_id: str | None = None,
        worker: int = 0,
    ):
        self.schedule, self.host, self.events, self.ledger = schedule, host.rstrip("/"), events, ledger
        # every request names its run, worker, send number and attempt (a header players never send),
        # so a collector keeps runs apart and tells a retried send from a duplicate
        self.run_id, self.seq = run_id, 0
        self.run_prefix = b"" if run_id is None else b"X-Player-Sim-Run: %s:%d:" % (run_id.encode(), worker)
        self.concurrency, self.retries, self.timeout = concurrency, retries, timeout
        self.late_threshold, self.tick = late_threshold, tick
        self.lateness = LatenessHistogram()
        self.lateness_by: dict[int, LatenessHistogram] = {}  # per scenario index
        self.sent = 0  # sends completed (success or failure)
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.by_label: Counter[str] = Counter()
        self.preflights = 0  # CORS preflights sent
        self.preflights_failed = 0
        self.lanes: list[SendLane] = []
        self.generating = None  # the next chunk being prepared in a thread (AsyncResult)
        self.stopped = False
        self.stopped_at: float | None = None
        self.cpu_started: float | None = None  # process CPU seconds when sending began
        self.cpu_stopped: float | None = None

    @property
    def backlog(self) -> int:
        """Rows taken from the schedule and not yet rendered (their numbers must hold)."""
        return sum(len(lane.due) for lane in self.lanes)

    def run(self) -> None:
        """The send loop of one Locust user (returns when `stop()` is called or killed)."""
        if not self.lanes:
            # Everything built so far (Locust, the population, compiled policies) lives as
            # long as the process: out of the collector's sight, a full collection takes a
            # few ms instead of ~100 ms, which would show as lateness of every send meanwhile
            gc.freeze()
            self.cpu_started = time.process_time()
        lane = SendLane(self, self.concurrency)
        self.lanes.append(lane)
        due, wake = lane.due, lane.wake
        schedule = self.schedule
        # take no more than the greenlets can start on soon: later rows wait in the schedule,
        # where a compaction may still renumber them
        most = 4 * self.concurrency
        while not self.stopped:
            now = time.time()
            self._top_up(now)
            if not self.backlog:
                schedule.compact()
            elif schedule.wants_compaction():
                gevent.sleep(0.001)  # rows waiting in a lane keep their numbers: they go first
                continue
            if len(due) < most:
                taken = schedule.pop_due(now, most - len(due))
                if taken:
                    due.extend(taken)
                    wake.set()
            if len(due) >= most:  # the greenlets are behind: look again in a moment
                gevent.sleep(0.001)
                continue
            head = schedule.next_due()
            wait = self.tick if head is None else min(max(head - time.time(), 0.0), 0.05)
            gevent.sleep(wait)

    def _top_up(self, now: float) -> None:
        """Keep one chunk in preparation in a native thread while the look-ahead is short,
        so generating sessions and beacons does not stall the send loop."""
        generating = self.generating
        if generating is not None:
            if not generating.ready():
                return
            self.generating = None
            self.schedule.integrate(generating.get())
        if self.schedule.needs_more(now):
            self.generating = gevent.get_hub().threadpool.spawn(self.schedule.prepare)

    def _send(self, conn: Connection, queue: BeaconQueue, out: Outgoing, sched_t: float) -> None:
        req = out.request
        started = time.time()
        late = started - sched_t
        self.lateness.add(late)
        by = self.lateness_by.get(out.scenario)
        if by is None:
            by = self.lateness_by[out.scenario] = LatenessHistogram()
        by.add(late)
        body = req.body
        head = out.head if out.head is not None else header_lines(req.headers)
        seq = self.seq
        self.seq += 1
        error = None
        if out.preflight is not None and queue.needs_preflight(out):
            error = self._preflight(conn, queue, out)
        attempt = 0
        if error is not None:  # the browser never sends the beacon itself
            attempt = self.retries + 1
            self._report(req.method, out.label, req.url, time.time(), 0.0, 0, error)
        while attempt <= self.retries:
            attempt += 1
            line = self.run_prefix and self.run_prefix + b"%d:%d\r\n" % (seq, attempt)
            if body and head.startswith(KEEP_ALIVE):  # a browser's order: Host, Connection, Content-Length
                wire = b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n%s%s\r\n%s" % (
                    req.method.encode(),
                    req.url.encode(),
                    conn.host_line,
                    KEEP_ALIVE,
                    len(body),
                    head[len(KEEP_ALIVE) :],
                    line,
                    body,
                )
            elif body:
                wire = b"%s %s HTTP/1.1\r\n%s%s%sContent-Length: %d\r\n\r\n%s" % (
                    req.method.encode(),
                    req.url.encode(),
                    conn.host_line,
                    head,
                    line,
                    len(body),
                    body,
                )
            else:
                wire = b"%s %s HTTP/1.1\r\n%s%s%s\r\n" % (
                    req.method.encode(),
                    req.url.encode(),
                    conn.host_line,
                    head,
                    line,
                )
            t0 = time.perf_counter()
            begin = time.time()
            error, answer = None, b""
            try:
                status, answer = conn.exchange(wire)
                if status >= 400:
                    error = f"HTTP {status}"
            except (gevent.Timeout, Exception) as exc:  # every wire fault is a counted failure
                error = failure_kind(exc)
            elapsed_ms = (time.perf_counter() - t0) * 1000.0
            self._report(req.method, out.label, req.url, begin, elapsed_ms, len(answer), error)
            if error is None:
                break
        self.sent += 1
        self.by_label[out.label] += 1
        if error is None:
            queue.on_response(out, answer)
        else:
            self.failed += 1
            self.failures[error] += 1
        if self.ledger is not None:
            self.ledger.write(started, out, error, self.run_id, seq, attempt)

    def _preflight(self, conn: Connection, queue: BeaconQueue, out: Outgoing) -> str | None:
        """Send the CORS preflight of `out`; None when the browser may go on, else why not.
        A browser goes on after a 2xx answer that allows the page's origin and Content-Type."""
        req = out.request
        wire = b"OPTIONS %s HTTP/1.1\r\n%s%s\r\n" % (req.url.encode(), conn.host_line, out.preflight)
        t0 = time.perf_counter()
        begin = time.time()
        error, answer = None, b""
        try:
            status, answer = conn.exchange(wire)
            head = conn.head
            if not 200 <= status < 300:
                error = f"HTTP {status}"
            elif b"\r\naccess-control-allow-origin:" not in head:
                error = "no Access-Control-Allow-Origin"
            elif not _allows_content_type(head):
                error = "Content-Type not allowed"
        except (gevent.Timeout, Exception) as exc:
            error = failure_kind(exc)
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        self._report("OPTIONS", f"{out.protocol} preflight", req.url, begin, elapsed_ms, len(answer), error)
        self.preflights += 1
        if error is not None:
            self.preflights_failed += 1
            return f"CORS preflight: {error}"
        queue.on_preflight(out, _header_value(conn.head, b"access-control-max-age"))
        return None

    def _report(
        self, method: str, name: str, url: str, began: float, elapsed_ms: float, length: int, error: str | None
    ) -> None:
        """One request in Locust's statistics (a row per name), failed when `error` says why."""
        if self.events is not None:
            self.events.request.fire(
                request_type=method,
                name=name,
                response_time=elapsed_ms,
                response_length=length,
                response=None,
                context={},
                exception=SendFailed(error) if error else None,
                start_time=began,
                url=url,
            )

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.stopped_at = time.time()
            self.cpu_stopped = time.process_time()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for in-flight sends; True when none is left."""
        deadline = time.time() + (self.timeout * (self.retries + 1) + 1 if timeout is None else timeout)
        while not all(lane.idle for lane in self.lanes):
            if time.time() >= deadline:
                return False
            gevent.sleep(0.01)
        return True

    def close(self) -> None:
        """Stop, kill what is still in flight, close connections and write the ledger."""
        self.stop()
        for lane in self.lanes:
            lane.kill()
        if self.ledger is not None:
            self.ledger.close()

    def summary(self) -> dict:
        """Figures of this process: sends, failures by kind, lateness, sessions."""
        return worker_summary(
            self.schedule.stats,
            self.lateness,
            self.late_threshold,
            self.ledger,
            sent=self.sent,
            failed=self.failed,
            failures=self.failures,
            by_label=self.by_label,
            preflights=(self.preflights, self.preflights_failed),
            # wall seconds from the schedule's start to the stop: (started + dropped) / this is
            # the arrival rate the target saw
            run_seconds=round((self.stopped_at or time.time()) - self.schedule.timebase.t0, 3),
            # CPU seconds of this process (every thread) from the first send loop to the stop
            cpu_s=round((self.cpu_stopped or time.process_time()) - self.cpu_started, 3)
            if self.cpu_started is not None
            else 0.0,
        )


def worker_summary(
    stats: ScheduleStats,
    lateness: LatenessHistogram,
    late_threshold: float,
    ledger: Ledger | None,
    *,
    sent: int = 0,
    failed: int = 0,
    failures: dict | None = None,
    by_label: dict | None = None,
    preflights: tuple[int, int] = (0, 0),
    run_seconds: float = 0.0,
    cpu_s: float = 0.0,
) -> dict:
    """One load worker's figures, as the master merges them (the defaults: a worker that sent nothing)."""
    return {
        "sent": sent,
        "failed": failed,
        "failures": dict(failures or {}),
        "by_label": dict(by_label or {}),
        "preflights": {"sent": preflights[0], "failed": preflights[1]},
        "lateness": lateness_summary(lateness, late_threshold),
        "sessions": {
            "generated": stats.sessions_generated,
            "started": stats.started_sessions,
            "dropped": stats.dropped_sessions,
        },
        "run_seconds": run_seconds,
        "skipped_beacons": stats.skipped,
        "views_suppressed": stats.views_suppressed,
        "generate_s": round(stats.generate_seconds, 3),
        "cpu_s": cpu_s,
        "ledger": None if ledger is None else {"path": str(ledger.path.resolve()), "lines": ledger.lines},
    }


def _header_value(head: bytes, name: bytes) -> str | None:
    """A header's value in a lower-cased answer head, None when absent."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip().decode("latin-1")


def _allows_content_type(head: bytes) -> bool:
    allowed = _header_value(head, b"access-control-allow-headers")
    return allowed is not None and any(h.strip() in ("content-type", "*") for h in allowed.split(","))


def lateness_summary(hist: LatenessHistogram, late_threshold: float) -> dict:
    return {
        "count": hist.count,
        "p50_ms": round(hist.quantile(0.5) * 1000, 1),
        "p99_ms": round(hist.quantile(0.99) * 1000, 1),
        "max_ms": round(hist.max * 1000, 1),
        "late": hist.over(late_threshold),
        "late_threshold_ms": late_threshold * 1000,
    }
