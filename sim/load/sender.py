"""Sending due beacons: keep-alive pools, many requests in flight, lateness, failures, ledger.

A `Sender` is shared by the few Locust users of one process; each user calls
`sender.run()` which loops: top up the schedule, take what is due, render it and hand it to
that user's send greenlets over its keep-alive connections. A slow target keeps them busy, later
sends then go out late and are counted as late; the schedule itself never moves (no
coordinated omission). Every send fires Locust's `request` event (one statistics row per
beacon type) and, with a ledger, becomes one JSON line.

    sender = Sender(schedule, "http://127.0.0.1:8080", events=env.events, ledger=Ledger(path))
    gevent.spawn(sender.run)      # in each Locust user's task
    ...
    sender.drain(); sender.close()
"""
from __future__ import annotations

import errno
import os
import socket
import time
from collections import Counter
from pathlib import Path

import gevent
import gevent.lock
import gevent.queue
import numpy as np
import orjson
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from .schedule import BeaconQueue, Outgoing, Schedule


class SendFailed(Exception):
    """A failed send, named by kind ("HTTP 503", "connection refused", "timeout" ...)."""


def failure_kind(exc: BaseException) -> str:
    """A short stable name for what went wrong on the wire."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, (TimeoutError, socket.timeout, gevent.Timeout)):
        return "timeout"
    if isinstance(exc, HTTPConnectionClosed | ConnectionResetError | BrokenPipeError) or \
            getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
        return "connection reset"
    if isinstance(exc, HTTPParseError):
        # the connection ended before the answer was whole: a reset as the target meant it
        return "connection reset" if "incomplete" in str(exc).lower() else "bad response"
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
        return int(self.counts[int(round(threshold_s * 1000.0)):].sum())

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
    """Every send as one JSON line `{ts, method, url, headers, body, protocol, key}` (plus
    `failed`, `error`), written to a temporary file beside `path` and renamed into place by
    `close()`: the ledger is whole or absent."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.file = open(self.tmp, "wb", buffering=1 << 20)
        self.lines = 0

    def write(self, ts: float, out: Outgoing, error: str | None) -> None:
        req = out.request
        body = req.body
        line = {"ts": ts, "method": req.method, "url": req.url, "headers": req.headers,
                "body": body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else body,
                "protocol": out.protocol, "key": out.key}
        if error is not None:
            line["failed"] = True
            line["error"] = error
        self.file.write(orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE))
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


def worker_ledger_path(path: str, worker_index: int | None) -> str:
    """The ledger path of one worker in a distributed run (`ledger.jsonl` -> `ledger.w1.jsonl`)."""
    if worker_index is None:
        return path
    p = Path(path)
    suffix = "".join(p.suffixes) or ""
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    return str(p.with_name(f"{stem}.w{worker_index}{suffix}"))


class SendLane:
    """One user's keep-alive pool and `concurrency` long-lived send greenlets fed through a
    queue: a greenlet per send would cost ~40 us of spawning and scheduling each."""

    def __init__(self, sender: "Sender", client: HTTPClient, concurrency: int):
        self.sender, self.client, self.concurrency = sender, client, concurrency
        self.slots = gevent.lock.Semaphore(concurrency)   # a slot is a send greenlet free or freeing
        self.queue = gevent.queue.Queue()
        self.workers = [gevent.spawn(self._work) for _ in range(concurrency)]

    def _work(self) -> None:
        send, get, release = self.sender._send, self.queue.get, self.slots.release
        client = self.client
        while True:
            queue, out, sched_t = get()
            try:
                send(client, queue, out, sched_t)
            finally:
                release()

    @property
    def idle(self) -> bool:
        return self.slots.counter >= self.concurrency and not self.queue.qsize()

    def kill(self) -> None:
        gevent.killall(self.workers)


