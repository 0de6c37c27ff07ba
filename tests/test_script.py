"""Scripted sessions: the steps written become exactly these actions, every time."""

from __future__ import annotations

import numpy as np
import pytest

from sim.player.model import generate_sessions
from sim.player.timeline import ACTION_COLUMNS, Action, Outcome
from sim.scenario.model import Scenario, ScriptedSession
from sim.scenario.script import ScriptError, script_actions

COL = {name: j for j, name in enumerate(ACTION_COLUMNS)}
LADDER = [400, 1500, 3000]


def run(steps, duration=600.0, **kw):
    rows, outcome = script_actions(
        ScriptedSession.model_validate({"name": "s", "steps": steps, **kw}), duration, LADDER
    )
    kinds = [Action(int(k)) for k in rows[:, COL["kind"]]]
    return kinds, rows, outcome


def at(rows, kinds, action, column):
    return rows[kinds.index(action), COL[column]]


def test_play_sends_the_request_and_the_first_frame_after_startup():
    kinds, rows, _ = run(["load", "play", {"wait": 10}, "quit"], startup_s=1.5)
    assert kinds == [Action.LOAD, Action.PLAY_REQUEST, Action.PLAYING, Action.QUIT]
    assert at(rows, kinds, Action.PLAYING, "t") == 1.5 and at(rows, kinds, Action.PLAYING, "value") == 1.5
    assert at(rows, kinds, Action.QUIT, "t") == 11.5 and at(rows, kinds, Action.QUIT, "pos") == 10.0


def test_a_seek_to_a_percentage_moves_the_playhead_to_that_share_of_the_duration():
    kinds, rows, _ = run(["load", "play", {"wait": 30}, {"seek": "80%"}, {"wait": 5}, "quit"])
    assert at(rows, kinds, Action.SEEK, "pos") == 30.0 and at(rows, kinds, Action.SEEK, "value") == 480.0
    assert at(rows, kinds, Action.QUIT, "pos") == 485.0


def test_a_seek_in_seconds_lands_on_that_second():
    kinds, rows, _ = run(["play", {"wait": 100}, {"seek": "60s"}, "quit"])
    assert at(rows, kinds, Action.SEEK, "value") == 60.0


def test_play_then_error_is_a_start_failure_without_a_first_frame():
    kinds, rows, outcome = run(["load", "play", {"error": 1002}, "quit"])
    assert kinds == [Action.LOAD, Action.PLAY_REQUEST, Action.ERROR, Action.QUIT]
    assert at(rows, kinds, Action.ERROR, "value") == 1002
    assert outcome == Outcome.START_FAILURE


def test_an_error_while_playing_is_a_playback_error_and_ends_the_session():
    kinds, _, outcome = run(["play", {"wait": 20}, {"error": 3016}, {"wait": 10}, "share"])
    assert kinds[-2:] == [Action.ERROR, Action.QUIT] and Action.SHARE not in kinds
    assert outcome == Outcome.PLAYBACK_ERROR


def test_quitting_before_the_first_frame_is_an_exit_before_start():
    kinds, _, outcome = run(["load", "play", "quit"])
    assert kinds == [Action.LOAD, Action.PLAY_REQUEST, Action.QUIT]
    assert outcome == Outcome.ABANDONED_STARTUP


def test_a_load_without_play_is_an_impression_only():
    kinds, rows, outcome = run(["load", {"wait": 5}, "quit"])
    assert kinds == [Action.LOAD, Action.QUIT] and rows[-1, COL["t"]] == 5.0
    assert outcome == Outcome.NO_PLAY


def test_waiting_past_the_end_ends_the_content_at_its_duration():
    kinds, rows, outcome = run(["play", {"wait": 200}, "quit"], duration=120.0)
    assert at(rows, kinds, Action.ENDED, "pos") == 120.0 and at(rows, kinds, Action.ENDED, "t") == 121.0
    assert rows[-1, COL["t"]] == 201.0
    assert outcome == Outcome.COMPLETED


def test_replay_restarts_the_playhead_at_zero():
    kinds, rows, _ = run(["play", "end", "replay", {"wait": 20}, "quit"], duration=120.0)
    assert kinds[kinds.index(Action.ENDED) + 1] == Action.REPLAY
    assert at(rows, kinds, Action.REPLAY, "pos") == 0.0
    assert rows[-1, COL["pos"]] == 20.0


