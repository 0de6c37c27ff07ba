"""Load shapes: the stage file and its located errors, the level over time, the shaped open and
closed arrival processes (offline), and one headless Locust run that stops when its shape ends."""

from __future__ import annotations

import argparse
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from sim.load.plan import OptionError, add_arguments, check_options
from sim.load.shapes import (
    Shape,
    ShapedClosedArrivals,
    ShapedOpenArrivals,
    Stage,
    daily_levels,
    load_shape,
    parse_duration,
)
from sim.scenario.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "shape.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def shape_of(*stages: Stage) -> Shape:
    return Shape(tuple(stages), graceful_stop=0.0)


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


# --- the file -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "shapes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_shape_file_loads(path):
    shape = load_shape(path)
    assert shape.duration > 0 and shape.peak > 0


def test_the_bundled_ramp_steady_spike_shape_lasts_its_stages():
    shape = load_shape(ROOT / "shapes/ramp-steady-spike.yaml")
    assert [s.kind for s in shape.stages] == ["ramp", "steady", "spike", "steady", "ramp"]
    assert shape.duration == 120 + 300 + 30 + 60 + 60
    assert shape.peak == 200 and shape.graceful_stop == 30


@pytest.mark.parametrize(
    "written, seconds",
    [
        (90, 90.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1.5m", 90.0),
        ("250ms", 0.25),
        ("0s", 0.0),
    ],
)
def test_durations_read_like_k6(written, seconds):
    assert parse_duration(written) == seconds


def test_a_k6_stage_is_a_ramp_to_its_target(tmp_path):
    shape = load_shape(
        write(
            tmp_path, "stages:\n  - {duration: 30s, target: 20}\n  - {duration: 0, target: 5}\n  - steady: {for: 10}\n"
        )
    )
    assert shape.stages[0] == Stage("ramp", 30.0, 20.0)
    profile = shape.profile()
    assert profile.level(15) == 10 and profile.level(30) == 5  # a ramp over 0 s jumps


def test_a_shape_without_graceful_stop_gives_sessions_thirty_seconds(tmp_path):
    assert load_shape(write(tmp_path, "stages:\n  - steady: {level: 1, for: 1m}\n")).graceful_stop == 30


BAD = {
    "unknown stage": (
        "stages:\n  - rmap: {to: 5, over: 2m}\n",
        ":2:5: stages[0].rmap: unknown stage 'rmap' (did you mean 'ramp'?)",
    ),
    "bad duration": (
        "stages:\n  - ramp: {to: 5, over: 2 min}\n",
        ":2:25: stages[0].ramp.over: expected a duration such as 90, 90s, 2m, 1m30s or 1h, got '2 min'",
    ),
    "negative level": (
        "stages:\n  - ramp:\n      to: -5\n      over: 1m\n",
        ":3:11: stages[0].ramp.to: must be a number >= 0, got -5",
    ),
    "level as text": (
        "stages:\n  - spike: {to: '50', for: 5s}\n",
        ":2:17: stages[0].spike.to: expected a number (sessions/s or viewers), got '50'",
    ),
    "missing key": (
        "stages:\n  - spike: {to: 5}\n",
        ":2:5: stages[0].spike.for: missing required key 'for' in a spike stage",
    ),
    "misspelt key": (
        "stages:\n  - steady: {fro: 1m}\n",
        ":2:14: stages[0].steady.fro: unknown key 'fro' in a steady stage (did you mean 'for'?)",
    ),
    "zero hold": (
        "stages:\n  - steady: {level: 3, for: 0}\n",
        ":2:29: stages[0].steady.for: must be a positive duration, got 0",
    ),
    "two stages in one item": (
        "stages:\n  - ramp: {to: 5, over: 1m}\n    steady: {for: 1m}\n",
        ":3:5: stages[0].steady: one stage per list item",
    ),
    "setting beside the stage": (
        "stages:\n  - ramp: {to: 5}\n    over: 1m\n",
        ":3:5: stages[0].over: 'over' beside 'ramp': a stage's settings go inside it",
    ),
    "stage not a mapping": (
        "stages:\n  - ramp\n",
        ":2:5: stages[0]: expected a stage such as '- ramp: {to: 50, over: 2m}'",
    ),
    "k6 stage without target": (
        "stages:\n  - {duration: 1m}\n",
        ":2:5: stages[0].target: missing required key 'target' in a k6 stage",
    ),
    "no stages": ("graceful_stop: 10s\n", ":1:1: stages: missing required key 'stages'"),
    "empty stages": ("stages: []\n", ":1:9: stages: expected a list of at least one stage, got an empty list"),
    "unknown top key": (
        "stages:\n  - steady: {level: 1, for: 1m}\nstage: 1\n",
        ":3:1: stage: unknown key 'stage' (did you mean 'stages'?)",
    ),
    "bad graceful stop": (
        "stages:\n  - steady: {level: 1, for: 1m}\ngraceful_stop: soon\n",
        ":3:16: graceful_stop: expected a duration such as 90, 90s, 2m, 1m30s or 1h, got 'soon'",
    ),
    "lasts nothing": ("stages:\n  - ramp: {to: 5, over: 0}\n", ":2:3: stages: the stages last 0 seconds"),
    "yaml syntax": ("stages:\n  - ramp: {to: 5, over: 1m\n", ":3:1: YAML syntax error"),
    "not a mapping": ("- ramp: {to: 5, over: 1m}\n", ":1:1: expected a mapping with a 'stages:' list at the top"),
    "unknown mix": (
        "stages:\n  - daily: {peak: 5, over: 1m}\nmix: hourly\n",
        ":3:6: mix: expected 'weights' (the scenarios' configured weights, the default) or 'daily'",
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_a_bad_shape_file_is_reported_at_its_line_and_column(tmp_path, name):
    text, expected = BAD[name]
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_shape(path)
    assert str(caught.value).startswith(f"{path}{expected}"), str(caught.value)


def test_a_misspelt_key_is_not_also_reported_missing(tmp_path):
    with pytest.raises(ScenarioError) as caught:
        load_shape(write(tmp_path, "stages:\n  - steady: {fro: 1m}\n"))
    assert len(caught.value.problems) == 1


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    with pytest.raises(ScenarioError) as caught:
        load_shape(write(tmp_path, "stages:\n  - ramp: {to: x, over: 1m}\n  - spike: {to: 5, for: -1}\n"))
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "stages[0].ramp.to"), (3, "stages[1].spike.for")]


def test_a_missing_shape_file_is_named(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.yaml: shape file not found \(--shape\)"):
        load_shape(tmp_path / "nope.yaml")


def test_the_shape_option_reports_file_problems_as_an_option_error(tmp_path):
    path = write(tmp_path, "stages:\n  - ramp: {to: 5, over: 2 min}\n")
    with pytest.raises(OptionError, match=rf"^{path}:2:25: stages\[0\]\.ramp\.over: "):
        check_options(options("--shape", str(path)), "http://127.0.0.1:8080")


def test_a_shape_replaces_the_session_rate(tmp_path):
    path = write(tmp_path, "stages:\n  - steady: {level: 3, for: 1m}\n")
    check_options(options("--shape", str(path), "--session-rate", "0"), "http://127.0.0.1:8080")


def test_a_shape_peaking_above_the_kaltura_cap_is_refused(tmp_path):
    path = write(tmp_path, "stages:\n  - ramp: {to: 2, over: 1m}\n  - spike: {to: 9, for: 10s}\n")
    opts = options("--shape", str(path), "--i-mean-kaltura", "--partner-id", "12")
    with pytest.raises(OptionError, match="peaks at 9 sessions/s, above the 5 allowed"):
        check_options(opts, "https://analytics.kaltura.com")


def test_player_sim_validate_checks_a_shape_file_too(tmp_path):
    from typer.testing import CliRunner

    from sim.cli import app

    good = ROOT / "shapes/ramp-steady-spike.yaml"
    bad = write(tmp_path, "stages:\n  - steady: {level: 3, for: 0}\n")
    result = CliRunner().invoke(app, ["validate", str(good), str(bad)], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"OK {good} (load shape: 5 stages, 570 s, peak 200)",
        f"{bad}:2:29: stages[0].steady.for: must be a positive duration, got 0",
    ]


# --- the level over time ------------------------------------------------------------------------


def test_the_level_at_stage_boundaries_is_the_next_stage_s():
    profile = load_shape(ROOT / "shapes/ramp-steady-spike.yaml").profile()
    assert profile.level(0) == 0  # the ramp starts at 0
    assert profile.level(60) == 25  # half way up
    assert profile.level(120) == 50  # the steady stage holds what the ramp reached
    assert profile.level(419.999) == 50
    assert profile.level(420) == 200  # a spike is at its height from its first instant
    assert profile.level(450) == 50  # and back to the level before it
    assert profile.level(540) == 25  # the last ramp, half way down
    assert profile.level(570) == 0 and profile.level(1e4) == 0  # over


def test_the_cumulative_level_counts_the_sessions_a_shape_asks_for():
    profile = load_shape(ROOT / "shapes/ramp-steady-spike.yaml").profile()
    # ramp 50*120/2 + steady 50*300 + spike 200*30 + steady 50*60 + ramp 50*60/2
    assert profile.total == pytest.approx(3000 + 15000 + 6000 + 3000 + 1500)


# --- open model: a Poisson process that follows the level ---------------------------------------


def window_counts(starts: np.ndarray, t0: float, edges: np.ndarray) -> np.ndarray:
    return np.histogram(starts - t0, bins=edges)[0]


def test_open_arrivals_follow_a_ramp_and_a_spike_within_poisson_tolerance():
    profile = shape_of(
        Stage("ramp", 20, 200), Stage("steady", 10, None), Stage("spike", 2, 800), Stage("ramp", 10, 0)
    ).profile()
    arrivals = ShapedOpenArrivals(profile, np.random.default_rng(11), 1000.0, share=1.0)
    starts = np.concatenate([arrivals.assign(np.zeros(1000)) for _ in range(10)])
    edges = np.arange(0.0, 43.0, 1.0)
    counts = window_counts(starts, 1000.0, edges)
    expected = np.diff(profile.cumulative(edges))
    assert expected[30] == 800 and expected[5] == pytest.approx(55)  # the spike and the ramp
    assert np.all(np.abs(counts - expected) <= 4.5 * np.sqrt(expected) + 2), (counts, expected)


def test_open_arrivals_are_poisson_not_evenly_spaced():
    profile = shape_of(Stage("steady", 100, 50)).profile()
    starts = ShapedOpenArrivals(profile, np.random.default_rng(12), 0.0).assign(np.zeros(4000))
    gaps = np.diff(starts[starts < 100])
    assert abs(gaps.std() / gaps.mean() - 1) < 0.06  # exponential gaps: coefficient of variation 1


def test_a_worker_s_share_of_a_shape_is_its_share_of_the_rate():
    profile = shape_of(Stage("steady", 100, 40)).profile()
    starts = ShapedOpenArrivals(profile, np.random.default_rng(13), 0.0, share=0.25).assign(np.zeros(2000))
    assert abs((starts < 100).sum() - 1000) < 4.5 * np.sqrt(1000)


def test_no_session_starts_after_the_shape_ends():
    profile = shape_of(Stage("steady", 10, 20)).profile()
    arrivals = ShapedOpenArrivals(profile, np.random.default_rng(14), 500.0, graceful_stop=5.0)
    starts = arrivals.assign(np.full(400, 3.0))
    real = starts[starts < 510.0]
    assert len(real) < 400 and np.all(starts[len(real) :] > 510.0 + 1e5)  # the rest never comes due
    assert arrivals.horizon == np.inf  # nothing more is generated
    assert arrivals.done_at == pytest.approx(min(real[-1] + 3.0, 515.0))  # last session, within the grace


def test_sessions_past_the_shape_s_end_are_neither_scheduled_nor_counted_as_generated():
    from sim.load.schedule import Schedule, Timebase, protocol_adapters, session_stream
    from sim.scenario.loader import load

    t0 = 1_000.0
    profile = shape_of(Stage("steady", 2, 50)).profile()
    arrivals = ShapedOpenArrivals(profile, np.random.default_rng(16), t0, graceful_stop=5.0)
    stream = session_stream(load(ROOT / "scenarios" / "typical-vod.yaml"), 16, chunk_size=512)
    schedule = Schedule(stream, arrivals, Timebase(t0, 10.0), protocol_adapters("legacy"))
    schedule.integrate(schedule.prepare())  # one chunk of 512 sessions: ~100 fit the shape
    starts = schedule.states[0].start
    in_shape = int(np.sum(starts < t0 + 2))
    assert 0 < in_shape < 512
    assert schedule.stats.sessions_generated == in_shape
    due = schedule.pop_due(arrivals.parked_at + 1e6)
    assert due and max(t for t, _, _ in due) < arrivals.parked_at


def test_a_rate_of_zero_mid_shape_starts_nothing_then_resumes():
    profile = shape_of(Stage("steady", 10, 30), Stage("steady", 10, 0), Stage("steady", 10, 30)).profile()
    starts = ShapedOpenArrivals(profile, np.random.default_rng(15), 0.0).assign(np.zeros(1000))
    assert not np.any((starts >= 10) & (starts < 20))
    assert np.sum((starts >= 20) & (starts < 30)) > 200


# --- closed model: viewers that follow the level ------------------------------------------------


def in_progress(starts: np.ndarray, length: float, t: float) -> int:
    return int(np.sum((starts <= t) & (t < starts + length)))


def run_closed(profile, length: float, *, worker: int = 0, workers: int = 1, t0: float = 0.0) -> np.ndarray:
    arrivals = ShapedClosedArrivals(
        profile, np.random.default_rng(16), t0, worker=worker, workers=workers, idle_gap=0.0, graceful_stop=0.0
    )
    starts = []
    while arrivals.horizon < np.inf:
        starts.append(arrivals.assign(np.full(64, length)))
    starts = np.concatenate(starts)
    return starts[starts < t0 + profile.duration]


def test_closed_viewers_rise_with_the_level():
    profile = shape_of(Stage("ramp", 30, 30), Stage("steady", 30, None)).profile()
    starts = run_closed(profile, 4.0)
    for t in (5.5, 15.5, 29.5, 45.0):
        assert in_progress(starts, 4.0, t) == np.ceil(profile.level(t))


def test_closed_viewers_finish_their_session_when_the_level_falls_and_start_no_other():
    profile = shape_of(Stage("steady", 60, 20), Stage("steady", 60, 5)).profile()
    starts = run_closed(profile, 7.0)
    assert in_progress(starts, 7.0, 59.0) == 20
    assert in_progress(starts, 7.0, 61.0) > 5  # sessions under way at the drop play on
    assert in_progress(starts, 7.0, 68.0) == 5  # and their viewers do not come back


def test_closed_viewers_are_split_across_workers_like_viewers():
    profile = shape_of(Stage("steady", 20, 21)).profile()
    counts = [in_progress(run_closed(profile, 5.0, worker=w, workers=2), 5.0, 10.0) for w in (0, 1)]
    assert counts == [11, 10]


def test_the_viewers_tab_target_rate_is_the_shape_s_rate_averaged_since_the_start():
    profile = shape_of(Stage("ramp", 10, 20), Stage("steady", 10, None)).profile()
    arrivals = ShapedOpenArrivals(profile, np.random.default_rng(17), 100.0, share=0.5)
    # like the scheduled and achieved rates beside it: sessions so far over seconds so far
    assert arrivals.target_at(110.0) == pytest.approx(0.5 * 100 / 10)
    assert arrivals.target_at(120.0) == pytest.approx(0.5 * 300 / 20)


def test_the_viewers_tab_target_viewers_follow_the_shape_now():
    profile = shape_of(Stage("ramp", 10, 20), Stage("steady", 10, None)).profile()
    arrivals = ShapedClosedArrivals(profile, np.random.default_rng(18), 100.0, worker=1, workers=2)
    assert [arrivals.target_at(t) for t in (100.0, 105.0, 115.0, 121.0)] == [0, 5, 10, 0]


# --- the scenarios' own day, compressed ---------------------------------------------------------


def test_the_compressed_day_peaks_at_the_scenario_s_busiest_hour():
    from sim.scenario.loader import as_components
    from sim.scenario.model import Scenario

    scenario = Scenario.model_validate(
        {
            "name": "evening",
            "clock": {
                "start": "2026-11-02T00:00:00Z",
                "hourly": "consumer-evening",  # busiest local hour: 21
                "timezones": [{"utc_offset": "-05:00", "weight": 1}],
            },
        }
    )
    profile = shape_of(Stage("daily", 240, 80)).profile(as_components([scenario]))
    busiest = np.arange(0, 240, 0.5)[np.argmax(profile.level(np.arange(0, 240, 0.5)))]
    # 21:00 at -05:00 is 02:00 UTC: the third of the day's 24 ten-second hours
    assert 20 <= busiest < 30
    assert profile.level(25) == pytest.approx(80)
    assert profile.peak == pytest.approx(80)


def test_the_compressed_day_weights_the_mix():
    from sim.scenario.loader import Component
    from sim.scenario.model import Scenario

    def at(hourly):
        return Scenario.model_validate(
            {"name": "x", "clock": {"hourly": hourly, "timezones": [{"utc_offset": "+00:00", "weight": 1}]}}
        )

    evening = [1.0] * 24
    evening[21] = 5.0
    _, levels = daily_levels([Component("flat", at("flat"), 0.75), Component("evening", at(evening), 0.25)])
    hourly = levels.reshape(24, 4).mean(axis=1)
    # each curve normalised to mean 1: flat 1 everywhere; evening 5/(28/24) at 21, 1/(28/24) elsewhere
    assert hourly[21] == pytest.approx(0.75 + 0.25 * 5 * 24 / 28)
    assert hourly[3] == pytest.approx(0.75 + 0.25 * 24 / 28)


# --- end to end: a headless run that stops when its shape ends ----------------------------------

SHORT_SHAPE = """stages:
  - ramp:   {to: 20, over: 2s}
  - steady: {for: 2s}
  - spike:  {to: 40, for: 1s}
  - ramp:   {to: 0, over: 1s}
graceful_stop: 1s
"""


def test_a_headless_run_with_a_shape_stops_when_it_ends_and_loses_nothing(tmp_path, compiled_policies):
    from helpers.load import locust_cli
    from sim.cli.demo import start_collector, stop_process
    from sim.metrics.reconcile import reconcile

    shape = write(tmp_path, SHORT_SHAPE)
    collector, url = start_collector(tmp_path / "collector.duckdb", tmp_path / "collector.log")
    try:
        # no -t: only the shape ends the run
        cmd = locust_cli(
            "--headless",
            "--only-summary",
            "-u",
            "2",
            "-r",
            "2",
            "--host",
            url,
            "--protocol",
            "legacy",
            "--shape",
            str(shape),
            "--time-scale",
            "20",
            "--ledger",
            str(tmp_path / "ledger.jsonl"),
            "--summary-json",
            str(tmp_path / "summary.json"),
        )
        began = time.time()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=90)
        took = time.time() - began
    finally:
        stop_process(collector)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    # the schedule ran the shape's 6 s plus at most its 1 s graceful stop, then Locust quit: the stop
    # follows the shape's end within a 0.5 s check and the quit, 7.6 s in all seen on a busy machine
    assert 6.0 <= summary["run_seconds"] <= 10.0 and took < 60
    assert abs(summary["sessions"]["started"] - 110) < 4.5 * np.sqrt(110)  # 20 + 40 + 40 + 10 asked for
    totals = reconcile(str(tmp_path / "ledger.jsonl"), str(tmp_path / "collector.duckdb")).totals
    assert totals["sent"] == summary["sent"] > 100
    assert totals["lost"] == 0 and totals["duplicated"] == 0
    # the console names each stage as it begins, in order, then the end of the stages
    said = re.findall(r"player-sim: shape(?: stage (\d)/4)?: ([^\n]*)", done.stderr.decode())
    assert said == [
        ("1", "ramp from 0 to 20 over 2s"),
        ("2", "steady at 20 for 2s"),
        ("3", "spike to 40 for 1s, then back to 20"),
        ("4", "ramp from 20 to 0 over 1s"),
        ("", "all stages done; sessions still playing get up to 1s"),
    ]


# --- the scenarios' mix: configured weights, or each scenario's own day --------------------------


def two_curves():
    """A flat scenario (weight 3) and an evening one (weight 1) in UTC: at 21:00 the evening one
    has 5/(28/24) times its mean, elsewhere 1/(28/24)."""
    from sim.player.model import Component
    from sim.scenario.model import Scenario

    def at(name, hourly):
        return Scenario.model_validate(
            {
                "name": name,
                "clock": {
                    "start": "2026-11-02T00:00:00Z",
                    "hourly": hourly,
                    "timezones": [{"utc_offset": "+00:00", "weight": 1}],
                },
            }
        )

    evening = [1.0] * 24
    evening[21] = 5.0
    return [Component("flat", at("flat", "flat"), 3.0), Component("evening", at("evening", evening), 1.0)]


def test_a_shape_keeps_the_configured_weights_unless_it_asks_for_each_scenario_s_day(tmp_path):
    assert load_shape(write(tmp_path, "stages:\n  - daily: {peak: 5, over: 1m}\n")).mix == "weights"
    assert load_shape(write(tmp_path, "stages:\n  - daily: {peak: 5, over: 1m}\nmix: daily\n")).mix == "daily"
    assert shape_of(Stage("daily", 240, 80)).profile(two_curves()).shares is None


def test_with_mix_daily_each_scenario_has_its_own_day_s_share_of_the_level():
    shape = Shape((Stage("steady", 10, 8), Stage("daily", 240, 80)), graceful_stop=0.0, mix="daily")
    profile = shape.profile(two_curves())
    np.testing.assert_allclose(profile.shares[0], [0.75, 0.25])  # a steady stage: the weights
    at_21 = 10 + 21 * 10 + 5  # 21:00 of the 240 s day
    flat, evening = 0.75, 0.25 * 5 * 24 / 28
    by = profile.cumulative_by_scenario(at_21 + 1) - profile.cumulative_by_scenario(at_21)
    np.testing.assert_allclose(by / by.sum(), [flat / (flat + evening), evening / (flat + evening)])
    np.testing.assert_allclose(profile.cumulative_by_scenario(250).sum(), profile.total)


def test_thinning_the_weighted_stream_gives_each_scenario_its_day_within_poisson_tolerance():
    shape = Shape((Stage("ramp", 10, 20), Stage("daily", 240, 60)), graceful_stop=0.0, mix="daily")
    profile = shape.profile(two_curves())
    rng = np.random.default_rng(5)
    arrivals = ShapedOpenArrivals(profile, rng, 100.0)
    starts, scenarios = [], []
    while not arrivals.finished:
        scenario = rng.choice(2, 400, p=[0.75, 0.25])  # the stream, in the weights
        start = arrivals.assign(np.ones(400), scenario)
        kept = start < arrivals.ends_at
        starts.append(start[kept])
        scenarios.append(scenario[kept])
    starts, scenarios = np.concatenate(starts) - 100.0, np.concatenate(scenarios)
    window = (starts >= 220) & (starts < 230)  # 21:00-22:00 of the day
    for k in (0, 1):
        expected = (profile.cumulative_by_scenario(230) - profile.cumulative_by_scenario(220))[k]
        assert abs(np.sum(window & (scenarios == k)) - expected) < 4.5 * np.sqrt(expected), k
        whole = profile.cumulative_by_scenario(250)[k]
        assert abs(np.sum(scenarios == k) - whole) < 4.5 * np.sqrt(whole), k
    # the Viewers tab's per-scenario targets are these shares averaged since the start
    np.testing.assert_allclose(arrivals.targets_by_scenario(200.0), profile.cumulative_by_scenario(100.0) / 100.0)


def test_mix_daily_is_refused_in_the_closed_model(tmp_path):
    path = write(tmp_path, "stages:\n  - daily: {peak: 5, over: 1m}\nmix: daily\n")
    with pytest.raises(OptionError, match="'mix: daily' thins session arrivals, which only the open model has"):
        check_options(options("--shape", str(path), "--workload", "closed"), "http://127.0.0.1:8080")


# --- which stage is running ---------------------------------------------------------------------


def test_a_shaped_run_names_the_stage_it_is_in():
    shape = Shape(
        (Stage("ramp", 120, 50), Stage("steady", 300, None), Stage("spike", 30, 200), Stage("ramp", 60, 0)),
        graceful_stop=30.0,
    )
    arrivals = ShapedOpenArrivals(shape.profile(), np.random.default_rng(1), 1000.0)
    arrivals.shape = shape
    assert arrivals.stage_now(1060.0) == {
        "number": 1,
        "of": 4,
        "kind": "ramp",
        "text": "ramp from 0 to 50 over 2m",
        "level": 25.0,
        "into_s": 60.0,
        "seconds": 120,
    }
    assert arrivals.stage_now(1120.0)["text"] == "steady at 50 for 5m"  # a stage begins at its start
    assert arrivals.stage_now(1425.0)["text"] == "spike to 200 for 30s, then back to 50"
    assert arrivals.stage_now(1450.0)["text"] == "ramp from 50 to 0 over 1m"
    done = arrivals.stage_now(1510.0)
    assert done["number"] is None and done["text"] == "all stages done; sessions still playing get up to 30s"
