"""File sinks: the events table (and request ledgers) as JSON lines, CSV or Parquet, whole or not at all."""

from sim.sinks.events import EventsBuilder, SchemaError
from sim.sinks.files import FORMATS, PARTITIONS, Sink, open_sink
from sim.sinks.requests import REQUESTS_SCHEMA, requests_table

__all__ = [
    "EventsBuilder",
    "SchemaError",
    "FORMATS",
    "PARTITIONS",
    "Sink",
    "open_sink",
    "REQUESTS_SCHEMA",
    "requests_table",
]
