"""Runs cut into parts: the same bytes from 1, 2 or 3 worker processes and from a Dask cluster, in
global send order, whole or not at all."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import MIX, ROOT
from helpers.cli import PLAYER_SIM
from helpers.collector import free_port
from sim.generate import generate, stream_rows
from sim.parts import RunSpec, n_parts
from sim.player.model import chunk_partitions, make_chunk, prepare_run
from sim.scenario.loader import load
from sim.sinks import open_sink
from sim.sinks.formats import ParquetWriter
from sim.sinks.stitch import join_parquet

# Small partitions and one chunk per part: 4,000 sessions make 4 parts, whose sessions run on
# into the parts after them.
SMALL = dict(seed=3, sessions=4000, chunk_size=1, part_chunks=1, partition_sessions=1000)


@pytest.fixture(scope="module")
def mix():
    return load(MIX)


def _digest(path: Path) -> str:
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _run(mix, out: Path, fmt: str, workers: int, **kw) -> tuple[int, str]:
    stats = generate(mix, **{**SMALL, **kw}, protocol="legacy", fmt=fmt, out=out, workers=workers)
    return stats.beacons, _digest(out)


def test_small_runs_are_cut_into_several_parts(mix, tmp_path):
    spec = RunSpec(
        mix, 3, 4000, None, "legacy", "jsonl", str(tmp_path), chunk_size=1, part_chunks=1, partition_sessions=1000
    )
    assert n_parts(spec) >= 3


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "requests"])
def test_one_two_or_three_workers_write_the_same_bytes(mix, tmp_path, fmt):
    runs = {w: _run(mix, tmp_path / f"out.{w}", fmt, w) for w in (1, 2, 3)}
    assert runs[1][0] > 4000
    assert runs[1] == runs[2] == runs[3]
    assert sorted(os.listdir(tmp_path)) == ["out.1", "out.2", "out.3"]  # no temporaries left


def _one_stream(mix, fmt: str, out: Path) -> None:
    """The same sessions through one SendOrderMerge, as a run of one part writes them."""
    run = prepare_run(mix, SMALL["seed"], sessions=SMALL["sessions"], partition_sessions=SMALL["partition_sessions"])
    chunks = (make_chunk(run, r) for r in chunk_partitions(run.plan, 1))
    schema = []
    rows = stream_rows(chunks, protocol="legacy", fmt=fmt, on_schema=schema.append)
    first = next(rows)
    with open_sink(fmt, out, schema[0]) as sink:
        sink.write(first)
        for table in rows:
            sink.write(table)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_parts_joined_are_the_rows_of_one_global_send_order(mix, tmp_path, fmt):
    # Text formats write row by row: the joined pieces must be byte for byte one stream's file.
    _one_stream(mix, fmt, tmp_path / "one")
    _run(mix, tmp_path / "parts", fmt, 2)
    assert (tmp_path / "parts").read_bytes() == (tmp_path / "one").read_bytes()


def test_a_joined_parquet_file_holds_the_rows_of_one_stream_in_order(mix, tmp_path):
    _one_stream(mix, "parquet", tmp_path / "one.parquet")
    _run(mix, tmp_path / "parts.parquet", "parquet", 3)
    joined, one = pq.read_table(tmp_path / "parts.parquet"), pq.read_table(tmp_path / "one.parquet")
    assert joined.schema == one.schema and joined.num_rows == one.num_rows
    for name in one.schema.names:  # column by column: NaN (a session that never played) equals NaN
        if pa.types.is_floating(one.schema.field(name).type):
            np.testing.assert_array_equal(joined.column(name).to_numpy(), one.column(name).to_numpy())
        else:
            assert joined.column(name).equals(one.column(name)), name
    ts = joined.column("ts").to_numpy()
    assert np.all(ts[1:] >= ts[:-1])
    assert pq.ParquetFile(tmp_path / "parts.parquet").metadata.num_row_groups >= 3  # a piece's groups each


def test_day_partitions_are_the_same_from_any_number_of_workers(mix, tmp_path):
    runs = {w: _run(mix, tmp_path / f"days.{w}", "parquet", w, partition="day") for w in (1, 3)}
    assert runs[1] == runs[3]
    _run(mix, tmp_path / "whole.parquet", "parquet", 1)
    files = sorted(str(p.relative_to(tmp_path / "days.1")) for p in (tmp_path / "days.1").rglob("*.parquet"))
    assert len(files) > len({f.split("/")[0] for f in files})  # pieces of one day are separate files
    days = duckdb.sql(
        f"select * from read_parquet('{tmp_path}/days.1/*/*.parquet', hive_partitioning = false, "
        f"filename = true) order by filename, ts"
    ).to_arrow_table()
    whole = pq.read_table(tmp_path / "whole.parquet")
    assert days.num_rows == whole.num_rows
    # Each day's files, in name order, are that day's rows in send order.
    assert days.column("ts").to_pylist() == whole.column("ts").to_pylist()


def test_parquet_pieces_join_into_one_file_with_every_row_group(tmp_path):
    schema = pa.schema([("ts", pa.float64(), False), ("s", pa.dictionary(pa.int32(), pa.string()))])
    pieces = []
    for j, n in enumerate((2500, 0, 700)):
        path = tmp_path / f"piece-{j}"
        with open(path, "wb") as f:
            writer = ParquetWriter(f, schema)
            if n:
                writer.write(
                    pa.table(
                        {
                            "ts": np.arange(n, dtype=float) + 1e4 * j,
                            "s": pa.array([f"v{i % 37}-{j}" for i in range(n)]).dictionary_encode(),
                        },
                        schema=schema,
                    )
                )
            writer.close()
        pieces.append(path)
    with open(tmp_path / "joined", "wb") as f:
        join_parquet(pieces, f)
    joined = pq.read_table(tmp_path / "joined")
    assert joined.equals(pa.concat_tables([pq.read_table(p) for p in pieces]))
    assert duckdb.sql(f"select count(*), sum(ts) from read_parquet('{tmp_path / 'joined'}')").fetchall() == [
        (3200, float(joined.column("ts").to_numpy().sum()))
    ]


def test_the_joiner_keeps_each_row_group_of_a_long_run_in_about_its_footer_bytes(tmp_path):
    """A long run joins thousands of row groups: held parsed, each entry took ~40x its bytes."""
    import tracemalloc

    from sim.sinks.stitch import ParquetJoiner

    wide = pa.table({f"c{i}": pa.array(range(1000)) for i in range(52)})
    pq.write_table(wide, tmp_path / "piece", row_group_size=250)
    footer = pq.ParquetFile(tmp_path / "piece").metadata.serialized_size
    with open(tmp_path / "joined", "wb") as f:
        joiner = ParquetJoiner(f)
        joiner.add(tmp_path / "piece")
        tracemalloc.start()
        try:
            for _ in range(20):
                joiner.add(tmp_path / "piece")
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        joiner.close()
    assert held < 20 * footer * 2
    assert pq.read_table(tmp_path / "joined").equals(pa.concat_tables([wide] * 21))


def _parquet_piece(path: Path, j: int, n: int, schema: pa.Schema) -> None:
    with open(path, "wb") as f:
        writer = ParquetWriter(f, schema)
        if n:
            columns = {"ts": np.arange(n, dtype=float) + 1e4 * j}
            if "s" in schema.names:
                columns["s"] = pa.array([f"v{i % 37}-{j}" for i in range(n)]).dictionary_encode()
            writer.write(pa.table(columns, schema=schema))
        writer.close()


def test_pieces_that_come_in_out_of_order_are_joined_in_order_as_soon_as_they_can_be(tmp_path):
    from sim.parts import PartResult, piece_path
    from sim.workers import _Assembly

    schema = pa.schema([("ts", pa.float64(), False), ("s", pa.dictionary(pa.int32(), pa.string()))])
    spec = RunSpec(None, 1, 1, None, "legacy", "parquet", str(tmp_path))
    sizes = (2500, 0, 700, 40)
    for j, n in enumerate(sizes):
        _parquet_piece(piece_path(spec.workdir, j), j, n, schema)
    expected = pa.concat_tables([pq.read_table(piece_path(spec.workdir, j)) for j in range(len(sizes))])
    with open(tmp_path / "expected", "wb") as f:
        join_parquet([piece_path(spec.workdir, j) for j in range(len(sizes))], f)
    assembly = _Assembly(spec, len(sizes))
    joined = []
    for j in (2, 0, 3, 1):  # as a Dask cluster may finish them
        assembly.part_done(PartResult(j, schema=schema))
        joined.append(assembly.next)
    assert joined == [0, 1, 1, 4]  # piece 0 as soon as it is in; 1, 2 and 3 when 1 comes
    assert not any(piece_path(spec.workdir, j).exists() for j in range(len(sizes)))  # joined, then deleted
    out = assembly.finish()
    assert out.read_bytes() == (tmp_path / "expected").read_bytes()
    assert pq.read_table(out).equals(expected)


def test_a_piece_with_other_columns_than_the_first_is_never_joined(tmp_path):
    from sim.parts import PartResult, piece_path
    from sim.sinks.stitch import StitchError
    from sim.workers import _Assembly

    one = pa.schema([("ts", pa.float64(), False)])
    two = pa.schema([("ts", pa.float64(), False), ("s", pa.dictionary(pa.int32(), pa.string()))])
    spec = RunSpec(None, 1, 1, None, "legacy", "parquet", str(tmp_path))
    _parquet_piece(piece_path(spec.workdir, 0), 0, 10, one)
    _parquet_piece(piece_path(spec.workdir, 1), 1, 10, two)
    assembly = _Assembly(spec, 2)
    assembly.part_done(PartResult(0, schema=one))
    with pytest.raises(StitchError, match="part 1 wrote other columns than part 0"):
        assembly.part_done(PartResult(1, schema=two))
    assembly.close()


def test_a_stopped_run_with_workers_leaves_nothing(tmp_path):
    out = tmp_path / "big.parquet"
    proc = subprocess.Popen(
        [
            *PLAYER_SIM,
            "generate",
            str(MIX),
            "--sessions",
            "5000000",
            "--format",
            "parquet",
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".big.parquet.tmp") and any(p.iterdir()) for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before writing"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    time.sleep(0.5)  # workers stopped by their parent are gone too
    assert os.listdir(tmp_path) == []


def test_a_part_failing_in_a_worker_fails_the_run_and_leaves_nothing(mix, tmp_path, monkeypatch):
    import sim.workers

    make_part = sim.workers.make_part

    def failing(spec, j, *args, **kwargs):  # forked workers inherit the patch
        if j == 1:
            raise ValueError("part 1 broke")
        return make_part(spec, j, *args, **kwargs)

    monkeypatch.setattr(sim.workers, "make_part", failing)
    with pytest.raises(ValueError, match="part 1 broke"):
        _run(mix, tmp_path / "out.parquet", "parquet", 2)  # parts after 1 wait for its carry: stopped
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("after", ["plan", "warm-up", "start workers", "simulate"])
def test_sigterm_at_any_moment_of_a_run_with_workers_ends_it_cleanly(tmp_path, after):
    # The run's timeline (sim.parts.record) says when each step ends: SIGTERM right then, e.g.
    # while the workers are being started ("warm-up" ends just before).
    out, timeline = tmp_path / "out" / "big.jsonl", tmp_path / "timeline.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYER_SIM_TIMELINE": str(timeline)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "generate",
            str(MIX),
            "--sessions",
            "2000000",
            "--format",
            "jsonl",
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (
            timeline.exists() and any(json.loads(line)["what"] == after for line in timeline.read_text().splitlines())
        ):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"no {after!r} in 300 s"
            time.sleep(0.002)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)  # the old pool could hang here for ever
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err, err  # the whole of stderr: pytest cuts a long string short
    assert os.listdir(tmp_path / "out") == []
    pids = {json.loads(line)["pid"] for line in timeline.read_text().splitlines()}
    time.sleep(0.5)
    for pid in pids:  # the workers are gone too
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_stop_signalled_while_workers_start_is_noted_then_raised_after_and_unstarted_workers_are_skipped():
    # A signal caught just before the workers' start is held back reaches its Python handler
    # inside the start: it must not cut `Process.start` in the middle (a half-made process
    # object that the clean-up then could not stop), only note the stop for right after.
    import multiprocessing

    from sim import workers
    from sim.cli import terminate_as_interrupt

    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        terminate_as_interrupt()
        handler = signal.getsignal(signal.SIGTERM)
        with workers._signals_held():
            handler(signal.SIGTERM, None)  # as if delivered here: noted, not raised
        with pytest.raises(KeyboardInterrupt):
            workers.check_stop()
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGTERM, None)  # outside the start, a signal stops the run at once
    finally:
        workers.request_stop(False)
        signal.signal(signal.SIGTERM, saved[0])
        signal.signal(signal.SIGINT, saved[1])
    never_started = multiprocessing.get_context("spawn").Process(target=print)
    workers._stop([never_started])  # the clean-up after such a stop: no error


def test_an_interrupt_lost_in_a_c_callback_is_not_reported_but_other_unraisable_errors_still_are():
    # numba's kernel loading calls back into Python through ctypes; a stop's KeyboardInterrupt raised
    # there cannot propagate, and Python would print it as "Exception ignored ... Traceback".
    import ctypes

    from sim import workers
    from sim.cli import terminate_as_interrupt

    saved = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.unraisablehook
    reported = []
    callback_type = ctypes.CFUNCTYPE(None)

    def interrupted_inside():
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)

    def failing_inside():
        raise ValueError("a real bug")

    try:
        sys.unraisablehook = lambda unraisable: reported.append(unraisable.exc_type)
        terminate_as_interrupt()  # its hook hands what it does not silence to the one before
        callback_type(interrupted_inside)()
        assert reported == [] and workers._stop_requested
        callback_type(failing_inside)()
        assert reported == [ValueError]
    finally:
        workers.request_stop(False)
        signal.signal(signal.SIGTERM, saved[0])
        signal.signal(signal.SIGINT, saved[1])
        sys.unraisablehook = saved[2]


# -- Dask ------------------------------------------------------------------------------------------

_free_port = free_port


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two one-thread workers, each its own process, on 127.0.0.1."""
    pytest.importorskip("distributed")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    bindir = Path(sys.executable).parent
    scheduler_bin = shutil.which("dask", path=str(bindir)) or shutil.which("dask")
    if scheduler_bin is None:
        pytest.skip("the dask command is not installed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("dask")
    procs = [
        subprocess.Popen(
            [
                scheduler_bin,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
                "--no-show",
            ],
            env=env,
            cwd=log,
            stdout=open(log / "scheduler.log", "w"),
            stderr=subprocess.STDOUT,
        )
    ]
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [
                    scheduler_bin,
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    ":0",
                    "--name",
                    f"w{i}",
                ],
                env=env,
                cwd=log,
                stdout=open(log / f"worker{i}.log", "w"),
                stderr=subprocess.STDOUT,
            )
        )
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=120)
                break
            except (OSError, TimeoutError):
                assert time.monotonic() < deadline, (log / "scheduler.log").read_text()
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_dask_cluster_writes_the_bytes_of_a_local_run(mix, tmp_path, dask_cluster, fmt):
    local = _run(mix, tmp_path / "local", fmt, 1)
    cluster = generate(mix, **SMALL, protocol="legacy", fmt=fmt, out=tmp_path / "dask", scheduler=dask_cluster)
    assert (cluster.beacons, _digest(tmp_path / "dask")) == local
    assert sorted(os.listdir(tmp_path)) == ["dask", "local"]


