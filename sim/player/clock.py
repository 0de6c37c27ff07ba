"""When sessions happen: arrival times over the run, shaped by hourly and weekday curves in viewer local time.

Arrivals are a non-homogeneous Poisson process whose rate is constant within each UTC
hour: rate(hour, component, time zone) = volume share x hourly weight of the local hour x
weekday multiplier of the local day x seasonal multiplier of the local month. Conditional on the run's total volume (the clock's
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

from ..scenario.presets import HOURLY, MONTHLY, WEEKDAY


def hourly_weights(spec) -> np.ndarray:
    """24 weights (local hour 0..23) normalised to mean 1, from a preset name or a list."""
    w = np.asarray(HOURLY[spec] if isinstance(spec, str) else spec, float)
    return w / w.mean()


def weekday_weights(spec) -> np.ndarray:
    """7 multipliers (Monday first) normalised to mean 1, from a preset name or a list."""
    w = np.asarray(WEEKDAY[spec] if isinstance(spec, str) else spec, float)
    return w / w.mean()


def monthly_weights(spec) -> np.ndarray:
    """12 seasonal multipliers (January first), from a preset name or a list; not renormalised,
    so a summer dip lowers the volume of the months it covers."""
    w = np.asarray(MONTHLY[spec] if isinstance(spec, str) else spec, float)
    return w / w.max()


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


def _local_months(tz_offset_min: int, start: float, hour_len: np.ndarray) -> np.ndarray:
    mid = start + np.arange(len(hour_len)) * HOUR_S + hour_len / 2 + tz_offset_min * 60.0
    return mid.astype("datetime64[s]").astype("datetime64[M]").astype(int) % 12


def cell_shape(clock, tz_offset_min: int, start: float, hour_len: np.ndarray) -> np.ndarray:
    """Relative arrival rate of one time-zone group in each UTC hour of the run (hourly x weekday x monthly)."""
    mid = start + np.arange(len(hour_len)) * HOUR_S + hour_len / 2 + tz_offset_min * 60.0
    local_hour = ((mid // HOUR_S) % 24).astype(int)
    # 1970-01-01 was a Thursday: Monday-first weekday = (days since epoch + 3) mod 7
    local_day = ((mid // 86400.0 + 3) % 7).astype(int)
    local_month = _local_months(tz_offset_min, start, hour_len)
    return (hourly_weights(clock.hourly)[local_hour] * weekday_weights(clock.weekday)[local_day]
            * monthly_weights(clock.monthly)[local_month] * (hour_len / HOUR_S))


def plan_arrivals(components, population, seed: int, *, sessions: int | None = None,
                  days: float | None = None) -> ArrivalPlan:
    """Hourly and per-partition session counts for a run (cheap: no per-session work).

    Run window: the first component's `clock.start` over `days` (default its `clock.days`).
    Volume: `sessions` if given, else the weighted mean of the components' `sessions_per_day`
    x days, lowered by the seasonal curve where the run falls in a dip month. Components
    split the volume by weight (and season); each keeps its own curves and time zones.
    """
    first = components[0].scenario.clock
    days = float(first.days if days is None else days)
    start = first.start.timestamp()
    weights = np.array([c.weight for c in components], float)
    weights = weights / weights.sum()
    n_hours = max(1, int(np.ceil(days * 24 - 1e-9)))
    hour_len = np.full(n_hours, HOUR_S)
    hour_len[-1] = days * 86400.0 - (n_hours - 1) * HOUR_S

    shares, cell_c, cell_g, volume = [], [], [], 0.0
    for ci, comp in enumerate(components):
        clock = comp.scenario.clock
        sl = population.components[ci]
        for g, offset in enumerate(sl.tz_offsets_min.tolist()):
            shape = cell_shape(clock, offset, start, hour_len)
            season = float(np.average(monthly_weights(clock.monthly)[_local_months(offset, start, hour_len)],
                                      weights=hour_len))
            share = weights[ci] * sl.tz_weights[g] * season
            volume += share * clock.sessions_per_day * days
            shares.append(share * shape / shape.sum())
            cell_c.append(ci)
            cell_g.append(g)
    if sessions is None:
        sessions = int(round(volume))
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
