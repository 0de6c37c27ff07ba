"""A store on a full disk: what cannot be stored is answered 503 (never 200), the collector says so on
stderr, stops without a traceback, and once there is room again every beacon it answered 200 is in
the store. The disk is a small tmpfs mounted here (root only; skipped where mount is refused)."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import pytest
import requests

from helpers.collector import running_collector


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "disk"
    where.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("needs root and mount(8) for a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(where, leave: int) -> None:
    """Take the disk's free space but `leave` bytes."""
    free = shutil.disk_usage(where).free
    with open(where / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def test_a_full_disk_answers_503_says_so_and_loses_nothing_answered(small_disk):
    store = small_disk / "events.duckdb"
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()

    def stream(url: str, worker: int) -> None:
        with requests.Session() as http:
            i = 0
            while not stop.is_set():
                key = f"f{worker}-{i}-" + "x" * 200
                try:
                    answer = http.get(
                        f"{url}/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=3"
                        f"&event:partnerId=1&event:entryId=0_x&event:sessionId={key}",
                        timeout=10,
                    )
                except requests.RequestException:
                    return
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    acknowledged.append(key)
                i += 1

    with running_collector(store) as collector:
        _fill(small_disk, 400_000)
        threads = [threading.Thread(target=stream, args=(collector.url, w)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while statuses.count(503) < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(15)
        assert collector.stop() == 0
        complaints = collector.proc.stderr.read()
    assert statuses.count(503) >= 50, f"{len(statuses)} answers, none 503: the disk never filled"
    assert set(statuses) <= {200, 503}
    assert "STORE WRITE FAILED" in complaints and "Traceback" not in complaints, complaints[-3000:]
    # room again: the collector restarts on its store (and journal) and has every answered beacon
    (small_disk / "filler").unlink()
    with running_collector(store) as again:
        assert again.stop() == 0
        stored = {r["sessionId"] for r in again.rows("SELECT sessionId FROM events WHERE accepted")}
    print(
        f"full disk: {statuses.count(200)} answered 200, {statuses.count(503)} answered 503, "
        f"{len(set(acknowledged) - stored)} answered 200 but not stored"
    )
    assert set(acknowledged) <= stored
