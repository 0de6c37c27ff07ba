"""When sessions happen: arrival times over the run, shaped by hourly and weekday curves in viewer local time.

Arrivals are a non-homogeneous Poisson process whose rate is constant within each UTC
hour: rate(hour, component, time zone) = volume share x hourly weight of the local hour x
weekday multiplier of the local day. Conditional on the run's total volume (the clock's
`sessions_per_day` x `days`, or a fixed `sessions`), the hourly counts are multinomial, so
the plan draws every hour's counts first (a few hundred numbers), then each partition draws
the times of its own sessions. Partitions are contiguous time windows in time order, so a
run streams: no more than one partition's sessions are ever drawn at once.

Usage::

    plan = plan_arrivals(components, population, seed=7, sessions=1_000_000)
    for p in range(plan.n_partitions):
        times, cells = partition_arrivals(plan, p, rng)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Stream key of the clock in a run's SeedSequence: hour counts come from (seed, CLOCK_KEY).
CLOCK_KEY = 2
# Sessions per partition, the unit of randomness: fixed whatever the chunk size, so chunking
# never changes what is generated.
PARTITION_SESSIONS = 8192
HOUR_S = 3600.0

try:   # shared presets, once the scenario package ships them
    from ..scenario.presets import HOURLY, WEEKDAY   # type: ignore[import-not-found]
except ImportError:   # the same tables, from viewing-realism.md section 3.5
    HOURLY = {
        "consumer-evening": [4.16, 2.65, 1.66, 1.13, 0.91, 0.98, 1.51, 2.27, 2.87, 3.40, 3.78, 4.16,
                             4.69, 4.69, 4.69, 4.92, 5.30, 5.67, 6.20, 6.81, 7.34, 7.56, 6.96, 5.67],
        "work-edu": [0.69, 0.43, 0.26, 0.26, 0.26, 0.43, 1.04, 2.59, 5.18, 7.33, 8.20, 8.63,
                     7.77, 8.20, 8.63, 8.20, 6.90, 5.18, 3.88, 3.88, 4.31, 3.88, 2.59, 1.29],
        "flat": [1.0] * 24,
    }
    WEEKDAY = {   # Monday first
        "consumer": [0.93, 0.92, 0.93, 0.95, 1.00, 1.10, 1.17],
        "work-edu": [1.15, 1.15, 1.10, 1.05, 0.85, 0.45, 0.70],
        "flat": [1.0] * 7,
    }


def hourly_weights(spec) -> np.ndarray:
    """24 weights (local hour 0..23) normalised to mean 1, from a preset name or a list."""
    w = np.asarray(HOURLY[spec] if isinstance(spec, str) else spec, float)
    return w / w.mean()


def weekday_weights(spec) -> np.ndarray:
    """7 multipliers (Monday first) normalised to mean 1, from a preset name or a list."""
    w = np.asarray(WEEKDAY[spec] if isinstance(spec, str) else spec, float)
    return w / w.mean()


@dataclass
class ArrivalPlan:
    """Every hour's and every partition's session counts; cells are (component, time-zone group) pairs."""
    start: float                 # epoch seconds (UTC) of the run's first instant
    hour_len: np.ndarray         # float64 seconds of each UTC hour inside the run (the last may be partial)
    cell_component: np.ndarray   # int16 component of each cell
    cell_tz: np.ndarray          # int16 time-zone group (within its component) of each cell
    part_hour: np.ndarray        # int64 hour of each partition
    part_slice: np.ndarray       # int64 slice of the hour (0..part_slices-1)
    part_slices: np.ndarray      # int64 number of slices the partition's hour is cut into
    part_counts: np.ndarray      # int64 [partition, cell] sessions
    part_first: np.ndarray       # int64 session_seq of each partition's first session

    @property
    def n_partitions(self) -> int:
        return len(self.part_hour)

    @property
    def total(self) -> int:
        return int(self.part_counts.sum())

    def window(self, p: int) -> tuple[float, float]:
        """[start, end) epoch seconds of partition p."""
        h, j, m = int(self.part_hour[p]), int(self.part_slice[p]), int(self.part_slices[p])
        width = self.hour_len[h] / m
        t0 = self.start + h * HOUR_S + j * width
        return t0, t0 + width


def cell_shape(hourly, weekday, tz_offset_min: int, start: float, hour_len: np.ndarray) -> np.ndarray:
    """Relative arrival rate of one time-zone group in each UTC hour of the run (sums to 1)."""
    mid = start + np.arange(len(hour_len)) * HOUR_S + hour_len / 2 + tz_offset_min * 60.0
    local_hour = ((mid // HOUR_S) % 24).astype(int)
    # 1970-01-01 was a Thursday: Monday-first weekday = (days since epoch + 3) mod 7
    local_day = ((mid // 86400.0 + 3) % 7).astype(int)
    w = hourly_weights(hourly)[local_hour] * weekday_weights(weekday)[local_day] * (hour_len / HOUR_S)
    return w / w.sum()


def plan_arrivals(components, population, seed: int, *, sessions: int | None = None,
                  days: float | None = None) -> ArrivalPlan:
    """Hourly and per-partition session counts for a run (cheap: no per-session work).

    Run window: the first component's `clock.start` over `days` (default its `clock.days`).
    Volume: `sessions` if given, else the weighted mean of the components' `sessions_per_day`
    x days. Components split the volume by weight; each keeps its own curves and time zones.
    """
    first = components[0].scenario.clock
    days = float(first.days if days is None else days)
    start = first.start.timestamp()
    weights = np.array([c.weight for c in components], float)
    weights = weights / weights.sum()
    if sessions is None:
        per_day = sum(w * c.scenario.clock.sessions_per_day for w, c in zip(weights, components))
        sessions = int(round(per_day * days))
    n_hours = max(1, int(np.ceil(days * 24 - 1e-9)))
    hour_len = np.full(n_hours, HOUR_S)
    hour_len[-1] = days * 86400.0 - (n_hours - 1) * HOUR_S

    shares, cell_c, cell_g = [], [], []
    for ci, comp in enumerate(components):
        clock = comp.scenario.clock
        sl = population.components[ci]
        for g, offset in enumerate(sl.tz_offsets_min.tolist()):
            shape = cell_shape(clock.hourly, clock.weekday, offset, start, hour_len)
            shares.append(weights[ci] * sl.tz_weights[g] * shape)
            cell_c.append(ci)
            cell_g.append(g)
    probs = np.stack(shares, axis=1)   # [hour, cell]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CLOCK_KEY,)))
    counts = rng.multinomial(int(sessions), probs.ravel() / probs.sum()).reshape(probs.shape)

    part_hour, part_slice, part_slices, part_counts = [], [], [], []
    for h in range(n_hours):
        n_h = int(counts[h].sum())
        if n_h == 0:
            continue
        m = -(-n_h // PARTITION_SESSIONS)
        # Equal time slices of the hour; each cell's sessions fall in them uniformly.
        split = np.stack([rng.multinomial(int(k), np.full(m, 1.0 / m)) for k in counts[h]], axis=1)
        for j in range(m):
            part_hour.append(h)
            part_slice.append(j)
            part_slices.append(m)
            part_counts.append(split[j])
    part_counts_arr = np.array(part_counts, np.int64).reshape(-1, len(cell_c))
    totals = part_counts_arr.sum(axis=1)
    return ArrivalPlan(start=start, hour_len=hour_len, cell_component=np.array(cell_c, np.int16),
                       cell_tz=np.array(cell_g, np.int16), part_hour=np.array(part_hour, np.int64),
                       part_slice=np.array(part_slice, np.int64), part_slices=np.array(part_slices, np.int64),
                       part_counts=part_counts_arr, part_first=np.concatenate([[0], np.cumsum(totals)[:-1]]).astype(np.int64))


def partition_arrivals(plan: ArrivalPlan, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted epoch-second arrival times of partition p and the cell of each session."""
    t0, t1 = plan.window(p)
    cells = np.repeat(np.arange(plan.part_counts.shape[1]), plan.part_counts[p])
    times = t0 + rng.random(len(cells)) * (t1 - t0)
    order = np.argsort(times, kind="stable")
    return times[order], cells[order]
