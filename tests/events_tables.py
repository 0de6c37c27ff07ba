"""Builds small events tables by hand (rows of the events-table contract) in every source format."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
_clock = itertools.count()


def kava(event_type: int, session: str = "s1", entry: str = "0_e1", **fields) -> dict:
    """One KAVA beacon row; ts increases row by row unless given."""
    row = {
        "ts": T0 + next(_clock),
        "protocol": "kava",
        "eventType": event_type,
        "partnerId": 100,
        "entryId": entry,
        "sessionId": session,
    }
    row.update(fields)
    return row


def legacy(event_type: int, session: str = "L1", entry: str = "0_e1", **fields) -> dict:
    row = {
        "ts": T0 + next(_clock),
        "protocol": "legacy",
        "eventType": event_type,
        "partnerId": 100,
        "entryId": entry,
        "sessionId": session,
    }
    row.update(fields)
    return row


def table(rows: list[dict]) -> pa.Table:
    names = list(dict.fromkeys(k for r in rows for k in r))
    return pa.Table.from_pylist([{k: r.get(k) for k in names} for r in rows])


def write(rows: list[dict], path: Path) -> Path:
    """Write rows as the file type `path` names (.parquet, .jsonl, .csv, .duckdb store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".parquet"):
        pq.write_table(table(rows), path)
    elif name.endswith((".jsonl", ".ndjson")):
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    elif name.endswith(".csv"):
        arrow = table(rows)  # noqa: F841 (read by DuckDB below)
        duckdb.sql(f"copy (select * from arrow) to '{path}' (header, delimiter ',')")
    elif name.endswith(".duckdb"):
        arrow = table(rows)  # noqa: F841
        con = duckdb.connect(str(path))
        con.execute("create table events as select * from arrow")
        con.close()
    else:
        raise ValueError(name)
    return path
