"""Opens any events-table source (collector store, event files, folders, globs) as one DuckDB view.

Usage::

    con = open_events("out/events.parquet")       # or a store.duckdb, a folder, "out/*.jsonl"
    con.sql("select protocol, count(*) from events group by 1").show()

Whatever the source, the connection returned has a view named `events` with the columns of
the events-table contract (one row per beacon). Files are read in place (nothing is
copied), so sources of tens of millions of rows are fine.
"""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

# Extensions by file format, in the order a folder holding several formats is read: the
# generator may write the same events in more than one format, so a folder is read in one
# format only (the others are named in a note) rather than silently double counted.
FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "json": (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json"),
    "csv": (".csv", ".csv.gz", ".tsv"),
}
STORE_EXTENSIONS = (".duckdb", ".ddb", ".db")
# Request ledgers (`requests*.jsonl`) sit beside event files in generator output; they are
# not events and are read by `reconcile`, not here.
LEDGER_PREFIX = "requests"


class SourceError(ValueError):
    """A source that cannot be read as an events table; the message names the source."""


@dataclass
class EventsSource:
    """A connection whose view `events` is the source, plus what was read and how."""

    con: duckdb.DuckDBPyConnection
    description: str
    columns: dict[str, str]  # lower-cased name -> DuckDB type
    notes: list[str] = field(default_factory=list)
    format: str = "store"  # store, parquet, json or csv

    def has(self, column: str) -> bool:
        return column.lower() in self.columns


def _format_of(name: str) -> str | None:
    low = name.lower()
    for fmt, exts in FORMATS.items():
        if low.endswith(exts):
            return fmt
    return None


def _is_event_file(path: str) -> bool:
    return not os.path.basename(path).lower().startswith(LEDGER_PREFIX) and _format_of(path) is not None


def _reader(fmt: str, files: list[str], hive: bool) -> str:
    """The DuckDB table function reading `files` in `fmt` (union by column name)."""
    listing = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    hive_opt = ", hive_partitioning = true" if hive else ""
    if fmt == "parquet":
        return f"read_parquet({listing}, union_by_name = true{hive_opt})"
    if fmt == "json":
        return f"read_json({listing}, format = 'newline_delimited', union_by_name = true{hive_opt})"
    return f"read_csv({listing}, union_by_name = true, header = true{hive_opt})"


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _files_of(source: str) -> list[str]:
    if any(ch in source for ch in "*?["):
        return sorted(p for p in globlib.glob(source, recursive=True) if os.path.isfile(p))
    if os.path.isdir(source):
        return sorted(
            p
            for p in globlib.glob(os.path.join(source, "**", "*"), recursive=True)
            if os.path.isfile(p) and _is_event_file(p)
        )
    return [source]


def _open_store(path: str) -> EventsSource:
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise SourceError(f"{path}: cannot open as a DuckDB store ({store_problem(exc)})") from None
    tables = {
        r[0].lower()
        for r in con.sql(
            "select table_name from information_schema.tables where table_catalog = current_database()"
        ).fetchall()
    }
    if "events" not in tables:
        con.close()
        raise SourceError(
            f"{path}: DuckDB store has no `events` table or view (has: {', '.join(sorted(tables)) or 'nothing'})"
        )
    return EventsSource(con, f"collector store {path}", _columns(con))


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {name.lower(): str(dtype) for name, dtype, *_ in con.sql("describe events").fetchall()}


def open_events(source: str | os.PathLike) -> EventsSource:
    """Open `source` as a view `events`: a collector store (`.duckdb`), an event file
    (`.parquet`, `.jsonl`/`.ndjson`, `.csv`, optionally gzipped), a folder of them (searched
    recursively; `key=value` folders become columns, hive style) or a glob.

    Raises SourceError (message names the source) when nothing readable is there.
    """
    source = os.fspath(source)
    is_glob = any(ch in source for ch in "*?[")
    if not is_glob and not os.path.exists(source):
        raise SourceError(f"{source}: no such file or folder")
    if (
        not is_glob
        and os.path.isfile(source)
        and (source.lower().endswith(STORE_EXTENSIONS) or _is_duckdb_file(source))
    ):
        return _open_store(source)

    files = _files_of(source)
    if not files:
        raise SourceError(f"{source}: no event files (.parquet, .jsonl, .ndjson, .csv) found")
    by_format: dict[str, list[str]] = {}
    for f in files:
        fmt = _format_of(f)
        if fmt is None:
            raise SourceError(f"{f}: unknown file type (expected .parquet, .jsonl, .ndjson, .csv or a .duckdb store)")
        by_format.setdefault(fmt, []).append(f)
    fmt = next(f for f in FORMATS if f in by_format)
    chosen = by_format[fmt]
    notes = [
        f"also found {len(v)} {k} file(s) in {source}; read only the {fmt} files"
        for k, v in by_format.items()
        if k != fmt
    ]
    hive = any("=" in part for f in chosen for part in Path(f).parent.parts)

    con = duckdb.connect()
    try:
        con.execute(f"create temp view events as select * from {_reader(fmt, chosen, hive)}")
        columns = _columns(con)
    except duckdb.Error as exc:
        con.close()
        raise SourceError(f"{source}: cannot read as {fmt} events ({str(exc).splitlines()[0]})") from None
    what = chosen[0] if len(chosen) == 1 else f"{len(chosen)} {fmt} files under {source}"
    return EventsSource(con, what, columns, notes, fmt)


def store_problem(exc: Exception) -> str:
    """Why a store did not open, in one line; a lock means another process is writing it."""
    first = str(exc).splitlines()[0]
    if "lock" in first.lower():
        return f"{first}; a running collector holds its store: stop it first, or read a copy"
    return first


def _is_duckdb_file(path: str) -> bool:
    """DuckDB database files carry the magic `DUCK` at byte 8."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[8:12] == b"DUCK"
