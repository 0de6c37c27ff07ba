"""File formats for rows in send order: Parquet, CSV and JSON lines, each written from Arrow columns.

A writer takes Arrow tables of one schema, appends them to one file and closes it. None of
them makes a Python object per row: Parquet and CSV are Arrow's own writers, JSON lines are
assembled column by column with Arrow compute kernels. Output is a pure function of the
rows written (fixed writer options, fixed row-group size), so the same run gives the same
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from numba import njit

# Field metadata marking a string column that already holds JSON text (written as is).
RAW_JSON = {b"json": b"raw"}

PARQUET_ROW_GROUP_ROWS = 1 << 18  # rows buffered before a write: bounds memory, still large for readers
# Values the encoder takes per step (Arrow's default: 1,024): each step costs a fixed amount per
# column, and the pages come out the same.
PARQUET_WRITE_BATCH_ROWS = 1 << 16
# A row group's dictionary of session ids (~60k x 36-73 bytes) must fit one dictionary page, or
# the encoder falls back to plain pages part way through the column.
PARQUET_DICTIONARY_PAGE_BYTES = 8 << 20
# Dictionaries this small (names, versions, constants) are written whole: finding the entries a
# row group uses costs more than the few unused ones take in the file.
PARQUET_WHOLE_DICTIONARY_ENTRIES = 64
# Pools whose distinctness a writer remembers, least recently used out first: more than the
# text columns of a run of both protocols, so run-wide pools stay while per-chunk ones pass.
PARQUET_KNOWN_POOLS = 64
# Encodings that beat plain + zstd on time at about the same size: send times climb slowly
# (byte-stream split), event times in ms, event types and session numbers are small steps (delta);
# KAVA's positions, play time sums and bandwidths are doubles of many distinct values (byte-stream
# split: up to a third quicker to write, at most a tenth larger). No byte-stream split on
# integers: writing that needs pyarrow 17.
PARQUET_COLUMN_ENCODINGS = {
    "ts": "BYTE_STREAM_SPLIT",
    "eventTimestamp": "DELTA_BINARY_PACKED",
    "eventType": "DELTA_BINARY_PACKED",
    "truth_session_seq": "DELTA_BINARY_PACKED",
    "position": "BYTE_STREAM_SPLIT",
    "playTimeSum": "BYTE_STREAM_SPLIT",
    "bandwidth": "BYTE_STREAM_SPLIT",
}
# Numbers of a few thousand values at most (the entry's length on every row of a session; KAVA
# figures to 3 decimals, bitrates of a ladder): a dictionary is both smaller and quicker to write
# than plain + zstd.
PARQUET_DICTIONARY_NUMBERS = (
    "duration",
    "truth_entry_duration",
    "actualBitrate",
    "droppedFramesRatio",
    "forwardBufferHealth",
    "segmentDownloadTime",
)
# Min/max statistics where a row group's range can prune: columns that grow with send time. The
# other numbers span their whole range in every group of 262k rows in send order, so their
# statistics prune nothing and cost a tenth of the write.
PARQUET_STATISTICS = ("ts", "eventTimestamp", "sessionStartTime", "truth_session_seq")
# Per-session numbers repeated on every row of a session: JSON text is made once per distinct
# value (a hash per row costs a fraction of formatting a float per row).
JSON_REPEATED_NUMBERS = frozenset(
    {
        "duration",
        "truth_entry_duration",
        "truth_intended_fraction",
        "truth_play_s",
        "truth_ad_play_s",
        "truth_stall_s",
        "truth_startup_s",
        "truth_max_position_s",
        # KAVA: one per session, or a few hundred to thousands of values to 3 decimals
        "sessionStartTime",
        "playbackSpeed",
        "droppedFramesRatio",
        "forwardBufferHealth",
        "targetBuffer",
        "segmentDownloadTime",
        "manifestDownloadTime",
        "networkConnectionOverhead",
    }
)
JSONL_SLICE_ROWS = 1 << 16  # bounds the memory of the assembled text
# Arrow scalars made once: Arrow converts a Python value afresh on every call, and looks for
# dateutil each time (an import that fails, so it is not cached) when that is not installed.
_QUOTE, _NOTHING, _NULL_TEXT = pa.scalar('"'), pa.scalar(""), pa.scalar(None, pa.string())


class ParquetWriter:
    """Parquet with typed columns; text columns dictionary-encoded; fixed options keep bytes stable.

    Text arrives as Arrow dictionary arrays over the run's pools. Each row group hands the
    encoder, per text column, one dictionary of only the entries that group uses (in pool
    order; small pools whole) and the rows' codes into it: the encoder writes that dictionary page as is and
    never hashes a row's text, which is most of what plain strings cost it. The bytes are a
    pure function of the rows (the same pools, the same codes, the same compacted
    dictionaries). Files carry no Arrow schema, so every reader sees plain strings (Parquet
    logical type STRING).
    """

    extension = ".parquet"
    arrow_file = True  # writes quicker to an Arrow file (pa.OSFile) than to a Python one

    def __init__(self, out: BinaryIO | pa.NativeFile, schema: pa.Schema):
        self._schema = schema
        self._text = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        self._is_text = [pa.types.is_dictionary(f.type) for f in schema]
        self._writer = pq.ParquetWriter(
            out,
            schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=self._text + [n for n in PARQUET_DICTIONARY_NUMBERS if n in schema.names] or False,
            write_statistics=[n for n in PARQUET_STATISTICS if n in schema.names] or False,
            version="2.6",
            data_page_version="1.0",
            dictionary_pagesize_limit=PARQUET_DICTIONARY_PAGE_BYTES,
            store_schema=False,
            write_batch_size=PARQUET_WRITE_BATCH_ROWS,
            column_encoding={
                name: encoding
                for name, encoding in PARQUET_COLUMN_ENCODINGS.items()
                if name in schema.names and name not in self._text
            }
            or None,
        )
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._distinct_pools: dict[tuple, tuple[pa.Array, bool]] = {}

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        whole = pa.concat_tables(self._pending)
        full = whole.num_rows if final else (whole.num_rows // PARQUET_ROW_GROUP_ROWS) * PARQUET_ROW_GROUP_ROWS
        if full:
            for start in range(0, full, PARQUET_ROW_GROUP_ROWS):
                group = whole.slice(start, min(PARQUET_ROW_GROUP_ROWS, full - start))
                self._writer.write_table(self._row_group(group), row_group_size=PARQUET_ROW_GROUP_ROWS)
        rest = whole.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _row_group(self, group: pa.Table) -> pa.Table:
        """The group with each text column as one array over one compacted dictionary."""
        arrays = []
        for is_text, column in zip(self._is_text, group.columns):
            if not is_text:
                arrays.append(column)
                continue
            layout = pool_layout(column.chunks)
            distinct = len(layout.pools) == 1 and self._distinct(layout.keys[0], layout.pools[0])
            arr = concat_chunks(column, layout)
            if len(arr.dictionary) > PARQUET_WHOLE_DICTIONARY_ENTRIES:
                arr = compact_dictionary(arr, always=True)
            arrays.append(arr if distinct else _distinct_entries(arr))
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _distinct(self, key: tuple, pool: pa.Array) -> bool:
        """Whether a pool has no repeated entry. A column coding into one such pool (run-wide
        ones: user ids, cookies ...) needs no de-duplicating. Each pool is checked once; the
        cache holds the pool itself, so its memory (the key) cannot pass to another."""
        known = self._distinct_pools.pop(key, None)
        if known is None:
            if len(self._distinct_pools) >= PARQUET_KNOWN_POOLS:
                del self._distinct_pools[next(iter(self._distinct_pools))]  # the least recently used
            known = (pool, pc.count_distinct(pool).as_py() == len(pool))
        self._distinct_pools[key] = known
        return known[1]

    def close(self) -> None:
        self._flush(final=True)
        self._writer.close()


@dataclass
class PoolLayout:
    """The distinct pools a dictionary column's chunks code into (in order of first use, with
    their identities) and where each chunk's pool starts when they are laid end to end."""

    pools: list[pa.Array]
    keys: list[tuple]
    bases: list[int]


