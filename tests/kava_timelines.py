"""Hand-written and randomly built session timelines for the KAVA tests (a SessionChunk builder).

`Timeline` writes one session the way a test reads: `Timeline(100).load(0).request(1)
.playing(2).seek(12, to=80).quit(30)`; the playhead follows the clock while playing.
`random_timelines` builds many plausible sessions covering every action the KAVA policy
reads, standing in for the player model in sequence-rule tests.
"""

from __future__ import annotations

import numpy as np

from sim.player.timeline import ACTION_COLUMNS, Action, AdPosition, SessionChunk
from sim.player.truth import TRUTH_SESSION_COLUMNS, timeline_truth
from sim.population import Catalog, IdentityPools, Population
from sim.scenario.model import Scenario

START = 1_793_000_000.0  # 2026-10-25, epoch s
CAPTION_LANGUAGES = ["en", "es"]


def population(n_entries: int = 3) -> Population:
    catalog = Catalog(
        entry_ids=np.array([f"1_entry{i:03d}" for i in range(n_entries)], dtype=object),
        durations=np.full(n_entries, 100.0),
        live=np.zeros(n_entries, np.bool_),
        popularity=np.full(n_entries, 1.0 / n_entries),
    )
    pools = IdentityPools(
        user_agents=np.array(
            [
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
            ],
            dtype=object,
        ),
        ua_device=np.array([0, 1], np.int8),
        ua_os=np.array([0, 1], np.int8),
        ua_browser=np.array([0, 1], np.int8),
        ips=np.array(["203.0.113.7", "198.51.100.23"], dtype=object),
        ip_country=np.array([0, 1], np.int16),
        user_ids=np.array(["alice@example.edu", "bob smith"], dtype=object),
        referrers=np.array(
            ["https://learn.example.edu/course/7/lecture?id=3&t=a b", "https://www.example.com/videos/12"], dtype=object
        ),
        os_names=["windows", "ios"],
        browser_names=["chrome", "safari"],
        country_codes=["US", "GB"],
        caption_languages=list(CAPTION_LANGUAGES),
    )
    return Population(catalog, pools)


class Timeline:
    """One session's actions; `pos` follows the clock at the current speed while playing."""

    def __init__(self, duration: float = 100.0, live: bool = False, user: int = 0, entry: int = 0, scenario: int = 0):
        self.duration, self.live, self.user, self.entry, self.scenario = duration, live, user, entry, scenario
        self.rows: list[dict] = []
        self.t = 0.0
        self.pos = 0.0
        self._moving = False
        self.state = dict(bitrate=1500.0, screen=1, sound=2, tab=2, speed=1.0)

    def _at(self, t: float) -> None:
        assert t >= self.t, f"time goes back: {t} < {self.t}"
        if self._moving:
            self.pos = min(self.duration, self.pos + (t - self.t) * self.state["speed"])
        self.t = t

    def act(self, kind: Action, t: float, value: float = 0.0, ad_pos: int = 0, ad_index: int = 0, **state) -> Timeline:
        self._at(t)
        self.state.update(state)
        self.rows.append(
            dict(kind=int(kind), t=t, pos=self.pos, value=value, ad_pos=ad_pos, ad_index=ad_index, **self.state)
        )
        return self

    def load(self, t: float = 0.0):
        return self.act(Action.LOAD, t)

    def request(self, t: float):
        return self.act(Action.PLAY_REQUEST, t)

    def playing(self, t: float):
        self.act(Action.PLAYING, t, value=0.0)
        self._moving = True
        return self

    def pause(self, t: float):
        self.act(Action.PAUSE, t)
        self._moving = False
        return self

    def resume(self, t: float):
        self.act(Action.RESUME, t)
        self._moving = True
        return self

    def seek(self, t: float, to: float):
        self.act(Action.SEEK, t, value=to)
        self.pos = to
        return self

    def stall(self, t: float, seconds: float):
        self.act(Action.STALL_START, t)
        self._moving, was = False, self._moving
        self.act(Action.STALL_END, t + seconds, value=seconds)
        self._moving = was
        return self

    def ended(self, t: float | None = None):
        if t is None:
            t = self.t + (self.duration - self.pos) / self.state["speed"]
        self._at(t)
        self.pos = self.duration
        self._moving = False
        self.rows.append(dict(kind=int(Action.ENDED), t=t, pos=self.pos, value=0.0, ad_pos=0, ad_index=0, **self.state))
        return self

    def replay(self, t: float):
        self._at(t)
        self.pos = 0.0
        self.rows.append(dict(kind=int(Action.REPLAY), t=t, pos=0.0, value=0.0, ad_pos=0, ad_index=0, **self.state))
        self._moving = True
        return self

    def error(self, t: float, code: int = 3016):
        self.act(Action.ERROR, t, value=code)
        self._moving = False
        return self

    def ad_break(self, t: float, ads: int = 1, length: float = 15.0, where: AdPosition = AdPosition.PREROLL):
        was = self._moving
        self.act(Action.AD_BREAK_START, t, value=ads, ad_pos=int(where))
        self._moving = False
        for i in range(ads):
            at = self.t
            self.act(Action.AD_IMPRESSION, at, ad_pos=int(where), ad_index=i)
            self.act(Action.AD_START, at + 0.5, value=length, ad_pos=int(where), ad_index=i)
            for q, kind in enumerate(
                (Action.AD_FIRST_QUARTILE, Action.AD_MIDPOINT, Action.AD_THIRD_QUARTILE, Action.AD_COMPLETE), start=1
            ):
                self.act(kind, at + 0.5 + length * q / 4, ad_pos=int(where), ad_index=i)
        self.act(Action.AD_BREAK_END, self.t + 0.1, ad_pos=int(where))
        self._moving = was
        return self

    def quit(self, t: float):
        self.act(Action.QUIT, t)
        self._moving = False
        return self


