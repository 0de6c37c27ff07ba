"""Legacy players live in their era: browsers and player versions of their years, and the
viewers' device clocks in eventTimestamp."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sim.player.model import generate_sessions
from sim.protocols.legacy.eras import ERA_VERSIONS
from sim.protocols.legacy.policy import beacons
from sim.scenario.model import Scenario


def legacy(flavor: str, seed: int = 3, sessions: int = 1500, **player) -> tuple:
    scenario = Scenario.model_validate({"player": {"legacy_flavor": flavor, **player}, "audience": {"viewers": 600}})
    chunk = next(iter(generate_sessions([scenario], seed=seed, sessions=sessions)))
    return chunk, beacons(chunk)


def majors(uas: list[str], token: str) -> list[int]:
    return [int(m.group(1)) for ua in uas if (m := re.search(token + r"/(\d+)", ua))]


def test_kdp_viewers_browse_with_flash_era_browsers():
    _, b = legacy("kdp")
    uas = set(b.columns["user_agent"].texts(np.arange(len(b))))
    assert 20 <= min(majors(uas, "Chrome")) and max(majors(uas, "Chrome")) <= 53
    assert max(majors(uas, "Firefox"), default=0) <= 50
    assert [ua for ua in uas if "MSIE" in ua or "Trident" in ua]  # the era's Internet Explorer
    assert not [ua for ua in uas if "Edg/" in ua]


def test_mwembed_viewers_browse_with_2014_to_2020_browsers():
    _, b = legacy("mwembed")
    uas = set(b.columns["user_agent"].texts(np.arange(len(b))))
    assert 38 <= min(majors(uas, "Chrome")) and max(majors(uas, "Chrome")) <= 87
    assert not [ua for ua in uas if "Edg/" in ua]  # EdgeHTML ("Edge/") and IE 11, not Chromium Edge


def test_v7_viewers_keep_the_populations_browsers():
    chunk, b = legacy("v7")
    pool = chunk.population.pools.user_agents
    assert set(b.columns["user_agent"].texts(np.arange(len(b)))) <= set(pool.tolist())


def test_a_viewer_keeps_its_device_and_browser_family_in_the_era():
    chunk, b = legacy("mwembed")
    pools = chunk.population.pools
    now = pools.user_agents[chunk.sessions["user_agent"][b.session]]
    then = np.array(b.columns["user_agent"].texts(np.arange(len(b))), dtype=object)
    for a, c in zip(now.tolist(), then.tolist()):
        assert ("Mobile" in a) == ("Mobile" in c)
        assert ("iPhone" in a or "iPad" in a) == ("iPhone" in c or "iPad" in c)


@pytest.mark.parametrize("flavor", ["kdp", "mwembed"])
def test_without_a_version_each_site_runs_one_release_of_the_era(flavor):
    chunk, b = legacy(flavor)
    tags = np.array(b.columns["clientTag"].texts(np.arange(len(b))), dtype=object)
    pages = chunk.sessions["referrer"][b.session]
    prefix = "kdp:v" if flavor == "kdp" else "kwidget:v"
    assert {t[len(prefix) :] for t in tags} <= set(ERA_VERSIONS[flavor])
    assert len(set(tags)) > 3
    for page in np.unique(pages):
        assert len(set(tags[pages == page])) == 1


def test_a_named_version_is_the_only_one():
    _, b = legacy("mwembed", version="2.52")
    assert set(b.columns["clientTag"].texts(np.arange(len(b)))) == {"kwidget:v2.52"}


def test_has_kanalony_follows_each_sites_mwembed_release():
    scenario = Scenario.model_validate({"player": {"legacy_flavor": "mwembed"}})
    chunk = next(iter(generate_sessions([scenario], seed=4, sessions=800)))
    b = beacons(chunk, with_kava=True)
    tags = b.columns["clientTag"].texts(np.arange(len(b)))
    flags = b.columns["hasKanalony"]
    for tag, flag in zip(tags, flags.tolist()):
        version = tuple(int(p) for p in tag.split("v")[1].split(".")[:2])
        assert flag == (1 if version >= (2, 61) else -1)


# --- device clocks ---------------------------------------------------------------------------------


def offsets_by_viewer(chunk, b) -> dict[int, set[int]]:
    """{viewer: the offsets of eventTimestamp from the true send time (ms)} of its beacons."""
    true_ms = np.floor(b.send_t * 1000.0 + 0.5).astype(np.int64)
    offset = b.columns["eventTimestamp"] - true_ms
    viewers = chunk.sessions["viewer"][b.session]
    out: dict[int, set[int]] = {}
    for v, o in zip(viewers.tolist(), offset.tolist()):
        out.setdefault(v, set()).add(o)
    return out


def test_each_viewers_clock_is_off_by_its_own_amount_in_every_session():
    chunk, b = legacy("mwembed", sessions=3000)
    by_viewer = offsets_by_viewer(chunk, b)
    assert all(len(o) == 1 for o in by_viewer.values())
    sessions_per_viewer = np.bincount(chunk.sessions["viewer"])
    assert (sessions_per_viewer > 1).sum() > 50  # returning viewers were checked too
    offsets = np.array([o.pop() for o in by_viewer.values()])
    assert 0.6 < np.mean(np.abs(offsets) < 1000) < 0.8  # most clocks within a second
    assert 0.01 < np.mean(np.abs(offsets) > 60_000) < 0.12  # some minutes off
    assert np.abs(offsets).max() > 3_000_000 or len(offsets) < 200  # a few whole hours


def test_clock_offsets_are_the_same_for_the_same_seed_and_differ_for_another():
    first = offsets_by_viewer(*legacy("mwembed", seed=5))
    again = offsets_by_viewer(*legacy("mwembed", seed=5))
    other = offsets_by_viewer(*legacy("mwembed", seed=6))
    assert first == again and first != other


def test_true_clocks_when_the_scenario_says_so():
    scenario = Scenario.model_validate({"player": {"legacy_flavor": "mwembed"}, "audience": {"clock_skew": False}})
    chunk = next(iter(generate_sessions([scenario], seed=3, sessions=300)))
    assert set().union(*offsets_by_viewer(chunk, beacons(chunk)).values()) == {0}


def test_kdp_adds_its_time_zone_bug_of_59_ms_per_minute_of_utc_offset():
    scenario = Scenario.model_validate(
        {
            "player": {"legacy_flavor": "kdp"},
            "audience": {"clock_skew": False},
            "clock": {"timezones": [{"utc_offset": "-05:00", "weight": 1}, {"utc_offset": "+01:00", "weight": 1}]},
        }
    )
    chunk = next(iter(generate_sessions([scenario], seed=3, sessions=300)))
    b = beacons(chunk)
    true_ms = np.floor(b.send_t * 1000.0 + 0.5).astype(np.int64)
    tz = chunk.sessions["tz_offset_min"][b.session].astype(np.int64)
    assert set(tz.tolist()) == {-300, 60}
    assert np.array_equal(b.columns["eventTimestamp"] - true_ms, 59 * tz)  # New York: 17.7 s behind
