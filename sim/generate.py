"""The generate pipeline: scenario components -> sessions -> beacons -> rows in send order -> a file.

    stats = generate(load("scenarios/default-mix.yaml"), seed=7, sessions=100_000,
                     protocol="legacy", fmt="parquet", out="out/events.parquet")

A run is made in parts (`sim.parts`): here, in worker processes or on a Dask cluster
(`sim.workers`), with the same bytes. Within a part, sessions come from the player model
chunk by chunk, in order of start time; a session's beacons reach beyond the next chunk's
first start, so rows wait in a bounded pending buffer (`SendOrderMerge`) until no later
chunk can precede them. Memory is set by the size of a part and the longest session, not by
the length of the run. `protocol="both"` is one player running both plugins: the legacy
plugin then reports `hasKanalony=true`, and each legacy flavor is paired with the KAVA line
that shipped beside it (`sim.protocols.pairing`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sim.player.timeline import SessionChunk
from sim.protocols import browser
from sim.protocols.beacons import BeaconChunk, WireRequest
from sim.protocols.choice import DEFAULT_CHOICE, check_choice
from sim.protocols.registry import choice_policies, protocol as protocol_spec
from sim.sinks import EventsBuilder, requests_table
from sim.sinks.formats import concat_chunks

# Sessions per chunk: the pending buffer holds about one chunk of rows, so smaller chunks
# keep memory down; 16k sessions measured faster than 64k too (caches).
CHUNK_SESSIONS = 16384


@dataclass
class GenerateStats:
    sessions: int = 0
    beacons: int = 0
    preflights: int = 0  # request files: the browsers' CORS preflights (not beacons)
    seconds: float = 0.0
    total_sessions: int = 0

    @property
    def rate(self) -> float:
        return self.beacons / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        preflights = f" (and {self.preflights:,} CORS preflights)" if self.preflights else ""
        return (
            f"{self.sessions:,} sessions, {self.beacons:,} beacons{preflights} in {self.seconds:.1f} s "
            f"({self.rate:,.0f} beacons/s)"
        )


# -- beacons of a session chunk ----------------------------------------------------------------


def beacon_chunks(chunk: SessionChunk, protocol: str, in_send_order: bool = False) -> list[BeaconChunk]:
    """The beacons of a chunk's sessions, legacy first: one BeaconChunk per protocol sent.
    `in_send_order`: the policies give their rows in one send order across sessions (see
    BeaconChunk); KAVA's beside legacy (`both`) stay grouped by session."""
    return [policy(chunk) for _, policy in choice_policies(protocol, in_send_order=in_send_order)]


def file_beacons(chunk: SessionChunk, protocol: str) -> list[BeaconChunk]:
    """`beacon_chunks` as the event and request files take them: in send order where the
    policy can give that (the pipeline then skips its own sort)."""
    return beacon_chunks(chunk, protocol, in_send_order=True)


def wire_requests(
    chunk: BeaconChunk, encoding: str | None, rows: Iterable[int] | None = None
) -> tuple[list[WireRequest], list[str]]:
    """The WireRequest of every beacon (or of `rows`, in that order), encoded by the codec,
    and the beacon's ledger key (`codec.ledger_key`).

    `encoding` None: each row's own (the scenario's choice) or the protocol's default, built
    column-wise by the codec's `encode_rows`; otherwise every row in that encoding.
    """
    codec = protocol_spec(chunk.protocol).codec
    rows = np.arange(len(chunk)) if rows is None else np.asarray(rows, dtype=np.int64)
    if encoding is None:
        return codec.encode_rows(chunk, rows)
    beacons = [codec.beacon_at(chunk, i) for i in rows.tolist()]
    return [codec.encode(b, encoding) for b in beacons], [codec.ledger_key(b) for b in beacons]


