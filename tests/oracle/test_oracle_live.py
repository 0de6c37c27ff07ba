"""The live oracle: the real Kaltura v7 player with KAVA 0.15.1 in headless Chromium, run now.

harness.mjs plays every scripted session again (about two minutes). The fresh recordings must agree
with the committed ones in every aspect (only timing may differ: the tolerances are oracle_compare's),
so the committed fixtures that the offline tests use stay the real player's behaviour; then the fresh
recordings are compared with player-sim as the offline tests do.

Installs nothing: skips with the reason when chromium, node, ffmpeg or the npm modules are missing
(`.ci/run` installs them; `npm ci` in tests/oracle).
"""

from __future__ import annotations

import oracle_harness
import pytest
from oracle_compare import ASPECTS, compare
from oracle_recordings import load_all
from oracle_sim import script_steps, simulate

REASON = oracle_harness.missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"live oracle: {REASON}")
COMMITTED = load_all()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle-live")
    oracle_harness.run(out)
    return load_all(out)


def test_the_harness_records_every_committed_session(fresh):
    assert set(fresh) == set(COMMITTED)
    for name, rec in fresh.items():
        assert rec.data["off_host_requests"] == [], f"{name}: the page tried to leave the machine"
        assert rec.data["console_errors"] == [], f"{name}: {rec.data['console_errors']}"
        assert rec.beacons, f"{name}: no beacon recorded"


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_the_real_player_still_behaves_as_recorded(fresh, aspect):
    diffs = []
    for name, committed in COMMITTED.items():
        played = max(script_steps(committed).played_s, script_steps(fresh[name]).played_s)
        diffs += [f"{name}: {d}" for d in compare(aspect, committed, fresh[name], played, ("recorded", "now"))]
    assert not diffs, (
        f"{aspect}: the real player now differs from tests/oracle/recordings (refresh them, "
        f"see README):\n  " + "\n  ".join(diffs)
    )


@pytest.fixture(scope="module")
def simulated(fresh):
    return {name: simulate(rec) for name, rec in fresh.items()}


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_player_sim_against_the_live_player(fresh, simulated, aspect):
    diffs = []
    for name, rec in fresh.items():
        sim = simulated[name]
        diffs += [f"{name}: {d}" for d in compare(aspect, rec, sim, script_steps(rec).played_s)]
    assert not diffs, f"{aspect}: player-sim differs from the live real player:\n  " + "\n  ".join(diffs)
