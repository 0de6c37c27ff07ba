"""The player model's runs: scenarios + population + clock -> streamed SessionChunks of player actions.

A run prepares once (`prepare_run`: population, arrival plan, compiled scenarios in
`sim.player.params`, alias tables in `sim.player.context`, scripted sessions), then makes
chunks: each partition draws its sessions' context and the session kernel
(`sim.player.kernel`) walks them into the action columns of `sim.player.timeline`.

Usage::

    for chunk in generate_sessions([Scenario()], seed=7, sessions=100_000):
        print(chunk.n_sessions, chunk.n_actions)

Determinism and parallel work. A run is cut into *partitions*: contiguous time windows of
about `clock.PARTITION_SESSIONS` sessions, fixed by the seed and the scenario alone.
Partition p draws everything from its own `SeedSequence(seed, spawn_key=(MODEL_KEY, p))`,
so its sessions are the same whichever process makes them and whatever the chunk size.
A chunk is a run of consecutive partitions holding at least `chunk_size` sessions; chunk k
is therefore known from the plan alone. A worker `i` of `n` (`worker=(i, n)`) makes the
chunks k with k % n == i; all workers together make every chunk exactly once, and
`session_seq` (the session's rank in time order over the whole run) is globally unique."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sim.player.clock import ArrivalPlan, partition_arrivals, plan_arrivals
from sim.player.context import Choosers, build_choosers, draw_context
from sim.player.kernel import split_rows, walk_sessions
from sim.player.params import CompiledScenarios, compile_scenarios
from sim.player.script import ScriptTemplates, compile_scripts
from sim.player.timeline import ACTION_COLUMNS, SESSION_COLUMNS, SessionChunk
from sim.player.truth import TRUTH_SESSION_COLUMNS, timeline_truth
from sim.population import Population, build_population
from sim.scenario.loader import Component, as_components  # noqa: F401  (Component: also importable from here)

# Stream key of the player model in a run's SeedSequence: partition p draws from (seed, MODEL_KEY, p).
MODEL_KEY = 3
CHUNK_KEY = 4


# --- partitions and chunks ---------------------------------------------------------------------


@dataclass
class Run:
    """Everything a run needs to make any partition: built once, shared by every chunk."""

    components: list
    population: Population
    plan: ArrivalPlan
    compiled: CompiledScenarios
    seed: int
    scripts: ScriptTemplates
    choosers: Choosers
    actions_per_session: float = 6.0  # running estimate, sizes the next chunk's action buffers


def prepare_run(
    components,
    seed: int,
    *,
    sessions: int | None = None,
    days: float | None = None,
    population: Population | None = None,
    partition_sessions: int | None = None,
) -> Run:
    """Components, population, arrival plan and compiled scenarios of a run (`partition_sessions`:
    see `plan_arrivals`)."""
    components = as_components(components)
    population = population or build_population(components, seed)
    scripts = compile_scripts(components, population)
    if sessions is None and all(c.scenario.script for c in components):
        sessions = scripts.sessions_per_cycle  # a scripted run plays each script `repeat` times
    sizing = {} if partition_sessions is None else {"partition_sessions": partition_sessions}
    plan = plan_arrivals(components, population, seed, sessions=sessions, days=days, **sizing)
    return Run(
        components=components,
        population=population,
        plan=plan,
        compiled=compile_scenarios(components, population),
        seed=seed,
        scripts=scripts,
        choosers=build_choosers(plan, population),
    )


def chunk_partitions(plan: ArrivalPlan, chunk_size: int) -> list[range]:
    """Consecutive partitions grouped so each chunk holds at least `chunk_size` sessions (the last: the rest)."""
    totals = plan.part_counts.sum(axis=1)
    chunks, start, acc = [], 0, 0
    for p, n in enumerate(totals.tolist()):
        acc += n
        if acc >= chunk_size:
            chunks.append(range(start, p + 1))
            start, acc = p + 1, 0
    if start < len(totals):
        chunks.append(range(start, len(totals)))
    return chunks


def _partition(run: Run, p: int, S: dict, row0: int, actions: np.ndarray, k0: int) -> tuple[int, np.ndarray]:
    """Write partition p's sessions into rows row0.. of the chunk columns S and its actions from
    row k0 of `actions` (float64 [row, ACTION_COLUMNS]); returns the partition's action count and
    the action rows (a larger copy when they did not fit)."""
    plan, pop, comp_arr = run.plan, run.population, run.compiled
    rng = np.random.default_rng(np.random.SeedSequence(run.seed, spawn_key=(MODEL_KEY, p)))
    times, cells = partition_arrivals(plan, p, rng)
    n = len(times)
    rows = slice(row0, row0 + n)
    cell_component = plan.cell_component.astype(np.int64)
    comp = cell_component[cells]
    viewer, entry, referrer = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    autoplay, returning = S["autoplay"][rows], S["returning"][rows]
    ch = run.choosers
    run_s = max(plan.seconds, 1.0)
    min_gap = np.array([c.scenario.audience.returning.min_gap_s / run_s for c in run.components])
    draw_context(
        rng,
        cells.astype(np.int64),
        cell_component,
        (times - plan.start) / run_s,
        min_gap,
        comp_arr.params["autoplay"].copy(),
        ch.cell_vstart,
        ch.cell_vn,
        ch.cell_volume,
        ch.v_prob,
        ch.v_alias,
        ch.v_share,
        ch.comp_estart,
        ch.comp_en,
        ch.e_prob,
        ch.e_alias,
        ch.comp_rstart,
        ch.comp_rn,
        viewer,
        entry,
        referrer,
        autoplay,
        returning,
    )
    vw = pop.viewers
    ua = vw.user_agent[viewer]
    user = vw.user_id[viewer]
    scripted = S["scripted"][rows]
    scripted[:] = -1
    tmpl_rows = np.full(n, -1, np.int64)
    run.scripts.assign(plan, p, cells, comp, rng, pop, entry, ua, user, scripted, tmpl_rows)
    duration = pop.catalog.durations[entry]
    live = pop.catalog.live[entry]
    device = pop.pools.ua_device[ua].astype(np.int64)
    first = S["first_action"][rows]
    while True:
        walker = np.random.default_rng(np.random.SeedSequence(run.seed, spawn_key=(MODEL_KEY, p, 1)))
        k = walk_sessions(
            walker,
            comp,
            device,
            duration,
            live,
            autoplay,
            run.scripts.rows,
            tmpl_rows,
            run.scripts.start,
            run.scripts.length,
            run.scripts.outcome,
            comp_arr.params,
            comp_arr.dists,
            comp_arr.tables,
            comp_arr.cues,
            comp_arr.ladders,
            comp_arr.languages,
            row0,
            actions[k0:],
            S["intended_fraction"][rows],
            S["impaired"][rows],
            S["outcome"][rows],
            first,
            S["n_actions"][rows],
        )
        if k0 + k <= len(actions):
            break
        # full: grow the rows, keep what earlier partitions wrote, walk this one again
        grown = np.empty((int((k0 + k) * 1.5) + 1024, actions.shape[1]))
        grown[:k0] = actions[:k0]
        actions = grown
    first += k0
    ip = vw.ip[viewer]
    S["session_seq"][rows] = plan.part_first[p] + np.arange(n, dtype=np.int64)
    S["scenario"][rows] = comp
    S["viewer"][rows] = viewer
    S["entry"][rows] = entry
    S["duration"][rows] = duration
    S["live"][rows] = live
    S["start"][rows] = times
    S["tz_offset_min"][rows] = vw.tz_offset_min[viewer]
    S["device"][rows] = device
    S["os"][rows] = pop.pools.ua_os[ua]
    S["browser"][rows] = pop.pools.ua_browser[ua]
    S["country"][rows] = pop.pools.ip_country[ip]
    S["user_agent"][rows] = ua
    S["ip"][rows] = ip
    S["user_id"][rows] = user
    S["referrer"][rows] = referrer
    return k, actions


def make_chunk(run: Run, partitions: range) -> SessionChunk:
    """One SessionChunk from consecutive partitions, written straight into the chunk's columns."""
    n_total = int(run.plan.part_counts[partitions].sum())
    S = {name: np.empty(n_total, dtype) for name, dtype in SESSION_COLUMNS.items()}
    # room for the actions at the rate seen so far in this run (a full buffer grows and retries)
    rows = np.empty((int(run.actions_per_session * 1.2 * n_total) + 1024, len(ACTION_COLUMNS)))
    row0 = k0 = 0
    for p in partitions:
        k, rows = _partition(run, p, S, row0, rows, k0)
        k0 += k
        row0 += int(run.plan.part_counts[p].sum())
    if n_total:
        run.actions_per_session = max(run.actions_per_session, k0 / n_total)
    actions = {name: np.empty(k0, dtype) for name, dtype in ACTION_COLUMNS.items()}
    split_rows(rows, k0, *actions.values())
    truth = timeline_truth(
        actions["kind"], actions["t"], actions["pos"], actions["value"], S["first_action"], S["n_actions"]
    )
    for name, values in zip(TRUTH_SESSION_COLUMNS, truth):
        S[name] = values
    seed = np.random.SeedSequence(run.seed, spawn_key=(CHUNK_KEY, partitions.start))
    return SessionChunk(
        sessions=S,
        actions=actions,
        scenarios=[c.scenario for c in run.components],
        scenario_names=[c.name for c in run.components],
        population=run.population,
        seed=seed,
    )


def generate_sessions(
    components,
    seed: int,
    *,
    sessions: int | None = None,
    days: float | None = None,
    chunk_size: int = 65536,
    worker: tuple[int, int] | None = None,
    population: Population | None = None,
) -> Iterator[SessionChunk]:
    """Stream the sessions of a run as SessionChunks in time order.

    `components`: a Scenario, a list of Scenarios, or the loader's Components. `sessions`
    fixes the total volume (default: the clock's sessions_per_day x days); `days` overrides
    the clock's run length. `worker=(i, n)` yields only the chunks k with k % n == i.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    run = prepare_run(components, seed, sessions=sessions, days=days, population=population)
    for k, parts in enumerate(chunk_partitions(run.plan, chunk_size)):
        if worker is None or k % worker[1] == worker[0]:
            yield make_chunk(run, parts)