def pool_layout(chunks: list[pa.DictionaryArray]) -> PoolLayout:
    layout, base_of, size = PoolLayout([], [], []), {}, 0
    for chunk in chunks:
        dictionary = chunk.dictionary
        if not len(dictionary):
            # Only nulls (a column the other protocol's rows do not send): no pool to lay down.
            layout.bases.append(0)
            continue
        key = _identity(dictionary)
        base = base_of.get(key)
        if base is None:
            base = base_of[key] = size
            layout.pools.append(dictionary)
            layout.keys.append(key)
            size += len(dictionary)
        layout.bases.append(base)
    if not layout.pools:
        layout.pools.append(chunks[0].dictionary)
        layout.keys.append(())
    return layout


def concat_chunks(column: pa.ChunkedArray, layout: PoolLayout | None = None) -> pa.Array:
    """A column's chunks as one array. Dictionary chunks over different pools share one
    dictionary, the pools one after another with the codes shifted: no text is hashed, and an
    entry may repeat (`compact_dictionary` and the writers do not mind). `layout`: the
    column's `pool_layout`, when the caller has it already."""
    chunks = column.chunks
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return pa.array([], type=column.type)
    if not pa.types.is_dictionary(column.type):
        return pa.concat_arrays(chunks)
    layout = layout or pool_layout(chunks)
    if len(layout.pools) == 1:
        indices, dictionary = pa.concat_arrays([chunk.indices for chunk in chunks]), layout.pools[0]
    else:
        dictionary = pa.concat_arrays(layout.pools)
        codes = np.empty(len(column), np.int32)
        at = 0
        for chunk, base in zip(chunks, layout.bases):
            # A null's slot holds any code; the validity bitmap below still marks it null.
            np.add(_index_values(chunk.indices), base, out=codes[at : at + len(chunk)])
            at += len(chunk)
        validity = None
        if column.null_count:
            validity = pa.concat_arrays([chunk.indices.is_valid() for chunk in chunks]).buffers()[1]
        indices = pa.Array.from_buffers(pa.int32(), len(codes), [validity, pa.py_buffer(codes)])
    # The codes index their dictionaries (checked when each chunk was made), so shifted they index this one.
    return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)


