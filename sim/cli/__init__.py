"""The `player-sim` command line: one module per command, registered on one Typer app.

Every command turns expected problems (bad scenario files, bad options, unreachable
targets) into a one-line message naming where the problem is and a non-zero exit;
tracebacks are for bugs only.
"""
from __future__ import annotations

from typing import NoReturn

import typer

app = typer.Typer(
    name="player-sim",
    help="Simulated video-player sessions and the Kaltura analytics beacons they send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Say `player-sim COMMAND: message` on stderr and exit with `code` (2: bad input)."""
    typer.echo(f"player-sim {command}: {message}", err=True)
    raise typer.Exit(code) from None


def fail_problems(problems) -> NoReturn:
    """Say each problem of a scenario file (`file:line:column: field: message`) on stderr and
    exit 2: the located lines speak for themselves, without the command's name."""
    for problem in problems:
        typer.echo(str(problem), err=True)
    raise typer.Exit(2)


# Each module adds its command(s) to `app` when imported.
from . import commands  # noqa: E402,F401


def main() -> None:
    app()
