"""The collector under connections that hold on (thousands idle, slow bodies), a truncated store,
and its /metrics."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import time
from urllib.parse import urlsplit

import duckdb
import requests

from helpers.collector import ROOT, collector_command, running_collector

BEACON = (
    "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=3&event:partnerId=1"
    "&event:entryId=0_x&event:sessionId="
)


def _raise_open_files(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _ended(s: socket.socket) -> bool:
    """The collector answers or closes the connection (within 15 s) rather than holding it open."""
    s.settimeout(15)
    try:
        s.recv(1024)
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_thousands_of_idle_and_slow_connections_do_not_lock_out_good_beacons(tmp_path):
    limit = _raise_open_files(8192)
    idle_count = min(3000, limit - 2000)
    slow_count = min(1000, limit - idle_count - 1000)
    with running_collector(tmp_path / "s.duckdb", "--idle-timeout-s", "3", "--body-timeout-s", "3") as collector:
        where = urlsplit(collector.url)
        address = (where.hostname, where.port)
        held = []
        try:
            for _ in range(idle_count):  # connected, never a byte
                held.append(socket.create_connection(address, timeout=10))
            for _ in range(slow_count):  # a POST whose body never comes whole
                s = socket.create_connection(address, timeout=10)
                s.sendall(
                    b"POST /api_v3/index.php?service=stats&action=collect HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nevent:e"
                )
                held.append(s)
            for _ in range(500):  # a request head that never ends
                s = socket.create_connection(address, timeout=10)
                s.sendall(b"GET /api_v3/index.php HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            started = time.monotonic()
            answers = [requests.get(f"{collector.url}{BEACON}good-{i}", timeout=10) for i in range(9)]
            took = time.monotonic() - started
            assert [a.status_code for a in answers] == [200] * 9 and took < 8, took
            # slow bodies are answered 408, slow heads and connections that never sent a byte closed
            slow_body, slow_head = held[idle_count], held[-1]
            assert _ended(slow_head)
            assert _ended(held[0]) and _ended(held[idle_count - 1])
            kept = socket.create_connection(address, timeout=10)  # a keep-alive connection left idle
            held.append(kept)
            kept.sendall(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n")
            assert kept.recv(1024).startswith(b"HTTP/1.1 204")
            assert _ended(kept)
            slow_body.settimeout(15)
            assert slow_body.recv(1024).startswith(b"HTTP/1.1 408")
        finally:
            for s in held:
                s.close()
        assert collector.stop() == 0
        stored = collector.rows("SELECT sessionId FROM events WHERE accepted")
    assert {r["sessionId"] for r in stored} >= {f"good-{i}" for i in range(9)}


def test_a_truncated_store_is_refused_at_start_with_a_clear_message(tmp_path):
    store = tmp_path / "events.duckdb"
    with running_collector(store) as collector:
        assert collector.stop() == 0
    con = duckdb.connect(str(store))
    con.execute(
        "INSERT INTO events (ts, path, sessionId) SELECT range, 'x' || range, md5(range::varchar) FROM range(400000)"
    )
    con.execute("CHECKPOINT")
    con.close()
    os.truncate(store, os.path.getsize(store) // 2)
    done = subprocess.run(
        collector_command("--port", "0", "--store", str(store)), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "truncated" in done.stderr and str(store) in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_metrics_count_requests_by_protocol_event_type_and_outcome(tmp_path):
    with running_collector(tmp_path / "s.duckdb") as collector:
        for i in range(3):
            assert requests.get(f"{collector.url}{BEACON}m{i}", timeout=10).status_code == 200
        requests.get(f"{collector.url}/api_v3/index.php?service=stats&action=collect&event:eventType=99", timeout=10)
        requests.get(
            f"{collector.url}/api_v3/index.php?service=analytics&action=trackEvent&eventType=3"
            f"&partnerId=1&entryId=0_x&sessionId=k",
            timeout=10,
        )
        assert requests.get(f"{collector.url}/favicon.ico", timeout=10).status_code in (200, 204)
        assert requests.get(f"{collector.url}/robots.txt", timeout=10).status_code == 404
        deadline = time.monotonic() + 60
        while True:  # the store rows gauge follows the inserter (every 200 ms, later on a busy machine)
            scrape = requests.get(f"{collector.url}/metrics", timeout=10)
            if "player_sim_collector_store_rows 5" in scrape.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
        text = scrape.text
        assert collector.stop() == 0
        rows = collector.rows("SELECT count(*) AS n FROM events")[0]["n"]
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values['player_sim_collector_requests_total{event_type="3",outcome="accepted",protocol="legacy"}'] == 3
    assert values['player_sim_collector_requests_total{event_type="other",outcome="rejected",protocol="legacy"}'] == 1
    assert values['player_sim_collector_requests_total{event_type="3",outcome="accepted",protocol="kava"}'] == 1
    assert values['player_sim_collector_request_seconds_count{route="beacon"}'] == 5
    assert values["player_sim_collector_batch_commit_seconds_count"] >= 1
    assert values["player_sim_collector_store_rows"] == rows == 5  # favicon and robots.txt not stored


def test_a_connection_that_never_sends_a_byte_is_closed_after_the_idle_timeout(tmp_path):
    with running_collector(tmp_path / "s.duckdb", "--idle-timeout-s", "1", "--workers", "2") as collector:
        where = urlsplit(collector.url)
        address = (where.hostname, where.port)
        silent = [socket.create_connection(address, timeout=10) for _ in range(20)]  # both workers get some
        opened = time.monotonic()
        try:
            for i, s in enumerate(silent):
                s.settimeout(max(0.1, 5 - (time.monotonic() - opened)))
                try:
                    assert s.recv(1024) == b"", "a silent connection got an answer"
                except ConnectionResetError:
                    pass
                except TimeoutError:
                    raise AssertionError(
                        f"silent connection {i} still open {time.monotonic() - opened:.1f} s "
                        "after it was opened (--idle-timeout-s 1)"
                    ) from None
            took = time.monotonic() - opened
            assert 0.9 <= took < 5, took  # not before the timeout, and within it plus a sweep or two
            # meanwhile and after, requests are answered as ever
            assert requests.get(f"{collector.url}{BEACON}after-idle", timeout=10).status_code == 200
        finally:
            for s in silent:
                s.close()
        assert collector.stop() == 0
        stored = collector.rows("SELECT sessionId FROM events WHERE accepted")
    assert {r["sessionId"] for r in stored} == {"after-idle"}


def test_every_worker_gets_a_share_of_new_connections(tmp_path):
    # workers accepting from one shared queue let the first to wake take a whole burst: all of wrk's 128
    # connections went to one of two workers, and --workers 2 served no more than --workers 1
    import psutil

    with running_collector(tmp_path / "s.duckdb", "--workers", "2") as collector:
        where = urlsplit(collector.url)
        workers = [
            child
            for child in psutil.Process(collector.proc.pid).children(recursive=True)
            if "sim.collector.worker" in child.cmdline()
        ]
        # the connections arrive while one worker is busy (here: stopped), as under load; the other must not
        # take them all
        workers[0].suspend()
        try:
            held = [socket.create_connection((where.hostname, where.port), timeout=10) for _ in range(100)]
            time.sleep(0.5)  # time for the other worker to take all it is given
        finally:
            workers[0].resume()
        try:
            for s in held:  # every connection answered: accepted by a worker, not waiting in a queue
                s.sendall(f"GET {BEACON}spread HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                assert s.recv(1024).startswith(b"HTTP/1.1 200")
            served = sorted(
                sum(
                    1 for c in w.net_connections(kind="tcp") if c.status == "ESTABLISHED" and c.laddr.port == where.port
                )
                for w in workers
            )
        finally:
            for s in held:
                s.close()
        assert collector.stop() == 0
    assert len(served) == 2 and sum(served) == 100 and served[0] >= 25, served
