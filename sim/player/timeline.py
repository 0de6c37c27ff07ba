"""The contract between the player model and everything downstream: sessions as columns.

A `SessionChunk` holds a batch of sessions (one viewer's player loading one entry) and
their timelines of player actions, as flat numpy arrays. Nothing here knows about
protocols: beacon policies read these columns and decide what their plugin would send.

Usage::

    for chunk in generate_sessions(scenario, seed=7, sessions=1_000_000):
        for i in range(chunk.n_sessions):
            acts = chunk.actions_of(i)      # slice of the action columns
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..population import Population


class Action(IntEnum):
    """What a player does. `pos` is the content playhead (s) when the action happens."""

    LOAD = 1              # player loaded the entry (page view with a player)
    PLAY_REQUEST = 2      # play pressed or autoplay requested
    PLAYING = 3           # first content frame (the join); value = startup seconds
    PAUSE = 4
    RESUME = 5            # playback continues after a PAUSE
    SEEK = 6              # pos = playhead before the seek, value = target position
    STALL_START = 7       # rebuffer begins (content playback)
    STALL_END = 8         # value = stall seconds
    ENTER_FULLSCREEN = 9
    EXIT_FULLSCREEN = 10
    SPEED = 11            # value = new playback rate
    CAPTIONS = 12         # value = caption language index (into SessionChunk.caption_languages)
    FLAVOR_SWITCH = 13    # ABR rendition change; value = new bitrate kbps
    SOURCE_SELECTED = 14  # manual rendition change; value = new bitrate kbps
    SHARE = 15
    SHARE_NETWORK = 16
    DOWNLOAD = 17
    REPORT = 18
    RELATED_OPEN = 19
    RELATED_SELECTED = 20
    INFO = 21
    ENDED = 22            # playhead reached the end of the content
    REPLAY = 23           # playback restarts at 0 after ENDED
    ERROR = 24            # player error; value = error code. Fatal: QUIT follows
    QUIT = 25             # viewer leaves (always the last action of a session)
    SOUND = 26            # value = new sound mode (1 muted, 2 on)
    AD_BREAK_START = 30   # a pod begins; value = number of ads in the pod
    AD_IMPRESSION = 31    # an ad is requested / its slot shown
    AD_START = 32         # ad creative starts playing; value = ad length s
    AD_FIRST_QUARTILE = 33
    AD_MIDPOINT = 34
    AD_THIRD_QUARTILE = 35
    AD_COMPLETE = 36
    AD_SKIP = 37
    AD_CLICK = 38
    AD_ERROR = 39         # ad failed to play (or no fill)
    AD_BREAK_END = 40
    OVERLAY_START = 41    # overlay (non-linear) ad shown over content
    OVERLAY_CLICK = 42
    BUMPER_START = 43     # pre or post bumper (ad_pos says which); value = length s
    BUMPER_CLICK = 44


class AdPosition(IntEnum):
    NONE = 0
    PREROLL = 1
    MIDROLL = 2
    POSTROLL = 3
    OVERLAY = 4


class Outcome(IntEnum):
    """How a session ended (ground truth; no beacon carries it)."""

    NO_PLAY = 0            # loaded, never requested play
    START_FAILURE = 1      # error before the first frame
    ABANDONED_STARTUP = 2  # left while waiting for the first frame
    ABANDONED_AD = 3       # left during the pre-roll pod
    PARTIAL = 4            # played, left before the end
    COMPLETED = 5          # reached the end of the content
    STALL_QUIT = 6         # left during or right after a rebuffer
    PLAYBACK_ERROR = 7     # fatal error mid-stream
    AD_BREAK_QUIT = 8      # left at a mid-roll break


class Device(IntEnum):
    DESKTOP = 0
    MOBILE = 1
    TABLET = 2
    CTV = 3


# Per-session columns: name -> dtype. `first_action` and `n_actions` index the action
# columns (CSR layout): the actions of session i are [first_action[i], first_action[i] + n_actions[i]).
SESSION_COLUMNS: dict[str, type] = {
    "session_seq": np.int64,        # globally unique session number for this run (seed + partition)
    "scenario": np.int16,           # index into SessionChunk.scenario_names
    "viewer": np.int64,             # viewer number in the population
    "returning": np.bool_,          # viewer had an earlier session in this run
    "entry": np.int32,              # index into the catalog
    "duration": np.float64,         # content duration, s (live: the DVR window)
    "live": np.bool_,
    "start": np.float64,            # epoch seconds (UTC) of LOAD
    "tz_offset_min": np.int16,      # viewer's UTC offset, minutes
    "device": np.int8,              # Device
    "os": np.int8,                  # index into population OS names
    "browser": np.int8,             # index into population browser names
    "country": np.int16,            # index into population countries
    "user_agent": np.int32,         # index into the identity pool of user agents
    "ip": np.int32,                 # index into the identity pool of IPs
    "user_id": np.int32,            # index into the pool of user ids, -1 = anonymous
    "referrer": np.int32,           # index into the pool of referrer pages
    "autoplay": np.bool_,
    "intended_fraction": np.float32,  # F of the watched-fraction mixture (truth)
    "impaired": np.bool_,           # drawn into the impaired (rebuffering) group (truth)
    "outcome": np.int8,             # Outcome (truth)
    "scripted": np.int16,           # index of the scripted session used, -1 = modelled
    # truth read off the session's own actions (sim.player.truth defines each): wall seconds
    "play_s": np.float64,           # content playing time
    "ad_play_s": np.float64,        # linear ads and bumpers playing
    "stall_s": np.float64,          # rebuffering
    "startup_s": np.float64,        # play request to first content frame, ads excluded; NaN = no frame
    "max_position_s": np.float64,   # furthest content position reached (playing or seeking); NaN = no frame
    "first_action": np.int64,
    "n_actions": np.int32,
}

# Per-action columns, all of one length, grouped by session and ordered by `t` within one.
ACTION_COLUMNS: dict[str, type] = {
    "session": np.int32,     # row in the session columns of this chunk
    "kind": np.int8,         # Action
    "t": np.float64,         # wall-clock offset from the session's LOAD, s (never decreases)
    "pos": np.float64,       # content playhead, s, within [0, duration]
    "value": np.float64,     # action-specific (see Action)
    "ad_pos": np.int8,       # AdPosition of an ad/bumper action, else 0
    "ad_index": np.int8,     # 0-based index of the ad in its pod
    "bitrate": np.float32,   # current content rendition, kbps
    "screen": np.int8,       # 1 normal, 2 fullscreen (state after the action)
    "sound": np.int8,        # 1 muted, 2 on
    "tab": np.int8,          # 1 hidden, 2 focused
    "speed": np.float32,     # current playback rate
}


@dataclass
class SessionChunk:
    """A batch of sessions and their actions, column by column.

    `scenarios[sessions["scenario"][i]]` is the scenario of session i (partner context,
    player settings); `population` resolves the index columns to strings; `seed` is this
    chunk's own seed sequence, from which later stages draw (`rng(stage)`), so a chunk
    gives the same beacons whichever worker processes it.
    """

    sessions: dict[str, np.ndarray]
    actions: dict[str, np.ndarray]
    scenarios: list  # list[sim.scenario.model.Scenario], one per scenario index
    scenario_names: list[str]
    population: "Population"
    seed: np.random.SeedSequence

    def rng(self, stage: str) -> np.random.Generator:
        """A generator for a downstream stage, disjoint from the player model's stream."""
        key = int.from_bytes(stage.encode()[:8].ljust(8, b"\0"), "little")
        child = np.random.SeedSequence(self.seed.entropy, spawn_key=(*self.seed.spawn_key, 1 << 32, key))
        return np.random.default_rng(child)

    @property
    def n_sessions(self) -> int:
        return len(self.sessions["session_seq"])

    @property
    def n_actions(self) -> int:
        return len(self.actions["kind"])

    def actions_of(self, i: int) -> dict[str, np.ndarray]:
        """The action columns of session row i (views, not copies)."""
        a = int(self.sessions["first_action"][i])
        b = a + int(self.sessions["n_actions"][i])
        return {k: v[a:b] for k, v in self.actions.items()}

    def check_columns(self) -> None:
        """Raise if a column is missing, mistyped or of the wrong length (for tests)."""
        for group, spec, n in ((self.sessions, SESSION_COLUMNS, self.n_sessions),
                               (self.actions, ACTION_COLUMNS, self.n_actions)):
            for name, dtype in spec.items():
                col = group[name]
                if col.dtype != np.dtype(dtype) or len(col) != n:
                    raise ValueError(f"column {name}: {col.dtype}[{len(col)}], want {np.dtype(dtype)}[{n}]")
