"""The send schedule: which beacon of which simulated viewer is due when, in wall-clock time.

A viewer is a row here, not a greenlet: session chunks are generated a bounded look-ahead
in front of the clock, re-timed by a workload model (open: Poisson arrivals at a fixed rate;
closed: N viewers back to back with idle gaps), turned into beacons by the protocol
policies and kept as time-sorted columns. `Schedule.pop_due(now)` hands out what is due;
`render` turns one row into a wire request at send time, so per-session player state (the
KAVA server's `time` and `viewEventsEnabled`) applies to the beacons sent after the answer.

    schedule = Schedule(session_stream(components, seed=7), OpenArrivals(20, rng, t0),
                        Timebase(t0, scale=10), protocol_adapters("kava"))
    schedule.refill(time.time())
    for t, queue, row in schedule.pop_due(time.time()):
        out = queue.render(row, late=time.time() - t)
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.player.timeline import SessionChunk
from sim.protocols import browser
from sim.protocols.beacons import BeaconChunk, WireRequest, take_rows  # noqa: F401  (take_rows: importable here too)
from sim.protocols.choice import check_choice
from sim.protocols.event_types import EVENT_NAMES  # labels of Locust statistics rows: "legacy 3 PLAY"
from sim.protocols.registry import PROTOCOLS, choice_policies

KAVA_VIEW = 99


@dataclass(frozen=True)
class Timebase:
    """Simulated time runs `scale` times faster than the wall clock; both agree at `t0`."""

    t0: float
    scale: float = 1.0

    def to_wall(self, sim_t):
        return self.t0 + (sim_t - self.t0) / self.scale

    def to_sim(self, wall_t):
        return self.t0 + (wall_t - self.t0) * self.scale


# --- workload models ------------------------------------------------------------------------


def poisson_arrivals(rng: np.random.Generator, rate: float, after: float, n: int) -> np.ndarray:
    """`n` arrival times of a Poisson process at `rate` per second, strictly after `after`."""
    return after + np.cumsum(rng.exponential(1.0 / rate, n))


class OpenArrivals:
    """Sessions arrive at `rate` per wall second whatever the target does (open model)."""

    def __init__(self, rate: float, rng: np.random.Generator, start: float):
        if not rate > 0:
            raise ValueError(f"session rate must be > 0 (got {rate})")
        self.rate, self.rng, self.last = rate, rng, start

    @property
    def horizon(self) -> float:
        """Wall time up to which sessions have been assigned."""
        return self.last

    def assign(self, lengths_wall: np.ndarray) -> np.ndarray:
        starts = poisson_arrivals(self.rng, self.rate, self.last, len(lengths_wall))
        if len(starts):
            self.last = float(starts[-1])
        return starts


class ClosedArrivals:
    """`viewers` concurrent viewers, each starting its next session after the previous one
    ends plus an idle gap (exponential, mean `idle_gap` wall seconds). First sessions start
    spread evenly over `ramp_up` seconds. `max_rate` caps session starts per second."""

    def __init__(
        self,
        viewers: int,
        rng: np.random.Generator,
        start: float,
        *,
        idle_gap: float = 5.0,
        ramp_up: float = 10.0,
        max_rate: float | None = None,
    ):
        if viewers < 1:
            raise ValueError(f"viewers must be >= 1 (got {viewers})")
        self.rng, self.idle_gap = rng, idle_gap
        self.min_spacing = 1.0 / max_rate if max_rate else 0.0
        first = start + np.sort(rng.uniform(0.0, max(ramp_up, 0.0), viewers))
        # (when the viewer's next session is due, viewer): the gap is drawn when the previous
        # session is assigned, so the heap pops sessions in start order and one viewer's
        # idle gap never holds back another viewer's session
        self.free: list[tuple[float, int]] = [(float(t), v) for v, t in enumerate(first)]
        heapq.heapify(self.free)
        self.last_start = -math.inf

    @property
    def horizon(self) -> float:
        """Wall time before which every viewer slot already has its session."""
        return self.free[0][0]

    def assign(self, lengths_wall: np.ndarray) -> np.ndarray:
        n = len(lengths_wall)
        starts = np.empty(n)
        gaps = self.rng.exponential(self.idle_gap, n) if self.idle_gap > 0 else np.zeros(n)
        ends = (np.asarray(lengths_wall, float) + gaps).tolist()
        free, spacing, last = self.free, self.min_spacing, self.last_start
        pop, push = heapq.heappop, heapq.heappush
        for i in range(n):
            due, viewer = pop(free)
            start = due if due >= last + spacing else last + spacing  # the rate cap, if any
            last = starts[i] = start
            push(free, (start + ends[i], viewer))
        self.last_start = last
        return starts


# --- where sessions and beacons come from -------------------------------------------------


@dataclass(frozen=True)
class ProtocolAdapter:
    """One protocol's policy (SessionChunk -> BeaconChunk) and codec module."""

    protocol: str
    policy: Callable[[SessionChunk], BeaconChunk]
    codec: Any


