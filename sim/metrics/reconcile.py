"""Reconciles what a generator sent (its request ledger) with what a collector stored, key by key.

Usage::

    r = reconcile("out/requests.jsonl", "collector.duckdb")   # or a folder of per-worker ledgers
    r.totals["lost"], r.totals["duplicated"]

The ledger is JSON lines with `ts, method, url, headers, body, protocol, key` (key = the
ledger key, `sim.protocols.<protocol>.codec.ledger_key(beacon)`), optionally `failed`
(true) or `status` per line for sends that failed at the generator. The store is a DuckDB
file whose `events` table has `ledger_key, protocol, eventType, accepted, error_code`.

Keys are compared as multisets, per key, in DuckDB (the ledger is read in place with
read_json, so ten million lines are fine):

* sent: ledger lines; failed at send: lines marked failed (not expected to arrive), by
  their `error` (or `status`);
* received: store rows; lost: max(sent ok - received, 0);
* duplicated: received beyond every line sent for the key (ok or failed);
* arrived despite failure: received beyond the ok sends, up to the failed ones;
* unexpected: received rows whose key is in no ledger line (or has no key);
* rejected: received rows with accepted = false, by error_code;
* retried: extra arrivals of one send (same run, worker and send number: a send retried
  after a failure, or resent by the client, that had reached the store) - not duplicates.

Runs: a load run names itself in its ledger lines (`run`, `seq`) and on its requests (header
`X-Player-Sim-Run: RUN:WORKER:SEQ:ATTEMPT`, stored as `run_id`, `run_worker`, `run_seq`), so
one store holds many runs: only the rows of the ledger's runs are compared (`run="all"`: every
row; a ledger without run ids: every row). While a collector holds the store's DuckDB lock,
the rows are read through it (`STORE.collector.json` names its socket).

A line counts as failed at send when `failed` is true, or `status` is one of failed,
error, timeout, refused, connection_error, 0 (no response). An HTTP status such as 500 is
a response: the request reached a server, so it is expected in the store.
The event type of a ledger line is read from its url or body (`eventType=`,
`event:eventType=`, `"eventType": n`). Lines marked `"preflight": true` (a browser's CORS
preflight in a request file) carry no beacon and are left out.
"""

from __future__ import annotations

import glob as globlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import orjson

from sim.metrics.events import SourceError, store_problem
from sim.protocols.event_types import EVENT_NAMES

COUNTS = (
    "sent",
    "failed_at_send",
    "received",
    "lost",
    "duplicated",
    "arrived_despite_failure",
    "unexpected",
    "rejected",
    "retried",
)
FAILED_STATUSES = ("failed", "error", "timeout", "refused", "connection_error", "0")
LEDGER_EXTENSIONS = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json")
LEDGER_COLUMNS = {
    "key": "VARCHAR",
    "protocol": "VARCHAR",
    "url": "VARCHAR",
    "body": "VARCHAR",
    "failed": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "run": "VARCHAR",
    "preflight": "VARCHAR",
}
EVENT_TYPE_PATTERN = r'eventType(?:"|%22)?\s*(?:=|:|%3D)\s*"?(-?\d+)'


@dataclass
class Reconciliation:
    ledger: str
    store: str
    totals: dict[str, int]
    by_type: list[dict[str, Any]]  # protocol, eventType, eventName and COUNTS
    rejected_reasons: list[dict[str, Any]] = field(default_factory=list)  # protocol, error_code, rows
    failed_reasons: list[dict[str, Any]] = field(default_factory=list)  # protocol, error, lines
    unexpected_keys: list[str] = field(default_factory=list)  # a sample, for a first look
    runs: list[str] = field(default_factory=list)  # the load runs compared (none: every row)

    @property
    def ok(self) -> bool:
        """Nothing lost and nothing duplicated."""
        return self.totals["lost"] == 0 and self.totals["duplicated"] == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()


