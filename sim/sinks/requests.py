"""Replayable request files: the wire requests of a run, one JSON object per line in send order.

Each line is a ledger line (`sim.tables.ledger`), so the file doubles as the send ledger a
reconciliation compares a store against. A browser's CORS preflight before a beacon is a line
of its own with `"preflight": true`, method OPTIONS and no key.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson
import pyarrow as pa

from sim.protocols.beacons import WireRequest
from sim.sinks.formats import RAW_JSON
from sim.tables.ledger import LINE_FIELDS

REQUESTS_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.float64(), nullable=False),
        pa.field("method", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("url", pa.string(), nullable=False),
        pa.field("headers", pa.string(), nullable=False, metadata=RAW_JSON),
        pa.field("body", pa.string(), nullable=False, metadata=RAW_JSON),
        pa.field("protocol", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("key", pa.string(), nullable=True),  # null on a preflight
        pa.field("preflight", pa.bool_(), nullable=True),  # true on a CORS preflight, else null (left out)
    ]
)
assert tuple(REQUESTS_SCHEMA.names) == (*LINE_FIELDS, "preflight"), "the ledger line of sim.tables.ledger"


def requests_table(
    ts: np.ndarray,
    requests: Sequence[WireRequest],
    protocol: str,
    keys: Sequence[str | None],
    preflight: np.ndarray | None = None,
) -> pa.Table:
    """Rows of the requests file for beacons of one protocol (in the order given);
    `preflight` marks the rows that are CORS preflights (their keys are None)."""
    n = len(requests)
    if not (len(ts) == len(keys) == n):
        raise ValueError(f"requests_table: {len(ts)} times, {n} requests, {len(keys)} keys")
    if preflight is None or not preflight.any():
        flags = pa.nulls(n, pa.bool_())
    else:
        flags = pa.array(np.ones(n, bool), mask=~np.asarray(preflight, bool))
    methods = [r.method for r in requests]
    bodies = [b"null" if r.body is None else orjson.dumps(_text(r.body)) for r in requests]
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(ts, dtype=np.float64)),
            pa.array(methods, type=pa.string()).dictionary_encode(),
            pa.array([r.url for r in requests], type=pa.string()),
            pa.array([orjson.dumps(r.headers).decode() for r in requests], type=pa.string()),
            pa.array([b.decode() for b in bodies], type=pa.string()),
            pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([protocol])),
            pa.array(list(keys), type=pa.string()),
            flags,
        ],
        schema=REQUESTS_SCHEMA,
    )


def _text(body: bytes | str) -> str:
    return body if isinstance(body, str) else body.decode("utf-8")
