"""Session timelines for the legacy stats tests: hand-written ones and ones from the player model.

`Timeline` writes one session as a test reads: `Timeline(100).load(0).request(1).playing(2)
.seek(12, to=80).quit(30)`; while playing, the playhead follows the clock (1 s per s).
`chunk_of([...], flavor="kdp")` turns timelines into a SessionChunk of one scenario;
`generated(flavor)` gives sessions of the real player model with ads, bumpers, seeks,
stalls and replays switched up so that every legacy rule gets exercised.
"""

from __future__ import annotations

import functools

import numpy as np

from sim.player.timeline import ACTION_COLUMNS, SESSION_COLUMNS, Action, AdPosition, SessionChunk
from sim.population import Catalog, IdentityPools, Population
from sim.scenario.model import Scenario

START = 1_793_000_000.0  # 2026-10-25, epoch s
FLAVORS = ("kdp", "mwembed", "v7")


def population() -> Population:
    catalog = Catalog(
        entry_ids=np.array(["1_lecture01", "0_4lxrbaw9"], dtype=object),
        durations=np.array([100.0, 403.0]),
        live=np.zeros(2, np.bool_),
        popularity=np.array([0.5, 0.5]),
    )
    pools = IdentityPools(
        user_agents=np.array(["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"], dtype=object),
        ua_device=np.zeros(1, np.int8),
        ua_os=np.zeros(1, np.int8),
        ua_browser=np.zeros(1, np.int8),
        ips=np.array(["203.0.113.7"], dtype=object),
        ip_country=np.zeros(1, np.int16),
        user_ids=np.array(["alice@example.edu", "bob smith"], dtype=object),
        referrers=np.array(
            ["https://learn.example.edu/course/7/lecture?id=3&t=a b", "https://www.example.com/videos/12"], dtype=object
        ),
        os_names=["windows"],
        browser_names=["chrome"],
        country_codes=["US"],
        caption_languages=["en"],
    )
    return Population(catalog, pools)


class Timeline:
    """One session's actions; the playhead advances with the clock while playing."""

    def __init__(self, duration: float = 100.0, *, live: bool = False, user: int = 0, viewer: int = 0):
        self.duration, self.live, self.user, self.viewer = duration, live, user, viewer
        self.rows: list[tuple] = []
        self._pos, self._t, self._playing = 0.0, 0.0, False

    def _at(self, t: float) -> float:
        if self._playing:
            self._pos = min(self.duration, self._pos + (t - self._t))
        self._t = t
        return self._pos

    def act(self, kind: Action, t: float, value: float = 0.0, ad_pos: AdPosition = AdPosition.NONE) -> Timeline:
        self.rows.append((int(kind), float(t), self._at(t), float(value), int(ad_pos)))
        return self

    def load(self, t=0.0):
        return self.act(Action.LOAD, t)

    def request(self, t):
        return self.act(Action.PLAY_REQUEST, t)

    def playing(self, t):
        self.act(Action.PLAYING, t)
        self._playing = True
        return self

    def pause(self, t):
        self.act(Action.PAUSE, t)
        self._playing = False
        return self

    def resume(self, t):
        self.act(Action.RESUME, t)
        self._playing = True
        return self

    def seek(self, t, to):
        self.act(Action.SEEK, t, value=to)
        self._pos = float(to)
        return self

    def stall(self, t, seconds):
        self.act(Action.STALL_START, t)
        self._playing = False
        self.act(Action.STALL_END, t + seconds, value=seconds)
        self._playing = True
        return self

    def ended(self, t):
        self.act(Action.ENDED, t)
        self._playing = False
        return self

    def replay(self, t):
        self.act(Action.REPLAY, t)
        self._pos, self._playing = 0.0, True
        self.rows[-1] = self.rows[-1][:2] + (0.0,) + self.rows[-1][3:]
        return self

    def ad_break(self, t, ad_pos, ad_length=30.0):
        """A one-ad pod with all its notifications; content stays where it is."""
        was_playing = self._playing
        self._at(t)
        self._playing = False
        self.act(Action.AD_BREAK_START, t, 1, ad_pos).act(Action.AD_IMPRESSION, t, 0, ad_pos)
        self.act(Action.AD_START, t, ad_length, ad_pos)
        for k, q in ((Action.AD_FIRST_QUARTILE, 0.25), (Action.AD_MIDPOINT, 0.5), (Action.AD_THIRD_QUARTILE, 0.75)):
            self.act(k, t + q * ad_length, 0, ad_pos)
        self.act(Action.AD_COMPLETE, t + ad_length, 0, ad_pos).act(Action.AD_BREAK_END, t + ad_length, 0, ad_pos)
        self._playing = was_playing
        return self

    def quit(self, t):
        return self.act(Action.QUIT, t)


def chunk_of(
    timelines: list[Timeline], flavor: str = "kdp", *, version: str = "2.80", ks: str | None = None, seed: int = 7
) -> SessionChunk:
    # device clocks kept true here: the tests read send times from eventTimestamp
    scenario = Scenario(
        player={"legacy_flavor": flavor, "version": version}, partner={"ks": ks}, audience={"clock_skew": False}
    )
    n = len(timelines)
    sessions = {name: np.zeros(n, dtype) for name, dtype in SESSION_COLUMNS.items()}
    rows = []
    for i, tl in enumerate(timelines):
        sessions["session_seq"][i] = i
        sessions["viewer"][i] = tl.viewer
        sessions["entry"][i] = i % 2
        sessions["duration"][i] = tl.duration
        sessions["live"][i] = tl.live
        sessions["start"][i] = START + 600.0 * i
        sessions["user_id"][i] = tl.user
        sessions["referrer"][i] = i % 2
        sessions["first_action"][i] = len(rows)
        sessions["n_actions"][i] = len(tl.rows)
        rows += [(i,) + r for r in tl.rows]
    actions = {name: np.zeros(len(rows), dtype) for name, dtype in ACTION_COLUMNS.items()}
    for j, (i, kind, t, pos, value, ad_pos) in enumerate(rows):
        actions["session"][j], actions["kind"][j], actions["t"][j] = i, kind, t
        actions["pos"][j], actions["value"][j], actions["ad_pos"][j] = pos, value, ad_pos
    chunk = SessionChunk(sessions, actions, [scenario], ["hand-written"], population(), np.random.SeedSequence(seed))
    chunk.check_columns()
    return chunk


@functools.cache
def generated(flavor: str, sessions: int = 1500, seed: int = 11) -> SessionChunk:
    """Sessions from the player model, tuned to hit ads, bumpers, seeks, stalls and replays often."""
    from sim.player.model import generate_sessions

    scenario = Scenario(
        player={"legacy_flavor": flavor, "version": "2.80"},
        catalog={"count": 40, "live_share": 0.1},
        behaviour={
            "play_rate": 0.9,
            "replay_after_end": 0.3,
            "seeks": {"per_play": {"dist": "poisson", "mean": 3}},
            "rebuffering": {"impaired_share": 0.8},
            "clicks": {"share": 0.2, "download": 0.1, "report": 0.1},
            "fullscreen": {"desktop": 0.5, "mobile": 0.5, "tablet": 0.5},
        },
        ads={
            "preroll": {},
            "midroll": {"at_fractions": [0.5]},
            "postroll": {},
            "overlay": {"share": 0.2},
            "bumpers": {"pre": 0.3, "post": 0.3},
        },
    )
    return next(iter(generate_sessions([scenario], seed=seed, sessions=sessions)))