def _ledger_files(ledger: str) -> list[str]:
    if any(ch in ledger for ch in "*?["):
        files = sorted(p for p in globlib.glob(ledger, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(ledger):
        files = sorted(
            p
            for p in globlib.glob(os.path.join(ledger, "**", "*"), recursive=True)
            if os.path.isfile(p) and p.lower().endswith(LEDGER_EXTENSIONS)
        )
    elif os.path.isfile(ledger):
        files = [ledger]
    else:
        raise SourceError(f"{ledger}: no such ledger file or folder")
    if not files:
        raise SourceError(f"{ledger}: no ledger files (.jsonl, .ndjson)")
    return files


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _attach_store(con: duckdb.DuckDBPyConnection, store: str, runs: list[str] | None, scratch: str) -> str:
    """The `received` table: the store's rows (of `runs`, when the store has run ids), read directly,
    or, while a collector holds the store's lock, through that collector. Returns how it was read."""
    if not os.path.isfile(store):
        raise SourceError(f"--store {store}: no such file")
    try:
        con.execute(f"attach {_sql_str(store)} as store (read_only)")
        source, how = "store.events", "file"
        cols = {
            r[0].lower()
            for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'store' "
                "and table_name = 'events'"
            ).fetchall()
        }
    except duckdb.Error as exc:
        if "lock" not in str(exc).lower():
            raise SourceError(f"--store {store}: cannot open as a DuckDB store ({store_problem(exc)})") from None
        source = _export_from_running_collector(store, runs, scratch, exc)
        how = "running collector"
        cols = {r[0].lower() for r in con.execute(f"describe select * from {source}").fetchall()}
    if not cols:
        raise SourceError(f"--store {store}: no `events` table or view")
    missing = [c for c in ("ledger_key", "protocol", "eventtype") if c not in cols]
    if missing:
        raise SourceError(f"--store {store}: events has no {', '.join(missing)} column")
    accepted = "accepted" if "accepted" in cols else "true"
    error_code = "cast(error_code as varchar)" if "error_code" in cols else "cast(null as varchar)"
    has_runs = {"run_id", "run_worker", "run_seq"} <= cols
    # one send (run, worker, send number) that arrived more than once was retried: counted once
    send_id = (
        "case when run_seq is null then null else concat_ws(':', run_id, run_worker, run_seq) end"
        if has_runs
        else "cast(null as varchar)"
    )
    where = ""
    if runs and has_runs:
        where = "where run_id in (" + ", ".join(_sql_str(r) for r in runs) + ")"
    con.execute(f"""create temp table received as
        select cast(ledger_key as varchar) as key, lower(cast(protocol as varchar)) as protocol,
               try_cast(eventType as integer) as eventType, coalesce(try_cast({accepted} as boolean), true) as accepted,
               {error_code} as error_code, {send_id} as send_id
        from {source} {where}""")
    return how


def _export_from_running_collector(store: str, runs: list[str] | None, scratch: str, exc: Exception) -> str:
    """The running collector's writer copies the rows reconcile needs to a Parquet file (its own
    process holds DuckDB's lock; every row it answered is committed, so the copy has them all)."""
    from sim.collector.link import ask
    from sim.collector.writer import sidecar_path

    sidecar = sidecar_path(store)
    try:
        where = orjson.loads(sidecar.read_bytes())
    except (OSError, ValueError):
        raise SourceError(f"--store {store}: cannot open as a DuckDB store ({store_problem(exc)})") from None
    out = os.path.join(scratch, "received.parquet")
    try:
        answer = ask(where["socket"], {"q": "export", "path": out, "runs": runs})
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise SourceError(
            f"--store {store}: another process holds it and the collector named in {sidecar} "
            f"does not answer ({err}); stop that process first, or read a copy"
        ) from None
    if not answer.get("ok"):
        raise SourceError(f"--store {store}: the running collector could not export it ({answer.get('error')})")
    return f"read_parquet({_sql_str(out)})"


def _ledger_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r for (r,) in con.execute("select distinct run from sent where run is not null order by 1").fetchall()]


def _open_ledger(con: duckdb.DuckDBPyConnection, ledger: str) -> None:
    files = _ledger_files(ledger)
    listing = "[" + ", ".join(_sql_str(f) for f in files) + "]"
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in LEDGER_COLUMNS.items()) + "}"
    statuses = ", ".join(f"'{s}'" for s in FAILED_STATUSES)
    # Materialised once: the ledger is parsed a single time however many queries read it.
    try:
        con.execute(f"""create temp table sent as
        select key, lower(protocol) as protocol,
               try_cast(coalesce(nullif(regexp_extract(url, '{EVENT_TYPE_PATTERN}', 1), ''),
                                 regexp_extract(body, '{EVENT_TYPE_PATTERN}', 1)) as integer) as eventType,
               (lower(coalesce(failed, 'false')) in ('true', '1')
                or lower(coalesce(status, '')) in ({statuses})) as failed,
               coalesce(error, status) as error, run
        from read_json({listing}, format = 'newline_delimited', columns = {columns})
        where lower(coalesce(preflight, 'false')) not in ('true', '1')""")
    except duckdb.Error as exc:
        raise SourceError(f"{ledger}: cannot read as a JSON-lines ledger ({str(exc).splitlines()[0]})") from None


