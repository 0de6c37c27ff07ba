"""A collector killed with SIGKILL mid-stream has stored every beacon it answered 200, and its worker
processes die with it (none keeps the port or answers)."""

from __future__ import annotations

import signal
import threading
import time

import psutil
import pytest
import requests

from helpers.collector import running_collector


def _stream(url: str, worker: int, stop: threading.Event, acknowledged: list[str], answered: list[int]) -> None:
    with requests.Session() as http:
        i = 0
        while not stop.is_set():
            key = f"k{worker}-{i}"
            try:
                answer = http.get(
                    f"{url}/api_v3/index.php?service=stats&action=collect&format=1"
                    f"&event:eventType=3&event:partnerId=1&event:entryId=0_x&event:sessionId={key}",
                    timeout=5,
                )
            except requests.RequestException:
                return  # the collector is gone
            answered.append(answer.status_code)
            if answer.status_code == 200 and answer.text == "true":
                acknowledged.append(key)
            i += 1


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_mid_stream_loses_no_acknowledged_beacon_and_leaves_no_worker(tmp_path, workers):
    store = tmp_path / "events.duckdb"
    acknowledged: list[str] = []
    answered: list[int] = []
    stop = threading.Event()
    with running_collector(store, "--workers", str(workers)) as collector:
        main = psutil.Process(collector.proc.pid)
        threads = [
            threading.Thread(target=_stream, args=(collector.url, w, stop, acknowledged, answered)) for w in range(6)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = main.children(recursive=True)
        assert len([c for c in children if "sim.collector.worker" in c.cmdline()]) == workers
        collector.proc.send_signal(signal.SIGKILL)
        collector.proc.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        stop.set()
        for t in threads:
            t.join(10)
        assert alive == [], f"worker processes outlived the killed collector: {alive}"
    assert len(acknowledged) >= 600
    with running_collector(store) as again:  # restarts on the same store
        assert again.stop() == 0
        stored = {r["sessionId"] for r in again.rows("SELECT sessionId FROM events WHERE accepted")}
    lost = set(acknowledged) - stored
    print(
        f"workers={workers}: {len(acknowledged)} answered 200, {len(set(acknowledged) & stored)} of them stored, "
        f"{len(lost)} lost; {len(stored)} rows stored"
    )
    assert lost == set()