def browser_requests(
    chunk: SessionChunk,
    beacons: BeaconChunk,
    order: np.ndarray | None,
    ts: np.ndarray,
    wire: list[WireRequest],
    keys: list[str],
):
    """The request-file rows of `wire` (in send order) as the viewers' browsers send them:
    their headers, and a CORS preflight row before each request that needs one (its key
    None). Returns (requests, keys, times, preflight mask)."""
    rows = np.arange(len(beacons)) if order is None else order
    sessions = np.asarray(beacons.session)[rows]
    transport = browser.session_transports(chunk, beacons.protocol)[sessions]
    if not transport.any():
        return wire, keys, ts, None
    answers = [browser.scenario_max_age(sc) for sc in chunk.scenarios]
    answer_of_row = [answers[s] for s in chunk.sessions["scenario"][sessions].tolist()]
    position, preflights, preflight_at = browser.with_preflights(
        ts, wire, sessions, transport, answer_of_row, browser.BEACON_HOSTS[beacons.protocol]
    )
    if not preflights:
        return wire, keys, ts, None
    n = len(wire) + len(preflights)
    all_wire: list = [None] * n
    all_keys: list = [None] * n
    all_ts = np.empty(n)
    mask = np.zeros(n, bool)
    for p, request, key in zip(position, wire, keys):
        all_wire[p], all_keys[p] = request, key
    position = np.asarray(position, np.int64)
    all_ts[position] = ts
    at = np.asarray(preflight_at, np.int64)
    for p, request in zip(preflight_at, preflights):
        all_wire[p] = request
    all_ts[at] = all_ts[at + 1]  # a preflight goes out with its request
    mask[at] = True
    return all_wire, all_keys, all_ts, mask


# -- global send order ---------------------------------------------------------------------------


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Tables of rows one under the other; a column missing from some is null there."""
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


class _Run:
    """Rows of one session chunk sorted by send time, of which [start:] are not yet released."""

    __slots__ = ("table", "ts", "arrival", "start")

    def __init__(self, table: pa.Table, ts: np.ndarray, arrival: np.ndarray):
        self.table, self.ts, self.arrival, self.start = table, ts, arrival, 0

    def __len__(self) -> int:
        return len(self.ts) - self.start


class SendOrderMerge:
    """Puts rows of successive session chunks into one global send order, holding only the tail.

    `push(parts, watermark)` takes the rows of one session chunk, each part sorted by
    `send_order`, and the earliest session start of that chunk: no beacon of this or any
    later chunk is sent before it, so every pending row before it is final and is returned,
    in order. Ties in send time keep the order rows were pushed (earlier chunks first, then
    the order the parts were given: legacy before KAVA); within a part `send_order` keeps
    session order, then beacon order within a session.
    """

    def __init__(self):
        self.runs: list[_Run] = []
        self.released_until = -math.inf
        self._arrivals = 0

    @property
    def pending(self) -> int:
        return sum(len(r) for r in self.runs)

    def push(self, parts: list[tuple[pa.Table, np.ndarray]], watermark: float) -> pa.Table | None:
        """parts: (rows, their send times) per protocol, each already in send order (see
        `send_order`); they stay separate runs. Returns the rows now final, or None."""
        runs = []
        for table, ts in parts:
            if not table.num_rows:
                continue
            ts = np.asarray(ts, dtype=np.float64)
            if ts[0] < self.released_until or (len(ts) > 1 and ts.min() < self.released_until):
                raise RuntimeError(
                    f"session chunks out of start order: a beacon at {ts.min():.3f} comes after rows up to "
                    f"{self.released_until:.3f} were written (the player model must yield chunks in start order)"
                )
            if len(ts) > 1 and np.any(ts[1:] < ts[:-1]):
                raise ValueError("SendOrderMerge.push: rows of a part must be in send order (see send_order)")
            n = len(ts)
            runs.append(_Run(table, ts, np.arange(self._arrivals, self._arrivals + n, dtype=np.int64)))
            self._arrivals += n
        released = self._release(watermark)
        self.runs.extend(runs)
        return released

    def flush(self) -> pa.Table | None:
        """Every pending row, in order (end of the stream)."""
        return self._release(math.inf)

    def _release(self, watermark: float) -> pa.Table | None:
        watermark = max(watermark, self.released_until)
        pieces = []
        for run in self.runs:
            cut = int(np.searchsorted(run.ts, watermark, side="left"))
            if cut > run.start:
                pieces.append((run, run.start, cut))
        if not pieces:
            self.released_until = watermark
            return None
        tables = [run.table.slice(a, b - a) for run, a, b in pieces]
        if len(pieces) == 1:
            out = tables[0]
        else:
            out = _interleave(tables, [run.ts[a:b] for run, a, b in pieces], [run.arrival[a:b] for run, a, b in pieces])
        for run, _, cut in pieces:
            run.start = cut
            remaining = len(run)
            if remaining and remaining * 2 < len(run.ts):
                # Copy the tail so the released rows' buffers can be freed.
                keep = np.arange(cut, len(run.ts))
                run.table = run.table.take(pa.array(keep))
                run.ts, run.arrival, run.start = run.ts[cut:], run.arrival[cut:], 0
        self.runs = [r for r in self.runs if len(r)]
        self.released_until = watermark
        return out


def _interleave(tables: list[pa.Table], ts: list[np.ndarray], arrival: list[np.ndarray]) -> pa.Table:
    """Rows of several runs, each in order, in one order by (send time, arrival).

    The other runs are tails of long sessions from earlier chunks: they end within minutes
    of the window's start. Only the head (their rows and the biggest run's rows before their
    last one) is sorted and gathered row by row; the biggest run's later rows follow as they
    are (a slice, no copy).
    """
    sizes = [len(t) for t in ts]
    major = int(np.argmax(sizes))
    # The last row of the other runs in (send time, arrival) order: each run is in that order.
    last_ts, last_arrival = max((t[-1], a[-1]) for i, (t, a) in enumerate(zip(ts, arrival)) if i != major)
    # A run's arrivals are consecutive, so at a tie in time all of the biggest run's rows go
    # before that last row or all after it.
    side = "right" if arrival[major][0] < last_arrival else "left"
    prefix = int(np.searchsorted(ts[major], last_ts, side=side))
    head_tables = tables[:major] + [tables[major].slice(0, prefix)] + tables[major + 1 :]
    head_sizes = sizes[:major] + [prefix] + sizes[major + 1 :]
    order = np.lexsort(
        (
            np.concatenate([a[:n] for a, n in zip(arrival, head_sizes)]),
            np.concatenate([t[:n] for t, n in zip(ts, head_sizes)]),
        )
    )
    head_rows = _gather(_concat(head_tables), order)
    if prefix == sizes[major]:
        return head_rows
    return _concat([head_rows, tables[major].slice(prefix)])


def _gather(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """`table.take(rows)`, with text columns gathered by their codes: chunks over different
    pools (session ids are per chunk) are laid side by side (`concat_chunks`), where Arrow's
    own take would first unify their dictionaries by hashing every text."""
    indices = pa.array(rows)
    return pa.Table.from_arrays(
        [
            concat_chunks(column).take(indices) if pa.types.is_dictionary(column.type) else column.take(indices)
            for column in table.columns
        ],
        schema=table.schema,
    )


def send_order(ts: np.ndarray, session_seq: np.ndarray) -> np.ndarray:
    """Row numbers in send order: by time, then session, then the rows' own order (stable)."""
    return np.lexsort((session_seq, ts))


