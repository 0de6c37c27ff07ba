"""Timeline invariants of the player model, over random valid scenarios (hypothesis).

Whatever the scenario, every session's timeline must read like a real player's: time never
runs backwards, the playhead stays inside the content, nothing plays before the play
request, stalls end unless the viewer leaves during them, ad actions sit inside ad breaks,
a replay restarts at 0, QUIT comes last and once, and the recorded outcome is the one the
timeline shows.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from sim.player.model import generate_sessions
from sim.player.timeline import Action as A, AdPosition, Outcome
from sim.scenario.model import Scenario

AD_ACTIONS = {
    A.AD_IMPRESSION,
    A.AD_START,
    A.AD_FIRST_QUARTILE,
    A.AD_MIDPOINT,
    A.AD_THIRD_QUARTILE,
    A.AD_COMPLETE,
    A.AD_SKIP,
    A.AD_CLICK,
    A.AD_ERROR,
}
CONTENT_ACTIONS = {
    A.PAUSE,
    A.RESUME,
    A.SEEK,
    A.STALL_START,
    A.STALL_END,
    A.ENTER_FULLSCREEN,
    A.EXIT_FULLSCREEN,
    A.SPEED,
    A.CAPTIONS,
    A.FLAVOR_SWITCH,
    A.SOURCE_SELECTED,
    A.SHARE,
    A.SHARE_NETWORK,
    A.DOWNLOAD,
    A.REPORT,
    A.RELATED_OPEN,
    A.RELATED_SELECTED,
    A.INFO,
    A.ENDED,
    A.REPLAY,
    A.SOUND,
    A.OVERLAY_START,
    A.OVERLAY_CLICK,
}


def expected_outcome(kinds: list[A], ad_pos: list[int]) -> Outcome:
    """The outcome a timeline shows (the specification the model's `outcome` column must meet)."""
    if A.PLAY_REQUEST not in kinds:
        return Outcome.NO_PLAY
    played = A.PLAYING in kinds
    if A.ERROR in kinds:
        return Outcome.PLAYBACK_ERROR if played else Outcome.START_FAILURE
    open_break = kinds.count(A.AD_BREAK_START) > kinds.count(A.AD_BREAK_END)
    if not played:
        return Outcome.ABANDONED_AD if open_break else Outcome.ABANDONED_STARTUP
    if kinds[-2] == A.STALL_START:
        return Outcome.STALL_QUIT
    last_break = len(kinds) - 1 - kinds[::-1].index(A.AD_BREAK_START) if A.AD_BREAK_START in kinds else -1
    if open_break and ad_pos[last_break] == AdPosition.MIDROLL:
        return Outcome.AD_BREAK_QUIT
    return Outcome.COMPLETED if A.ENDED in kinds else Outcome.PARTIAL


def timeline_problems(chunk, i: int) -> list[str]:
    """Everything wrong with session i's timeline (empty when it reads like a real player's)."""
    a = chunk.actions_of(i)
    kinds = [A(k) for k in a["kind"]]
    t, pos, duration = a["t"], a["pos"], chunk.sessions["duration"][i]
    problems = []
    if np.any(np.diff(t) < 0):
        problems.append("t decreases")
    if np.any(pos < -1e-9) or np.any(pos > duration + 1e-6):
        problems.append(f"pos outside [0, {duration}]")
    if kinds[0] != A.LOAD:
        problems.append("does not start with LOAD")
    if kinds.count(A.QUIT) != 1 or kinds[-1] != A.QUIT:
        problems.append("QUIT is not last and once")
    requested = playing = in_break = False
    for j, k in enumerate(kinds):
        if k == A.PLAY_REQUEST:
            requested = True
        if k == A.PLAYING:
            playing = True
        if k not in (A.LOAD, A.QUIT) and not requested:
            problems.append(f"{k.name} before PLAY_REQUEST")
        if k in CONTENT_ACTIONS and not playing:
            problems.append(f"{k.name} before PLAYING")
        if k == A.STALL_START and kinds[j + 1] not in (A.STALL_END, A.QUIT):
            problems.append("STALL_START without STALL_END or QUIT right after")
        if k == A.STALL_END and kinds[j - 1] != A.STALL_START:
            problems.append("STALL_END without STALL_START")
        if k == A.AD_BREAK_START:
            in_break = True
        if k == A.AD_BREAK_END:
            in_break = False
        if k in AD_ACTIONS and not in_break:
            problems.append(f"{k.name} outside an ad break")
        if k == A.REPLAY and (pos[j] != 0 or A.ENDED not in kinds[:j]):
            problems.append("REPLAY not at 0 after ENDED")
        if k == A.ENDED and chunk.sessions["live"][i]:
            problems.append("ENDED on a live entry")
    want = expected_outcome(kinds, list(a["ad_pos"]))
    if chunk.sessions["outcome"][i] != want:
        problems.append(f"outcome {Outcome(chunk.sessions['outcome'][i]).name}, timeline shows {want.name}")
    return problems


def dist(draw_, low, high):
    """A random distribution spec over [low, high]: a number, uniform or lognormal."""
    kind = draw_(st.sampled_from(["fixed", "uniform", "lognormal"]))
    if kind == "fixed":
        return draw_(st.floats(low, high))
    if kind == "uniform":
        a = draw_(st.floats(low, high))
        return {"dist": "uniform", "low": a, "high": draw_(st.floats(a, high))}
    return {
        "dist": "lognormal",
        "median": draw_(st.floats(max(low, 0.01), high)),
        "sigma": draw_(st.floats(0.1, 1.5)),
        "max": high,
    }


prob = st.floats(0, 1)


@st.composite
def scenarios(draw_):
    bounce = draw_(st.floats(0, 0.5))
    ads = {
        "start_rate": draw_(prob),
        "skip_rate": draw_(prob),
        "skippable_after_s": draw_(st.one_of(st.none(), st.floats(1, 20))),
        "overlay": {"share": draw_(prob), "click_rate": draw_(prob)},
        "bumpers": {"pre": draw_(prob), "post": draw_(prob), "click_rate": draw_(prob)},
        "click_rate": {"desktop": draw_(prob), "mobile": draw_(prob), "tablet": draw_(prob), "ctv": draw_(prob)},
    }
    if draw_(st.booleans()):
        ads["preroll"] = {
            "share": draw_(prob),
            "completion": draw_(prob),
            "abandon_per_ad": draw_(prob),
            "size": draw_(st.integers(0, 3)),
        }
    if draw_(st.booleans()):
        rule = draw_(st.sampled_from(["at_fractions", "at_s", "every_s", None]))
        mid = {"completion": draw_(prob), "break_exit": draw_(prob), "size": draw_(st.integers(0, 3))}
        if rule == "at_fractions":
            mid[rule] = draw_(st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4))
        elif rule == "at_s":
            mid[rule] = draw_(st.lists(st.floats(1, 500), min_size=1, max_size=4))
        elif rule == "every_s":
            mid[rule] = draw_(st.floats(20, 400))
        ads["midroll"] = mid
    if draw_(st.booleans()):
        ads["postroll"] = {"share": draw_(prob), "completion": draw_(prob), "size": draw_(st.integers(0, 2))}
    return Scenario.model_validate(
        {
            "catalog": {"count": 40, "live_share": draw_(st.floats(0, 0.5)), "duration": dist(draw_, 5, 1200)},
            "audience": {"viewers": 200, "devices": {"desktop": 1, "mobile": 1, "tablet": 1, "ctv": 1}},
            "behaviour": {
                "play_rate": draw_(st.floats(0.3, 1)),
                "autoplay": draw_(prob),
                "autoplay_play_rate": draw_(prob),
                "start_failure": draw_(st.floats(0, 0.3)),
                "startup": {"time_s": dist(draw_, 0.1, 15), "grace_s": draw_(st.floats(0, 5))},
                "watched_fraction": {"early_bounce": bounce, "complete": draw_(st.floats(0, 1 - bounce))},
                "rebuffering": {
                    "impaired_share": draw_(prob),
                    "impaired_per_min": draw_(st.floats(0, 5)),
                    "stall_s": dist(draw_, 0.1, 30),
                    "quit_after_stall": draw_(st.floats(0, 0.5)),
                },
                "pauses": {"per_min": draw_(st.floats(0, 3)), "length_s": dist(draw_, 0.5, 120)},
                "seeks": {
                    "per_play": {"dist": "poisson", "mean": draw_(st.floats(0, 6))},
                    "backward_share": draw_(prob),
                },
                "fullscreen": {"desktop": draw_(prob), "mobile": draw_(prob)},
                "speed": {"share": draw_(prob)},
                "captions": {"share": draw_(prob)},
                "clicks": {"share": draw_(prob), "related": draw_(prob), "info": draw_(prob)},
                "sound": {"muted_autoplay_share": draw_(prob), "unmute_per_min": draw_(st.floats(0, 3))},
                "flavor_switch_per_min": draw_(st.floats(0, 3)),
                "manual_source_share": draw_(prob),
                "replay_after_end": draw_(prob),
                "error_mid_stream": draw_(st.floats(0, 0.3)),
                "tab_hidden_per_min": draw_(st.floats(0, 2)),
            },
            "ads": ads,
        }
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32 - 1))
def test_every_session_of_any_valid_scenario_reads_like_a_real_player(scenario, seed):
    for chunk in generate_sessions([scenario], seed=seed, sessions=300, days=1):
        chunk.check_columns()
        for i in range(chunk.n_sessions):
            assert timeline_problems(chunk, i) == [], f"session {i}: {chunk.actions_of(i)['kind'].tolist()}"