def session_chunk(timelines: list[Timeline], scenarios: list[Scenario] | None = None, seed: int = 7) -> SessionChunk:
    """A SessionChunk holding `timelines`, one session each, in order."""
    scenarios = scenarios or [Scenario()]
    n = len(timelines)
    counts = np.array([len(tl.rows) for tl in timelines], np.int32)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sessions = {
        "session_seq": np.arange(n, dtype=np.int64),
        "scenario": np.array([tl.scenario for tl in timelines], np.int16),
        "viewer": np.arange(n, dtype=np.int64),
        "returning": np.zeros(n, np.bool_),
        "entry": np.array([tl.entry for tl in timelines], np.int32),
        "duration": np.array([tl.duration for tl in timelines], np.float64),
        "live": np.array([tl.live for tl in timelines], np.bool_),
        "start": START + 3600.0 * np.arange(n, dtype=np.float64),
        "tz_offset_min": np.zeros(n, np.int16),
        "device": np.zeros(n, np.int8),
        "os": np.zeros(n, np.int8),
        "browser": np.zeros(n, np.int8),
        "country": np.zeros(n, np.int16),
        "user_agent": (np.arange(n) % 2).astype(np.int32),
        "ip": (np.arange(n) % 2).astype(np.int32),
        "user_id": np.array([tl.user for tl in timelines], np.int32),
        "referrer": (np.arange(n) % 2).astype(np.int32),
        "autoplay": np.zeros(n, np.bool_),
        "intended_fraction": np.ones(n, np.float32),
        "impaired": np.zeros(n, np.bool_),
        "outcome": np.zeros(n, np.int8),
        "scripted": np.full(n, -1, np.int16),
        "first_action": first,
        "n_actions": counts,
    }
    rows = [dict(r, session=i) for i, tl in enumerate(timelines) for r in tl.rows]
    actions = {name: np.array([r[name] for r in rows], dtype=dtype) for name, dtype in ACTION_COLUMNS.items()}
    truth = timeline_truth(actions["kind"], actions["t"], actions["pos"], actions["value"], first, counts)
    sessions.update(zip(TRUTH_SESSION_COLUMNS, truth))
    chunk = SessionChunk(
        sessions,
        actions,
        scenarios,
        [f"s{i}" for i in range(len(scenarios))],
        population(),
        np.random.SeedSequence(seed),
    )
    chunk.check_columns()
    return chunk


