"""`player-sim demo`: the whole pipeline in about a minute, nothing to configure.

Starts the reference collector on a free port with a fresh store, runs a short headless
Locust load of the bundled default mix against it (KAVA unless --protocol says, time-scaled), stops the
collector cleanly (SIGTERM, then waits), and prints `player-sim report STORE` and
`player-sim reconcile LEDGER --store STORE`. Exit status 0 only when nothing was lost.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime
from enum import Enum
from pathlib import Path

import typer

from sim.cli import app, fail
from sim.protocols.choice import CHOICES, DEFAULT_CHOICE

PLAYER_SIM = [sys.executable, "-c", "from sim.cli import main; main()"]
LOCUSTFILE = '''"""player-sim live load (written by `player-sim demo`)."""
from sim.load.locust_glue import BeaconSenderUser, install

install()
'''


DemoProtocol = Enum("DemoProtocol", {name: name for name in CHOICES}, type=str)
DEFAULT_PROTOCOL = DemoProtocol(DEFAULT_CHOICE)


class DemoError(Exception):
    """A step of the demo failed; the message says which."""


def _say(text: str) -> None:
    typer.secho(f"==> {text}", fg=typer.colors.CYAN, err=True)


def start_collector(
    store: Path, log_path: Path, extra: list[str] = (), timeout: float = 60.0
) -> tuple[subprocess.Popen, str]:
    """A collector on a free loopback port; returns the process and its URL (its first line)."""
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [*PLAYER_SIM, "collector", "--port", "0", "--store", str(store), *extra], stdout=subprocess.PIPE, stderr=log
    )
    url: list[str] = []
    got_line = threading.Event()

    def first_line():
        url.append(proc.stdout.readline().decode().strip())
        got_line.set()
        # keep draining so the collector never blocks on a full pipe
        for rest in proc.stdout:
            log.write(rest)

    threading.Thread(target=first_line, daemon=True).start()
    got_line.wait(timeout)
    if not url or not url[0].startswith("http"):
        stop_process(proc)
        detail = log_path.read_text(errors="replace").strip().splitlines()[-3:] if log_path.exists() else []
        raise DemoError("the collector did not start" + (": " + " / ".join(detail) if detail else ""))
    return proc, url[0]


def stop_process(proc: subprocess.Popen, timeout: float = 60.0) -> int:
    """SIGTERM, wait for a clean exit, kill only if it does not come."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def locust_command(
    locustfile: Path,
    host: str,
    ledger: Path,
    summary: Path,
    *,
    run_time: float,
    session_rate: float,
    time_scale: float,
    protocol: str,
    users: int = 2,
    processes: int = 1,
    extra: list[str] = (),
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{run_time:g}s",
        "--host",
        host,
        "--protocol",
        protocol,
        "--workload",
        "open",
        "--session-rate",
        f"{session_rate:g}",
        "--time-scale",
        f"{time_scale:g}",
        "--ledger",
        str(ledger),
        "--summary-json",
        str(summary),
    ]
    if processes > 1:
        # A free master port rather than Locust's fixed 5557, so runs side by side never meet.
        port = str(free_port())
        cmd += ["--processes", str(processes), "--master-bind-port", port, "--master-port", port]
    return cmd + list(extra)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_errors(log: Path, lines: int = 3) -> str:
    """The last error lines of a Locust log (what went wrong), joined for a one-line message."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    found = [ln.split("/ERROR/", 1)[-1].strip() for ln in text if "/ERROR/" in ln or ln.startswith("locust: error")]
    return " / ".join(found[-lines:])


def summary_text(s: dict) -> str:
    """A load run's --summary-json in one readable line."""
    lat, sessions = s.get("lateness", {}), s.get("sessions", {})
    seconds = s.get("run_seconds") or 0
    rate = f" ({s['sent'] / seconds:,.0f}/s)" if seconds else ""
    failures = ", ".join(f"{k} x{v}" for k, v in sorted(s.get("failures", {}).items()))
    return (
        f"{s.get('sent', 0):,} beacons sent in {seconds:,.0f} s{rate}, {s.get('failed', 0):,} failed"
        + (f" ({failures})" if failures else "")
        + f"; sessions {sessions.get('started', 0):,} started, {sessions.get('dropped', 0):,} dropped; lateness "
        f"p50 {lat.get('p50_ms', 0):g} ms, p99 {lat.get('p99_ms', 0):g} ms, max {lat.get('max_ms', 0):g} ms"
    )


