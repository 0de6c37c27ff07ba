"""A collector worker process: the HTTP layer and the request handling on one event loop.

    python -m sim.collector.worker        # started by sim.collector.server, never by hand

`server.serve` starts `--workers N` of these. Each inherits a listening socket of its own on the
collector's port (descriptor in PLAYER_SIM_COLLECTOR_LISTEN_FD), and reads its configuration from
PLAYER_SIM_COLLECTOR_CONFIG. It writes one byte to the descriptor in PLAYER_SIM_COLLECTOR_READY_FD
once it accepts connections. SIGTERM or SIGINT: stop accepting, answer every request already read
(each once its row is committed), close the store link, exit 0. It dies with the main process.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
import threading
import time

from sim.collector.app import CONFIG_ENV, CollectorConfig, WorkerApp
from sim.collector.http1 import HttpServer, Limits

LISTEN_FD_ENV = "PLAYER_SIM_COLLECTOR_LISTEN_FD"
READY_FD_ENV = "PLAYER_SIM_COLLECTOR_READY_FD"
BACKLOG_ENV = "PLAYER_SIM_COLLECTOR_BACKLOG"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed: its callbacks, timers and socket reads cost a worker a third less CPU a
    request than asyncio's own loop (see bench/bench_collector.py)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _serve(config: CollectorConfig, listener: socket.socket, backlog: int, ready_fd: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = WorkerApp(config, loop)
    limits = Limits(
        max_body=config.max_body,
        max_head=max(64 * 1024, config.max_body),  # a GET's query may carry what a POST body does
        idle_timeout=config.idle_timeout_s,
        body_timeout=config.body_timeout_s,
    )
    server = HttpServer(app, limits, loop)
    await server.start(listener, backlog)
    quiet_garbage_collector()
    os.write(ready_fd, b"R")
    os.close(ready_fd)
    await stop.wait()
    await server.shutdown()
    await app.close()


def main() -> int:
    die_with_parent()
    config = CollectorConfig.from_json(os.environ[CONFIG_ENV])
    listener = socket.socket(fileno=int(os.environ[LISTEN_FD_ENV]))
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(config, listener, int(os.environ[BACKLOG_ENV]), int(os.environ[READY_FD_ENV])))
    finally:
        loop.close()
    return 0


def quiet_garbage_collector() -> None:
    """Fewer cyclic collections in a worker: a request allocates dozens of dicts and tuples, freed by
    reference counting, yet with the default threshold (700) a young-generation pass ran every few
    requests, each walking every in-flight request's objects, and the older passes the whole heap
    (about 3 % of a worker's CPU in a profile under load). Objects alive at start (modules, the
    store's tables) are frozen out of every pass."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def die_with_parent() -> None:
    """A worker process dies with the collector's main process (kill -9 included), so no orphan keeps
    answering, holding the port: Linux's PR_SET_PDEATHSIG, and a check that the parent is still there."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent or parent == 1:  # the parent died before the call took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