def protocol_adapters(protocol: str) -> list[ProtocolAdapter]:
    """The adapters for `legacy`, `kava` or `both` (legacy then says hasKanalony=true, and KAVA
    is the line beside each legacy flavor: `sim.protocols.pairing`)."""
    check_choice(protocol)  # a ValueError naming the choices
    return [ProtocolAdapter(name, policy, PROTOCOLS[name].codec) for name, policy in choice_policies(protocol)]


def partition_seed(seed: int, worker: int, epoch: int) -> int:
    """The seed of one epoch of one worker's endless session stream: every (worker, epoch)
    draws from a random stream of its own, so workers never share sessions or session ids."""
    state = np.random.SeedSequence(seed, spawn_key=(worker, epoch)).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def at_configured_weights(components: list) -> list:
    """The components with flat clock curves (hourly, weekday, monthly): every stretch of their
    day then holds the scenarios in the mix's configured weights. A live run's sessions start
    when the arrival model says, not at the simulated hour, so the scenarios' daily curves
    would only skew its mix (a short run would get the midnight mix)."""
    from sim.scenario.loader import Component, as_components

    flat = {"hourly": [1.0] * 24, "weekday": [1.0] * 7, "monthly": [1.0] * 12}
    return [
        Component(
            c.name, c.scenario.model_copy(update={"clock": c.scenario.clock.model_copy(update=flat)}), c.weight, c.path
        )
        for c in as_components(components)
    ]


def session_stream(
    components: list, seed: int, *, worker: int = 0, chunk_size: int = 4096, population=None
) -> Iterator[SessionChunk]:
    """An endless stream of session chunks for one worker, the scenarios in their configured
    weights throughout (`at_configured_weights`; a shape that follows the scenarios' day
    thins this stream, see `sim.load.shapes`).

    Epoch after epoch of `generate_sessions`, each epoch one simulated day of about
    `chunk_size` sessions per hour, seeded by (seed, worker, epoch). Workers get disjoint
    streams through their seeds rather than `generate_sessions(worker=...)`: a day of a
    small run may be a single chunk partition, which would leave the other workers idle.
    The population is built once (unless given) and shared.
    """
    from sim.player.model import generate_sessions
    from sim.population import build_population

    components = at_configured_weights(components)
    population = population or build_population(components, seed)
    epoch = 0
    while True:
        for chunk in generate_sessions(
            components,
            partition_seed(seed, worker, epoch),
            sessions=chunk_size * 24,
            days=1,
            chunk_size=chunk_size,
            population=population,
        ):
            yield from split_chunk(chunk, chunk_size)
        epoch += 1


def split_chunk(chunk: SessionChunk, size: int) -> Iterator[SessionChunk]:
    """Consecutive pieces of at most `size` sessions. Each piece gets a seed of its own
    (spawned from the chunk's), so the beacon policies draw independent values for each;
    small pieces keep a piece's generation from holding the send loop up for long."""
    n = chunk.n_sessions
    if n <= size:
        yield chunk
        return
    first, count = chunk.sessions["first_action"], chunk.sessions["n_actions"]
    for k, a in enumerate(range(0, n, size)):
        b = min(a + size, n)
        lo = int(first[a])
        hi = int(first[b - 1] + count[b - 1])
        sessions = {name: col[a:b] for name, col in chunk.sessions.items()}
        sessions["first_action"] = sessions["first_action"] - lo
        actions = {name: col[lo:hi] for name, col in chunk.actions.items()}
        actions["session"] = (actions["session"] - a).astype(actions["session"].dtype)
        seed = np.random.SeedSequence(chunk.seed.entropy, spawn_key=(*chunk.seed.spawn_key, 1 << 31, k))
        yield dataclasses.replace(chunk, sessions=sessions, actions=actions, seed=seed)


# --- per-session player state and the queue of one beacon chunk ---------------------------


