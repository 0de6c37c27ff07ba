"""Scenario files that would hurt: each is refused with one located message, exit status 2 and no
traceback, by `validate`, `generate` and `preview` alike, without exhausting memory or time and
without quoting what another file holds (fixtures in fixtures/bad/, the rest made in tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.scenario.loader import ScenarioError, load
from sim.scenario.yamlfile import MAX_FILE_BYTES

BAD = Path(__file__).parent / "fixtures" / "bad"

# fixture -> its exact problems, `file:line:column: field: message` with the file's name only
EXPECTED = {
    "billion-laughs.yaml": [
        "billion-laughs.yaml:8:8: aliases expand this file to more than 100,000 values; refusing to build it "
        "(an alias of an alias of ... multiplies)"
    ],
    "deep-nesting.yaml": [
        "deep-nesting.yaml:2:43: nested more than 32 levels deep; a scenario needs only a few levels"
    ],
    "non-finite.yaml": [
        "non-finite.yaml:3:9: clock.days: expected a finite number, got inf",
        "non-finite.yaml:6:13: behaviour.startup.time_s: expected a finite number, got nan",
        "non-finite.yaml:8:55: ads.length_s.weights[0]: expected a finite number, got inf",
    ],
    "negative-durations.yaml": [
        "negative-durations.yaml:4:13: behaviour.startup.time_s: cannot be negative, got -3",
        "negative-durations.yaml:6:15: behaviour.pauses.length_s: cannot be negative, got -5 "
        "(the lowest value it draws)",
        "negative-durations.yaml:8:14: behaviour.rebuffering.stall_s: cannot be negative, got -1 "
        "(the lowest value it draws)",
        "negative-durations.yaml:10:17: behaviour.seeks.backward_s: a normal distribution draws negative values "
        "here; add min: 0 (or more)",
    ],
    "absurd-sizes.yaml": [
        "absurd-sizes.yaml:3:10: catalog.count: must be at most 1000000, got 1000000000",
        "absurd-sizes.yaml:5:12: audience.viewers: must be at most 10000000, got 1000000000000",
        "absurd-sizes.yaml:7:9: clock.days: must be at most 3660, got 1000000",
        "absurd-sizes.yaml:8:21: clock.sessions_per_day: must be at most 100000000, got 1000000000000000",
        "absurd-sizes.yaml:11:13: script[0].repeat: must be at most 100000, got 1000000000",
    ],
    "absurd-rates.yaml": [
        "absurd-rates.yaml:3:27: player.kava.view_interval_s: must be at least 1, got 1e-09",
        "absurd-rates.yaml:6:14: behaviour.pauses.per_min: must be at most 60, got 1000000000",
        "absurd-rates.yaml:7:15: behaviour.pauses.length_s: must be at most 1e+07, got 1e+09",
        "absurd-rates.yaml:9:19: ads.preroll.size: must be at most 1e+07, got 1e+09",
    ],
    "bad-date.yaml": ["bad-date.yaml:3:10: YAML error: month must be in 1..12"],
    "weibull-shape.yaml": [
        "weibull-shape.yaml:4:38: behaviour.pauses.length_s.shape: must be at least 0.05, got 1e-300"
    ],
    "clock-far-future.yaml": [
        "clock-far-future.yaml:3:10: clock.start: must be between 1990-01-01 and 2100-01-01, got 9999-12-31"
    ],
    "partner-id-huge.yaml": [
        "partner-id-huge.yaml:3:15: partner.partner_id: must be at most 2147483647, "
        "got 100000000000000000000000000000000000000"
    ],
    "python-tag.yaml": [
        "python-tag.yaml:2:14: tag '!!python/object/apply:os.system' is not allowed; a scenario holds plain "
        "values (text, numbers, lists, mappings) and nothing is ever run"
    ],
    "extends-passwd.yaml": [
        "extends-passwd.yaml:2:10: extends: extends file '/etc/passwd' is not a scenario file "
        "(a scenario file's name ends in .yaml or .yml)"
    ],
    "extends-text.yaml": [
        "plain-text.yaml:1:1: expected a mapping of scenario keys at the top of the file, "
        "got a line of text (is this a YAML file?)"
    ],
    "csv-device.yaml": [
        "csv-device.yaml:3:8: catalog.csv: catalog file '/dev/zero' refused: not a regular file "
        "(a device, pipe or socket); expected a catalog CSV (looked for /dev/zero)"
    ],
    "script-unplayable.yaml": [
        "script-unplayable.yaml:6:19: script[0].steps[1]: needs a 'play' step before it",
        "script-unplayable.yaml:8:12: script[1].entry: entry '0_missing' is not in the catalog",
        "script-unplayable.yaml:11:31: script[2].steps[2]: replay needs the content to have ended "
        "('end' or a wait past it)",
    ],
    "dist-kind-override-bad.yaml": [
        "dist-kind-override-bad.yaml:5:42: behaviour.startup.time_s.sigma: unknown key 'sigma'; "
        "valid keys here: dist, max, mean, min"
    ],
}


def problem_lines(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load(path)
    return [str(p).replace(f"{p.file}", Path(p.file).name, 1) for p in caught.value.problems]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_fixture_gets_its_exact_located_message(name):
    assert problem_lines(BAD / name) == EXPECTED[name]


def test_a_proc_file_is_refused_without_quoting_the_environment():
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc on this system")
    (line,) = problem_lines(BAD / "csv-environ.yaml")
    assert line.startswith(
        "csv-environ.yaml:3:8: catalog.csv: catalog file '/proc/self/environ' refused: "
        "holds NUL bytes: a binary file, not a catalog CSV"
    )
    assert "PATH=" not in line.upper() and os.environ.get("HOME", "/root") not in line


def test_a_derived_distribution_of_another_kind_replaces_the_base_one_whole():
    (component,) = load(BAD / "dist-kind-override.yaml")
    time_s = component.scenario.behaviour.startup.time_s
    assert (time_s.dist, time_s.value) == ("fixed", 2)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: big\ndescription: '" + "x" * MAX_FILE_BYTES + "'\n")
    assert problem_lines(big) == ["big.yaml: larger than 1024 KiB; a scenario file is at most that"]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert problem_lines(fifo) == ["pipe.yaml: not a regular file (a device, pipe or socket); expected a scenario file"]


def test_a_binary_file_is_refused_without_quoting_it(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: x\x00secret")
    assert problem_lines(binary) == ["binary.yaml: holds NUL bytes: a binary file, not a scenario file"]


def test_a_device_named_as_the_scenario_is_refused():
    assert problem_lines(Path("/dev/zero")) == [
        "zero: not a regular file (a device, pipe or socket); expected a scenario file"
    ]


def test_a_pod_of_more_than_20_ads_is_refused(tmp_path):
    file = tmp_path / "pod.yaml"
    file.write_text("name: pod\nads:\n  midroll: {every_s: 600, size: {dist: uniform, low: 1, high: 50}}\n")
    assert problem_lines(file) == ["pod.yaml:3:33: ads.midroll.size: at most 20 ads in a pod, got 50"]


def test_a_long_value_is_quoted_cut_short(tmp_path):
    file = tmp_path / "long.yaml"
    file.write_text("name: long\nbehaviour:\n  play_rate: '" + "y" * 500 + "'\n")
    (line,) = problem_lines(file)
    assert line == (
        "long.yaml:3:14: behaviour.play_rate: expected a number, got 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...'"
    )


runner = CliRunner()


@pytest.mark.parametrize(
    "name",
    [
        "billion-laughs.yaml",
        "non-finite.yaml",
        "absurd-sizes.yaml",
        "absurd-rates.yaml",
        "script-unplayable.yaml",
        "python-tag.yaml",
        "weibull-shape.yaml",
    ],
)
@pytest.mark.parametrize("command", ["validate", "generate", "preview"])
def test_validate_generate_and_preview_refuse_alike_with_status_2(name, command, tmp_path):
    args = {
        "validate": [],
        "preview": [],
        "generate": ["--sessions", "10", "--format", "jsonl", "--out", str(tmp_path / "out.jsonl")],
    }[command]
    result = runner.invoke(app, [command, str(BAD / name), *args])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    printed = [line.replace(str(BAD) + "/", "") for line in result.output.splitlines()]
    assert printed == EXPECTED[name]
    assert not (tmp_path / "out.jsonl").exists()