PER_KEY = """
    with s as (
        select key, any_value(protocol) as protocol, any_value(eventType) as eventType,
               count(*) filter (where not failed) as ok, count(*) filter (where failed) as failed
        from sent where key is not null group by key),
    r as (
        select key, any_value(protocol) as protocol, any_value(eventType) as eventType,
               count(distinct send_id) + count(*) filter (where send_id is null) as received,
               count(send_id) - count(distinct send_id) as retried,
               count(distinct send_id) filter (where not accepted)
                 + count(*) filter (where send_id is null and not accepted) as rejected
        from received group by key)
    select coalesce(s.protocol, r.protocol) as protocol, coalesce(s.eventType, r.eventType) as eventType,
           coalesce(s.ok, 0) + coalesce(s.failed, 0) as sent,
           coalesce(s.failed, 0) as failed_at_send,
           coalesce(r.received, 0) as received,
           greatest(coalesce(s.ok, 0) - coalesce(r.received, 0), 0) as lost,
           case when s.key is null then 0
                else greatest(coalesce(r.received, 0) - s.ok - s.failed, 0) end as duplicated,
           case when s.key is null then 0
                else least(greatest(coalesce(r.received, 0) - s.ok, 0), s.failed) end as arrived_despite_failure,
           case when s.key is null then r.received else 0 end as unexpected,
           coalesce(r.rejected, 0) as rejected,
           coalesce(r.retried, 0) as retried
    from s full outer join r on s.key = r.key"""


def reconcile(ledger: str | os.PathLike, store: str | os.PathLike, run: str | None = None) -> Reconciliation:
    """Compare the ledger's keys with the store's `events.ledger_key` (see the module doc).

    `run`: the load run to reconcile; by default the runs the ledger names, `all` for every row."""
    ledger, store = os.fspath(ledger), os.fspath(store)
    con = duckdb.connect()
    scratch = tempfile.mkdtemp(prefix="player-sim-reconcile-")
    try:
        _open_ledger(con, ledger)
        if run is None:
            runs = _ledger_runs(con)
        else:
            runs = [] if run == "all" else [run]
            if runs:
                con.execute("delete from sent where run is distinct from ?", [run])
        _attach_store(con, store, runs, scratch)
        sums = ", ".join(f"sum({c})::bigint as {c}" for c in COUNTS)
        by_type_rows = con.execute(f"""
            select protocol, eventType, {sums} from ({PER_KEY})
            group by all order by protocol nulls last, eventType nulls last""").fetchall()
        by_type = [dict(zip(("protocol", "eventType", *COUNTS), row)) for row in by_type_rows]
        for row in by_type:  # the name beside the id, as the report and the live page show it
            row["eventName"] = EVENT_NAMES.get(row["protocol"], {}).get(row["eventType"])
        totals = {c: int(sum(row[c] or 0 for row in by_type)) for c in COUNTS}
        rejected = [
            dict(zip(("protocol", "error_code", "rows"), row))
            for row in con.execute("""
            select protocol, error_code, count(*) from received where not accepted
            group by all order by 3 desc, 1, 2""").fetchall()
        ]
        failed = [
            dict(zip(("protocol", "error", "lines"), row))
            for row in con.execute("""
            select protocol, error, count(*) from sent where failed group by all order by 3 desc, 1, 2""").fetchall()
        ]
        unexpected = [
            k
            for (k,) in con.execute("""
            select coalesce(r.key, '(no key)') from received r
            anti join (select distinct key from sent) s on r.key = s.key
            group by 1 order by 1 limit 10""").fetchall()
        ]
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return Reconciliation(
        ledger=ledger,
        store=store,
        totals=totals,
        by_type=by_type,
        rejected_reasons=rejected,
        failed_reasons=failed,
        unexpected_keys=unexpected,
        runs=runs,
    )
