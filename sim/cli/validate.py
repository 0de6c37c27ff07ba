"""`player-sim validate FILE...`: check scenario, mix and load shape files, one line per problem, exit 2 on any."""

from __future__ import annotations

from pathlib import Path

import typer

from sim.cli import app


@app.command(short_help="Check scenario, mix and load shape files and report every problem")
def validate(
    files: list[Path] = typer.Argument(..., metavar="FILE...", help="Scenario, mix or load shape files (YAML)."),
) -> None:
    """Check scenario, mix and load shape files and report every problem.

    Each file is loaded as `generate` and `preview` load it (extends, mix, catalog CSV, scripts
    played through), and each problem is printed as `file:line:column: field: message`; a good
    file prints `OK file (N components)`. Exit status 2 when any file has a problem."""
    from sim.load.shapes import is_shape_file, load_shape
    from sim.scenario.loader import ScenarioError, load

    failed = False
    for file in files:
        try:
            if is_shape_file(file):  # a load shape (`stages:`) for `locust --shape`
                shape = load_shape(file)
                typer.echo(
                    f"OK {file} (load shape: {len(shape.stages)} stage{'s' if len(shape.stages) != 1 else ''}, "
                    f"{shape.duration:g} s, peak {shape.peak:g})"
                )
                continue
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
