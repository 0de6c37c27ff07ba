"""Running the collector: the granian server, the port, the first line of output, clean shutdown.

    serve(CollectorConfig(port=0, store="events.duckdb"))   # prints http://127.0.0.1:PORT, blocks

granian (RSGI interface, one worker process: DuckDB has one writer) serves the app in
`sim.collector.app`. The port is reserved here first (with SO_REUSEPORT, which granian's
listener also sets) so `--port 0` can name the port granian will use; the URL is printed
once the worker accepts connections. On SIGINT/SIGTERM granian stops accepting, lets
in-flight requests finish, and the worker closes the store (writing every queued row)
before the process exits with status 0.
"""
from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time

from .app import CONFIG_ENV, CollectorConfig


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


def check_store(path: str) -> None:
    """Open the store once in this process, so a bad path fails here with a clear message."""
    import duckdb

    from .store import create_sql

    try:
        con = duckdb.connect(path)
        con.execute(create_sql())
        con.close()
    except (duckdb.Error, OSError) as exc:
        raise ServeError(f"--store {path}: cannot open the DuckDB store ({exc})") from None


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


def serve(config: CollectorConfig, out=sys.stdout) -> int:
    """Run until SIGINT/SIGTERM; the first line written to `out` is the collector's URL."""
    from granian import Granian
    from granian.constants import Interfaces

    check_store(config.store)
    holder = reserve_port(config.host, config.port)
    port = holder.getsockname()[1]
    config.port = port
    os.environ[CONFIG_ENV] = config.to_json()
    threading.Thread(target=_announce_when_ready, args=(holder, config.host, port, out),
                     name="announce", daemon=True).start()
    server = Granian(
        "sim.collector.app:app_from_env",
        factory=True,
        address=config.host,
        port=port,
        interface=Interfaces.RSGI,
        workers=1,               # one DuckDB writer
        websockets=False,
        log_enabled=True,
        log_level="warning",
        log_access=False,
    )
    server.serve()
    return 0
