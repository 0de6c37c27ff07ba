"""`--protocol both` is one player: the legacy stats plugin and the KAVA line that shipped beside it
report the same player."""

from __future__ import annotations

import numpy as np

from sim.generate import beacon_chunks
from sim.player.model import generate_sessions
from sim.protocols.kava.policy import beacons as kava_beacons
from sim.scenario.model import Scenario


def both(*flavors: str, sessions: int = 400, seed: int = 8):
    scenarios = [Scenario.model_validate({"player": {"legacy_flavor": f}}) for f in flavors]
    chunk = next(iter(generate_sessions(scenarios, seed=seed, sessions=sessions)))
    legacy, kava = beacon_chunks(chunk, "both")
    return chunk, legacy, kava


def per_session(b, column: str) -> dict[int, set]:
    out: dict[int, set] = {}
    for s, v in zip(b.session.tolist(), b.columns[column].texts(np.arange(len(b)))):
        out.setdefault(s, set()).add(v)
    return out


def test_v7_kanalytics_and_kava_share_the_players_session_id():
    chunk, legacy, kava = both("v7")
    legacy_ids, kava_ids = per_session(legacy, "sessionId"), per_session(kava, "sessionId")
    shared = legacy_ids.keys() & kava_ids.keys()
    assert len(shared) > 100
    assert all(legacy_ids[s] == kava_ids[s] and len(kava_ids[s]) == 1 for s in shared)
    assert all(":" in next(iter(kava_ids[s])) for s in shared)
    # the ids are KAVA's own: the same as a KAVA-only run of the chunk
    alone = per_session(kava_beacons(chunk), "sessionId")
    assert all(alone[s] == kava_ids[s] for s in shared)


def test_mwembed_kanalony_sends_the_stats_plugins_page_guid_and_the_entry_counter():
    _, legacy, kava = both("mwembed")
    legacy_ids, kava_ids = per_session(legacy, "sessionId"), per_session(kava, "sessionId")
    shared = legacy_ids.keys() & kava_ids.keys()
    assert len(shared) > 100
    assert all(kava_ids[s] == {next(iter(legacy_ids[s])) + "-1"} for s in shared)


def test_both_plugins_of_a_session_go_out_from_the_same_browser():
    for flavor in ("mwembed", "v7"):
        _, legacy, kava = both(flavor)
        legacy_ua, kava_ua = per_session(legacy, "user_agent"), per_session(kava, "user_agent")
        assert all(legacy_ua[s] == kava_ua[s] for s in legacy_ua.keys() & kava_ua.keys()), flavor


def test_kdp_had_no_kava_line_beside_it():
    chunk, legacy, kava = both("kdp", "v7")
    kdp = chunk.sessions["scenario"] == 0
    assert kdp.any() and (~kdp).any()
    assert not kdp[kava.session].any()  # no KAVA from a KDP player
    assert kdp[legacy.session].any() and (~kdp[kava.session]).all() and len(kava)
    ids = kava.ledger_session.texts(np.arange(len(kava)))
    assert ids == kava.columns["sessionId"].texts(np.arange(len(kava)))