@pytest.mark.parametrize("partition", [None, "day"])
def test_an_output_uri_gets_the_bytes_of_a_path(mix, tmp_path, partition):
    # file:// goes through pyarrow's filesystems, as s3:// does.
    local = _run(mix, tmp_path / "path", "csv", 2, partition=partition)
    by_uri = generate(
        mix, **SMALL, protocol="legacy", fmt="csv", out=f"file://{tmp_path / 'uri'}", workers=2, partition=partition
    )
    assert (by_uri.beacons, _digest(tmp_path / "uri")) == local


# -- the run's timeline (bench_workers) -----------------------------------------------------------


def _event(pid, what, part, cpu, start):
    return {"pid": pid, "what": what, "part": part, "start": start, "end": start + 0.001, "cpu": cpu, "faults": 0}


def test_the_critical_path_chains_a_parts_merge_after_the_carry_it_takes():
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_workers import critical_path

    events = [
        _event(1, "start-up", None, 1.0, 0),
        _event(1, "plan", None, 1.0, 1),
        _event(2, "simulate", 0, 2.0, 2),
        _event(3, "simulate", 1, 1.0, 2.5),
        _event(2, "carry out", 0, 0.1, 3),
        _event(3, "carry in", 1, 0.0, 2.9),  # logged first, waits
        _event(3, "merge", 1, 0.5, 3.1),
        _event(2, "write", 0, 1.0, 3.2),
        _event(3, "write", 1, 1.0, 3.3),
        _event(1, "parts", None, 0.05, 1.5),
        _event(1, "stitch", None, 0.2, 4),
    ]
    path = critical_path(events, total_cpu=8.0)
    # 2 before the parts, part 0's carry out at 4.1, part 1's merge and write after it: 5.6, stitch: 5.8,
    # and the CPU no step recorded (8.0 - 7.8 in steps - 0.05 of the parent waiting) at the end.
    assert path["before parts"] == pytest.approx(2.0)
    assert path["critical"] == pytest.approx(5.8 + 0.15)
    assert path["per_process"] == pytest.approx({1: 2.2, 2: 3.1, 3: 2.5})


