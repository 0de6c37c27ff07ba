"""Scripted sessions in a run: each scenario's scripts compiled once into templates of action rows.

A script is deterministic (`sim.scenario.script` plays its steps into action rows); only the
identity (viewer, IP, user agent of the script's device) is drawn from the population. Each
script compiles once into a template of action rows that the kernel copies into every
session that plays it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.player.timeline import Device
from sim.scenario.script import ACTION_NAMES, ScriptError, script_actions  # noqa: F401  (ScriptError: also here)


@dataclass
class ScriptTemplates:
    """Every component's scripts compiled to action rows, and how sessions are matched to them."""

    rows: np.ndarray  # float64 [all template rows, ACTION_COLUMNS]
    start: np.ndarray  # int64 first row of each template
    length: np.ndarray  # int64 rows of each template
    outcome: np.ndarray  # int64 Outcome of each template
    entry: np.ndarray  # int64 catalog entry of each template
    device: np.ndarray  # int64 Device of each template
    authenticated: np.ndarray  # bool
    script_index: np.ndarray  # int16 index in its scenario's `script` list
    cycles: list[
        np.ndarray
    ]  # per component: template ids in play order (each repeated `repeat` times); empty = modelled

    @property
    def sessions_per_cycle(self) -> int:
        return int(sum(len(c) for c in self.cycles))

    def assign(self, plan, p, cells, comp, rng, population, entry, ua, user, scripted, tmpl_rows) -> None:
        """Give the scripted components' sessions of partition p their script, entry and identity (in place)."""
        for c, cycle in enumerate(self.cycles):
            if len(cycle) == 0:
                continue
            rows = np.flatnonzero(comp == c)
            if len(rows) == 0:
                continue
            cells_of_c = np.flatnonzero(plan.cell_component == c)
            before = int(plan.part_counts[:p, cells_of_c].sum())
            templ = cycle[(before + np.arange(len(rows))) % len(cycle)]
            tmpl_rows[rows] = templ
            scripted[rows] = self.script_index[templ]
            entry[rows] = self.entry[templ]
            pools = population.pools
            for dev in np.unique(self.device[templ]).tolist():
                sel = rows[self.device[templ] == dev]
                candidates = np.flatnonzero(pools.ua_device == dev)
                if len(candidates):
                    ua[sel] = candidates[rng.integers(0, len(candidates), len(sel))]
            anon = rows[~self.authenticated[templ]]
            user[anon] = -1
            need = rows[self.authenticated[templ] & (user[rows] < 0)]
            if len(need) and len(pools.user_ids):
                user[need] = rng.integers(0, len(pools.user_ids), len(need))


def compile_scripts(components, population) -> ScriptTemplates:
    """Compile the `script` of every component (components without one are modelled)."""
    blocks, start, length, outcome, entry, device, auth, index, cycles = [], [], [], [], [], [], [], [], []
    n_rows = 0
    for c, comp in enumerate(components):
        sc = comp.scenario
        if not sc.script:
            cycles.append(np.empty(0, np.int64))
            continue
        sl = population.components[c]
        ids = population.catalog.entry_ids[sl.entries.start : sl.entries.stop].tolist()
        cycle = []
        for j, session in enumerate(sc.script):
            where = f"{comp.name}: script[{j}] '{session.name}'"
            if session.entry is None:
                e = sl.entries.start
            elif session.entry in ids:
                e = sl.entries.start + ids.index(session.entry)
            else:
                raise ScriptError(f"{where}.entry: {session.entry!r} is not in the catalog")
            rows, out = script_actions(
                session,
                float(population.catalog.durations[e]),
                sc.player.bitrate_ladder_kbps,
                live=bool(population.catalog.live[e]),
                where=where,
            )
            tid = len(start)
            blocks.append(rows)
            start.append(n_rows)
            length.append(len(rows))
            n_rows += len(rows)
            outcome.append(int(out))
            entry.append(e)
            device.append(int(Device[session.device.upper()]))
            auth.append(session.authenticated)
            index.append(j)
            cycle.extend([tid] * session.repeat)
        cycles.append(np.array(cycle, np.int64))
    width = len(ACTION_NAMES)
    return ScriptTemplates(
        rows=np.concatenate(blocks) if blocks else np.zeros((0, width)),
        start=np.array(start, np.int64),
        length=np.array(length, np.int64),
        outcome=np.array(outcome, np.int64),
        entry=np.array(entry, np.int64),
        device=np.array(device, np.int64),
        authenticated=np.array(auth, bool),
        script_index=np.array(index, np.int16),
        cycles=cycles,
    )
