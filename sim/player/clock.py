"""When sessions happen: arrival times over the run, shaped by hourly and weekday curves in viewer local time.

Arrivals are a non-homogeneous Poisson process whose rate is constant within each UTC hour:
rate(hour, component, time zone) = volume share x hourly weight of the local hour x weekday
multiplier of the local day x seasonal multiplier of the local month. Conditional on the run's total
volume (the clock's `sessions_per_day` x `days`, or a fixed `sessions`), the hourly counts are
multinomial, so the plan draws every quarter hour's counts first (a few hundred numbers a day), then
each partition draws the times of its own sessions. Partitions are contiguous time windows in time
order, so a run streams: no more than one partition's sessions are ever drawn at once.

Usage::

    plan = plan_arrivals(components, population, seed=7, sessions=1_000_000)
    for p in range(plan.n_partitions):
        times, cells = partition_arrivals(plan, p, rng)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scenario.presets import HOURLY, MONTHLY, WEEKDAY

# Stream key of the clock in a run's SeedSequence: hour counts come from (seed, CLOCK_KEY).
CLOCK_KEY = 2
# Sessions per partition, the unit of randomness: fixed whatever the chunk size, so chunking
# never changes what is generated.
PARTITION_SESSIONS = 8192
HOUR_S = 3600.0
BIN_S = 900.0  # quarter hours: the grain of the arrival rate


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
    """Every bin's and every partition's session counts; cells are (component, time-zone group) pairs.

    Bins are the quarter hours of the UTC clock that the run covers (the first and last may be
    partial): every real UTC offset is a multiple of 15 minutes, so a bin lies inside one local
    hour of every viewer and the rate is constant within it. A partition is either a run of
    whole bins or, for a bin with more than PARTITION_SESSIONS sessions, one of its equal slices.
    """

    start: float  # epoch seconds (UTC) of the run's first instant
    bin_start: np.ndarray  # float64 epoch seconds where each bin starts
    bin_len: np.ndarray  # float64 seconds of each bin
    counts: np.ndarray  # int64 [bin, cell] sessions
    cell_component: np.ndarray  # int16 component of each cell
    cell_tz: np.ndarray  # int16 time-zone group (within its component) of each cell
    part_bins: np.ndarray  # int64 [partition, 2] first and past-the-last bin
    part_slice: np.ndarray  # int64 slice of the bin (0..part_slices-1); 0 for a run of bins
    part_slices: np.ndarray  # int64 slices the bin is cut into; 1 for a run of bins
    part_counts: np.ndarray  # int64 [partition, cell] sessions
    part_first: np.ndarray  # int64 session_seq of each partition's first session

    @property
    def n_partitions(self) -> int:
        return len(self.part_first)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def seconds(self) -> float:
        return float(self.bin_len.sum())

    def window(self, p: int) -> tuple[float, float]:
        """[start, end) epoch seconds of partition p."""
        b0, b1 = (int(x) for x in self.part_bins[p])
        j, m = int(self.part_slice[p]), int(self.part_slices[p])
        if m == 1:
            return float(self.bin_start[b0]), float(self.bin_start[b1 - 1] + self.bin_len[b1 - 1])
        width = self.bin_len[b0] / m
        t0 = self.bin_start[b0] + j * width
        return float(t0), float(t0 + width)


def _local(bin_mid: np.ndarray, tz_offset_min: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local hour, weekday (Monday 0) and month (January 0) at each instant for a UTC offset."""
    local = bin_mid + tz_offset_min * 60.0
    hour = ((local // HOUR_S) % 24).astype(int)
    # 1970-01-01 was a Thursday: Monday-first weekday = (days since epoch + 3) mod 7
    day = ((local // 86400.0 + 3) % 7).astype(int)
    month = local.astype("datetime64[s]").astype("datetime64[M]").astype(int) % 12
    return hour, day, month


def cell_rate(clock, tz_offset_min: int, bin_start: np.ndarray, bin_len: np.ndarray) -> tuple[np.ndarray, float]:
    """Relative arrival rate of one time-zone group per bin (hourly x weekday shape, summing to 1)
    and the run's mean seasonal multiplier (which scales the group's volume)."""
    hour, day, month = _local(bin_start + bin_len / 2, tz_offset_min)
    season = monthly_weights(clock.monthly)[month]
    shape = hourly_weights(clock.hourly)[hour] * weekday_weights(clock.weekday)[day] * season * bin_len
    return shape / shape.sum(), float(np.average(season, weights=bin_len))


def _bins(start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    grid = np.arange(np.floor(start / BIN_S) * BIN_S + BIN_S, end, BIN_S)
    edges = np.concatenate([[start], grid[grid > start], [end]])
    return edges[:-1], np.diff(edges)


def plan_arrivals(
    components,
    population,
    seed: int,
    *,
    sessions: int | None = None,
    days: float | None = None,
    partition_sessions: int = PARTITION_SESSIONS,
) -> ArrivalPlan:
    """Per-bin and per-partition session counts for a run (cheap: no per-session work).

    Run window: the first component's `clock.start` over `days` (default its `clock.days`).
    Volume: `sessions` if given, else the weighted mean of the components' `sessions_per_day`
    x days, lowered by the seasonal curve where the run falls in a dip month. Components
    split the volume by weight (and season); each keeps its own curves and time zones.
    `partition_sessions`: the partition size (other values give other sessions; for tests).
    """
    first = components[0].scenario.clock
    days = float(first.days if days is None else days)
    start = first.start.timestamp()
    weights = np.array([c.weight for c in components], float)
    weights = weights / weights.sum()
    bin_start, bin_len = _bins(start, start + days * 86400.0)

    shares, cell_c, cell_g, volume = [], [], [], 0.0
    for ci, comp in enumerate(components):
        clock = comp.scenario.clock
        sl = population.components[ci]
        for g, offset in enumerate(sl.tz_offsets_min.tolist()):
            shape, season = cell_rate(clock, offset, bin_start, bin_len)
            share = weights[ci] * sl.tz_weights[g] * season
            volume += share * clock.sessions_per_day * days
            shares.append(share * shape)
            cell_c.append(ci)
            cell_g.append(g)
    if sessions is None:
        sessions = int(round(volume))
    probs = np.stack(shares, axis=1)  # [bin, cell]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CLOCK_KEY,)))
    counts = rng.multinomial(int(sessions), probs.ravel() / probs.sum()).reshape(probs.shape).astype(np.int64)

    bins_of, slice_of, slices_of, part_counts = [], [], [], []
    group_start, group_n = 0, 0
    per_bin = counts.sum(axis=1)

    def close(stop: int) -> None:
        nonlocal group_start, group_n
        if group_n:
            bins_of.append((group_start, stop))
            slice_of.append(0)
            slices_of.append(1)
            part_counts.append(counts[group_start:stop].sum(axis=0))
        group_start, group_n = stop, 0

    for b, n_b in enumerate(per_bin.tolist()):
        if n_b > partition_sessions:
            close(b)
            m = -(-n_b // partition_sessions)
            # equal time slices of the bin; each cell's sessions fall in them uniformly
            split = np.stack([rng.multinomial(int(k), np.full(m, 1.0 / m)) for k in counts[b]], axis=1)
            for j in range(m):
                bins_of.append((b, b + 1))
                slice_of.append(j)
                slices_of.append(m)
                part_counts.append(split[j])
            group_start = b + 1
            continue
        group_n += n_b
        if group_n >= partition_sessions:
            close(b + 1)
    close(len(per_bin))
    part_counts_arr = np.array(part_counts, np.int64).reshape(-1, len(cell_c))
    totals = part_counts_arr.sum(axis=1)
    return ArrivalPlan(
        start=start,
        bin_start=bin_start,
        bin_len=bin_len,
        counts=counts,
        cell_component=np.array(cell_c, np.int16),
        cell_tz=np.array(cell_g, np.int16),
        part_bins=np.array(bins_of, np.int64).reshape(-1, 2),
        part_slice=np.array(slice_of, np.int64),
        part_slices=np.array(slices_of, np.int64),
        part_counts=part_counts_arr,
        part_first=np.concatenate([[0], np.cumsum(totals)[:-1]]).astype(np.int64),
    )


def partition_arrivals(plan: ArrivalPlan, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sorted epoch-second arrival times of partition p and the cell of each session."""
    b0, b1 = (int(x) for x in plan.part_bins[p])
    n_cells = plan.counts.shape[1]
    if plan.part_slices[p] > 1:
        t0, t1 = plan.window(p)
        cells = np.repeat(np.arange(n_cells), plan.part_counts[p])
        times = t0 + rng.random(len(cells)) * (t1 - t0)
    else:
        per = plan.counts[b0:b1]  # [bin, cell]
        bins = np.repeat(np.arange(b0, b1), per.sum(axis=1))
        cells = np.concatenate([np.repeat(np.arange(n_cells), row) for row in per]) if len(per) else np.empty(0, int)
        times = plan.bin_start[bins] + rng.random(len(cells)) * plan.bin_len[bins]
    if n_cells == 1:  # one cell: nothing to carry along, a plain sort is enough
        return np.sort(times), cells
    order = np.argsort(times, kind="stable")
    return times[order], cells[order]
