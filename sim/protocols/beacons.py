"""The contract between beacon policies, encoders, sinks and the collector.

A `Beacon` is one analytics event exactly as a player's plugin means it: the protocol, the
event's own fields (wire names, typed) and the request-level parameters. A `BeaconChunk`
holds many beacons of one protocol as columns, for the file sinks and the load generator.

Encoders turn a Beacon into a `WireRequest`; decoders turn a request back into a Beacon;
`decode(encode(b)) == b` field by field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Protocol = Literal["legacy", "kava"]
Scalar = str | int | float | bool


class DecodeError(ValueError):
    """A request that is not a well-formed beacon of the protocol asked to decode it."""


@dataclass
class Beacon:
    protocol: Protocol
    fields: dict[str, Scalar]  # legacy: KalturaStatsEvent fields (no "event:" prefix); kava: event params
    params: dict[str, Scalar] = field(
        default_factory=dict
    )  # request-level: clientTag, format, apiVersion, ks, hasKanalony ...
    user_agent: str | None = None
    page_url: str | None = None  # HTTP Referer header (the embedding page)
    cookie: str | None = None  # Cookie header, e.g. "uv=uv_<32 hex>"
    client_ip: str | None = None  # sent as X-Forwarded-For: the simulated viewer behind the CDN edge


@dataclass
class WireRequest:
    method: Literal["GET", "POST", "OPTIONS"]
    url: str  # path and query exactly as sent, e.g. "/api_v3/index.php?service=stats&..."
    headers: dict[str, str]
    body: bytes | None = None


@dataclass
class Strings:
    """A string column stored as codes into a pool (dictionary encoding)."""

    codes: np.ndarray  # int32, -1 = null
    pool: np.ndarray  # object[str]

    def __len__(self) -> int:
        return len(self.codes)

    def get(self, i: int) -> str | None:
        c = int(self.codes[i])
        return None if c < 0 else self.pool[c]

    def with_codes(self, codes: np.ndarray) -> Strings:
        """The same pool under other codes (rows reordered or picked)."""
        return Strings(codes, self.pool)

    def texts(self, rows: np.ndarray) -> list[str | None]:
        """The text of each of `rows` (None where not sent)."""
        pool = self.pool
        return per_distinct(self.codes[rows], lambda c: None if c < 0 else pool[c])


def per_distinct(values: np.ndarray, fmt) -> list:
    """`fmt(v)` for each of `values`, called once per distinct value: how the codecs encode a
    column of many rows at once."""
    used, inverse = np.unique(values, return_inverse=True)
    table = np.empty(len(used), object)
    table[:] = [fmt(v) for v in used.tolist()]
    return table[inverse.ravel()].tolist()


def row_headers(
    cols: dict,
    rows: np.ndarray,
    sources: tuple[tuple[str, str], ...],
    variant: np.ndarray | None = None,
    variant_headers: tuple[dict[str, str], ...] = ({},),
) -> list[dict[str, str]]:
    """The request headers of each of `rows`: for each (header, column) of `sources` the chunk
    has, the Strings column's text (left out where not sent), then `variant_headers[v]` for
    the row's `variant` v. One dict per distinct combination, shared by the rows that have
    it (read them, do not change them): how the codecs give many rows their headers."""
    present = [(name, cols[source]) for name, source in sources if source in cols]
    variant = np.zeros(len(rows), np.int64) if variant is None else variant
    codes = np.stack([*(col.codes[rows] for _, col in present), variant], axis=1)
    used, inverse = np.unique(codes, axis=0, return_inverse=True)
    table = np.empty(len(used), object)
    table[:] = [
        {**{name: col.pool[c] for (name, col), c in zip(present, combo) if c >= 0}, **variant_headers[combo[-1]]}
        for combo in used.tolist()
    ]
    return table[inverse.ravel()].tolist()


class AsciiStrings(Strings):
    """A Strings column whose pool is ASCII bytes (entry i is `data[offsets[i]:offsets[i+1]]`),
    made into Python strings only when something reads `pool`. The file sinks hand the bytes
    to Arrow as they are, so a pool of per-session ids costs no Python object per session.
    Columns made by `with_codes` share the pool and its Arrow and Python forms, each made once."""

    def __init__(self, codes: np.ndarray, data: np.ndarray, offsets: np.ndarray, _forms: dict | None = None):
        self.codes = codes
        self._data, self._offsets = data, offsets
        self._forms = {} if _forms is None else _forms

    @property
    def pool_size(self) -> int:
        return len(self._offsets) - 1

    @property
    def pool(self) -> np.ndarray:
        if "python" not in self._forms:
            self._forms["python"] = self.arrow_pool().to_numpy(zero_copy_only=False)
        return self._forms["python"]

    def arrow_pool(self):
        """The pool as an Arrow string array over the same bytes."""
        if "arrow" not in self._forms:
            import pyarrow as pa

            offsets = np.ascontiguousarray(self._offsets, dtype=np.int32)
            self._forms["arrow"] = pa.Array.from_buffers(
                pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(self._data)]
            )
        return self._forms["arrow"]

    def with_codes(self, codes: np.ndarray) -> AsciiStrings:
        return AsciiStrings(codes, self._data, self._offsets, self._forms)


Column = np.ndarray | Strings


@dataclass
class BeaconChunk:
    """Beacons of one protocol as columns, in send order within each session.

    `columns` maps wire field names (and request params) to values; a numeric column may
    use NaN (float) or a sentinel (documented per protocol) for "not sent". `session` is the
    row in the SessionChunk the beacons came from; `send_t` the scheduled send time (epoch s).
    `encoding` names how each row goes on the wire (see the protocol's codec).
    `always_sent`: the columns the policy fills on every row, whatever the player (the
    events table stores them as required). `in_send_order`: the rows are not grouped by
    session but in one send order across sessions (by send time, then session, then the
    session's own order), as `sim.generate.send_order` would put them.
    """

    protocol: Protocol
    columns: dict[str, Column]
    session: np.ndarray  # int32
    send_t: np.ndarray  # float64 epoch seconds
    ledger_session: Strings  # the session id used to prove delivery
    ledger_index: np.ndarray  # int64: eventIndex (kava) or per-session send counter (legacy)
    always_sent: frozenset[str] = frozenset()
    in_send_order: bool = False

    def __len__(self) -> int:
        return len(self.session)


def take_rows(chunk: BeaconChunk, rows: np.ndarray) -> BeaconChunk:
    """The beacon chunk restricted to `rows` (every per-row column indexed, pools shared)."""
    n = len(chunk)

    def take(value):
        if isinstance(value, Strings) and len(value) == n:
            return value.with_codes(value.codes[rows])  # keeps a lazily built pool lazy
        if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == n:
            return value[rows]
        if isinstance(value, dict):
            return {k: take(v) for k, v in value.items()}
        return value

    return dataclasses.replace(chunk, **{f.name: take(getattr(chunk, f.name)) for f in dataclasses.fields(chunk)})
