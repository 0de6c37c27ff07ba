"""Running the collector: the port, the worker processes, the first line of output, clean shutdown.

    serve(CollectorConfig(port=0, store="events.duckdb"))   # prints http://127.0.0.1:PORT, blocks

This process holds the store and commits the workers' batches (`sim.collector.writer`): DuckDB has
one writer. It opens the listening sockets and starts `--workers N` processes
(`sim.collector.worker`) that serve HTTP (`sim.collector.http1`), each on a listening socket of its
own on the port (SO_REUSEPORT); the URL is printed once every worker accepts connections. Workers
die with this process (kill -9 included). On SIGINT/SIGTERM the workers stop accepting and answer
the requests they have read (each once its row is committed), then this process checkpoints and
closes the store and exits with status 0. A worker that dies on its own stops the collector with a
message and status 1.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from sim.collector.app import CONFIG_ENV, CollectorConfig
from sim.collector.worker import BACKLOG_ENV, LISTEN_FD_ENV, READY_FD_ENV

WORKER_START_TIMEOUT_S = 120.0  # a worker imports the request path (compiled or not) and attaches to the store


class ServeError(RuntimeError):
    """The collector cannot start (port taken, store unusable); the message says which."""


def listen_on(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` listening sockets sharing the port (SO_REUSEPORT), one a worker (port 0: a free one).

    One socket each rather than one for all: the kernel spreads new connections over the sockets
    evenly, where workers accepting from one queue let the first to wake take all of a burst (wrk's
    128 connections all went to one of two workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port != 0:  # a bind without SO_REUSEPORT fails on a port anyone holds (another collector included)
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise ServeError(f"--port {port}: {host}:{port} {reason}") from None
        finally:
            probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.set_inheritable(True)
            port = sock.getsockname()[1]  # port 0: the rest join the port the first was given
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ServeError(f"--host {host} --port {port}: cannot bind ({exc.strerror})") from None
    return sockets


def _raise_open_files() -> int:
    """Thousands of idle or slow clients each hold a descriptor: take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


def serve(config: CollectorConfig, out=sys.stdout) -> int:
    """Run until SIGINT/SIGTERM; the first line written to `out` is the collector's URL."""
    runtime = tempfile.mkdtemp(prefix="player-sim-collector-")
    # every process's metric values go here, added up by a scrape of /metrics (prometheus-client)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(runtime, "metrics")
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    config.socket = os.path.join(runtime, "store.sock")
    try:
        return _serve(config, out)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _serve(config: CollectorConfig, out) -> int:
    from sim.collector.store import StoreError
    from sim.collector.writer import StoreWriter

    try:
        writer = StoreWriter(config.store, config.socket)
    except StoreError as exc:
        raise ServeError(f"--store {exc}") from None
    files = _raise_open_files()
    backlog = max(1024, min(files - 256, 65535))
    try:
        listeners = listen_on(config.host, config.port, config.workers, backlog)
    except ServeError:
        writer.close()
        raise
    config.port = listeners[0].getsockname()[1]
    url = f"http://{config.host}:{config.port}"
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers: list[subprocess.Popen] = []
    try:
        writer.start(url)
        workers = _start_workers(config, listeners, backlog)
        for listener in listeners:  # each worker's is its own now: it stops listening when the worker stops
            listener.close()
        if not stop.is_set():
            print(url, file=out, flush=True)
        status = _watch(workers, stop)
    finally:
        for listener in listeners:
            listener.close()
        _stop_workers(workers)
        writer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _start_workers(config: CollectorConfig, listeners: list[socket.socket], backlog: int) -> list[subprocess.Popen]:
    """A worker process for each listening socket, once each accepts connections."""
    ready_read, ready_write = os.pipe()
    env = {**os.environ, CONFIG_ENV: config.to_json(), READY_FD_ENV: str(ready_write), BACKLOG_ENV: str(backlog)}
    workers = []
    try:
        for listener in listeners:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "sim.collector.worker"],
                    env={**env, LISTEN_FD_ENV: str(listener.fileno())},
                    pass_fds=(listener.fileno(), ready_write),
                    stdin=subprocess.DEVNULL,
                    stdout=sys.stderr.fileno(),  # the first line of this process's output is the URL
                )
            )
        os.close(ready_write)
        ready_write = -1
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        ready = 0
        while ready < len(workers):
            failed = [w for w in workers if w.poll() is not None]
            if failed:  # one worker gone while the others start: said at once, not at the deadline
                status = failed[0].returncode
                raise ServeError(f"a collector worker exited with status {status} (see the messages above)")
            if time.monotonic() > deadline:
                raise ServeError(f"the collector's workers did not start within {WORKER_START_TIMEOUT_S:g} s")
            if select.select([ready_read], [], [], 0.2)[0]:
                chunk = os.read(ready_read, 64)
                if not chunk:  # every write end closed: the workers that are not ready have exited
                    time.sleep(0.05)
                ready += len(chunk)
    except BaseException:
        _stop_workers(workers)
        raise
    finally:
        os.close(ready_read)
        if ready_write >= 0:
            os.close(ready_write)
    return workers


def _watch(workers: list[subprocess.Popen], stop: threading.Event) -> int:
    """Wait for SIGINT/SIGTERM (status 0) or a worker that exits on its own (status 1)."""
    while not stop.wait(0.2):
        for index, worker in enumerate(workers):
            if worker.poll() is not None:
                print(
                    f"[ERROR] collector: worker {index + 1} of {len(workers)} exited with status "
                    f"{worker.returncode}; stopping",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    return 0


def _stop_workers(workers: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """SIGTERM to every worker, then wait: each answers what it has read before it exits."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for worker in workers:
        try:
            worker.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
