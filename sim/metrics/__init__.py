"""Metrics over the events table: Analytics-tab figures, reports and send/receive reconciliation.

Usage::

    from sim.metrics import compute
    m = compute("store.duckdb")                  # or events.parquet, a folder, a glob
    m.protocols["kava"].headline["count_plays"]
"""

from sim.metrics.compute import HEADLINE, Metrics, ProtocolMetrics, compute
from sim.metrics.events import EventsSource, SourceError, open_events

__all__ = ["HEADLINE", "EventsSource", "Metrics", "ProtocolMetrics", "SourceError", "compute", "open_events"]