def test_the_critical_path_joins_a_piece_after_its_part_wrote_it_and_in_order():
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_workers import critical_path

    events = [
        _event(1, "start-up", None, 1.0, 0),
        _event(2, "simulate", 0, 3.0, 1),
        _event(3, "simulate", 1, 1.0, 1),
        _event(3, "carry in", 1, 0.0, 1.1),
        _event(3, "write", 1, 1.0, 1.2),  # part 1's piece is in first: its join waits for piece 0
        _event(2, "carry out", 0, 0.0, 3),
        _event(2, "write", 0, 1.0, 4),
        _event(1, "join", 0, 0.5, 5),
        _event(1, "join", 1, 0.5, 5.5),
        {**_event(1, "parts", None, 1.1, 0.5), "end": 5.9},
        _event(1, "stitch", None, 0.1, 6),
    ]
    path = critical_path(events, total_cpu=8.2)
    # Piece 0 written at 1 + 3 + 1 = 5, joined at 5.5, piece 1 joined after it at 6.0, stitch 6.1; the
    # joins ran while the parent waited for the parts: not counted again in its waiting.
    assert path["critical"] == pytest.approx(6.1 + 0.0)
    assert path["steps"]["join"] == pytest.approx(1.0)
    assert path["steps"]["parent while parts run"] == pytest.approx(0.1)


