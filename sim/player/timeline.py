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

import numpy as np

from sim.population import Population

# The vocabulary lives with the scenario language (scripts are written in it); downstream imports it from here.
from sim.scenario.actions import ACTION_COLUMNS, Action, AdPosition, Device, Outcome  # noqa: F401

# Per-session columns: name -> dtype. `first_action` and `n_actions` index the action
# columns (CSR layout): the actions of session i are [first_action[i], first_action[i] + n_actions[i]).
SESSION_COLUMNS: dict[str, type] = {
    "session_seq": np.int64,  # globally unique session number for this run (seed + partition)
    "scenario": np.int16,  # index into SessionChunk.scenario_names
    "viewer": np.int64,  # viewer number in the population
    "returning": np.bool_,  # viewer had an earlier session in this run
    "entry": np.int32,  # index into the catalog
    "duration": np.float64,  # content duration, s (live: the DVR window)
    "live": np.bool_,
    "start": np.float64,  # epoch seconds (UTC) of LOAD
    "tz_offset_min": np.int16,  # viewer's UTC offset, minutes
    "device": np.int8,  # Device
    "os": np.int8,  # index into population OS names
    "browser": np.int8,  # index into population browser names
    "country": np.int16,  # index into population countries
    "user_agent": np.int32,  # index into the identity pool of user agents
    "ip": np.int32,  # index into the identity pool of IPs
    "user_id": np.int32,  # index into the pool of user ids, -1 = anonymous
    "referrer": np.int32,  # index into the pool of referrer pages
    "autoplay": np.bool_,
    "intended_fraction": np.float32,  # F of the watched-fraction mixture (truth)
    "impaired": np.bool_,  # drawn into the impaired (rebuffering) group (truth)
    "outcome": np.int8,  # Outcome (truth)
    "scripted": np.int16,  # index of the scripted session used, -1 = modelled
    # truth read off the session's own actions (sim.player.truth defines each): wall seconds
    "play_s": np.float64,  # content playing time
    "ad_play_s": np.float64,  # linear ads and bumpers playing
    "stall_s": np.float64,  # rebuffering
    "startup_s": np.float64,  # play request to first content frame, ads excluded; NaN = no frame
    "max_position_s": np.float64,  # furthest content position reached (playing or seeking); NaN = no frame
    "first_action": np.int64,
    "n_actions": np.int32,
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
    population: Population
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
        for group, spec, n in (
            (self.sessions, SESSION_COLUMNS, self.n_sessions),
            (self.actions, ACTION_COLUMNS, self.n_actions),
        ):
            for name, dtype in spec.items():
                col = group[name]
                if col.dtype != np.dtype(dtype) or len(col) != n:
                    raise ValueError(f"column {name}: {col.dtype}[{len(col)}], want {np.dtype(dtype)}[{n}]")