def test_a_pause_step_pauses_for_its_length_then_resumes():
    kinds, rows, _ = run(["play", {"wait": 10}, {"pause": 40}, "quit"])
    assert at(rows, kinds, Action.RESUME, "t") - at(rows, kinds, Action.PAUSE, "t") == 40.0
    assert at(rows, kinds, Action.RESUME, "pos") == 10.0


def test_a_buffer_step_is_a_stall_of_that_length():
    kinds, rows, _ = run(["play", {"buffer": 2.5}, "quit"])
    assert kinds[3:5] == [Action.STALL_START, Action.STALL_END]
    assert at(rows, kinds, Action.STALL_END, "value") == 2.5


def test_fullscreen_and_speed_change_the_state_carried_by_later_actions():
    kinds, rows, _ = run(["play", {"fullscreen": True}, {"speed": 2}, {"wait": 10}, "quit"])
    quit_row = rows[-1]
    assert quit_row[COL["screen"]] == 2 and quit_row[COL["speed"]] == 2.0
    assert quit_row[COL["pos"]] == 20.0  # 10 s at double speed


def test_a_step_that_needs_playback_before_play_is_rejected_naming_the_step():
    with pytest.raises(ScriptError, match=r"steps\[1\] \(pause\): needs a 'play' step"):
        run(["load", {"pause": 5}, "play"])


def test_a_script_entry_missing_from_the_catalog_is_rejected_naming_the_script():
    sc = Scenario.model_validate(
        {
            "catalog": {"entries": [{"id": "1_aaaaaaaa", "duration": 60}]},
            "script": [{"name": "lost", "entry": "1_zzzzzzzz", "steps": ["play", "quit"]}],
        }
    )
    with pytest.raises(ScriptError, match=r"script\[0\] 'lost'.entry: '1_zzzzzzzz' is not in the catalog"):
        next(generate_sessions(sc, seed=1))


SCRIPTED = {
    "catalog": {"entries": [{"id": "1_aaaaaaaa", "duration": 120}, {"id": "1_bbbbbbbb", "duration": 600}]},
    "clock": {"days": 1, "hourly": "flat", "weekday": "flat"},
    "script": [
        {"name": "seek", "entry": "1_bbbbbbbb", "steps": ["load", "play", {"wait": 30}, {"seek": "80%"}, "quit"]},
        {"name": "mobile-fail", "device": "mobile", "authenticated": False, "steps": ["load", "play", {"error": 1002}]},
        {"name": "twice", "repeat": 2, "steps": ["play", "end", "quit"]},
    ],
}


def test_a_scripted_scenario_plays_each_script_repeat_times_in_order():
    chunk = next(generate_sessions(Scenario.model_validate(SCRIPTED), seed=4))
    assert chunk.sessions["scripted"].tolist() == [0, 1, 2, 2]
    assert chunk.sessions["outcome"].tolist() == [
        Outcome.PARTIAL,
        Outcome.START_FAILURE,
        Outcome.COMPLETED,
        Outcome.COMPLETED,
    ]
    assert chunk.population.catalog.entry_ids[chunk.sessions["entry"]].tolist() == [
        "1_bbbbbbbb",
        "1_aaaaaaaa",
        "1_aaaaaaaa",
        "1_aaaaaaaa",
    ]


def test_scripted_sessions_take_identity_from_the_script():
    chunk = next(generate_sessions(Scenario.model_validate(SCRIPTED), seed=4))
    assert chunk.sessions["device"][1] == 1 and chunk.sessions["user_id"][1] == -1
    assert chunk.population.pools.ua_device[chunk.sessions["user_agent"][1]] == 1


def test_scripted_timelines_are_identical_across_seeds():
    a = next(generate_sessions(Scenario.model_validate(SCRIPTED), seed=1))
    b = next(generate_sessions(Scenario.model_validate(SCRIPTED), seed=2))
    for name in ("kind", "t", "pos", "value"):
        np.testing.assert_array_equal(a.actions[name], b.actions[name])
