"""A run cut into parts that any process can make, written as pieces that join into the same bytes.

A *part* is `PART_CHUNKS` consecutive session chunks (`sim.player.model.chunk_partitions`):
fixed by the scenario, seed and size alone, never by the number of workers. Part j's
sessions start in the time window [W_j, W_j+1) (W_j: the start of its first partition's
window), but their beacons run on past W_j+1. So piece j of the output holds the rows sent in
[W_j, W_j+1): part j's own and the *carry*, the rows of earlier parts sent at or after W_j,
merged in global send order (earlier chunks first at equal send times, as `SendOrderMerge`
puts them). The carry passes from part to part through a small Arrow file in the run's
folder: part j waits for `carry-j`, and writes `carry-j+1` as soon as its rows are merged,
before it encodes its piece. So sessions are drawn and pieces encoded in parallel; only the
merge, a few percent of the work, is a chain.

Each piece is a whole file (Parquet: its own row groups from the window's first row), so the
bytes of a piece depend on its rows only: joined in order (`sinks.stitch`) they give the same
file whatever process made which part.

    spec = RunSpec(components, seed=7, sessions=10**6, protocol="legacy", fmt="parquet", workdir=tmp)
    results = [make_part(spec, j) for j in range(n_parts(spec))]
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

try:
    import resource
except ImportError:  # not Unix: the timeline carries no faults or peak memory
    resource = None

from sim.generate import CHUNK_SESSIONS, SendOrderMerge, _rows, file_beacons, preflight_rows
from sim.sinks import REQUESTS_SCHEMA, EventsBuilder, open_sink
from sim.sinks.formats import compact_dictionary

# Session chunks per part: about 131k sessions. A worker holds a part's rows until the carry of
# the parts before it is in (about 0.5 GB at 4 beacons a session); parts this size still
# leave a 1M-session run 8 parts to share out.
PART_CHUNKS = 8
# How often a part waiting for its carry looks for it.
CARRY_POLL_S = 0.01


# A file to which every process of a run appends what it did when (bench/bench_workers.py reads it).
TIMELINE_ENV = "PLAYER_SIM_TIMELINE"


def record(what: str, start: float, cpu: float, part: int | None = None, faults: int = 0) -> None:
    """One line of the run's timeline: `what` ran from `start` (epoch s) until now, using `cpu`
    CPU seconds of this process (and `faults` page faults). Nothing unless $PLAYER_SIM_TIMELINE
    names a file."""
    path = os.environ.get(TIMELINE_ENV)
    if path:
        line = json.dumps(
            {
                "pid": os.getpid(),
                "what": what,
                "part": part,
                "start": start,
                "end": time.time(),
                "cpu": cpu,
                "faults": faults,
                "rss": _peak_rss_mib(),
            }
        )
        with open(path, "a") as f:  # one short write: lines of several processes do not mix
            f.write(line + "\n")


def record_start_up() -> None:
    """The process's start-up (interpreter, imports) as the timeline's first line: from the
    time the caller put in $PLAYER_SIM_T0 (epoch s), with all the CPU used so far."""
    if os.environ.get(TIMELINE_ENV):
        record("start-up", float(os.environ.get("PLAYER_SIM_T0", time.time())), time.process_time(), None, _faults())


def _peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (0 where unknown)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if resource else 0.0


def _faults() -> int:
    """This process's minor page faults so far (0 where unknown)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


