"""File formats for rows in send order: Parquet, CSV and JSON lines, each written from Arrow columns.

A writer takes Arrow tables of one schema, appends them to one file and closes it. None of
them makes a Python object per row: Parquet and CSV are Arrow's own writers, JSON lines are
assembled column by column with Arrow compute kernels. Output is a pure function of the
rows written (fixed writer options, fixed row-group size), so the same run gives the same
bytes.
"""
from __future__ import annotations

from typing import BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

# Field metadata marking a string column that already holds JSON text (written as is).
RAW_JSON = {b"json": b"raw"}

PARQUET_ROW_GROUP_ROWS = 1 << 20
JSONL_SLICE_ROWS = 1 << 16      # bounds the memory of the assembled text


class ParquetWriter:
    """Parquet with typed columns; text columns dictionary-encoded; fixed options keep bytes stable.

    Text arrives as Arrow dictionary arrays over the run's pools. It is handed to the Parquet
    encoder as plain strings, which then builds each row group's dictionary from the values
    actually used: smaller files than writing whole pools, no slower, and byte-stable (the
    encoder's path for ready-made dictionaries falls back to plain pages with unstable
    bytes when a pool is much larger than what a row group uses).
    """

    extension = ".parquet"

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        self._text = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        self._schema = pa.schema([pa.field(f.name, pa.string(), f.nullable, f.metadata)
                                  if pa.types.is_dictionary(f.type) else f for f in schema])
        self._writer = pq.ParquetWriter(
            out, self._schema, compression="zstd", compression_level=1, use_dictionary=self._text or False,
            write_statistics=True, version="2.6", data_page_version="1.0")
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

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
                self._writer.write_table(group.cast(self._schema), row_group_size=PARQUET_ROW_GROUP_ROWS)
        rest = whole.slice(full)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        self._flush(final=True)
        self._writer.close()


class CsvWriter:
    """CSV with a header row; nulls are empty fields, booleans `true`/`false`."""

    extension = ".csv"

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        self._writer = pcsv.CSVWriter(out, schema, write_options=pcsv.WriteOptions(
            include_header=True, quoting_style="needed", batch_size=1 << 16))

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


class JsonlWriter:
    """One JSON object per line; null fields are left out, RAW_JSON columns are embedded as is."""

    extension = ".jsonl"

    def __init__(self, out: BinaryIO, schema: pa.Schema):
        self._out = out
        self._schema = schema
        self._keys = [orjson.dumps(f.name).decode() + ":" for f in schema]

    def write(self, table: pa.Table) -> None:
        for start in range(0, table.num_rows, JSONL_SLICE_ROWS):
            lines = jsonl_lines(table.slice(start, JSONL_SLICE_ROWS), self._keys)
            self._out.write(_string_bytes(lines))

    def close(self) -> None:
        pass


def jsonl_lines(table: pa.Table, keys: list[str] | None = None) -> pa.Array:
    """The rows of `table` as JSON text, one `{...}\\n` string per row."""
    if keys is None:
        keys = [orjson.dumps(f.name).decode() + ":" for f in table.schema]
    parts = []
    for field, key, column in zip(table.schema, keys, table.columns):
        if column.null_count == len(column):
            continue
        text = _json_values(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0),
                            raw=(field.metadata or {}).get(b"json") == b"raw")
        parts.append(pc.binary_join_element_wise(key, text, ""))
    body = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    return pc.binary_join_element_wise("{", body, "}\n", "")


def _json_values(arr: pa.Array, raw: bool) -> pa.Array:
    """JSON text of each value (null stays null, so the key is skipped)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = compact_dictionary(arr)
        dictionary = arr.dictionary if raw else _json_strings(arr.dictionary)
        return pa.DictionaryArray.from_arrays(arr.indices, dictionary).dictionary_decode()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.string()) if raw else _json_strings(arr)
    if pa.types.is_floating(t):
        # NaN and infinities are not JSON; the events table holds "not sent" as null anyway.
        finite = pc.is_finite(arr)
        return pc.if_else(finite, arr.cast(pa.string()), pa.scalar(None, pa.string()))
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return arr.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    raise TypeError(f"no JSON form for column type {t}")


def compact_dictionary(arr: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same values with a dictionary of only the entries used (pools are often far larger)."""
    size = len(arr.dictionary)
    if size <= len(arr) // 4 or size == 0:
        return arr
    indices = arr.indices
    mask = None
    codes = indices.fill_null(0).to_numpy(zero_copy_only=False)
    used = np.zeros(size, dtype=bool)
    if indices.null_count:
        mask = np.asarray(indices.is_null())
        used[codes[~mask]] = True
    else:
        used[codes] = True
    remap = (np.cumsum(used) - 1).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(remap[codes], mask=mask),
                                          arr.dictionary.filter(pa.array(used)))


def _json_strings(arr: pa.Array) -> pa.Array:
    """JSON string literals (quoted, escaped) of a string array."""
    arr = arr.cast(pa.string())
    if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f\x7f]")).as_py():
        # Control characters are rare (free text only): escape those values exactly, one by one.
        return pa.array([None if v is None else orjson.dumps(v).decode() for v in arr.to_pylist()],
                        type=pa.string())
    escaped = pc.replace_substring(arr, "\\", "\\\\")
    escaped = pc.replace_substring(escaped, '"', '\\"')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _string_bytes(arr: pa.Array) -> memoryview:
    """The concatenated bytes of a string array, straight from its data buffer."""
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    if data is None:
        return memoryview(b"")
    return memoryview(data)[int(off[0]):int(off[-1])]


WRITERS = {"parquet": ParquetWriter, "csv": CsvWriter, "jsonl": JsonlWriter, "requests": JsonlWriter}