def random_timelines(n: int, seed: int = 1, scenario: int = 0) -> list[Timeline]:
    """`n` plausible sessions: bounces, start failures, ads, pauses (short and long), seeks both
    ways, rebuffers, UI clicks, speed and caption changes, ends, replays and mid-stream errors."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        duration = float(rng.choice([30.0, 95.0, 240.0, 1300.0]))
        live = bool(rng.random() < 0.1)
        tl = Timeline(
            duration, live=live, user=int(rng.integers(-1, 2)), entry=int(rng.integers(0, 3)), scenario=scenario
        )
        tl.load(0.0)
        if rng.random() < 0.2:  # left without playing
            out.append(tl.quit(float(rng.uniform(1, 30))))
            continue
        tl.request(float(rng.uniform(0.5, 5)))
        if rng.random() < 0.05:  # start failure
            out.append(tl.error(tl.t + float(rng.uniform(0.2, 3)), code=3016).quit(tl.t + 1))
            continue
        if rng.random() < 0.3:
            tl.ad_break(tl.t + 0.2, ads=int(rng.integers(1, 3)))
        tl.playing(tl.t + float(rng.lognormal(0.2, 0.5)))
        paused = False
        for _step in range(int(rng.integers(0, 12))):
            if tl.pos >= tl.duration - 1:
                break
            room = (tl.duration - tl.pos) / tl.state["speed"]
            t = tl.t + float(rng.uniform(0.2, max(0.3, min(room - 0.1, 60.0))))
            if paused:
                tl.resume(t)
                paused = False
                continue
            r = rng.random()
            if r < 0.18:
                tl.pause(t)
                paused = True
                if rng.random() < 0.4:  # a long pause: the KAVA session resets
                    tl.resume(t + float(rng.uniform(31, 200)))
                    paused = False
            elif r < 0.38 and not live:
                tl.seek(t, to=float(rng.uniform(0, tl.duration * 0.98)))
            elif r < 0.5:
                tl.stall(t, float(rng.lognormal(0.5, 0.8)))
            elif r < 0.55:
                tl.act(Action.ENTER_FULLSCREEN, t, screen=2)
            elif r < 0.6:
                tl.act(Action.EXIT_FULLSCREEN, t, screen=1)
            elif r < 0.65:
                tl.act(Action.SPEED, t, value=1.5, speed=1.5)
            elif r < 0.7:
                tl.act(Action.CAPTIONS, t, value=float(rng.integers(0, 2)))
            elif r < 0.78:
                kbps = float(rng.choice([800, 1500, 3000]))
                tl.act(
                    Action.FLAVOR_SWITCH if rng.random() < 0.9 else Action.SOURCE_SELECTED, t, value=kbps, bitrate=kbps
                )
            elif r < 0.82:
                tl.act(Action(int(rng.choice([15, 16, 17, 18, 19, 20, 21]))), t)
            elif r < 0.86:
                tl.act(Action.SOUND, t, value=1.0, sound=1)
            elif r < 0.9 and not live and tl.duration > 200:
                tl.ad_break(t, ads=1, where=AdPosition.MIDROLL)
            elif r < 0.93:
                tl.error(t, code=7003)
                break
        if tl.rows[-1]["kind"] == Action.ERROR:
            out.append(tl.quit(tl.t + 0.5))
            continue
        if paused:
            tl.resume(tl.t + 1.0)
        if not live and rng.random() < 0.4:
            tl.ended()
            if rng.random() < 0.3:
                tl.replay(tl.t + 2.0)
                tl.quit(tl.t + float(rng.uniform(5, 40)))
            else:
                tl.quit(tl.t + 3.0)
        else:
            remaining = (tl.duration - tl.pos) / tl.state["speed"]
            tl.quit(
                tl.t + float(rng.uniform(0.1, max(0.2, min(remaining - 0.05, 90.0))))
                if not live
                else tl.t + float(rng.uniform(1, 90))
            )
        out.append(tl)
    return out
