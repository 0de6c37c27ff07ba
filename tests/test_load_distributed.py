"""A distributed live-load run on loopback: a Locust master and two workers started as separate
commands (as on separate machines) against a real collector. The run ends by itself when its
shape is over, the workers' ledgers become the one ledger the master was given, no session is
sent by two workers, and the reconciliation finds nothing lost or duplicated."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from helpers import ROOT
from helpers.load import locust_cli
from sim.cli.demo import free_port, start_collector, stop_process

SHAPE = """stages:
  - ramp:   {to: 30, over: 2s}
  - steady: {for: 6s}
  - ramp:   {to: 0, over: 2s}
graceful_stop: 1s
"""
ASKED = 30 + 180 + 30  # sessions the shape asks for, over both workers


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory, compiled_policies):
    """Master and two workers against a collector; returns the folder, the master's exit status
    and the collector's store once everything has exited."""
    tmp = tmp_path_factory.mktemp("distributed")
    (tmp / "shape.yaml").write_text(SHAPE)
    store = tmp / "collector.duckdb"
    collector, url = start_collector(store, tmp / "collector.log")
    port = free_port()
    master_cmd = [
        *locust_cli(),
        "--master",
        "--headless",
        "--only-summary",
        "--expect-workers",
        "2",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "-u",
        "2",
        "-r",
        "2",
        "--host",
        url,
        "--protocol",
        "kava",
        "--shape",
        str(tmp / "shape.yaml"),
        "--time-scale",
        "20",
        "--ledger",
        str(tmp / "ledger.jsonl"),
        "--summary-json",
        str(tmp / "summary.json"),
    ]
    worker_cmd = [*locust_cli(), "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    procs = []
    try:
        with open(tmp / "master.log", "wb") as log:
            master = subprocess.Popen(master_cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        procs.append(master)
        for i in range(2):
            with open(tmp / f"worker{i}.log", "wb") as log:
                procs.append(subprocess.Popen(worker_cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        code = master.wait(timeout=120)  # no -t: the shape ends the run
        worker_codes = [p.wait(timeout=30) for p in procs[1:]]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        stop_process(collector)
    return tmp, code, worker_codes, store


def ledger_beacons(path: Path) -> list[tuple[str, str]]:
    """(KAVA sessionId, eventIndex) of every send: a ledger key starts `guid:guid:eventIndex`."""
    return [
        tuple(key.rsplit(":", 1))
        for key in (":".join(orjson.loads(line)["key"].split(":")[:3]) for line in path.read_bytes().splitlines())
    ]


def test_the_master_ends_the_run_when_every_worker_s_shape_is_over(distributed_run):
    tmp, code, worker_codes, _ = distributed_run
    assert code == 0, (tmp / "master.log").read_text()[-3000:]
    assert worker_codes == [0, 0]
    summary = orjson.loads((tmp / "summary.json").read_bytes())
    assert summary["workers"] == 2
    # Each worker ran its whole shape (10 s), however late it started; the last to start ended
    # after its 1 s grace and the messages that end a run (worker -> master -> workers: up to 1.5 s
    # seen on a busy machine, hence 4 s), not at -t or never: the master waited for it, then no
    # longer. The others ran longer by how much earlier they started, seconds on a busy machine.
    each = summary["workers_run_seconds"]
    assert len(each) == 2 and all(s >= 10.0 for s in each), each
    assert each[0] <= 15.0, each


def test_the_workers_ledgers_are_merged_into_the_one_the_master_was_given(distributed_run):
    tmp, *_ = distributed_run
    assert [p.name for p in tmp.glob("ledger*.jsonl")] == ["ledger.jsonl"]
    assert "2 worker ledgers merged into" in (tmp / "master.log").read_text()


def test_no_session_is_sent_by_two_workers(distributed_run):
    tmp, *_ = distributed_run
    beacons = ledger_beacons(tmp / "ledger.jsonl")
    assert len({session for session, _ in beacons}) > 40
    # A session sent by two workers would send each of its beacons twice. Its eventIndex alone can
    # repeat (KAVA starts it again at 1 after a 30 s pause), so the whole ledger key is compared.
    keys = [orjson.loads(line)["key"] for line in (tmp / "ledger.jsonl").read_bytes().splitlines()]
    assert len(keys) == len(set(keys))


def test_the_workers_share_the_shape_s_sessions_between_them(distributed_run):
    tmp, *_ = distributed_run
    summary = orjson.loads((tmp / "summary.json").read_bytes())
    started = summary["sessions"]["started"]
    assert abs(started - ASKED) < 4.5 * ASKED**0.5, started  # not twice the shape


def test_the_distributed_run_loses_and_duplicates_nothing(distributed_run):
    from sim.metrics.reconcile import reconcile

    tmp, _, _, store = distributed_run
    summary = orjson.loads((tmp / "summary.json").read_bytes())
    totals = reconcile(str(tmp / "ledger.jsonl"), str(store)).totals
    assert totals["sent"] == summary["sent"] > 100
    assert totals["lost"] == 0 and totals["duplicated"] == 0 and totals["unexpected"] == 0