class Sender:
    """Takes due beacons from a `Schedule` and sends them; see the module docstring."""

    def __init__(self, schedule: Schedule, host: str, *, events=None, ledger: Ledger | None = None,
                 concurrency: int = 64, retries: int = 0, timeout: float = 10.0,
                 late_threshold: float = 0.25, tick: float = 0.005):
        self.schedule, self.host, self.events, self.ledger = schedule, host.rstrip("/"), events, ledger
        self.concurrency, self.retries, self.timeout = concurrency, retries, timeout
        self.late_threshold, self.tick = late_threshold, tick
        self.lateness = LatenessHistogram()
        self.lateness_by: dict[int, LatenessHistogram] = {}   # per scenario index
        self.sent = 0          # sends completed (success or failure)
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.by_label: Counter[str] = Counter()
        self.lanes: list[SendLane] = []
        self.clients: list[HTTPClient] = []
        self.busy = 0          # batches being rendered: rows must keep their numbers meanwhile
        self.generating = None  # the next chunk being prepared in a thread (AsyncResult)
        self.stopped = False
        self.stopped_at: float | None = None

    def new_client(self) -> HTTPClient:
        client = HTTPClient.from_url(self.host, concurrency=self.concurrency,
                                     connection_timeout=self.timeout, network_timeout=self.timeout)
        self.clients.append(client)
        return client

    def run(self) -> None:
        """The send loop of one Locust user (returns when `stop()` is called or killed)."""
        lane = SendLane(self, self.new_client(), self.concurrency)
        self.lanes.append(lane)
        acquire, put = lane.slots.acquire, lane.queue.put
        schedule = self.schedule
        while not self.stopped:
            now = time.time()
            self._top_up(now)
            due = schedule.pop_due(now)
            if due:
                self.busy += 1
                try:
                    for sched_t, queue, row in due:
                        acquire()     # render only once a send greenlet is free (fresh player state)
                        try:
                            out = queue.render(row, time.time() - sched_t)
                        except BaseException:
                            lane.slots.release()
                            raise
                        if out is not None:
                            put((queue, out, sched_t))
                        else:
                            lane.slots.release()
                finally:
                    self.busy -= 1
                gevent.sleep(0)
                continue
            if self.busy == 0:
                schedule.compact()
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

    def _send(self, client: HTTPClient, queue: BeaconQueue, out: Outgoing, sched_t: float) -> None:
        req = out.request
        started = time.time()
        late = started - sched_t
        self.lateness.add(late)
        by = self.lateness_by.get(out.scenario)
        if by is None:
            by = self.lateness_by[out.scenario] = LatenessHistogram()
        by.add(late)
        attempt = 0
        while True:
            attempt += 1
            t0 = time.perf_counter()
            begin = time.time()
            error, body = None, b""
            try:
                response = client.request(req.method, req.url, body=req.body or b"", headers=req.headers)
                try:
                    body = response.read()
                finally:
                    response.release()
                if response.status_code >= 400:
                    error = f"HTTP {response.status_code}"
            except (gevent.Timeout, Exception) as exc:  # every wire fault is a counted failure
                error = failure_kind(exc)
            elapsed_ms = (time.perf_counter() - t0) * 1000.0
            if self.events is not None:
                self.events.request.fire(
                    request_type=req.method, name=out.label, response_time=elapsed_ms,
                    response_length=len(body), response=None, context={},
                    exception=SendFailed(error) if error else None, start_time=begin, url=req.url)
            if error is None or attempt > self.retries:
                break
        self.sent += 1
        self.by_label[out.label] += 1
        if error is None:
            queue.on_response(out, body)
        else:
            self.failed += 1
            self.failures[error] += 1
        if self.ledger is not None:
            self.ledger.write(started, out, error)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.stopped_at = time.time()

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
        for client in self.clients:
            client.close()
        if self.ledger is not None:
            self.ledger.close()

    def summary(self) -> dict:
        """Figures of this process: sends, failures by kind, lateness, sessions."""
        s = self.schedule.stats
        return {
            "sent": self.sent, "failed": self.failed, "failures": dict(self.failures),
            "by_label": dict(self.by_label),
            "lateness": lateness_summary(self.lateness, self.late_threshold),
            "sessions": {"generated": s.sessions_generated, "started": s.started_sessions,
                         "dropped": s.dropped_sessions},
            # wall seconds from the schedule's start to the stop: (started + dropped) / this is
            # the arrival rate the target saw
            "run_seconds": round((self.stopped_at or time.time()) - self.schedule.timebase.t0, 3),
            "skipped_beacons": s.skipped, "views_suppressed": s.views_suppressed,
            "generate_s": round(s.generate_seconds, 3),
        }


def lateness_summary(hist: LatenessHistogram, late_threshold: float) -> dict:
    return {"count": hist.count, "p50_ms": round(hist.quantile(0.5) * 1000, 1),
            "p99_ms": round(hist.quantile(0.99) * 1000, 1), "max_ms": round(hist.max * 1000, 1),
            "late": hist.over(late_threshold), "late_threshold_ms": late_threshold * 1000}