def _identity(dictionary: pa.Array) -> tuple:
    """What tells one pool from another: its memory for a large one (the same pool reaches here
    through many wrappers), its texts for a small one (policies make small pools per chunk)."""
    if len(dictionary) <= PARQUET_WHOLE_DICTIONARY_ENTRIES:
        return tuple(dictionary.to_pylist())
    return (dictionary.offset, len(dictionary), *(b.address for b in dictionary.buffers() if b is not None))


def _index_values(indices: pa.Array) -> np.ndarray:
    """The int32 codes of an indices array, without a copy (null slots hold any value)."""
    return np.frombuffer(indices.buffers()[1], dtype=np.int32, count=len(indices), offset=indices.offset * 4)


def _distinct_entries(arr: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same values over a dictionary without repeated entries (pools may repeat a text):
    handed a dictionary with a repeat, the encoder falls back to writing plain strings."""
    encoded = pc.dictionary_encode(arr.dictionary)
    if len(encoded.dictionary) == len(arr.dictionary):
        return arr
    return pa.DictionaryArray.from_arrays(encoded.indices.take(arr.indices), encoded.dictionary, safe=False)


class CsvWriter:
    """CSV with a header row; nulls are empty fields, booleans `true`/`false`."""

    extension = ".csv"
    arrow_file = False

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        self._writer = pcsv.CSVWriter(
            out,
            schema,
            write_options=pcsv.WriteOptions(include_header=True, quoting_style="needed", batch_size=1 << 16),
        )

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


class JsonlWriter:
    """One JSON object per line; null fields are left out, RAW_JSON columns are embedded as is."""

    extension = ".jsonl"
    arrow_file = False

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        self._out = out
        self._schema = schema
        self._keys = [orjson.dumps(f.name) + b":" for f in schema]

    def write(self, table: pa.Table) -> None:
        for start in range(0, table.num_rows, JSONL_SLICE_ROWS):
            self._out.write(jsonl_bytes(table.slice(start, JSONL_SLICE_ROWS), self._keys))

    def close(self) -> None:
        pass


def jsonl_bytes(table: pa.Table, keys: list[bytes] | None = None) -> np.ndarray:
    """The rows of `table` as JSON lines (uint8 array).

    Each column becomes a table of value texts (a dictionary's escaped entries, or every
    row's number as text) and a code per row into it; a compiled loop then copies key and
    value bytes row by row.
    """
    if keys is None:
        keys = [orjson.dumps(f.name) + b":" for f in table.schema]
    n = table.num_rows
    codes, offsets, datas, key_bytes = [], [], [], []
    value_base = byte_base = 0
    for field, key, column in zip(table.schema, keys, table.columns):
        if column.null_count == n:
            continue
        arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if field.name in JSON_REPEATED_NUMBERS and pa.types.is_floating(arr.type):
            arr = pc.dictionary_encode(arr)
        code, text = _json_values(arr, raw=(field.metadata or {}).get(b"json") == b"raw")
        _, off_buf, data_buf = text.buffers()
        off = np.frombuffer(off_buf, dtype=np.int32, count=len(text) + 1, offset=text.offset * 4).astype(np.int64)
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)[off[0] : off[-1]] if data_buf is not None else np.zeros(0, np.uint8)
        )
        codes.append(np.where(code >= 0, code + value_base, -1))
        offsets.append(off[:-1] - off[0] + byte_base)
        datas.append(data)
        key_bytes.append(key)
        value_base += len(text)
        byte_base += len(data)
    if not codes:
        return np.frombuffer(b"{}\n" * n, dtype=np.uint8)
    value_offsets = np.concatenate(offsets + [np.array([byte_base], np.int64)])
    key_offsets = np.cumsum([0] + [len(k) for k in key_bytes]).astype(np.int64)
    return _assemble(
        np.stack(codes),
        value_offsets,
        np.concatenate(datas),
        key_offsets,
        np.frombuffer(b"".join(key_bytes), dtype=np.uint8),
    )


@njit(cache=True)
def _assemble(codes, value_offsets, value_data, key_offsets, key_data):
    n_cols, n = codes.shape
    size = 0
    for i in range(n):
        size += 3  # "{", "}", newline
        first = True
        for c in range(n_cols):
            v = codes[c, i]
            if v < 0:
                continue
            if not first:
                size += 1
            first = False
            size += key_offsets[c + 1] - key_offsets[c] + value_offsets[v + 1] - value_offsets[v]
    out = np.empty(size, np.uint8)
    p = 0
    for i in range(n):
        out[p] = 123  # {
        p += 1
        first = True
        for c in range(n_cols):
            v = codes[c, i]
            if v < 0:
                continue
            if not first:
                out[p] = 44  # ,
                p += 1
            first = False
            for b in range(key_offsets[c], key_offsets[c + 1]):
                out[p] = key_data[b]
                p += 1
            for b in range(value_offsets[v], value_offsets[v + 1]):
                out[p] = value_data[b]
                p += 1
        out[p] = 125  # }
        out[p + 1] = 10  # newline
        p += 2
    return out


def _json_values(arr: pa.Array, raw: bool) -> tuple[np.ndarray, pa.Array]:
    """(code per row into the texts, -1 = null; JSON texts) of a column."""
    t = arr.type
    if pa.types.is_dictionary(t) and pa.types.is_floating(t.value_type):
        # repeated numbers (JSON_REPEATED_NUMBERS): each distinct value formatted once; a
        # NaN entry has no text, so its rows leave the key out as for a null
        entry_codes, texts = _json_values(arr.dictionary, raw)
        codes = _codes(arr.indices)
        return np.where(codes >= 0, entry_codes[np.maximum(codes, 0)], -1), texts
    if pa.types.is_dictionary(t):
        arr = compact_dictionary(arr)
        texts = arr.dictionary.cast(pa.string()) if raw else _json_strings(arr.dictionary)
        return _codes(arr.indices), texts
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if raw:
            texts = arr.cast(pa.string())
        else:
            encoded = pc.dictionary_encode(arr)
            return _codes(encoded.indices), _json_strings(encoded.dictionary)
    elif pa.types.is_floating(t):
        # NaN and infinities are not JSON; the events table holds "not sent" as null anyway.
        texts = pc.if_else(pc.is_finite(arr), arr.cast(pa.string()), _NULL_TEXT)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        texts = arr.cast(pa.string())
    else:
        raise TypeError(f"no JSON form for column type {t}")
    rows = np.arange(len(texts), dtype=np.int64)
    if texts.null_count:
        rows[np.asarray(texts.is_null())] = -1
    return rows, texts


def _codes(indices: pa.Array) -> np.ndarray:
    codes = (
        indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if indices.null_count
        else indices.to_numpy(zero_copy_only=False).astype(np.int64)
    )
    return codes


def compact_dictionary(arr: pa.DictionaryArray, always: bool = False) -> pa.DictionaryArray:
    """The same values with a dictionary of only the entries used, in dictionary order (pools
    are often far larger); unless `always`, only when the dictionary is large for the rows."""
    size = len(arr.dictionary)
    if size == 0 or (not always and size <= len(arr) // 4):
        return arr
    indices = arr.indices
    codes = (
        indices.fill_null(-1).to_numpy(zero_copy_only=False)
        if indices.null_count
        else indices.to_numpy(zero_copy_only=False)
    )
    remapped, used = _compact_codes(codes, size)
    if len(used) == size:
        return arr
    mask = np.asarray(indices.is_null()) if indices.null_count else None
    return pa.DictionaryArray.from_arrays(
        pa.array(remapped, mask=mask), arr.dictionary.take(pa.array(used)), safe=False
    )


@njit(cache=True)
def _compact_codes(codes, size):
    """(codes renumbered over the entries used, in entry order; the entries used). -1 stays
    -1 (null) and comes out as 0 under the caller's mask."""
    seen = np.zeros(size, np.bool_)
    for c in codes:
        if c >= 0:
            seen[c] = True
    new = np.empty(size, np.int32)
    used = np.empty(size, np.int64)
    k = 0
    for e in range(size):
        if seen[e]:
            new[e] = k
            used[k] = e
            k += 1
    out = np.empty(len(codes), np.int32)
    for i in range(len(codes)):
        c = codes[i]
        out[i] = new[c] if c >= 0 else 0
    return out, used[:k]


def _json_strings(arr: pa.Array) -> pa.Array:
    """JSON string literals (quoted, escaped) of a string array."""
    arr = arr.cast(pa.string())
    if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f\x7f]")).as_py():
        # Control characters are rare (free text only): escape those values exactly, one by one.
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in arr.to_pylist()], type=pa.string())
    escaped = pc.replace_substring(arr, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    return pc.binary_join_element_wise(_QUOTE, escaped, _QUOTE, _NOTHING)


WRITERS = {"parquet": ParquetWriter, "csv": CsvWriter, "jsonl": JsonlWriter, "requests": JsonlWriter}
