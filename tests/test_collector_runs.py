"""Load runs kept apart in one store: each run names itself (ledger lines, X-Player-Sim-Run header), so
two runs with the same seed reconcile cleanly each, a retried send is not a duplicate, and
`player-sim reconcile` works while the collector still holds the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import requests

from helpers import ROOT
from helpers.load import LOCUSTFILE
from sim.cli.demo import locust_command, start_collector, stop_process

pytestmark = pytest.mark.usefixtures("compiled_policies")


def run_load(tmp_path: Path, host: str, ledger: Path, *extra: str, seconds: float = 4) -> dict:
    summary = tmp_path / "summary.json"
    summary.unlink(missing_ok=True)
    cmd = locust_command(
        LOCUSTFILE,
        host,
        ledger,
        summary,
        run_time=seconds,
        session_rate=15,
        time_scale=20,
        protocol="legacy",
        users=1,
        extra=["--seed", "7", *extra],
    )
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
    assert summary.exists(), done.stderr.decode()[-3000:]
    return orjson.loads(summary.read_bytes())


def reconcile_cli(ledger: Path, store: Path, *extra: str) -> tuple[int, dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "reconcile",
            str(ledger),
            "--store",
            str(store),
            "--json",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert done.stdout, done.stderr.decode()[-2000:]
    return done.returncode, orjson.loads(done.stdout)


def test_two_runs_with_one_seed_reconcile_apart_and_while_the_collector_runs(tmp_path):
    store = tmp_path / "collector.duckdb"
    proc, url = start_collector(store, tmp_path / "collector.log")
    try:
        first = run_load(tmp_path, url, tmp_path / "first.jsonl")
        # the README tour: a second run with the same seed writes the same ledger path again
        run_load(tmp_path, url, tmp_path / "ledger.jsonl")
        again = run_load(tmp_path, url, tmp_path / "ledger.jsonl")
        lines = [orjson.loads(line) for line in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
        assert (
            len({line["run"] for line in lines}) == 1
            and lines[0]["run"] != orjson.loads((tmp_path / "first.jsonl").read_bytes().splitlines()[0])["run"]
        )
        # the collector holds the store's lock: reconcile reads it through the collector
        code, result = reconcile_cli(tmp_path / "ledger.jsonl", store)
        assert code == 0, result["totals"]
        assert result["totals"]["sent"] == again["sent"] > 50
        assert result["totals"]["received"] == again["sent"] and result["totals"]["unexpected"] == 0
        code, first_result = reconcile_cli(tmp_path / "first.jsonl", store)
        assert code == 0 and first_result["totals"]["received"] == first["sent"]
        # every row of the store: the other runs' rows come in as duplicates or unexpected ones
        code, mixed = reconcile_cli(tmp_path / "ledger.jsonl", store, "--run", "all")
        assert mixed["totals"]["duplicated"] + mixed["totals"]["unexpected"] >= first["sent"], mixed["totals"]
        stats = requests.get(f"{url}/stats.json", timeout=10).json()
        assert stats["run"]["id"] == lines[0]["run"]
        assert stats["run"]["sent"] == stats["run"]["received"] == again["sent"] and stats["run"]["lost"] == 0
    finally:
        assert stop_process(proc) == 0
    code, after = reconcile_cli(tmp_path / "ledger.jsonl", store)  # and from the file once stopped
    assert code == 0 and after["totals"] == result["totals"]


def test_a_retried_send_is_counted_retried_not_duplicated(tmp_path):
    store = tmp_path / "collector.duckdb"
    proc, url = start_collector(store, tmp_path / "collector.log", ["--fail-rate", "0.3"])
    try:
        summary = run_load(tmp_path, url, tmp_path / "ledger.jsonl", "--retries", "3")
    finally:
        stop_process(proc)
    lines = [orjson.loads(line) for line in (tmp_path / "ledger.jsonl").read_bytes().splitlines()]
    assert any(line.get("attempts", 1) > 1 for line in lines)
    code, result = reconcile_cli(tmp_path / "ledger.jsonl", store)
    totals = result["totals"]
    assert totals["retried"] > 0 and totals["duplicated"] == 0 and totals["lost"] == 0, totals
    assert totals["sent"] == summary["sent"]
