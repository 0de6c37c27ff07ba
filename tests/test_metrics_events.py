"""open_events: every kind of events-table source reads as one `events` view, or fails clearly."""

from __future__ import annotations

import duckdb
import pytest

from events_tables import kava, legacy, write
from sim.metrics import SourceError, open_events

ROWS = [kava(1), kava(3, userId="u1"), legacy(2), legacy(3, duration=60)]


def count_by_protocol(source) -> dict[str, int]:
    src = open_events(source)
    return dict(src.con.sql("select protocol, count(*) from events group by 1").fetchall())


@pytest.mark.parametrize("name", ["events.parquet", "events.jsonl", "events.ndjson", "events.csv", "store.duckdb"])
def test_each_file_format_reads_as_the_events_view(tmp_path, name):
    assert count_by_protocol(write(ROWS, tmp_path / name)) == {"kava": 2, "legacy": 2}


def test_a_store_keeps_its_wire_column_names(tmp_path):
    src = open_events(write(ROWS, tmp_path / "store.duckdb"))
    assert src.has("eventType") and src.has("userId")


def test_a_folder_of_files_reads_recursively(tmp_path):
    write(ROWS[:2], tmp_path / "out" / "part-0.parquet")
    write(ROWS[2:], tmp_path / "out" / "sub" / "part-1.parquet")
    assert count_by_protocol(tmp_path / "out") == {"kava": 2, "legacy": 2}


def test_hive_partition_folders_become_columns(tmp_path):
    strip = [{k: v for k, v in r.items() if k != "protocol"} for r in ROWS]
    write(strip[:2], tmp_path / "out" / "protocol=kava" / "part-0.parquet")
    write(strip[2:], tmp_path / "out" / "protocol=legacy" / "part-0.parquet")
    assert count_by_protocol(tmp_path / "out") == {"kava": 2, "legacy": 2}


def test_a_glob_selects_files(tmp_path):
    write(ROWS[:2], tmp_path / "a.jsonl")
    write(ROWS[2:], tmp_path / "b.jsonl")
    write(ROWS, tmp_path / "c.csv")
    assert count_by_protocol(str(tmp_path / "*.jsonl")) == {"kava": 2, "legacy": 2}


def test_request_ledgers_beside_event_files_are_not_events(tmp_path):
    write(ROWS, tmp_path / "out" / "events.jsonl")
    (tmp_path / "out" / "requests-0.jsonl").write_text('{"key": "k", "protocol": "kava", "url": "/"}\n')
    assert count_by_protocol(tmp_path / "out") == {"kava": 2, "legacy": 2}


def test_a_folder_with_two_formats_reads_one_and_says_so(tmp_path):
    write(ROWS, tmp_path / "out" / "events.parquet")
    write(ROWS, tmp_path / "out" / "events.jsonl")
    src = open_events(tmp_path / "out")
    assert src.con.sql("select count(*) from events").fetchall() == [(4,)]
    assert src.notes == [f"also found 1 json file(s) in {tmp_path / 'out'}; read only the parquet files"]


def test_a_missing_source_names_the_path(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.parquet: no such file or folder"):
        open_events(tmp_path / "nope.parquet")


def test_an_unknown_file_type_is_refused(tmp_path):
    (tmp_path / "events.xlsx").write_text("x")
    with pytest.raises(SourceError, match=r"events\.xlsx: unknown file type"):
        open_events(tmp_path / "events.xlsx")


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(SourceError, match="no event files"):
        open_events(tmp_path)


def test_a_store_without_events_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table beacons (x int)")
    con.close()
    with pytest.raises(SourceError, match=r"no `events` table or view \(has: beacons\)"):
        open_events(path)


def test_a_corrupt_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "events.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match=r"events\.parquet: cannot read as parquet events"):
        open_events(tmp_path / "events.parquet")
