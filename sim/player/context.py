"""Who watches what: each session's viewer, entry, page, autoplay flag and returning flag.

`build_choosers` lays alias tables over the population once per run (viewers by activity
within each clock cell's time-zone group, entries by popularity within each component);
`draw_context` draws every session of a partition from them in O(1) each.

Returning viewers: `returning` is drawn as the chance that a Poisson viewer with this
viewer's activity had an earlier session since the run began and at least
`returning.min_gap_s` before this one (sessions closer together are one visit); exact
per-viewer history would tie chunks together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sim.player.clock import ArrivalPlan
from sim.population import Population


@njit(cache=True)
def alias_table(weights):
    """Vose's alias table for drawing index i with probability weights[i] / sum in O(1)."""
    n = len(weights)
    prob = weights * (n / weights.sum())
    alias = np.arange(n)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = nl = 0
    for i in range(n):
        if prob[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s_ = small[ns]
        g = large[nl - 1]
        alias[s_] = g
        prob[g] = prob[g] + prob[s_] - 1.0
        if prob[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    for j in range(nl):
        prob[large[j]] = 1.0
    for j in range(ns):
        prob[small[j]] = 1.0
    return prob, alias


@dataclass
class Choosers:
    """Alias tables over the concatenated viewers and entries, and each cell's slice of them."""

    cell_vstart: np.ndarray  # int64 first viewer row of each cell's time-zone group
    cell_vn: np.ndarray  # int64 viewers in it
    cell_volume: np.ndarray  # float64 sessions of the cell over the whole run
    v_prob: np.ndarray  # float64 alias acceptance per viewer row
    v_alias: np.ndarray  # int64 alias (global viewer row)
    v_share: np.ndarray  # float64 viewer's share of its group's sessions (activity)
    comp_estart: np.ndarray  # int64 first entry of each component
    comp_en: np.ndarray
    e_prob: np.ndarray
    e_alias: np.ndarray  # int64 alias (global entry)
    comp_rstart: np.ndarray  # int64 first referrer of each component
    comp_rn: np.ndarray


def build_choosers(plan: ArrivalPlan, population: Population) -> Choosers:
    """The alias tables of a run's viewers and entries, and each clock cell's slice of them."""
    n_viewers = len(population.viewers)
    v_prob, v_alias, v_share = np.ones(n_viewers), np.arange(n_viewers), np.zeros(n_viewers)
    cell_vstart, cell_vn = [], []
    for c, g in zip(plan.cell_component.tolist(), plan.cell_tz.tolist()):
        r = population.components[c].tz_viewers[g]
        cell_vstart.append(r.start)
        cell_vn.append(len(r))
    for sl in population.components:
        for r, cdf in zip(sl.tz_viewers, sl.tz_activity_cdf):
            w = np.diff(cdf, prepend=0.0)
            prob, alias = alias_table(w)
            rows = slice(r.start, r.stop)
            v_prob[rows], v_alias[rows], v_share[rows] = prob, alias + r.start, w / w.sum()
    n_entries = len(population.catalog.entry_ids)
    e_prob, e_alias = np.ones(n_entries), np.arange(n_entries)
    for sl in population.components:
        prob, alias = alias_table(np.diff(sl.entry_cdf, prepend=0.0))
        rows = slice(sl.entries.start, sl.entries.stop)
        e_prob[rows], e_alias[rows] = prob, alias + sl.entries.start
    comps = population.components
    return Choosers(
        cell_vstart=np.array(cell_vstart, np.int64),
        cell_vn=np.array(cell_vn, np.int64),
        cell_volume=plan.counts.sum(axis=0).astype(float),
        v_prob=v_prob,
        v_alias=v_alias.astype(np.int64),
        v_share=v_share,
        comp_estart=np.array([sl.entries.start for sl in comps], np.int64),
        comp_en=np.array([len(sl.entries) for sl in comps], np.int64),
        e_prob=e_prob,
        e_alias=e_alias.astype(np.int64),
        comp_rstart=np.array([sl.referrers.start for sl in comps], np.int64),
        comp_rn=np.array([len(sl.referrers) for sl in comps], np.int64),
    )


@njit(cache=True)
def draw_context(
    rng,
    cells,
    cell_component,
    elapsed,
    min_gap,
    autoplay_share,
    cell_vstart,
    cell_vn,
    cell_volume,
    v_prob,
    v_alias,
    v_share,
    comp_estart,
    comp_en,
    e_prob,
    e_alias,
    comp_rstart,
    comp_rn,
    viewer,
    entry,
    referrer,
    autoplay,
    returning,
):
    """Each session's viewer (by activity), entry (by popularity), page, autoplay flag and returning flag.

    `elapsed`: each session's time since the run began and `min_gap`: each component's
    `returning.min_gap_s`, both as fractions of the run."""
    for i in range(len(cells)):
        cell = cells[i]
        c = cell_component[cell]
        j = cell_vstart[cell] + int(rng.random() * cell_vn[cell])
        v = j if rng.random() < v_prob[j] else v_alias[j]
        viewer[i] = v
        # chance that this viewer (Poisson, at its activity share of the cell) came earlier in the run
        earlier = max(elapsed[i] - min_gap[c], 0.0)
        returning[i] = rng.random() < 1.0 - np.exp(-cell_volume[cell] * v_share[v] * earlier)
        j = comp_estart[c] + int(rng.random() * comp_en[c])
        entry[i] = j if rng.random() < e_prob[j] else e_alias[j]
        referrer[i] = comp_rstart[c] + int(rng.random() * comp_rn[c])
        autoplay[i] = rng.random() < autoplay_share[c]
