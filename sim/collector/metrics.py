"""The collector's Prometheus metrics (`/metrics`), shared by its worker processes and its store writer.

prometheus-client's multiprocess mode: every process writes its values to files under
PROMETHEUS_MULTIPROC_DIR (set by `server.serve` before any process imports this module) and
a scrape of `/metrics` on any worker adds them up. Import this module only after that.

    player_sim_collector_requests_total{protocol, event_type, outcome}   accepted | rejected | faulted |
                                                                         unstored (answered 503) | refused
    player_sim_collector_flagged_total{protocol, event_type}             accepted but flagged
    player_sim_collector_request_seconds{route}                          answer latency (beacon includes the commit)
    player_sim_collector_batch_commit_seconds / _batch_rows              group commits (journal append + fsync)
    player_sim_collector_store_insert_seconds                            journaled batches moved into DuckDB
    player_sim_collector_store_rows                                      rows in the store
    player_sim_collector_store_errors_total                              batches the store could not take
"""

from __future__ import annotations

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sim.protocols.event_types import EVENT_NAMES

REQUESTS = Counter(
    "player_sim_collector_requests",
    "Requests by protocol, event type and outcome",
    ["protocol", "event_type", "outcome"],
)
FLAGGED = Counter(
    "player_sim_collector_flagged",
    "Accepted beacons flagged (what the warehouse would drop or cut)",
    ["protocol", "event_type"],
)
LATENCY = Histogram(
    "player_sim_collector_request_seconds",
    "Time from a request's arrival to its answer",
    ["route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
COMMIT = Histogram(
    "player_sim_collector_batch_commit_seconds",
    "Time to make one batch durable (journal append and fsync) before its requests are answered",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
BATCH_ROWS = Histogram(
    "player_sim_collector_batch_rows",
    "Rows in one committed batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
INSERT = Histogram(
    "player_sim_collector_store_insert_seconds",
    "Time to move journaled batches into DuckDB",
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
STORE_ROWS = Gauge(
    "player_sim_collector_store_rows", "Rows in the store's events table", multiprocess_mode="mostrecent"
)
STORE_ERRORS = Counter("player_sim_collector_store_errors", "Batches the store could not commit (answered 503)")

CONTENT_TYPE = CONTENT_TYPE_LATEST
_KNOWN = {p: {str(t) for t in names} for p, names in EVENT_NAMES.items()}


def event_label(protocol: str | None, event_type) -> str:
    """A bounded label: a known event type of the protocol, `none`, or `other` (any client can send any number)."""
    if event_type is None:
        return "none"
    text = str(event_type)
    return text if text in _KNOWN.get("legacy" if protocol == "legacy" else "kava", ()) else "other"


def scrape() -> bytes:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


class Tally:
    """A worker's counts and latencies, added to the shared metrics in bulk every `period` seconds.

    In multiprocess mode each `inc()` or `observe()` takes a lock and writes a memory-mapped
    file (two or three of them per request); summing per child first makes that once per child
    per period. A scrape sees the figures at most `period` late.
    """

    def __init__(self, loop, period: float = 0.05):
        self.loop = loop
        self.period = period
        self._counts: dict = {}  # counter child -> increments
        self._seconds: dict = {}  # histogram child -> observed values
        self._due = False

    def count(self, child) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0) + 1
        if not self._due:
            self._schedule()

    def observe(self, child, seconds: float) -> None:
        values = self._seconds.get(child)
        if values is None:
            values = self._seconds[child] = []
        values.append(seconds)
        if not self._due:
            self._schedule()

    def _schedule(self) -> None:
        self._due = True
        self.loop.call_later(self.period, self.flush)

    def flush(self) -> None:
        self._due = False
        counts, self._counts = self._counts, {}
        seconds, self._seconds = self._seconds, {}
        for child, n in counts.items():
            child.inc(n)
        for child, values in seconds.items():
            observe_many(child, values)


def observe_many(child, values: list[float]) -> None:
    """`child.observe(v)` for each of `values`, with one write per bucket touched."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # another client version: one by one
        for value in values:
            child.observe(value)
        return
    per_bucket = [0] * len(bounds)
    for value in values:
        per_bucket[bisect_left(bounds, value)] += 1  # the first bound >= value, as observe() picks
    for i, n in enumerate(per_bucket):
        if n:
            buckets[i].inc(n)
    total.inc(sum(values))