# -- the pipeline ------------------------------------------------------------------------------


def _rows(
    chunk: SessionChunk,
    beacons: list[BeaconChunk],
    fmt: str,
    builder: EventsBuilder | None,
    encoding: dict[str, str] | None,
) -> list[tuple[pa.Table, np.ndarray]]:
    """Each protocol's rows of one session chunk, in send order, with their send times."""
    parts = []
    seq_of_row = chunk.sessions["session_seq"]
    for b in beacons:
        ts = np.asarray(b.send_t, dtype=np.float64)
        order = None if b.in_send_order else send_order(ts, seq_of_row[np.asarray(b.session, dtype=np.int64)])
        sorted_ts = ts if order is None else ts[order]
        if fmt == "requests":
            chosen = (encoding or {}).get(b.protocol)
            wire, keys = wire_requests(b, chosen, order)
            if not (b.protocol == "legacy" and chosen == "json"):  # that one is the API client's, no browser's
                wire, keys, sorted_ts, preflight = browser_requests(chunk, b, order, sorted_ts, wire, keys)
            else:
                preflight = None
            table = requests_table(sorted_ts, wire, b.protocol, keys, preflight)
        else:
            table = builder.table(b, chunk, order)
        parts.append((table, sorted_ts))
    return parts


def stream_rows(
    chunks: Iterable[SessionChunk],
    *,
    protocol: str,
    fmt: str,
    encoding: dict[str, str] | None = None,
    stats: GenerateStats | None = None,
    beacons_of: Callable[[SessionChunk, str], list[BeaconChunk]] = file_beacons,
    on_schema: Callable[[pa.Schema], None] | None = None,
) -> Iterator[pa.Table]:
    """Tables of events-table rows (or request rows for fmt="requests") in global send order.

    A table holds the columns its rows fill; `on_schema` is called with the run's whole
    events-table schema (fixed by the first chunk) before the first table is yielded.
    `beacons_of` defaults to the protocol policies.
    """
    stats = stats if stats is not None else GenerateStats()
    merge = SendOrderMerge()
    builder: EventsBuilder | None = None
    for chunk in chunks:
        beacons = beacons_of(chunk, protocol)
        if fmt != "requests" and builder is None:
            builder = EventsBuilder.for_chunks(beacons)
            if on_schema is not None:
                on_schema(builder.schema)
        stats.sessions += chunk.n_sessions
        parts = _rows(chunk, beacons, fmt, builder, encoding)
        watermark = float(chunk.sessions["start"].min()) if chunk.n_sessions else -math.inf
        released = merge.push(parts, watermark)
        if released is not None:
            _count(stats, released)
            yield released
    released = merge.flush()
    if released is not None:
        _count(stats, released)
        yield released


