"""The file sinks: events-table columns and types, the three formats, atomic writes, day partitions."""

from __future__ import annotations

import json
import os

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sink_chunks as sc
from sim.protocols.beacons import WireRequest
from sim.sinks import REQUESTS_SCHEMA, EventsBuilder, open_sink, requests_table
from sim.sinks.events import SchemaError, conform
from sim.sinks.formats import concat_chunks


@pytest.fixture
def run():
    """Three sessions (two on 2026-11-02, one the next day), legacy and KAVA beacons of each."""
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0, 86_400.0 + 60]))
    leg, kav = sc.legacy(chunk), sc.kava(chunk)
    builder = EventsBuilder.for_chunks([leg, kav])
    table = pa.concat_tables([builder.table(leg, chunk), builder.table(kav, chunk)], promote_options="default")
    table = table.take(pa.array(np.argsort(table.column("ts").to_numpy(), kind="stable")))
    return builder, table


def _write(fmt, path, builder, table, partition=None):
    with open_sink(fmt, path, builder.schema, partition=partition) as sink:
        sink.write(table)
    return path


def _events(source: str) -> duckdb.DuckDBPyRelation:
    return duckdb.sql(f"select * from '{source}'")


def test_parquet_columns_are_typed_as_the_events_table(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    types = dict(duckdb.sql(f"select column_name, column_type from (describe select * from '{path}')").fetchall())
    assert types["ts"] == "DOUBLE"
    assert types["eventType"] == "INTEGER"
    assert types["seek"] == "BOOLEAN"
    assert types["sessionId"] == "VARCHAR"
    assert types["currentPoint"] == "DOUBLE"
    assert types["truth_session_seq"] == "BIGINT"


def test_parquet_strings_are_dictionary_encoded(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    col = (
        pq.ParquetFile(path)
        .metadata.row_group(0)
        .column(pq.ParquetFile(path).schema_arrow.get_field_index("user_agent"))
    )
    assert "RLE_DICTIONARY" in col.encodings or "PLAIN_DICTIONARY" in col.encodings


def test_a_legacy_only_file_has_no_kava_only_columns(tmp_path):
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0]))
    leg = sc.legacy(chunk)
    builder = EventsBuilder.for_chunks([leg])
    path = _write("parquet", tmp_path / "e.parquet", builder, builder.table(leg, chunk))
    names = pq.read_schema(path).names
    assert "currentPoint" in names and "historyEvents" in names
    assert "playTimeSum" not in names and "eventIndex" not in names and "bufferTime" not in names


def test_columns_a_policy_always_sends_are_required_and_a_gap_in_one_is_refused():
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0]))
    leg = sc.legacy(chunk)
    leg.always_sent = frozenset({"eventType", "sessionId", "uiConfId", "ks", "currentPoint"})
    builder = EventsBuilder.for_chunks([leg])
    required = {f.name for f in builder.schema if not f.nullable}
    assert {"eventType", "sessionId", "uiconfId", "has_ks", "currentPoint"} <= required
    assert "userId" not in required
    # The fixture leaves currentPoint out of the first beacon of each session.
    with pytest.raises(SchemaError, match="currentPoint"):
        builder.table(leg, chunk)
    # A required column missing from the rows is refused too, not filled with nulls.
    with pytest.raises(SchemaError, match="rows lack the column"):
        conform(pa.table({"ts": [1.0]}), builder.schema)


def test_in_a_run_of_two_protocols_only_columns_both_always_send_are_required():
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0]))
    leg, kav = sc.legacy(chunk), sc.kava(chunk)
    leg.always_sent = frozenset({"eventType", "sessionId", "uiConfId"})
    kav.always_sent = frozenset({"eventType", "sessionId", "eventIndex"})
    required = {f.name for f in EventsBuilder.for_chunks([leg, kav]).schema if not f.nullable}
    assert {"eventType", "sessionId"} <= required
    assert not {"uiconfId", "eventIndex"} & required


def test_a_code_outside_its_pool_is_refused():
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0]))
    leg = sc.legacy(chunk)
    builder = EventsBuilder.for_chunks([leg])
    bad = leg.columns["sessionId"]
    codes = np.where(np.arange(len(leg)) == 3, len(bad.pool), bad.codes).astype(np.int32)
    leg.columns["sessionId"] = bad.with_codes(codes)
    with pytest.raises(SchemaError, match="outside a pool of 2 entries"):
        builder.table(leg, chunk)


