"""player-sim against the real player's committed recordings, one test per aspect and session.

Each recorded session (tests/oracle/recordings, made by harness.mjs with the real Kaltura v7 player and
KAVA 0.15.1 in Chromium) is played again by player-sim from a script of the same steps, and what
player-sim sends is compared with what the real player sent. Needs no browser: runs everywhere.
Tolerances for what only timing explains live in oracle_compare and are commented there.
"""

from __future__ import annotations

from functools import cache

import pytest
from oracle_compare import ASPECTS, compare
from oracle_recordings import KAVA_015_TYPES, load_all
from oracle_sim import script_steps, simulate

RECORDINGS = load_all()
NAMES = sorted(RECORDINGS)


@cache
def simulated(name: str):
    return simulate(RECORDINGS[name])


def check(aspect: str, name: str) -> None:
    rec = RECORDINGS[name]
    diffs = compare(aspect, rec, simulated(name), script_steps(rec).played_s)
    assert not diffs, f"{name} {aspect}: player-sim differs from the real player:\n  " + "\n  ".join(diffs)


# --- the recordings are what they claim -------------------------------------------------------------------


def test_there_is_a_recording_of_every_scripted_session_in_both_transports():
    sessions = {"play-to-end", "replay", "long-pause", "seek-forward", "seek-back", "fullscreen-mute"}
    assert set(NAMES) == {f"{s}-{t}" for s in sessions for t in ("get", "post")}


@pytest.mark.parametrize("name", NAMES)
def test_a_recording_is_the_real_player_talking_only_to_loopback(name):
    rec = RECORDINGS[name]
    assert rec.data["versions"]["kaltura-player-js"] == "3.17.95"
    assert rec.data["versions"]["playkit-js-kava"] == "0.15.1"
    assert rec.data["off_host_requests"] == [] and rec.data["console_errors"] == []
    assert {r.method for r in rec.beacons} == {rec.transport.upper()}
    assert all(r.answer for r in rec.beacons), "every beacon was answered"
    assert {int(r.event) for r in rec.beacons} <= KAVA_015_TYPES
    assert rec.beacons[0].event == "1" and rec.beacons[0].index == 1


def test_the_comparison_finds_the_transport_difference_between_two_real_plays():
    # the same session over GET and over POST: the behaviour agrees, the wire does not
    get, post = RECORDINGS["seek-back-get"], RECORDINGS["seek-back-post"]
    played = script_steps(get).played_s
    for aspect in ("event_sequence", "event_index", "view_cadence", "session_start_time"):
        assert compare(aspect, get, post, played) == [], aspect
    assert compare("request_method", get, post, played)
    assert compare("preflights", get, get, played) == [] and compare("preflights", post, post, played) == []


def test_every_recorded_step_has_a_player_sim_script_step():
    for rec in RECORDINGS.values():
        tr = script_steps(rec)
        assert tr.unexpressed == [], (rec.name, tr.unexpressed)
        assert tr.steps[0] == "load" and tr.steps[-1] == "quit"


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("fullscreen-mute")])
def test_the_sound_mode_of_every_view_follows_mute_and_unmute_as_the_real_player_reports_it(name):
    # the same VIEWs (cadence is checked apart), so their soundMode values line up one to one
    def sound_modes(beacons):
        return [str(b.params.get("soundMode")) for b in beacons if b.event == "99"]

    real, sim = sound_modes(RECORDINGS[name].beacons), sound_modes(simulated(name).beacons)
    assert "1" in real, "the recording mutes before a VIEW"
    assert sim == real


# --- player-sim against the real player, aspect by aspect -------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_event_sequence(name):
    check("event_sequence", name)


@pytest.mark.parametrize("name", NAMES)
def test_param_sets(name):
    check("param_sets", name)


@pytest.mark.parametrize("name", NAMES)
def test_event_index(name):
    check("event_index", name)


@pytest.mark.parametrize("name", NAMES)
def test_view_cadence(name):
    check("view_cadence", name)


@pytest.mark.parametrize("name", NAMES)
def test_session_start_time(name):
    check("session_start_time", name)


@pytest.mark.parametrize("name", NAMES)
def test_request_method(name):
    check("request_method", name)


@pytest.mark.parametrize("name", NAMES)
def test_headers(name):
    check("headers", name)


@pytest.mark.parametrize("name", NAMES)
def test_preflights(name):
    check("preflights", name)


def test_every_aspect_has_its_test():
    assert {f"test_{a}" for a in ASPECTS} <= set(globals())