def test_every_process_of_a_run_writes_its_steps_to_the_timeline(mix, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYER_SIM_TIMELINE", str(tmp_path / "timeline.jsonl"))
    _run(mix, tmp_path / "out.parquet", "parquet", 2)
    events = [json.loads(line) for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    parent = {e["what"] for e in events if e["pid"] == os.getpid()}
    assert {"start-up", "plan", "warm-up", "start workers", "parts", "stitch", "publish"} <= parent
    workers = {e["pid"] for e in events if e["what"] == "simulate"}
    assert len(workers) == 2 and os.getpid() not in workers
    parts = {e["part"] for e in events if e["what"] == "write"}
    assert parts == set(
        range(
            n_parts(
                RunSpec(
                    mix,
                    3,
                    4000,
                    None,
                    "legacy",
                    "parquet",
                    str(tmp_path),
                    chunk_size=1,
                    part_chunks=1,
                    partition_sessions=1000,
                )
            )
        )
    )
    assert {e["part"] for e in events if e["what"] == "carry in"} == parts - {0}
    # The parent joins each piece into the output file as it comes in, in order.
    joins = [e for e in events if e["what"] == "join"]
    assert [e["part"] for e in joins] == sorted(parts) and {e["pid"] for e in joins} == {os.getpid()}
    assert all(e["end"] >= e["start"] and e["cpu"] >= 0 for e in events)
    # Each line carries its process's peak RSS so far: never falling within a process.
    for pid in {e["pid"] for e in events}:
        peaks = [e["rss"] for e in events if e["pid"] == pid]
        assert peaks[0] > 0 and peaks == sorted(peaks)


def test_the_fair_share_ceiling_of_two_workers_beside_other_busy_processes():
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_workers import fair_share_ceiling

    assert fair_share_ceiling(0.0, 2) == pytest.approx(2.0)
    # One busy process on 2 cores: one worker still gets a core, two get 4/3 of one.
    assert fair_share_ceiling(1.0, 2) == pytest.approx(4 / 3)
    assert fair_share_ceiling(0.5, 2) == pytest.approx(1.6)
    assert fair_share_ceiling(1.0, 8) == pytest.approx(2.0)
