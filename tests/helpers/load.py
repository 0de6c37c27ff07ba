"""Live load in the tests: Locust with player-sim's locustfile as a subprocess, its ledger lines, and the
policies compiled once before the first run (see the `compiled_policies` fixture in tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from helpers import MIX, ROOT
from sim.cli.demo import locust_command

LOCUSTFILE = ROOT / "locustfile.py"


def locust_cli(*args: str) -> list[str]:
    """The command line of `locust -f locustfile.py ARGS`, run by this interpreter."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args]


def web_get(url: str) -> bytes:
    """The body of a page or JSON of Locust's web UI."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def run_load(
    tmp_path: Path,
    host: str,
    *,
    seconds: float = 5,
    rate: float = 15,
    scale: float = 20,
    protocol: str = "legacy",
    processes: int = 1,
    users: int = 1,
    extra: list[str] = (),
) -> dict:
    """A headless run as `player-sim demo` starts it; returns its summary (the ledger is
    tmp_path/ledger.jsonl)."""
    cmd = locust_command(
        LOCUSTFILE,
        host,
        tmp_path / "ledger.jsonl",
        tmp_path / "summary.json",
        run_time=seconds,
        session_rate=rate,
        time_scale=scale,
        protocol=protocol,
        users=users,
        processes=processes,
        extra=list(extra),
    )
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    assert (tmp_path / "summary.json").exists(), done.stderr.decode()[-3000:]
    return orjson.loads((tmp_path / "summary.json").read_bytes())


def ledger_lines(*paths: Path) -> list[dict]:
    return [orjson.loads(line) for p in paths for line in p.read_bytes().splitlines()]


def reconcile_totals(ledger: Path | str, store: Path | str) -> dict:
    from sim.metrics.reconcile import reconcile

    return reconcile(str(ledger), str(store)).totals


def compile_policies() -> None:
    """Compiles (or loads from numba's cache) the player model and every protocol's policy, so
    Locust processes started afterwards send within a short run time."""
    import argparse

    from sim.load.plan import add_arguments, prepare_inputs

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for protocol in ("legacy", "kava", "both"):
        prepare_inputs(parser.parse_args(["--protocol", protocol, "--scenario", str(MIX)]))
