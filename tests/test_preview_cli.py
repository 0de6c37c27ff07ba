"""`player-sim preview`: readable timelines and a sample summary; scenario problems exit 2."""

from __future__ import annotations

from typer.testing import CliRunner

from sim.cli import app

runner = CliRunner()

SCRIPTED = """\
name: preview-check
catalog:
  entries:
    - {id: 1_prev0001, duration: 120}
clock: {days: 1, hourly: flat, weekday: flat}
script:
  - name: seek-and-stall
    steps: [load, play, {wait: 30}, {seek: 80%}, {buffer: 2}, quit]
"""


def test_a_timeline_shows_offsets_playhead_and_what_matters(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    result = runner.invoke(app, ["preview", str(f)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        "SEEK" in ln and "to 1:36 (forward 66 s)" in ln and "[    0:30]" in ln and "+31.0s" in ln for ln in lines
    )
    assert any("STALL_END" in ln and "stalled 2.0 s" in ln for ln in lines)
    assert any("PLAYING" in ln and "startup 1.00 s" in ln for ln in lines)
    assert "-> PARTIAL" in result.output


def test_the_summary_reports_the_sample(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    result = runner.invoke(app, ["preview", str(f)])
    assert "Sample of 1 sessions" in result.output
    assert "play rate (plays / loads)                100.0 %" in result.output
    assert "rebuffers per play                       1.00" in result.output


def test_piped_output_has_no_colour_codes(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    assert "\x1b[" not in runner.invoke(app, ["preview", str(f)]).output


def test_the_same_seed_previews_the_same_sessions(tmp_path):
    f = tmp_path / "vod.yaml"
    f.write_text("name: vod\ncatalog: {count: 20}\naudience: {viewers: 100}\n")
    first = runner.invoke(app, ["preview", str(f), "--seed", "4", "--sessions", "3"]).output
    assert first == runner.invoke(app, ["preview", str(f), "--seed", "4", "--sessions", "3"]).output
    assert first.count("LOAD") == 3


def test_scenario_problems_print_located_lines_and_exit_2(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("behaviour:\n  play_rate: 2\n")
    result = runner.invoke(app, ["preview", str(f)])
    assert result.exit_code == 2
    assert f"{f}:2:14: behaviour.play_rate:" in result.stderr
    assert "Traceback" not in result.output


def test_a_script_that_cannot_play_exits_2_naming_the_step(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED.replace("[load, play, {wait: 30}", "[load, {pause: 3}, play, {wait: 30}"))
    result = runner.invoke(app, ["preview", str(f)])
    assert result.exit_code == 2
    # found while loading, as `validate` finds it: located at the step in the file
    assert result.stderr == f"{f}:8:19: script[0].steps[1]: needs a 'play' step before it\n"


def _beacon_labels(output: str) -> list[str]:
    return [ln.split("    -> ", 1)[1].split("  ")[0].strip() for ln in output.splitlines() if "    -> " in ln]


def test_with_a_protocol_each_action_is_followed_by_the_beacons_it_sends(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    result = runner.invoke(app, ["preview", str(f), "--protocol", "kava"])
    assert result.exit_code == 0, result.output
    labels = _beacon_labels(result.output)
    assert labels[:4] == ["kava 1 IMPRESSION", "kava 2 PLAY_REQUEST", "kava 3 PLAY", "kava 99 VIEW"]
    # 30 s of a 120 s entry reach 25 % by playback; the seek to 80 % fires 50 and 75 %.
    seek = labels.index("kava 35 SEEK")
    assert labels[seek - 1] == "kava 11 PLAY_REACHED_25_PERCENT"
    assert labels[seek + 1 : seek + 3] == ["kava 12 PLAY_REACHED_50_PERCENT", "kava 13 PLAY_REACHED_75_PERCENT"]
    lines = result.output.splitlines()
    seek_action = next(i for i, ln in enumerate(lines) if "SEEK" in ln and "    -> " not in ln)
    seek_beacon = next(i for i, ln in enumerate(lines) if "kava 35 SEEK" in ln)
    assert seek_beacon > seek_action and "targetPosition 96" in lines[seek_beacon]


def test_both_protocols_list_legacy_and_kava_beacons(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    labels = _beacon_labels(runner.invoke(app, ["preview", str(f), "--protocol", "both"]).output)
    assert "legacy 3 PLAY" in labels and "kava 3 PLAY" in labels


def test_an_unknown_protocol_exits_2_naming_the_option(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SCRIPTED)
    result = runner.invoke(app, ["preview", str(f), "--protocol", "kavaa"])
    assert result.exit_code == 2
    assert "player-sim preview: --protocol: expected legacy, kava or both, got 'kavaa'" in result.stderr
    assert "--protocol" not in result.stdout