class SessionState:
    """What the player remembers per session while it plays (shared by both protocols),
    plus when each session is due to start and end and its scenario (for the figures)."""

    def __init__(
        self,
        n: int,
        *,
        scenario: np.ndarray | None = None,
        start: np.ndarray | None = None,
        end: np.ndarray | None = None,
        parked: np.ndarray | None = None,
    ):
        self.scenario = np.zeros(n, np.int64) if scenario is None else np.asarray(scenario, np.int64)
        self.start = np.zeros(n) if start is None else start  # wall time of the session's load
        self.end = np.zeros(n) if end is None else end  # wall time of its last action
        # sessions that never start (past a shape's end, or thinned away): not offered, not waited for
        self.real = np.ones(n, bool) if parked is None else ~np.asarray(parked, bool)
        # from this wall time on every session of the chunk that will start has started and ended
        real = self.real
        self.over_at = float(max(self.start[real].max(), self.end[real].max())) if real.any() else -math.inf
        self.started = np.zeros(n, bool)  # something of this session has been sent
        self.dropped = np.zeros(n, bool)  # open model: could not start on time
        self.server_time = np.full(n, np.nan)  # KAVA: first answer's `time` -> sessionStartTime
        self.views_off = np.zeros(n, bool)  # KAVA: first answer said viewEventsEnabled false
        self.preflights: dict[int, browser.PreflightCache] = {}  # the page view's CORS preflight results


@dataclass(slots=True)
class Outgoing:
    """One rendered send: the request and what the ledger and statistics need."""

    label: str
    protocol: str
    request: WireRequest
    key: Any
    session: int
    scenario: int = 0  # index into the schedule's scenario names
    head: bytes | None = None  # the request's headers as HTTP lines, when rendered ahead
    preflight: bytes | None = None  # the CORS preflight's headers as HTTP lines, when the request needs one
    sim_t: float = 0.0  # the send time on the viewer's clock (simulated epoch s)


