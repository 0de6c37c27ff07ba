"""`player-sim validate` and `player-sim schema` on the real command line."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from helpers import ROOT
from helpers.cli import invoke

BUNDLED = sorted((ROOT / "scenarios").glob("*.yaml"))
BAD = Path(__file__).parent / "fixtures" / "bad"


def run(*args: str):
    return invoke(*args, catch_exceptions=False)


def test_validate_prints_ok_with_the_component_count_and_exits_0():
    result = run("validate", str(ROOT / "scenarios" / "typical-vod.yaml"), str(ROOT / "scenarios" / "default-mix.yaml"))
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        f"OK {ROOT / 'scenarios' / 'typical-vod.yaml'} (1 component)",
        f"OK {ROOT / 'scenarios' / 'default-mix.yaml'} (3 components)",
    ]


def test_validate_prints_one_located_line_per_problem_and_exits_2():
    result = run("validate", str(BAD / "probability.yaml"))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{BAD / 'probability.yaml'}:3:14: behaviour.play_rate: must be a probability in [0, 1], got 1.4",
        f"{BAD / 'probability.yaml'}:5:23: behaviour.rebuffering.quit_after_stall: "
        "must be a probability in [0, 1], got -0.1",
    ]


def test_validate_reports_good_and_bad_files_alike_and_exits_2_if_any_is_bad():
    result = run("validate", str(BAD / "empty.yaml"), str(ROOT / "scenarios" / "short-clip.yaml"))
    assert result.exit_code == 2
    assert "file is empty" in result.output and "OK " in result.output


def test_validate_reports_a_missing_file_without_a_traceback():
    result = run("validate", str(BAD / "no-such-file.yaml"))
    assert result.exit_code == 2
    assert result.output == f"{BAD / 'no-such-file.yaml'}: file not found\n"


def test_validate_reports_a_directory_without_a_traceback():
    result = run("validate", str(BAD))
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_the_installed_console_script_validates_with_exit_status_2():
    import subprocess

    script = ROOT / ".venv" / "bin" / "player-sim"
    if not script.exists():
        pytest.skip("console script not installed")
    done = subprocess.run([str(script), "validate", str(BAD / "unknown-key.yaml")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown key 'play_rat' (did you mean 'play_rate'?)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.fixture(scope="module")
def schema() -> dict:
    result = run("schema")
    assert result.exit_code == 0
    return json.loads(result.output)


def test_schema_is_a_draft_2020_12_json_schema_with_an_id_and_title(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] == "player-sim scenario"
    jsonschema.Draft202012Validator.check_schema(schema)


def _as_json(value):
    """YAML timestamps as the strings an editor's YAML language server sees."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_schema_accepts_every_bundled_scenario(schema, path):
    document = _as_json(YAML(typ="safe").load(path.read_text()))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)


def test_schema_rejects_an_unknown_key_as_an_editor_would(schema):
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({"behaviour": {"play_rat": 0.3}}))
    assert any("play_rat" in e.message for e in errors)


def test_schema_rejects_a_probability_above_1(schema):
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({"behaviour": {"play_rate": 1.4}}))
    assert [list(e.absolute_path) for e in errors] == [["behaviour", "play_rate"]]


def test_schema_output_option_writes_the_same_schema_to_a_file(tmp_path, schema):
    out = tmp_path / "scenario.schema.json"
    result = run("schema", "--output", str(out))
    assert result.exit_code == 0 and result.output == ""
    assert json.loads(out.read_text()) == schema