def _locustfile(out: Path) -> Path:
    bundled = Path(__file__).resolve().parents[2] / "locustfile.py"
    if bundled.exists():
        return bundled
    path = out / "locustfile.py"
    path.write_text(LOCUSTFILE)
    return path


@app.command(short_help="Run the whole pipeline once: collector, load, report, reconciliation")
def demo(
    out: str = typer.Option("", help="Folder for the store, ledger and logs (default: a new out/demo-<time>)."),
    seconds: float = typer.Option(45.0, min=5.0, help="Length of the load, wall seconds."),
    session_rate: float = typer.Option(8.0, min=0.1, help="Sessions starting per wall second."),
    time_scale: float = typer.Option(10.0, min=1.0, help="How much faster than real time the viewers watch."),
    protocol: DemoProtocol = typer.Option(DEFAULT_PROTOCOL, help="Which analytics protocol the players speak."),
) -> None:
    """Run the whole pipeline once: collector, load, report, reconciliation.

    A collector with a fresh store, a minute of time-scaled load of the default mix, the report
    and the reconciliation, each stage announced as it starts. Exit status 0 only when nothing
    was lost."""
    protocol = protocol.value
    folder = Path(out) if out else Path("out") / datetime.now().strftime("demo-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    store, ledger, summary = folder / "collector.duckdb", folder / "ledger.jsonl", folder / "load-summary.json"
    if store.exists():
        fail("demo", f"{store} already exists; give a fresh --out folder")
    collector = None
    try:
        _say(f"collector: starting with a fresh store {store}")
        collector, url = start_collector(store, folder / "collector.log")
        _say(f"collector: listening on {url}")
        _say(
            f"load: {seconds:g} s of the default mix ({protocol}), {session_rate:g} sessions/s, "
            f"{time_scale:g}x real time"
        )
        cmd = locust_command(
            _locustfile(folder),
            url,
            ledger,
            summary,
            run_time=seconds,
            session_rate=session_rate,
            time_scale=time_scale,
            protocol=protocol,
        )
        with open(folder / "locust.log", "wb") as log:
            locust = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if not ledger.exists():
            why = log_errors(folder / "locust.log")
            raise DemoError(
                f"the load run wrote no ledger (exit {locust.returncode})"
                + (f": {why}" if why else "")
                + f"; the whole log is {folder / 'locust.log'}"
            )
        if summary.exists():
            _say("load: " + summary_text(json.loads(summary.read_text())))
    except DemoError as exc:
        fail("demo", str(exc), code=1)
    finally:
        if collector is not None:
            _say("collector: stopping (SIGTERM)")
            code = stop_process(collector)
            if code not in (0, -signal.SIGTERM):
                typer.echo(
                    f"player-sim demo: the collector exited with status {code}; see {folder / 'collector.log'}",
                    err=True,
                )
    _say(f"player-sim report {store}")
    subprocess.run([*PLAYER_SIM, "report", str(store)])
    _say(f"player-sim reconcile {ledger} --store {store}")
    reconciled = subprocess.run([*PLAYER_SIM, "reconcile", str(ledger), "--store", str(store)])
    if reconciled.returncode != 0:
        fail("demo", "the reconciliation found lost or duplicated beacons", code=1)
    _say(f"done: everything sent arrived. Files in {folder}")
