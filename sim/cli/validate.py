"""`player-sim validate FILE...`: check scenario and mix files, one line per problem, exit 2 on any."""
from __future__ import annotations

from pathlib import Path

import typer

from . import app


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., metavar="FILE...", help="Scenario or mix files (YAML)."),
) -> None:
    """Load each file as `run` would (extends, mix, catalog CSV) and report every problem as
    `file:line:column: field: message`; good files print `OK file (N components)`.
    Exit status 2 when any file has a problem."""
    from ..scenario.loader import ScenarioError, load

    failed = False
    for file in files:
        try:
            components = load(file)
        except ScenarioError as exc:
            failed = True
            for problem in exc.problems:
                typer.echo(str(problem))
            continue
        except OSError as exc:  # anything the loader did not foresee about the file system
            failed = True
            typer.echo(f"{file}: cannot read: {exc.strerror or exc}")
            continue
        n = len(components)
        typer.echo(f"OK {file} ({n} component{'s' if n != 1 else ''})")
    if failed:
        raise typer.Exit(2)
