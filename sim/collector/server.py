"""Running the collector: the granian server, the port, the first line of output, clean shutdown.

    serve(CollectorConfig(port=0, store="events.duckdb"))   # prints http://127.0.0.1:PORT, blocks

granian (RSGI interface, `--workers N` processes) serves the app in `sim.collector.app`; this
process holds the store and commits the workers' batches (`sim.collector.writer`): DuckDB has one
writer. Workers die with this process (kill -9 included). The port is reserved here first (with
SO_REUSEPORT, which granian's listener also sets) so `--port 0` can name the port granian will use;
the URL is printed once the worker accepts connections. On SIGINT/SIGTERM granian stops accepting,
lets in-flight requests finish (each answered once its row is committed), and this process
checkpoints and closes the store before it exits with status 0.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time

from sim.collector.app import CONFIG_ENV, CollectorConfig


class ServeError(RuntimeError):
    """The collector cannot start (port taken, store unusable); the message says which."""


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) socket holding the port until granian's listener shares it."""
    if port != 0:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise ServeError(f"--port {port}: {host}:{port} {reason}") from None
        finally:
            probe.close()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise ServeError(f"--host {host} --port {port}: cannot bind ({exc.strerror})") from None
    return holder


def _announce_when_ready(holder: socket.socket, host: str, port: int, out, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    holder.close()
    print(f"http://{host}:{port}", file=out, flush=True)


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


def _event_loop() -> str:
    """uvloop when installed: its call_soon, futures and socket reads cost a worker about a third less
    CPU per request than asyncio's own loop (see bench/bench_collector.py)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


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
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    from sim.collector.store import StoreError
    from sim.collector.writer import StoreWriter

    try:
        writer = StoreWriter(config.store, config.socket)
    except StoreError as exc:
        raise ServeError(f"--store {exc}") from None
    try:
        holder = reserve_port(config.host, config.port)
    except ServeError:
        writer.close()
        raise
    port = holder.getsockname()[1]
    config.port = port
    writer.start(f"http://{config.host}:{port}")
    os.environ[CONFIG_ENV] = config.to_json()
    files = _raise_open_files()
    threading.Thread(
        target=_announce_when_ready, args=(holder, config.host, port, out), name="announce", daemon=True
    ).start()
    # Workers start afresh (spawn), not as copies of this process, which holds the open store.
    multiprocessing.set_start_method("spawn", force=True)
    connections = max(1024, min(files - 256, 65536))
    server = Granian(
        "sim.collector.app:app_from_env",
        factory=True,
        address=config.host,
        port=port,
        interface=Interfaces.RSGI,
        loop=_event_loop(),
        workers=config.workers,
        websockets=False,
        backlog=min(connections, 65535),
        backpressure=max(1, connections // config.workers),  # connections a worker serves at once
        # an idle keep-alive connection or a slow request head is closed after this
        http1_settings=HTTP1Settings(header_read_timeout=int(config.idle_timeout_s * 1000)),
        log_enabled=True,
        log_level="warning",
        log_access=False,
    )
    try:
        server.serve()
    finally:
        writer.close()
    return 0
