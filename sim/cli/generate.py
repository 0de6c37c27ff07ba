"""`player-sim generate`: a scenario or mix -> demo analytics data files or a replayable request file."""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from . import app, fail, fail_problems


class ProtocolChoice(str, Enum):
    legacy = "legacy"
    kava = "kava"
    both = "both"


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
    from ..generate import ENCODINGS

    if not text:
        return {}
    sent = ("legacy", "kava") if protocol == "both" else (protocol,)
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if "=" in part:
            name, _, enc = (x.strip() for x in part.partition("="))
            if name not in ENCODINGS:
                raise ValueError(f"--encoding {part}: unknown protocol {name!r} (legacy or kava)")
            if name not in sent:
                raise ValueError(f"--encoding {part}: this run sends no {name} beacons (--protocol {protocol})")
            targets = (name,)
        else:
            enc, targets = part, sent
        for name in targets:
            if enc not in ENCODINGS[name]:
                hint = " (give one per protocol: legacy=...,kava=...)" if len(targets) > 1 else ""
                raise ValueError(f"--encoding {enc!r} is not a {name} encoding; {name} takes "
                                 f"{', '.join(ENCODINGS[name])}{hint}")
            out[name] = enc
    return out


@app.command()
def generate(
    scenario: Path = typer.Argument(..., metavar="SCENARIO_OR_MIX", help="A scenario or mix YAML file."),
    sessions: Optional[int] = typer.Option(None, "--sessions", metavar="N", help="Generate N sessions (player loads)."),
    days: Optional[float] = typer.Option(None, "--days", metavar="D",
                                         help="Generate D days of the scenario's clock (its sessions_per_day)."),
    seed: int = typer.Option(1, "--seed", metavar="S", help="Same scenario, options and seed: byte-identical files."),
    protocol: ProtocolChoice = typer.Option(ProtocolChoice.legacy, "--protocol",
                                            help="Beacons of the legacy stats plugin, KAVA, or a player running both."),
    fmt: FormatChoice = typer.Option(..., "--format", help="jsonl, csv or parquet events (one row per beacon), or "
                                                             "requests: the wire requests as JSON lines, in send order "
                                                             "(browsers' CORS preflights marked)."),
    out: Path = typer.Option(..., "--out", metavar="PATH", help="Output file (a folder with --partition day)."),
    partition: Optional[PartitionChoice] = typer.Option(None, "--partition",
                                                        help="day: OUT/date=YYYY-MM-DD/part-0.EXT, hive style."),
    encoding: Optional[str] = typer.Option(None, "--encoding", metavar="ENC",
                                           help="For --format requests: legacy get|form|json, kava post|get; "
                                                "with --protocol both, e.g. legacy=form,kava=get. "
                                                "Default: what the scenario's player sends."),
) -> None:
    """Generate viewing sessions and write the analytics beacons they send, ordered by send
    time, as demo data files or a replayable request file. Files appear whole at the end of
    the run or not at all. Exit status 2 for a bad scenario or bad options."""
    from ..generate import generate as run_generate
    from ..player.script import ScriptError
    from ..population import PopulationError
    from ..scenario.loader import ScenarioError, load

    if (sessions is None) == (days is None):
        fail("generate", "give exactly one of --sessions N or --days D")
    if sessions is not None and sessions < 1:
        fail("generate", f"--sessions must be at least 1, got {sessions}")
    if days is not None and not days > 0:
        fail("generate", f"--days must be more than 0, got {days}")
    if encoding is not None and fmt is not FormatChoice.requests:
        fail("generate", "--encoding applies to --format requests only")
    try:
        encodings = parse_encodings(encoding, protocol.value)
    except ValueError as exc:
        fail("generate", str(exc))
    if out.exists() and partition is None and out.is_dir():
        fail("generate", f"--out {out}: is a folder (use --partition day to write a folder)")
    if out.exists() and partition is not None and not out.is_dir():
        fail("generate", f"--out {out}: is a file, --partition day writes a folder")

    try:
        components = load(scenario)
    except ScenarioError as exc:
        fail_problems(exc.problems)

    with _progress(sessions, days) as on_progress:
        try:
            stats = run_generate(components, seed=seed, sessions=sessions, days=days, protocol=protocol.value,
                                 fmt=fmt.value, out=out, partition=partition.value if partition else None,
                                 encoding=encodings or None, on_progress=on_progress)
        except (ScriptError, PopulationError) as exc:   # found while compiling the scenario
            fail("generate", str(exc))
        except OSError as exc:
            fail("generate", f"--out {out}: {exc.strerror or exc}")
    typer.echo(f"{out}: {stats.summary()}")


class _progress:
    """A rich progress bar (rate, ETA) on a terminal; nothing when stderr is not a TTY.

    With --sessions it counts sessions; with --days, simulated time written.
    """

    def __init__(self, sessions: int | None, days: float | None):
        self.sessions, self.days = sessions, days
        self.bar = None
        self.first_ts: float | None = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]generate"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TextColumn("{task.fields[beacons]:,} beacons, {task.fields[rate]:,.0f}/s"),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.bar.start()
        total = self.sessions if self.sessions is not None else self.days * 86400.0
        self.task = self.bar.add_task("generate", total=total, beacons=0, rate=0.0)
        return self.update

    def update(self, stats, sent_until: float) -> None:
        if self.sessions is not None:
            done = stats.sessions
        else:
            self.first_ts = sent_until if self.first_ts is None else self.first_ts
            done = sent_until - self.first_ts
        elapsed = max(self.bar.tasks[0].elapsed or 0.0, 1e-9)
        self.bar.update(self.task, completed=done, beacons=stats.beacons, rate=stats.beacons / elapsed)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
