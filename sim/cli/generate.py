"""`player-sim generate`: a scenario or mix -> demo analytics data files or a replayable request file."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from sim.cli import app, check_output, fail, fail_problems, skip_teardown_at_exit, terminate_as_interrupt
from sim.protocols.choice import CHOICES, DEFAULT_CHOICE, sent as sent_protocols

# About three hours of generation on one core; a larger run is split into several runs of this size.
MAX_SESSIONS = 1_000_000_000


ProtocolChoice = Enum("ProtocolChoice", {name: name for name in CHOICES}, type=str)
DEFAULT_PROTOCOL = ProtocolChoice(DEFAULT_CHOICE)


class FormatChoice(str, Enum):
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"
    requests = "requests"


class PartitionChoice(str, Enum):
    day = "day"


def parse_encodings(text: str | None, protocol: str) -> dict[str, str]:
    """`--encoding` as {protocol: encoding}: `form`, or `legacy=form,kava=get` for both protocols.

    Raises ValueError naming the bad part.
    """
    from sim.protocols.registry import PROTOCOLS

    if not text:
        return {}
    sent = sent_protocols(protocol)
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if "=" in part:
            name, _, enc = (x.strip() for x in part.partition("="))
            if name not in PROTOCOLS:
                raise ValueError(f"--encoding {part}: unknown protocol {name!r} ({' or '.join(PROTOCOLS)})")
            if name not in sent:
                raise ValueError(f"--encoding {part}: this run sends no {name} beacons (--protocol {protocol})")
            targets = (name,)
        else:
            enc, targets = part, sent
        for name in targets:
            if enc not in PROTOCOLS[name].encodings:
                hint = " (give one per protocol: legacy=...,kava=...)" if len(targets) > 1 else ""
                raise ValueError(
                    f"--encoding {enc!r} is not a {name} encoding; {name} takes "
                    f"{', '.join(PROTOCOLS[name].encodings)}{hint}"
                )
            out[name] = enc
    return out


@app.command(short_help="Write the beacons of simulated sessions as data files or a request file")
def generate(
    scenario: Path = typer.Argument(..., metavar="SCENARIO_OR_MIX", help="A scenario or mix YAML file."),
    sessions: Optional[int] = typer.Option(None, "--sessions", metavar="N", help="Generate N sessions (player loads)."),
    days: Optional[float] = typer.Option(
        None, "--days", metavar="D", help="Generate D days of the scenario's clock (its sessions_per_day)."
    ),
    seed: int = typer.Option(1, "--seed", metavar="S", help="Same scenario, options and seed: byte-identical files."),
    protocol: ProtocolChoice = typer.Option(
        DEFAULT_PROTOCOL, "--protocol", help="Beacons of the legacy stats plugin, KAVA, or a player running both."
    ),
    fmt: FormatChoice = typer.Option(
        ...,
        "--format",
        help="jsonl, csv or parquet events (one row per beacon), or "
        "requests: the wire requests as JSON lines, in send order "
        "(browsers' CORS preflights marked).",
    ),
    out_arg: str = typer.Option(
        ...,
        "--out",
        metavar="PATH",
        help="Output file (a folder with --partition day); or a URI such as s3://bucket/key.",
    ),
    partition: Optional[PartitionChoice] = typer.Option(
        None, "--partition", help="day: OUT/date=YYYY-MM-DD/part-0.EXT, hive style."
    ),
    encoding: Optional[str] = typer.Option(
        None,
        "--encoding",
        metavar="ENC",
        help="For --format requests: legacy get|form|json, kava post|get; "
        "with --protocol both, e.g. legacy=form,kava=get. "
        "Default: what the scenario's player sends.",
    ),
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        metavar="N",
        show_default="this machine's cores",
        help="Processes drawing and writing parts of the run at once. The bytes do not depend on N.",
    ),
    scheduler: Optional[str] = typer.Option(
        None,
        "--scheduler",
        metavar="tcp://HOST:PORT",
        # Rich would read [dask] as markup and drop it
        help="Make the parts as tasks on this Dask cluster (pip install "
        "'player-sim\\[dask]'); --out must be a path every worker reaches.",
    ),
) -> None:
    """Write the beacons of simulated sessions as data files or a request file.

    The analytics beacons the sessions send are written in send order, as demo data files or a
    replayable request file. Files appear whole at the end of the run or not at all (Ctrl-C and
    SIGTERM leave nothing behind). Exit status 2 for a bad scenario or bad options."""
    from sim.generate import generate as run_generate
    from sim.population import PopulationError
    from sim.scenario.loader import ScenarioError, load
    from sim.scenario.model import MAX_DAYS
    from sim.scenario.script import ScriptError
    from sim.workers import ClusterError, default_workers, is_uri

    if (sessions is None) == (days is None):
        fail("generate", "give exactly one of --sessions N or --days D")
    if sessions is not None and not 1 <= sessions <= MAX_SESSIONS:
        fail("generate", f"--sessions must be between 1 and {MAX_SESSIONS:,}, got {sessions:,}")
    if days is not None and not 0 < days <= MAX_DAYS:
        fail("generate", f"--days must be more than 0 and at most {MAX_DAYS}, got {days:g}")
    if encoding is not None and fmt is not FormatChoice.requests:
        fail("generate", "--encoding applies to --format requests only")
    try:
        encodings = parse_encodings(encoding, protocol.value)
    except ValueError as exc:
        fail("generate", str(exc))
    if workers is not None and workers < 1:
        fail("generate", f"--workers must be at least 1, got {workers}")
    if scheduler is not None and workers is not None:
        fail("generate", "give --workers or --scheduler, not both (a cluster's workers are its own)")
    if scheduler is not None and not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        fail("generate", f"--scheduler {scheduler}: give the scheduler's address, e.g. tcp://10.0.0.5:8786")
    if is_uri(out_arg) and scheduler is not None:
        fail("generate", f"--out {out_arg}: with --scheduler give a path every worker reaches (a shared folder)")
    out = out_arg if is_uri(out_arg) else Path(out_arg)
    if not is_uri(out) and out.exists() and partition is None and out.is_dir():
        fail("generate", f"--out {out}: is a folder (use --partition day to write a folder)")
    if not is_uri(out) and out.exists() and partition is not None and not out.is_dir():
        fail("generate", f"--out {out}: is a file, --partition day writes a folder")
    check_output("generate", "--out", out, folder=partition is not None)

    try:
        components = load(scenario)
    except ScenarioError as exc:
        fail_problems(exc.problems)
    if days is not None:
        planned = days * sum(c.weight * c.scenario.clock.sessions_per_day for c in components)
        if planned > MAX_SESSIONS:
            fail(
                "generate",
                f"--days {days:g} at the scenario's sessions_per_day is {planned:,.0f} sessions, "
                f"more than {MAX_SESSIONS:,}; give fewer days",
            )

    terminate_as_interrupt()

    import pyarrow as pa

    # A run is one process per core (--workers): Arrow's thread pools would only contend with them.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with _progress() as on_progress:
        try:
            stats = run_generate(
                components,
                seed=seed,
                sessions=sessions,
                days=days,
                protocol=protocol.value,
                fmt=fmt.value,
                out=out,
                partition=partition.value if partition else None,
                encoding=encodings or None,
                on_progress=on_progress,
                workers=workers or default_workers(),
                scheduler=scheduler,
            )
        except (ScriptError, PopulationError) as exc:  # found while compiling the scenario
            fail("generate", str(exc))
        except OSError as exc:
            fail("generate", f"--out {out}: {exc.strerror or exc}")
        except ClusterError as exc:
            fail("generate", f"--scheduler {scheduler}: {exc}")
        except pa.ArrowException as exc:  # a URI pyarrow cannot open or write
            if not is_uri(out):
                raise
            fail("generate", f"--out {out}: {exc}")
    typer.echo(f"{out}: {stats.summary()}")
    skip_teardown_at_exit()


class _progress:
    """A rich progress bar (sessions made of the run's, beacons written, rate, ETA) on a
    terminal; nothing when stderr is not a TTY. Parts made elsewhere count when they end."""

    def __init__(self):
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]generate"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[beacons]:,} beacons, {task.fields[rate]:,.0f}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("generate", total=None, beacons=0, rate=0.0)
        return self.update

    def update(self, stats, sent_until) -> None:
        elapsed = max(self.bar.tasks[0].elapsed or 0.0, 1e-9)
        self.bar.update(
            self.task,
            total=stats.total_sessions or None,
            completed=stats.sessions,
            beacons=stats.beacons,
            rate=stats.beacons / elapsed,
        )

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
