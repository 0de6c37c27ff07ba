"""`player-sim report SOURCE`: the Analytics-tab figures of a store or event files, as a table, JSON or HTML."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer
from rich.console import Console

from sim.cli import app, check_output, fail
from sim.protocols.choice import NAMES


def _working(what: str):
    """A spinner with the elapsed time on a terminal's stderr while a long step runs (millions of
    beacons take seconds); nothing when stderr is not a terminal, so piped output stays clean."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    return Console(stderr=True).status(f"{what} ...", spinner="dots")


ProtocolChoice = Enum("ProtocolChoice", {name: name for name in NAMES}, type=str)


@app.command(short_help="Compute the Analytics-tab figures of a store or event files")
def report(
    source: str = typer.Argument(
        ...,
        metavar="SOURCE",
        help="A collector store (.duckdb), an event file (.parquet, .jsonl, .csv), "
        "a folder of them (hive partitions welcome) or a quoted glob.",
    ),
    html: Optional[str] = typer.Option(
        None, "--html", metavar="PATH", help="Also write a self-contained HTML report with charts (works offline)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout instead of the table."),
    protocol: Optional[ProtocolChoice] = typer.Option(
        None, "--protocol", help="Only this protocol (default: every protocol present, side by side)."
    ),
    by: Optional[list[str]] = typer.Option(
        None,
        "--by",
        help="Breakdown to compute (entry, device, os, browser, country, hour, day); repeat for several; default all.",
    ),
    top: int = typer.Option(10, "--top", min=1, help="Rows kept per breakdown (top entries, devices ...)."),
    tz_offset: int = typer.Option(
        0, "--tz-offset", metavar="MINUTES", help="Minutes east of UTC for the hour and day breakdowns."
    ),
) -> None:
    """Compute the Analytics-tab figures of a store or event files.

    The figures Kaltura's Analytics tab would show (plays, play rate, quartiles, minutes viewed,
    unique viewers, EBVS, buffer ratio ...), with the truth beside them when the events carry
    ground-truth columns. Exit status 2 when SOURCE cannot be read."""
    import duckdb  # here, not at the top: every command's start-up would pay for it

    from sim.metrics import SourceError, compute
    from sim.metrics.html import write_html
    from sim.metrics.report import headline_table

    if html:
        check_output("report", "--html", html)
    try:
        with _working(f"computing the figures of {source}"):
            metrics = compute(
                source, protocol=protocol.value if protocol else None, by=by, top=top, tz_offset_min=tz_offset
            )
    except (SourceError, ValueError) as exc:
        fail("report", str(exc))
    except duckdb.Error as exc:
        fail("report", f"{source}: cannot compute metrics ({str(exc).splitlines()[0]})")
    if html:
        try:
            write_html(metrics, html)
        except OSError as exc:
            fail("report", f"--html {html}: {exc.strerror or exc}")
    if json_out:
        typer.echo(metrics.to_json())
        return
    console = Console()
    console.print(headline_table(metrics))
    if html:
        console.print(f"wrote {html}")
