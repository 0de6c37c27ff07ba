"""The `player-sim` command line: one module per command, registered on one Typer app.

Every command turns expected problems (bad scenario files, bad options, unreachable
targets) into a one-line message naming where the problem is and a non-zero exit;
tracebacks are for bugs only.
"""
from __future__ import annotations

import typer

app = typer.Typer(
    name="player-sim",
    help="Simulated video-player sessions and the Kaltura analytics beacons they send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module adds its command(s) to `app` when imported.
from . import commands  # noqa: E402,F401


def main() -> None:
    app()