@contextmanager
def span(what: str, part: int | None = None) -> Iterator[None]:
    """The block as one line of the run's timeline (see `record`)."""
    if not os.environ.get(TIMELINE_ENV):
        yield
        return
    start, cpu, faults = time.time(), time.process_time(), _faults()
    try:
        yield
    finally:
        record(what, start, time.process_time() - cpu, part, _faults() - faults)


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to make any part of a run (picklable: goes to other processes)."""

    components: object
    seed: int
    sessions: int | None
    days: float | None
    protocol: str
    fmt: str
    workdir: str  # the run's folder of pieces and carries, seen by every worker
    partition: str | None = None
    encoding: dict | None = None
    chunk_size: int = CHUNK_SESSIONS
    part_chunks: int = PART_CHUNKS
    partition_sessions: int | None = None  # the player model's partition size (None: its own)
    token: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class PartResult:
    index: int
    sessions: int = 0
    beacons: int = 0
    preflights: int = 0  # request files: the browsers' CORS preflight lines (not beacons)
    last_ts: float | None = None
    schema: pa.Schema | None = None


class _Prepared:
    """A run prepared in this process (population, arrival plan, compiled scenarios): once per
    run and thread, then shared by every part the thread makes."""

    def __init__(self, spec: RunSpec):
        from sim.player.model import chunk_partitions, prepare_run

        self.token = spec.token
        self.run = prepare_run(
            spec.components,
            spec.seed,
            sessions=spec.sessions,
            days=spec.days,
            partition_sessions=spec.partition_sessions,
        )
        chunks = chunk_partitions(self.run.plan, spec.chunk_size)
        self.parts = [chunks[i : i + spec.part_chunks] for i in range(0, len(chunks), spec.part_chunks)]
        self.builder: EventsBuilder | None = None

    def boundary(self, j: int) -> float:
        """W_j: no session of part j or later starts before it (+inf past the last part)."""
        if j >= len(self.parts):
            return math.inf
        return self.run.plan.window(self.parts[j][0].start)[0]


_local = threading.local()


def prepared(spec: RunSpec) -> _Prepared:
    state = getattr(_local, "prepared", None)
    if state is None or state.token != spec.token:
        state = _local.prepared = _Prepared(spec)
    return state


# Sessions of each cell (component and time-zone group) the warm-up makes: enough to go through
# every kernel, few enough to cost next to nothing (a whole partition, ~7k sessions, cost 0.17 CPU s).
WARM_UP_SESSIONS_PER_CELL = 8


def warm_up(spec: RunSpec) -> None:
    """Loads every compiled kernel a part uses (numba's cache, about a second) by making a few
    sessions in the window of the run's smallest partition and writing their rows nowhere:
    processes forked afterwards start with them loaded instead of each loading them again.
    Works on a copy of the run: changes nothing a part makes."""
    import dataclasses
    import io

    import numpy as np

    from sim.player.model import make_chunk
    from sim.sinks.events import conform
    from sim.sinks.formats import WRITERS

    state = prepared(spec)
    plan = state.run.plan
    counts = plan.part_counts.sum(axis=1)
    if not len(counts):
        return
    p = int(counts.argmin())
    # Partition p as the only one, made as a slice of its first bin (arrivals drawn from
    # its per-cell counts alone), with at most WARM_UP_SESSIONS_PER_CELL sessions a cell.
    few = dataclasses.replace(
        plan,
        part_bins=plan.part_bins[p : p + 1],
        part_slice=np.zeros(1, np.int64),
        part_slices=np.full(1, 2, np.int64),
        part_first=plan.part_first[p : p + 1],
        part_counts=np.minimum(plan.part_counts[p : p + 1], WARM_UP_SESSIONS_PER_CELL),
    )
    chunk = make_chunk(dataclasses.replace(state.run, plan=few), range(0, 1))
    beacons = file_beacons(chunk, spec.protocol)
    builder = EventsBuilder.for_chunks(beacons)
    schema = REQUESTS_SCHEMA if spec.fmt == "requests" else builder.schema
    writer = WRITERS[spec.fmt](io.BytesIO(), schema)
    for table, _ in _rows(chunk, beacons, spec.fmt, builder, spec.encoding):
        writer.write(conform(table, schema))
    writer.close()


def n_parts(spec: RunSpec) -> int:
    return len(prepared(spec).parts)


# -- the carry between parts ---------------------------------------------------------------------


def carry_path(workdir: str, j: int) -> Path:
    return Path(workdir) / f"carry-{j:06d}.arrows"


def write_carry(workdir: str, j: int, table: pa.Table | None) -> None:
    """The rows part j receives from earlier parts, published whole (written, then renamed)."""
    path = carry_path(workdir, j)
    tmp = path.with_name(path.name + ".tmp")
    if table is None:
        table = pa.table({"ts": pa.array([], pa.float64())})
    # Only the entries the rows use travel: pools such as every viewer's id are large.
    columns = [
        pa.chunked_array([compact_dictionary(c, always=True) for c in col.chunks], type=col.type)
        if pa.types.is_dictionary(col.type)
        else col
        for col in table.columns
    ]
    table = pa.Table.from_arrays(columns, schema=table.schema)
    with open(tmp, "wb") as f, pa.ipc.new_stream(f, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def read_carry(workdir: str, j: int, wait: bool) -> pa.Table | None:
    """Part j's carry; None when it is not there yet and `wait` is false."""
    path = carry_path(workdir, j)
    while not path.exists():
        if not wait:
            return None
        if not path.parent.exists():
            raise RuntimeError(f"part {j}: the run's folder {path.parent} is gone (the run was stopped)")
        time.sleep(CARRY_POLL_S)
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    path.unlink()
    return table


# -- one part -----------------------------------------------------------------------------------


def piece_path(workdir: str, j: int) -> Path:
    return Path(workdir) / f"piece-{j:06d}"


def make_part(spec: RunSpec, j: int, on_chunk: Callable[[int], None] | None = None, stream: bool = False) -> PartResult:
    """Draws part j's sessions, merges in the carry of the parts before it, passes on the carry
    of those after it and writes piece j (a file; a folder of days with `spec.partition`).
    `on_chunk(sessions)` is called after each session chunk.

    Rows are held until the part is merged, so the next part, perhaps waiting in another
    process, gets its carry before this one encodes. `stream`: nobody waits (the parts are
    made one after another here); rows are written as they are released, in less memory.
    The bytes are the same either way: the writer gets the same tables in the same order.
    """
    state = prepared(spec)
    result = PartResult(j)
    start, end = state.boundary(j), state.boundary(j + 1)
    merge = SendOrderMerge()
    window: list[pa.Table] = []
    held: list[tuple[list, float]] = []  # chunks' rows made before the carry came in
    have_carry = False
    sink = None

    def schema() -> pa.Schema:
        if spec.fmt == "requests":
            return REQUESTS_SCHEMA
        return state.builder.schema if state.builder is not None else EventsBuilder().schema

    def write(table: pa.Table) -> None:
        nonlocal sink
        if sink is None:
            sink = open_sink(spec.fmt, piece_path(spec.workdir, j), schema(), partition=spec.partition)
        sink.write(table)
        preflights = preflight_rows(table)
        result.beacons += table.num_rows - preflights
        result.preflights += preflights
        result.last_ts = float(table.column("ts")[-1].as_py())

    def push(parts: list, watermark: float) -> None:
        released = merge.push(parts, watermark)
        if released is not None:
            window.append(released)

    def write_window() -> None:
        for table in window:
            write(table)
        window.clear()

    def take_carry(carry: pa.Table | None) -> None:
        nonlocal have_carry
        if j:
            record("carry in", time.time(), 0.0, j)
        if carry is not None and carry.num_rows:
            push([(carry, carry.column("ts").to_numpy())], start)
        for parts, watermark in held:
            push(parts, watermark)
        held.clear()
        have_carry = True

    from sim.player.model import make_chunk

    try:
        if j == 0:
            take_carry(None)
        for chunk_range in state.parts[j]:
            with span("simulate", j):
                chunk = make_chunk(state.run, chunk_range)
                beacons = file_beacons(chunk, spec.protocol)
                if spec.fmt != "requests" and state.builder is None:
                    state.builder = EventsBuilder.for_chunks(beacons)
                parts = _rows(chunk, beacons, spec.fmt, state.builder, spec.encoding)
            watermark = max(float(chunk.sessions["start"].min()), start) if chunk.n_sessions else start
            n_sessions = chunk.n_sessions
            result.sessions += n_sessions
            # The chunk's session and beacon columns are not needed past its rows: let them go
            # now, not when the next chunk is already drawn beside them (the peak of a part).
            del chunk, beacons
            with span("merge", j):
                if not have_carry:
                    carry = read_carry(spec.workdir, j, wait=False)
                    if carry is not None:
                        take_carry(carry)
                if have_carry:
                    push(parts, watermark)
                else:
                    held.append((parts, watermark))
            if stream:
                with span("write", j):
                    write_window()
            if on_chunk is not None:
                on_chunk(n_sessions)
            del parts
        if not have_carry:
            with span("carry wait", j):
                carry = read_carry(spec.workdir, j, wait=True)
            with span("merge", j):
                take_carry(carry)
        with span("merge", j):
            push([], end)
            onward = merge.flush()
        if j + 1 < len(state.parts):
            with span("carry out", j):
                write_carry(spec.workdir, j + 1, onward)
        elif onward is not None:
            window.append(onward)
        with span("write", j):
            write_window()
            if sink is None:  # a piece without rows: still a valid (empty) file
                sink = open_sink(spec.fmt, piece_path(spec.workdir, j), schema(), partition=spec.partition)
            sink.commit()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    result.schema = schema()
    return result
