"""File sinks: the events table (and request ledgers) as JSON lines, CSV or Parquet, whole or not at all."""
from .events import EventsBuilder, SchemaError
from .files import FORMATS, PARTITIONS, Sink, open_sink
from .requests import REQUESTS_SCHEMA, requests_table

__all__ = ["EventsBuilder", "SchemaError", "FORMATS", "PARTITIONS", "Sink", "open_sink",
           "REQUESTS_SCHEMA", "requests_table"]