def header_lines(headers: dict[str, str]) -> bytes:
    """`Name: value\r\n` per header (latin-1, as HTTP/1.1 header values are)."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode("latin-1", "replace")


class BeaconQueue:
    """The beacons of one chunk of one protocol, ordered by scheduled wall time."""

    COMPACT_MIN = 2048  # below this many rows, keeping sent rows costs less than copying

    def __init__(
        self,
        adapter: ProtocolAdapter,
        chunk: BeaconChunk,
        wall: np.ndarray,
        state: SessionState,
        stats: ScheduleStats,
        drop_after: float | None,
        transport: np.ndarray | None = None,
        target: str = "127.0.0.1",
    ):
        order = np.argsort(wall, kind="stable")
        self.adapter, self.protocol, self.codec = adapter, adapter.protocol, adapter.codec
        self.state, self.stats, self.drop_after = state, stats, drop_after
        self.chunk = take_rows(chunk, order)
        self.wall = wall[order]
        self.cursor = 0
        self.labels: dict[int, str] = {}
        # Requests are encoded column-wise a block of rows at a time, ahead of the rows' send
        # times (rows block_lo..block_hi-1): legacy ones whole (`encode_rows`), KAVA ones but
        # for the sessionStartTime that only the live server's first answer gives (`prepare_rows`)
        self.block_lo = self.block_hi = 0
        self.block: list[tuple] = []  # (label, request or KAVA Prepared, key, header lines, preflight lines)
        # how each session's plugin sends (browser.OFF, XHR, FLASH) and what its browser adds
        self.transport = np.zeros(state.scenario.shape, np.int8) if transport is None else transport
        self.target = target

    def __len__(self) -> int:
        return len(self.wall)

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.wall)

    def take_due(self, now: float, limit: int | None = None) -> tuple[np.ndarray, int, int]:
        """(times, first row, end row) of the rows due by `now`, at most `limit` of them;
        advances the cursor."""
        end = int(np.searchsorted(self.wall, now, side="right"))
        if limit is not None:
            end = min(end, self.cursor + limit)
        start, self.cursor = self.cursor, max(self.cursor, end)
        return self.wall[start:end], start, end

    @property
    def wants_compaction(self) -> bool:
        return self.cursor >= self.COMPACT_MIN and self.cursor * 2 >= len(self.wall)

    def compact(self) -> None:
        """Release the rows already rendered once they are most of the chunk."""
        if not self.wants_compaction:
            return
        keep = np.arange(self.cursor, len(self.wall))
        self.chunk = take_rows(self.chunk, keep)
        self.wall = self.wall[keep]
        self.block_lo -= self.cursor
        self.block_hi -= self.cursor
        self.cursor = 0

    def label(self, event_type: int) -> str:
        label = self.labels.get(event_type)
        if label is None:
            name = EVENT_NAMES[self.protocol].get(event_type, "EVENT")
            label = self.labels[event_type] = f"{self.protocol} {event_type} {name}"
        return label

    def render(self, row: int, late: float) -> Outgoing | None:
        """The request for `row`, or None when the player would not send it now: its session
        was dropped (open model, first send later than `drop_after`) or VIEWs are off."""
        chunk, state, stats = self.chunk, self.state, self.stats
        s = int(chunk.session[row])
        if state.dropped[s]:
            stats.skipped += 1
            return None
        if not state.started[s]:
            if self.drop_after is not None and late > self.drop_after:
                state.dropped[s] = True
                stats.dropped_sessions += 1
                stats.dropped_by[state.scenario[s]] += 1
                stats.skipped += 1
                return None
            state.started[s] = True
            stats.started_sessions += 1
            stats.started_by[state.scenario[s]] += 1
        if not self.block_lo <= row < self.block_hi:
            self._encode_block(row)
        label, request, key, head, preflight = self.block[row - self.block_lo]
        if self.protocol == "kava":
            if request.event_type == KAVA_VIEW and state.views_off[s]:
                stats.views_suppressed += 1
                return None
            # The policy marks where the player holds a sessionStartTime (absent on a session's
            # first beacon and after a pause cleared it); the value is the live server's answer.
            start = None
            if not request.holds_start:
                state.server_time[s] = np.nan  # this beacon's answer sets a new one
            elif state.server_time[s] == state.server_time[s]:
                start = float(state.server_time[s])  # echoed as the server gave it
            request = request.request(start)
        return Outgoing(
            label, self.protocol, request, key, s, int(state.scenario[s]), head, preflight, float(chunk.send_t[row])
        )

    # Rows encoded at once: at most BLOCK (amortises the per-column work), and beyond
    # BLOCK_MIN only those due within BLOCK_AHEAD seconds of the first, so a queue whose
    # next rows are minutes apart (long sessions) holds few encoded rows in memory
    BLOCK, BLOCK_MIN, BLOCK_AHEAD = 1024, 64, 2.0

    def _encode_block(self, row: int) -> None:
        """Encode rows `row`.. of this queue in one go (they are due next, in this order)."""
        soon = int(np.searchsorted(self.wall, self.wall[row] + self.BLOCK_AHEAD, side="right"))
        hi = min(max(soon, row + self.BLOCK_MIN), row + self.BLOCK, len(self.wall))
        rows = np.arange(row, hi)
        if self.protocol == "kava":
            prepared = self.codec.prepare_rows(self.chunk, rows)
            encoded = [(self.label(p.event_type), p, p.key, p.headers) for p in prepared]
        else:
            requests, keys = self.codec.encode_rows(self.chunk, rows)
            labels = [self.label(int(t)) for t in self.chunk.columns["eventType"][rows].tolist()]
            encoded = [(label, r, key, r.headers) for label, r, key in zip(labels, requests, keys)]
        heads: dict[int, bytes] = {}  # rows with the same headers share one dict
        block = []
        transport, session, sent_headers = self.transport, self.chunk.session, browser.Headers(self.target)
        for row_at, (label, request, key, headers) in zip(rows.tolist(), encoded):
            headers, preflight = sent_headers(headers, request.method, int(transport[session[row_at]]))
            request.headers = headers
            head = heads.get(id(headers))
            if head is None:
                head = heads[id(headers)] = header_lines(headers)
            if preflight is not None:
                pre = heads.get(id(preflight))
                preflight = heads[id(preflight)] = header_lines(preflight) if pre is None else pre
            block.append((label, request, key, head, preflight))
        self.block, self.block_lo, self.block_hi = block, row, hi

    def needs_preflight(self, out: Outgoing) -> bool:
        """The browser has no fresh preflight result for this request's URL in this page view."""
        cache = self.state.preflights.get(out.session)
        return cache is None or not cache.fresh(out.request.url, out.sim_t)

    def on_preflight(self, out: Outgoing, max_age: str | None) -> None:
        """A preflight was answered with `Access-Control-Max-Age: max_age` (None: not sent)."""
        cache = self.state.preflights.get(out.session)
        if cache is None:
            cache = self.state.preflights[out.session] = browser.PreflightCache()
        agent = browser.browser_of(out.request.headers.get("User-Agent"))
        cache.store(out.request.url, out.sim_t, browser.max_age(max_age, agent))

    def on_response(self, out: Outgoing, body: bytes) -> None:
        """KAVA: the first answer of a session sets sessionStartTime and viewEventsEnabled."""
        if self.protocol != "kava" or self.state.server_time[out.session] == self.state.server_time[out.session]:
            return
        try:
            server_time, views_enabled = self.codec.parse_response(body)
        except Exception:  # an answer the player cannot parse changes nothing, as in kava.ts
            return
        self.state.server_time[out.session] = float(server_time)
        self.state.views_off[out.session] = not views_enabled


