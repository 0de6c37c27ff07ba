"""`player-sim schema`: the JSON Schema (draft 2020-12) of the scenario language, for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from sim.cli import app

SCHEMA_ID = "urn:player-sim:scenario"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, from the pydantic models (`Scenario`)."""
    from sim.scenario.model import Scenario

    body = Scenario.model_json_schema()
    schema: dict[str, Any] = {"$schema": DRAFT, "$id": SCHEMA_ID, "title": "player-sim scenario"}
    schema.update({k: v for k, v in body.items() if k != "title"})
    return schema


@app.command(short_help="Print the JSON Schema of scenario files, for editors")
def schema(
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="PATH", help="Write the schema to PATH instead of printing it."
    ),
) -> None:
    """Print the JSON Schema of scenario files, for editors.

    Point an editor's YAML language server at it
    (`# yaml-language-server: $schema=PATH` in a file, or VS Code's `yaml.schemas`) to get
    completion, hover help and validation while writing scenarios."""
    text = json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"--output {output}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
