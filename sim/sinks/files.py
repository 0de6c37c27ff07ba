"""Where rows land: one file or a day-partitioned folder, written whole or not at all.

Everything is written under a hidden temporary name in the destination folder
(`.NAME.tmp-PID-XXXX`) and renamed into place by `commit()`; an exception or Ctrl-C
calls `abort()`, which deletes the temporary, so an interrupted run leaves nothing that
looks like finished output.

Usage::

    with open_sink("parquet", "out/events.parquet", schema) as sink:
        for table in tables_in_send_order:
            sink.write(table)
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from sim.atomic import replace_path
from sim.sinks.events import conform
from sim.sinks.formats import WRITERS

FORMATS = tuple(WRITERS)
PARTITIONS = ("day",)
DAY_S = 86400


class Sink:
    """Rows in send order -> a file (or `date=YYYY-MM-DD/part-N.ext` files under a folder)."""

    def __init__(self, fmt: str, path: str | os.PathLike, schema: pa.Schema, *, partition: str | None = None):
        if fmt not in WRITERS:
            raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        if partition not in (None, *PARTITIONS):
            raise ValueError(f"unknown partitioning {partition!r} (choose from {', '.join(PARTITIONS)})")
        self.fmt, self.schema, self.partition = fmt, schema, partition
        self.path = Path(path)
        self.rows = 0
        self._writer_cls = WRITERS[fmt]
        # Request ledgers are named requests-N so event readers can tell them from events.
        self._part_stem = "requests" if fmt == "requests" else "part"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.parent / f".{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        self._file = None
        self._writer = None
        self._day: int | None = None
        self._parts: dict[int, int] = {}  # day -> parts written (a day seen again gets a new part)
        if partition is None:
            self._open(self._tmp)
        else:
            self._tmp.mkdir()

    # -- writing -------------------------------------------------------------------------------

    def _open(self, file_path: Path) -> None:
        # Arrow's own file for a writer that is Arrow's (Parquet): through a Python file object,
        # Arrow copies every page into a bytes object and takes the GIL to hand it over.
        self._file = pa.OSFile(str(file_path), "wb") if self._writer_cls.arrow_file else open(file_path, "wb")
        self._writer = self._writer_cls(self._file, self.schema)

    def _close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = conform(table, self.schema)
        self.rows += table.num_rows
        if self.partition is None:
            self._writer.write(table)
            return
        days = np.floor(table.column("ts").to_numpy() / DAY_S).astype(np.int64)
        # Rows come in send order, so a day is one run; split at each change of day.
        cuts = np.flatnonzero(np.diff(days)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(days)]))
        for a, b in zip(starts, ends):
            day = int(days[a])
            if day != self._day:
                self._switch_day(day)
            self._writer.write(table.slice(int(a), int(b - a)))

    def _switch_day(self, day: int) -> None:
        self._close_current()
        part = self._parts.get(day, 0)
        self._parts[day] = part + 1
        folder = self._tmp / f"date={datetime.fromtimestamp(day * DAY_S, UTC):%Y-%m-%d}"
        folder.mkdir(exist_ok=True)
        self._open(folder / f"{self._part_stem}-{part}{self._writer_cls.extension}")
        self._day = day

    # -- finishing -----------------------------------------------------------------------------

    def commit(self) -> None:
        """Finish the files and move them into place under their real name."""
        self._close_current()
        replace_path(self._tmp, self.path)

    def abort(self) -> None:
        """Drop everything written so far (the real name is never touched)."""
        try:
            self._close_current()
        except Exception:  # the temporary goes away regardless; the original error matters
            pass
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def open_sink(fmt: str, path: str | os.PathLike, schema: pa.Schema, *, partition: str | None = None) -> Sink:
    """A sink writing `fmt` (parquet, csv, jsonl, requests) to `path`; see Sink."""
    return Sink(fmt, path, schema, partition=partition)