def preflight_rows(table: pa.Table) -> int:
    """How many rows of a request-file table are browsers' CORS preflights (not beacons)."""
    return table.num_rows - table.column("preflight").null_count if "preflight" in table.column_names else 0


def _count(stats: GenerateStats, released: pa.Table) -> None:
    """Beacons (and request-file preflights) among rows released."""
    preflights = preflight_rows(released)
    stats.beacons += released.num_rows - preflights
    stats.preflights += preflights


def generate(
    components,
    *,
    seed: int,
    sessions: int | None = None,
    days: float | None = None,
    protocol: str = DEFAULT_CHOICE,
    fmt: str = "parquet",
    out,
    partition: str | None = None,
    encoding: dict[str, str] | None = None,
    chunk_size: int = CHUNK_SESSIONS,
    on_progress: Callable[[GenerateStats, float | None], None] | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    part_chunks: int | None = None,
    partition_sessions: int | None = None,
) -> GenerateStats:
    """Generate a run into `out` (a file, or a folder when partitioned; a path or a URI pyarrow
    opens, e.g. s3://bucket/key); returns its counts.

    `encoding` ({protocol: encoding}, request files only) overrides the scenario's choice.
    The run's parts (`sim.parts`) are made in this process, by `workers` processes, or as
    tasks on the Dask cluster at `scheduler` (tcp://HOST:PORT); the bytes are the same.
    `on_progress(stats, sent_until)` is called as sessions are made (`stats.total_sessions`:
    the run's) and after every part, with the send time (epoch s, or None) of its last row.
    `part_chunks` (chunks per part) and `partition_sessions` (the player model's partition
    size) cut small runs into many parts, for tests; the second changes the sessions drawn.
    """
    import shutil
    from pathlib import Path

    from sim.parts import PART_CHUNKS, RunSpec, prepared, record_start_up, span
    from sim.workers import is_uri, run_parts, workdir_for

    check_choice(protocol)
    record_start_up()
    stats = GenerateStats()
    started = time.perf_counter()
    out = str(out) if is_uri(out) else Path(out)
    if is_uri(out) and scheduler:
        raise ValueError(
            f"--out {out}: with --scheduler the output must be a path every worker reaches "
            f"(pieces are written where the workers are)"
        )
    sent_until: float | None = None
    finished = 0  # sessions of the parts done; stats.sessions adds the part under way here

    def on_chunk(n: int) -> None:
        stats.sessions += n
        if on_progress:
            on_progress(stats, sent_until)

    def on_part(result) -> None:
        nonlocal sent_until, finished
        finished += result.sessions
        stats.sessions = finished
        stats.beacons += result.beacons
        stats.preflights += result.preflights
        sent_until = result.last_ts if result.last_ts is not None else sent_until
        if on_progress:
            on_progress(stats, sent_until)

    workdir = workdir_for(out)
    # From here on a stop (a KeyboardInterrupt at any line) deletes the run's folder; run_parts
    # does it too for what happens inside it.
    try:
        spec = RunSpec(
            components,
            seed,
            sessions,
            days,
            protocol,
            fmt,
            str(workdir),
            partition=partition,
            encoding=encoding,
            chunk_size=chunk_size,
            part_chunks=part_chunks or PART_CHUNKS,
            partition_sessions=partition_sessions,
        )
        with span("plan"):
            stats.total_sessions = prepared(spec).run.plan.total
        run_parts(spec, out, workers=workers, scheduler=scheduler, on_part=on_part, on_chunk=on_chunk)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    stats.seconds = time.perf_counter() - started
    return stats