# --- the schedule ---------------------------------------------------------------------------


@dataclass
class ScheduleStats:
    sessions_generated: int = 0
    started_sessions: int = 0
    dropped_sessions: int = 0  # open model: could not start on time (k6 dropped_iterations)
    skipped: int = 0  # beacons not sent because their session was dropped
    views_suppressed: int = 0  # KAVA VIEWs not sent after viewEventsEnabled:false
    beacons_scheduled: int = 0
    generate_seconds: float = 0.0  # time spent generating sessions and beacons
    # per scenario (index into scenario_names), for the Viewers tab
    scenario_names: list[str] = field(default_factory=list)
    started_by: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dropped_by: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    offered_by: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # of retired states

    def know_scenarios(self, names: list[str]) -> None:
        """Size the per-scenario counters for `names` (the same list in every chunk of a run)."""
        if len(names) > len(self.scenario_names):
            grow = len(names) - len(self.scenario_names)
            self.scenario_names = list(names)
            self.started_by = np.concatenate([self.started_by, np.zeros(grow, np.int64)])
            self.dropped_by = np.concatenate([self.dropped_by, np.zeros(grow, np.int64)])
            self.offered_by = np.concatenate([self.offered_by, np.zeros(grow, np.int64)])


@dataclass
class Schedule:
    """Time-ordered beacons of every session generated so far, generated `lookahead`
    wall seconds ahead of the clock."""

    stream: Iterator[SessionChunk]
    arrivals: OpenArrivals | ClosedArrivals
    timebase: Timebase
    adapters: list[ProtocolAdapter]
    lookahead: float = 2.0
    drop_after: float | None = None
    chunk_hook: Callable[[SessionChunk], None] | None = None  # e.g. partner/entry overrides
    target: str = "127.0.0.1"  # the beacon host: whether a request is cross-origin, Sec-Fetch-Site
    queues: list[BeaconQueue] = field(default_factory=list)
    stats: ScheduleStats = field(default_factory=ScheduleStats)
    states: list[SessionState] = field(default_factory=list)  # chunks with sessions not yet over
    # (wall time of the next row, tie-break, queue) of every queue with rows left: pop_due
    # visits only queues with something due, however many chunks are in flight
    heads: list = field(default_factory=list)
    _tie: Iterator[int] = field(default_factory=itertools.count)
    compaction_wanted: bool = False  # a queue finished or is mostly sent since the last compact()

    def needs_more(self, now: float) -> bool:
        """True while the assigned sessions do not reach `now + lookahead`."""
        return self.arrivals.horizon < now + self.lookahead

    def refill(self, now: float, budget: int = 1) -> int:
        """Generate up to `budget` session chunks while `needs_more(now)`; returns how many."""
        made = 0
        while made < budget and self.needs_more(now):
            self.integrate(self.prepare())
            made += 1
        return made

    def prepare(self) -> list[BeaconQueue]:
        """The queues of the next session chunk, re-timed and sorted. Touches only the
        stream, the arrival model and the counters, so it may run in a thread while the
        send loop goes on; `integrate` then adds the queues."""
        began = time.perf_counter()
        chunk = next(self.stream)
        if self.chunk_hook is not None:
            self.chunk_hook(chunk)
        sessions, actions = chunk.sessions, chunk.actions
        n = chunk.n_sessions
        last = sessions["first_action"] + np.maximum(sessions["n_actions"], 1) - 1
        lengths_sim = actions["t"][last] if chunk.n_actions else np.zeros(n)
        if getattr(self.arrivals, "thins", False):  # a shape that gives each scenario its day's share
            starts_wall = self.arrivals.assign(lengths_sim / self.timebase.scale, sessions["scenario"])
        else:
            starts_wall = self.arrivals.assign(lengths_sim / self.timebase.scale)
        # a shaped run parks the sessions of its last chunk that fall after the shape's end (and
        # those it thins away): they never start, get no beacons and do not count as generated
        parked = starts_wall >= getattr(self.arrivals, "parked_at", math.inf)
        # beacons carry simulated time: the session starts "now" on the simulated clock, and
        # the policy times each beacon from the session's start
        sessions["start"] = self.timebase.to_sim(starts_wall)
        self.stats.know_scenarios(list(chunk.scenario_names))
        state = SessionState(
            n,
            scenario=sessions["scenario"],
            start=starts_wall,
            end=starts_wall + lengths_sim / self.timebase.scale,
            parked=parked,
        )
        queues = []
        for adapter in self.adapters:
            beacons = adapter.policy(chunk)
            if parked.any():
                beacons = take_rows(beacons, np.flatnonzero(~parked[beacons.session]))
            if len(beacons):
                transport = browser.session_transports(chunk, adapter.protocol)
                queues.append(
                    BeaconQueue(
                        adapter,
                        beacons,
                        self.timebase.to_wall(beacons.send_t),
                        state,
                        self.stats,
                        self.drop_after,
                        transport,
                        self.target,
                    )
                )
        self.stats.sessions_generated += n - int(parked.sum())
        self.stats.beacons_scheduled += sum(len(q) for q in queues)
        self.stats.generate_seconds += time.perf_counter() - began
        return queues

    def integrate(self, queues: list[BeaconQueue]) -> None:
        self.queues.extend(queues)
        for q in queues:
            if not q.done:
                heapq.heappush(self.heads, (float(q.wall[q.cursor]), next(self._tie), q))
        for state in {id(q.state): q.state for q in queues}.values():
            self.states.append(state)

    def retire(self, now: float) -> None:
        """Forget the states of chunks whose sessions are all over, keeping their arrivals."""
        k = len(self.stats.scenario_names)
        keep = []
        for state in self.states:
            if state.over_at <= now:
                self.stats.offered_by += np.bincount(state.scenario[state.real], minlength=k)[:k]
            else:
                keep.append(state)
        self.states = keep

    def viewers(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per scenario: (sessions in progress at `now`: started, not dropped, last action
        still ahead; sessions whose scheduled start is at or before `now`)."""
        self.retire(now)
        k = len(self.stats.scenario_names)
        active = np.zeros(k, np.int64)
        offered = self.stats.offered_by.copy()
        for state in self.states:
            live = state.started & ~state.dropped & (state.end > now)
            active += np.bincount(state.scenario[live], minlength=k)[:k]
            offered += np.bincount(state.scenario[state.start <= now], minlength=k)[:k]
        return active, offered

    def next_due(self) -> float | None:
        """Wall time of the earliest beacon not yet handed out."""
        return self.heads[0][0] if self.heads else None

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[float, BeaconQueue, int]]:
        """Every (scheduled time, queue, row) due by `now`, earliest first, at most `limit`
        of them (the rest stay for the next call). Render the rows before the next
        `compact()`: compaction renumbers rows.

        A merge of the queues by their next rows: the queue due first gives its rows up to
        the next queue's head, and so on."""
        heads, pop, push, tie = self.heads, heapq.heappop, heapq.heappush, self._tie
        due: list[tuple[float, BeaconQueue, int]] = []
        room = math.inf if limit is None else limit
        while heads and heads[0][0] <= now and room > 0:
            _, _, q = pop(heads)
            upto = min(now, heads[0][0]) if heads else now
            times, start, end = q.take_due(upto, room)
            due.extend(zip(times.tolist(), itertools.repeat(q), range(start, end)))
            room -= end - start
            if q.done:
                self.compaction_wanted = True
            else:
                push(heads, (float(q.wall[q.cursor]), next(tie), q))
                if q.wants_compaction:
                    self.compaction_wanted = True
        return due

    def wants_compaction(self) -> bool:
        """True when a queue finished or is mostly sent, so `compact()` would release memory."""
        return self.compaction_wanted

    def compact(self) -> None:
        """Drop finished queues and release rendered rows (only between batches)."""
        now = time.time()
        if self.states and self.states[0].over_at <= now:
            self.retire(now)
        if not self.compaction_wanted:
            return
        self.compaction_wanted = False
        self.queues = [q for q in self.queues if not q.done]
        for q in self.queues:
            q.compact()

    @property
    def pending(self) -> int:
        return sum(len(q) - q.cursor for q in self.queues)
