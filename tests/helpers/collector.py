"""A real `player-sim collector` subprocess for the tests: start on port 0, read its URL, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from helpers import ROOT
from sim.cli.demo import free_port  # noqa: F401 - a free loopback port, for the tests that need one beforehand


@dataclass
class RunningCollector:
    url: str
    store: Path
    proc: subprocess.Popen

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the collector and wait for it to exit; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def rows(self, sql: str = "SELECT * FROM events", params=()) -> list[dict]:
        """Query the store (after `stop()`: DuckDB allows one writer process at a time)."""
        con = duckdb.connect(str(self.store), read_only=True)
        try:
            cur = con.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            con.close()


# Minimal GET beacons of each protocol, to send to a collector: `.format(t=eventType, i=a distinct number)`.
LEGACY_BEACON_URL = (
    "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType={t}&event:partnerId=1"
    "&event:entryId=0_x&event:sessionId=s{i}"
)
KAVA_BEACON_URL = (
    "/api_v3/index.php?service=analytics&action=trackEvent&eventType={t}&partnerId=1&entryId=1_x"
    "&sessionId=a:b&eventIndex={i}"
)


def collector_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sim.cli import main; main()", "collector", *args]


@contextmanager
def running_collector(store: Path, *args: str, startup_timeout: float = 30.0):
    """A collector on 127.0.0.1:<free port> writing to `store`; stopped (SIGTERM) on exit."""
    proc = subprocess.Popen(
        collector_command("--port", "0", "--store", str(store), *args),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(startup_timeout)
    if not first or not first[0].startswith("http://"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(f"collector did not start: first line {first!r}, stderr:\n{err}")
    running = RunningCollector(first[0].strip(), store, proc)
    try:
        yield running
    finally:
        if proc.poll() is None:
            running.stop()
        proc.stdout.close()
        proc.stderr.close()


def wait_for_figures(url: str, ready, timeout: float = 60.0) -> dict:
    """The collector's /stats.json once `ready(stats)` holds: the store takes beacons in batches and
    the figures are cached for a second, later still on a busy machine. Figures that are not there
    yet (a KeyError or IndexError in `ready`) count as not ready. After `timeout` s the last
    figures are returned, for the test's own assertions to say what is missing."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while True:
        stats = requests.get(url + "/stats.json", timeout=10).json()
        try:
            if ready(stats):
                return stats
        except (KeyError, IndexError):
            pass  # e.g. no funnel of a protocol before its first beacon is stored
        if time.monotonic() > deadline:
            return stats
        time.sleep(0.2)