def _user_agents_written(builder, path, *tables):
    """Write `tables` into one Parquet file; its user_agent column as DuckDB reads it."""
    with open_sink("parquet", path, builder.schema) as sink:
        for table in tables:
            sink.write(table)
    return [r[0] for r in duckdb.sql(f"select user_agent from '{path}'").fetchall()]


def test_text_from_different_pools_in_one_row_group_reads_back_and_stays_dictionary_encoded(run, tmp_path):
    builder, table = run
    # The same rows again, their user agents now coded over another pool that repeats an entry.
    ua = table.column("user_agent").combine_chunks()
    other_pool = pa.concat_arrays([ua.dictionary, ua.dictionary])
    recoded = pa.DictionaryArray.from_arrays(
        pa.array(ua.indices.to_numpy() + len(ua.dictionary), pa.int32()), other_pool
    )
    second = table.set_column(table.schema.get_field_index("user_agent"), "user_agent", recoded)
    path = tmp_path / "e.parquet"
    assert _user_agents_written(builder, path, table, second) == ua.to_pylist() * 2
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(pq.read_schema(path).get_field_index("user_agent"))
    assert meta.num_row_groups == 1 and "RLE_DICTIONARY" in col.encodings


def test_one_pool_with_a_repeated_entry_reads_back_as_written(run, tmp_path):
    builder, table = run
    ua = table.column("user_agent").combine_chunks()
    # the pool's last entry repeats its first, and rows use both
    pool = pa.concat_arrays([ua.dictionary, ua.dictionary.slice(0, 1)])
    codes = ua.indices.to_numpy().copy()
    codes[::2] = np.where(codes[::2] == 0, len(pool) - 1, codes[::2])
    recoded = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pool)
    table = table.set_column(table.schema.get_field_index("user_agent"), "user_agent", recoded)
    path = tmp_path / "e.parquet"
    assert _user_agents_written(builder, path, table, table) == recoded.to_pylist() * 2 == ua.to_pylist() * 2
    # a repeated entry handed to the encoder would make it fall back to plain strings
    col = pq.ParquetFile(path).metadata.row_group(0).column(builder.schema.get_field_index("user_agent"))
    assert col.has_dictionary_page and "RLE_DICTIONARY" in col.encodings, col


def _coded(codes, pool):
    codes = np.asarray(codes, np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pool)


def test_dictionary_chunks_over_several_pools_join_into_one_array_of_the_same_values():
    big, other = pa.array([f"v{i}" for i in range(100)]), pa.array([f"w{i}" for i in range(80)])
    # `big` comes back through another wrapper of the same memory: laid down once, not twice
    column = pa.chunked_array([_coded([0, 99, -1], big), _coded([5, -1, 79], other), _coded([3, -1], big.slice(0))])
    joined = concat_chunks(column)
    assert joined.to_pylist() == column.to_pylist() == ["v0", "v99", None, "w5", None, "w79", "v3", None]
    assert len(joined.dictionary) == 180
    # rows of the other protocol, all null over an empty dictionary, lay down no pool
    nulls = pa.DictionaryArray.from_arrays(pa.nulls(2, pa.int32()), pa.array([], pa.string()))
    with_nulls = concat_chunks(pa.chunked_array([_coded([7], big), nulls, _coded([8], big)]))
    assert with_nulls.to_pylist() == ["v7", None, None, "v8"]
    assert with_nulls.dictionary.buffers()[2].address == big.buffers()[2].address
    # small pools made apart with the same texts count as one
    small = pa.chunked_array([_coded([0, 1], pa.array(["x", "y"])), _coded([1, -1], pa.array(["x", "y"]))])
    assert concat_chunks(small).to_pylist() == ["x", "y", "y", None]
    assert concat_chunks(small).dictionary.to_pylist() == ["x", "y"]


