"""Cost of the metrics and the reconciliation, as ratios to one plain DuckDB scan of the same data.

    python bench/bench_metrics.py [ROWS]        (default 1,000,000)

Builds a synthetic KAVA events table (sessions of impression, play request, play, VIEWs,
quartiles) as Parquet, and a request ledger of the same keys as JSON lines, then times:
  baseline  select eventType, count(*) ... group by 1   (one scan, the least any report does)
  compute(by=[])  headline figures only;  compute()  with every breakdown
  reconcile  ledger (read_json) against a store of the same keys
  baseline   select count(*) from read_json(ledger)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.metrics import compute  # noqa: E402
from sim.metrics.reconcile import reconcile  # noqa: E402

EVENTS_PER_SESSION = 20  # 1 impression, 1 request, 1 play, 4 quartiles, 13 VIEWs


def events_table(rows: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    sessions = rows // EVENTS_PER_SESSION
    pattern = np.array([1, 2, 3, 99, 99, 99, 99, 11, 99, 99, 99, 12, 99, 99, 99, 13, 99, 99, 99, 14])
    event_type = np.tile(pattern, sessions)
    session = np.repeat(np.arange(sessions), EVENTS_PER_SESSION)
    index = np.tile(np.arange(1, EVENTS_PER_SESSION + 1), sessions)
    view_rank = np.tile(np.cumsum(pattern == 99) - 1, sessions)
    start = np.repeat(1.767e9 + rng.uniform(0, 7 * 86400, sessions), EVENTS_PER_SESSION)
    sid = np.char.add("s", session.astype(str))
    return pa.table(
        {
            "ts": start + index * 5.0,
            "protocol": np.full(len(session), "kava"),
            "eventType": event_type,
            "sessionId": sid,
            "entryId": np.char.add("0_e", (session % 500).astype(str)),
            "userId": np.char.add("u", rng.integers(0, sessions // 3 + 1, len(session)).astype(str)),
            "eventIndex": index,
            "position": index * 10.0,
            "playTimeSum": np.where(event_type == 99, view_rank * 10.0, np.nan),
            "bufferTime": np.where(event_type == 99, 0.1, np.nan),
            "actualBitrate": np.where(event_type == 99, 1500.0, np.nan),
            "joinTime": np.where(event_type == 3, 1.2, np.nan),
            "user_agent": np.full(len(session), "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36"),
            "ledger_key": np.char.add(np.char.add(sid, ":"), index.astype(str)),
        }
    )


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.parquet"
        table = events_table(rows)
        pq.write_table(table, events)
        ledger, store = Path(tmp) / "requests.jsonl", Path(tmp) / "store.duckdb"
        con = duckdb.connect(str(store))
        con.execute(
            f"create table events as select ledger_key, protocol, eventType, true as accepted, "
            f"null::varchar as error_code from read_parquet('{events}')"
        )
        con.execute(
            f"copy (select ts, 'POST' as method, '/api_v3/index.php?service=analytics&action=trackEvent&eventType=' "
            f"|| eventType as url, protocol, ledger_key as key from read_parquet('{events}')) "
            f"to '{ledger}' (format json)"
        )
        con.close()

        scan = timed(
            lambda: duckdb.sql(f"select eventType, count(*) from read_parquet('{events}') group by 1").fetchall()
        )
        headline = timed(lambda: compute(events, by=[]))
        full = timed(lambda: compute(events))
        read = timed(
            lambda: duckdb.sql(f"select count(*) from read_json('{ledger}', format='newline_delimited')").fetchall()
        )
        rec = timed(lambda: reconcile(ledger, store))
    print(f"{table.num_rows:,} KAVA rows")
    print(f"baseline scan (eventType counts)      {scan:8.3f} s   1.0x")
    print(f"compute(by=[]) headline               {headline:8.3f} s   {headline / scan:5.1f}x")
    print(f"compute() with all breakdowns         {full:8.3f} s   {full / scan:5.1f}x")
    print(f"baseline read_json count of ledger    {read:8.3f} s   1.0x")
    print(f"reconcile ledger vs store             {rec:8.3f} s   {rec / read:5.1f}x")


if __name__ == "__main__":
    main()