def test_a_field_a_beacon_does_not_carry_is_null(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    rows = duckdb.sql(
        f"select protocol, eventType, currentPoint, playTimeSum from '{path}' where truth_session_seq = 0 order by ts"
    ).fetchall()
    assert rows[0] == ("legacy", 2, None, None)  # currentPoint not sent on the first beacon
    assert rows[1] == ("kava", 1, None, None)  # KAVA beacons carry no currentPoint
    assert rows[2][2] == 10_000.0


def test_integer_not_sent_minus_one_becomes_null(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    modes = duckdb.sql(
        f"select eventIndex, soundMode from '{path}' where protocol = 'kava' and truth_session_seq = 0 order by ts"
    ).fetchall()
    assert modes == [(1, None), (2, 2)]


def test_nan_is_null_in_a_float_column_and_minus_one_is_a_value():
    """Floats mark "not sent" with NaN only: a -1.0 is a value; integers use -1 (INT_NOT_SENT)."""
    chunk = sc.sessions(sc.T0 + np.array([0.0, 5.0, 60.0]))
    kav = sc.kava(chunk)
    kav.columns["position"] = np.array([-1.0, np.nan, 0.0, 1.5, np.nan, -1.0])
    kav.columns["eventIndex"] = np.array([-1, 2, 0, -1, 5, 7], np.int32)
    table = EventsBuilder.for_chunks([kav]).table(kav, chunk)
    position, index = table.column("position").chunk(0), table.column("eventIndex").chunk(0)
    assert position.to_pylist() == [-1.0, None, 0.0, 1.5, None, -1.0]
    assert position.null_count == 2
    assert index.to_pylist() == [None, 2, 0, None, 5, 7]
    assert index.null_count == 2
    assert table.column("ts").null_count == 0 and table.column("ts").chunk(0).buffers()[0] is None


def test_v7_uiConfId_is_stored_in_uiconfId(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    names = pq.read_schema(path).names
    assert "uiConfId" not in names
    assert duckdb.sql(f"select distinct uiconfId from '{path}' where protocol = 'legacy'").fetchall() == [(47313123,)]


def test_a_ks_is_never_stored_only_whether_one_was_sent(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    assert "ks" not in pq.read_schema(path).names
    assert b"djJ8MjUwNDIwMXw=" not in path.read_bytes()
    has = duckdb.sql(
        f"select truth_session_seq, any_value(has_ks) from '{path}' where protocol = 'legacy' group by 1 order by 1"
    ).fetchall()
    assert has == [(0, True), (1, False), (2, True)]


def test_request_context_and_truth_come_from_the_session(run, tmp_path):
    path = _write("parquet", tmp_path / "e.parquet", *run)
    row = duckdb.sql(
        f"select user_agent, client_ip, page_url, truth_device, truth_os, truth_country, truth_outcome, "
        f"truth_scenario from '{path}' where truth_session_seq = 1 limit 1"
    ).fetchall()[0]
    assert row == (
        "Mozilla/5.0 (iPhone) Safari/17",
        "10.0.0.2",
        'https://x.example/"quoted"\\path\tTab',
        "mobile",
        "ios",
        "GB",
        "completed",
        "typical-vod",
    )


def test_jsonl_lines_parse_and_leave_out_fields_not_sent(run, tmp_path):
    path = _write("jsonl", tmp_path / "e.jsonl", *run)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == run[1].num_rows
    first_kava = next(r for r in lines if r["protocol"] == "kava")
    assert "currentPoint" not in first_kava and "playTimeSum" not in first_kava
    assert first_kava["eventIndex"] == 1


def test_jsonl_escapes_quotes_backslashes_and_control_characters(run, tmp_path):
    path = _write("jsonl", tmp_path / "e.jsonl", *run)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    mobile = next(r for r in lines if r["truth_session_seq"] == 1)
    assert mobile["page_url"] == 'https://x.example/"quoted"\\path\tTab'


def test_every_format_holds_the_same_rows(run, tmp_path):
    builder, table = run
    for fmt in ("parquet", "csv", "jsonl"):
        _write(fmt, tmp_path / f"e.{fmt}", builder, table)
    query = "select ts, protocol, eventType, sessionId, currentPoint, seek, page_url from '{}' order by ts"
    parquet = duckdb.sql(query.format(tmp_path / "e.parquet")).fetchall()
    assert len(parquet) == table.num_rows
    assert duckdb.sql(query.format(tmp_path / "e.jsonl")).fetchall() == parquet
    assert duckdb.sql(query.format(tmp_path / "e.csv")).fetchall() == parquet


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_same_rows_give_byte_identical_files(run, tmp_path, fmt):
    a = _write(fmt, tmp_path / f"a.{fmt}", *run).read_bytes()
    b = _write(fmt, tmp_path / f"b.{fmt}", *run).read_bytes()
    assert a == b


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_a_failing_run_leaves_no_file(run, tmp_path, fmt):
    builder, table = run
    with pytest.raises(RuntimeError):
        with open_sink(fmt, tmp_path / "e.out", builder.schema) as sink:
            sink.write(table)
            raise RuntimeError("generator failed")
    assert os.listdir(tmp_path) == []


def test_an_interrupted_run_keeps_the_previous_file(run, tmp_path):
    builder, table = run
    path = _write("parquet", tmp_path / "e.parquet", builder, table)
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with open_sink("parquet", path, builder.schema) as sink:
            sink.write(table.slice(0, 3))
            raise KeyboardInterrupt
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["e.parquet"]


def test_nothing_appears_under_the_real_name_until_commit(run, tmp_path):
    builder, table = run
    sink = open_sink("jsonl", tmp_path / "e.jsonl", builder.schema)
    sink.write(table)
    assert not (tmp_path / "e.jsonl").exists()
    sink.commit()
    assert (tmp_path / "e.jsonl").exists()
    assert os.listdir(tmp_path) == ["e.jsonl"]


def test_day_partitions_are_hive_folders_duckdb_reads(run, tmp_path):
    out = _write("parquet", tmp_path / "out", *run, partition="day")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        "date=2026-11-02/part-0.parquet",
        "date=2026-11-03/part-0.parquet",
    ]
    counts = duckdb.sql(
        f"select date::varchar, count(*) from read_parquet('{out}/**/*.parquet', hive_partitioning = true) "
        "group by 1 order by 1"
    ).fetchall()
    assert counts == [("2026-11-02", 10), ("2026-11-03", 5)]


def test_a_partitioned_run_replaces_the_previous_folder_whole(run, tmp_path):
    builder, table = run
    out = _write("jsonl", tmp_path / "out", builder, table, partition="day")
    _write("jsonl", out, builder, table.slice(0, 2), partition="day")
    assert [p.name for p in out.rglob("*.jsonl")] == ["part-0.jsonl"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_failed_partitioned_run_leaves_no_folder(run, tmp_path):
    builder, table = run
    with pytest.raises(ValueError):
        with open_sink("csv", tmp_path / "out", builder.schema, partition="day") as sink:
            sink.write(table)
            raise ValueError("bad")
    assert os.listdir(tmp_path) == []


def test_request_lines_carry_the_wire_request_and_ledger_key(tmp_path):
    requests = [
        WireRequest(
            "GET",
            "/api_v3/index.php?service=stats&action=collect&event:eventType=3",
            {"User-Agent": "UA", "X-Forwarded-For": "10.0.0.1"},
        ),
        WireRequest(
            "POST",
            "/api_v3/index.php?service=analytics&action=trackEvent&eventType=1",
            {"Content-Type": "application/json"},
            b'{"apiVersion":"3.3.0","format":1}',
        ),
    ]
    table = requests_table(np.array([sc.T0, sc.T0 + 1.5]), requests, "legacy", ["s:1", "s:2"])
    with open_sink("requests", tmp_path / "requests.jsonl", REQUESTS_SCHEMA) as sink:
        sink.write(table)
    lines = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert lines[0] == {
        "ts": sc.T0,
        "method": "GET",
        "url": requests[0].url,
        "headers": {"User-Agent": "UA", "X-Forwarded-For": "10.0.0.1"},
        "body": None,
        "protocol": "legacy",
        "key": "s:1",
    }
    assert lines[1]["body"] == '{"apiVersion":"3.3.0","format":1}'
    assert list(lines[1]) == ["ts", "method", "url", "headers", "body", "protocol", "key"]


def test_day_partitioned_request_files_are_named_as_ledgers(tmp_path):
    table = requests_table(np.array([sc.T0]), [WireRequest("GET", "/x", {})], "kava", ["k:1"])
    with open_sink("requests", tmp_path / "req", REQUESTS_SCHEMA, partition="day") as sink:
        sink.write(table)
    assert [p.relative_to(tmp_path / "req").as_posix() for p in (tmp_path / "req").rglob("*.jsonl")] == [
        "date=2026-11-02/requests-0.jsonl"
    ]
