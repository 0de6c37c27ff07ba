"""The lean live send path: closed-model arrivals, column-wise rendering of due beacons,
and the send loop's figures."""

from __future__ import annotations

import numpy as np
import pytest

from sim.load.schedule import ClosedArrivals


def test_closed_model_steady_start_rate_is_viewers_over_session_length_plus_idle_gap():
    arrivals = ClosedArrivals(1000, np.random.default_rng(10), start=0.0, idle_gap=4.0, ramp_up=5.0)
    starts = np.concatenate([arrivals.assign(np.full(4096, 1.0)) for _ in range(6)])
    per_5s = np.histogram(starts, bins=np.arange(10.0, 80.0, 5.0))[0]
    # 1000 / (1 + 4) = 200 sessions/s, 1000 per 5 s bin
    assert (abs(per_5s / 1000.0 - 1) < 0.15).all()


def test_closed_model_one_viewers_idle_gap_never_holds_back_another_viewers_session():
    arrivals = ClosedArrivals(1000, np.random.default_rng(11), start=0.0, idle_gap=5.0, ramp_up=10.0)
    starts = arrivals.assign(np.full(3000, 0.5))
    # without a rate cap no two sessions are pushed to start at the same instant
    assert len(np.unique(starts)) == len(starts)
    assert (np.diff(starts) >= 0).all()


# --- legacy requests encoded column-wise, ahead of their send times -------------------------


@pytest.fixture(
    scope="module",
    params=[(f, k) for f in ("kdp", "mwembed", "v7") for k in (False, True)],
    ids=lambda p: f"{p[0]}-{'with' if p[1] else 'without'}-kava",
)
def legacy_chunk(request):
    from legacy_timelines import generated
    from sim.protocols.legacy.policy import beacons

    flavor, with_kava = request.param
    return beacons(generated(flavor, sessions=300), with_kava=with_kava)


def one_by_one(chunk, rows):
    from sim.protocols.legacy.codec import beacon_at, encode, ledger_key

    beacons = [beacon_at(chunk, int(i)) for i in rows]
    return [encode(b) for b in beacons], [ledger_key(b) for b in beacons]


def test_column_wise_legacy_requests_and_ledger_keys_are_byte_for_byte_those_of_encode(legacy_chunk):
    from sim.protocols.legacy.codec import encode_rows

    rows = np.arange(len(legacy_chunk))
    assert encode_rows(legacy_chunk, rows) == one_by_one(legacy_chunk, rows)


def test_column_wise_encoding_of_scattered_rows_matches_row_by_row(legacy_chunk):
    from sim.protocols.legacy.codec import encode_rows

    rows = np.random.default_rng(12).choice(len(legacy_chunk), 200, replace=False)
    assert encode_rows(legacy_chunk, rows) == one_by_one(legacy_chunk, rows)


def test_an_mwembed_request_too_long_for_a_get_still_goes_as_a_form_post(monkeypatch):
    from legacy_timelines import generated
    from sim.protocols.legacy import codec
    from sim.protocols.legacy.policy import beacons

    chunk = beacons(generated("mwembed", sessions=40))
    rows = np.arange(len(chunk))
    monkeypatch.setattr(codec, "MWEMBED_MAX_GET", 700)  # about half the rows are now too long
    requests, keys = codec.encode_rows(chunk, rows)
    assert {r.method for r in requests} == {"GET", "POST"}
    assert (requests, keys) == one_by_one(chunk, rows)


@pytest.fixture(scope="module")
def vod():
    from pathlib import Path

    from sim.scenario.loader import load

    return load(Path(__file__).resolve().parents[1] / "scenarios" / "typical-vod.yaml")


def test_a_queue_hands_out_the_requests_encode_would_build_across_blocks_and_compactions(vod, monkeypatch):
    from sim.load.schedule import BeaconQueue, OpenArrivals, Schedule, Timebase, protocol_adapters, session_stream

    monkeypatch.setattr(BeaconQueue, "COMPACT_MIN", 16)
    monkeypatch.setattr(BeaconQueue, "BLOCK", 7)
    t0 = 1_000_000.0
    schedule = Schedule(
        session_stream(vod, 3, chunk_size=64),
        OpenArrivals(50.0, np.random.default_rng(1), t0),
        Timebase(t0, 20.0),
        protocol_adapters("legacy"),
    )
    schedule.refill(t0 + 30.0, budget=3)
    from sim.protocols.browser import sent_headers

    expected = {}
    for q in schedule.queues:
        requests, keys = one_by_one(q.chunk, range(len(q)))
        for i, r in enumerate(requests):  # as the viewer's browser sends it
            r.headers = sent_headers(r.headers, r.method, int(q.transport[q.chunk.session[i]]), schedule.target)[0]
        expected.update(zip(keys, requests))
    handed = {}
    now = t0
    while schedule.pending:
        now += 0.5
        for _, queue, row in schedule.pop_due(now):
            out = queue.render(row, late=0.0)
            handed[out.key] = out.request
            assert out.head == "".join(f"{k}: {v}\r\n" for k, v in out.request.headers.items()).encode()
        schedule.compact()
    assert handed == expected


# --- the keep-alive connection of a send greenlet --------------------------------------------


class ScriptedServer:
    """A 127.0.0.1 server that answers each request with the next scripted reply; a reply
    ending in CLOSE closes the connection after it is sent."""

    CLOSE = b"<close>"

    def __init__(self, replies: list[bytes]):
        import socket
        import threading

        self.replies, self.requests, self.connections = list(replies), [], 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.replies:
            conn, _ = self.listener.accept()
            self.connections += 1
            with conn:
                buf = b""
                while self.replies:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.requests.append(head)
                    reply = self.replies.pop(0)
                    conn.sendall(reply.removesuffix(self.CLOSE))
                    if reply.endswith(self.CLOSE):
                        break

    def close(self):
        self.listener.close()


REQUEST = b"GET /api_v3/index.php?service=stats HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def scripted():
    servers = []

    def make(*replies: bytes) -> ScriptedServer:
        servers.append(ScriptedServer(list(replies)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_answers_by_length_by_chunks_and_to_the_end_of_the_connection_are_read_whole(scripted):
    from sim.load.sender import Connection

    server = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end" + ScriptedServer.CLOSE,
    )
    conn = Connection(server.url, timeout=5)
    assert [conn.exchange(REQUEST) for _ in range(3)] == [(200, b"hello"), (503, b"abcde"), (200, b"to the end")]
    assert server.connections == 1 and conn.sock is None  # the last answer closed it


def test_a_connection_the_target_closed_while_idle_is_reopened_and_the_request_sent_again(scripted):
    from sim.load.sender import Connection

    server = scripted(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + ScriptedServer.CLOSE,
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain",
    )
    conn = Connection(server.url, timeout=5)
    assert conn.exchange(REQUEST) == (200, b"ok")
    assert conn.exchange(REQUEST) == (200, b"again")
    assert server.connections == 2 and len(server.requests) == 2


def test_an_answer_cut_off_midway_is_a_connection_reset_and_garbage_a_bad_response(scripted):
    from sim.load.sender import Connection, failure_kind

    cut = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this" + ScriptedServer.CLOSE)
    garbage = scripted(b"SSH-2.0-OpenSSH\r\n\r\n")
    kinds = []
    for server in (cut, garbage):
        with pytest.raises(Exception) as caught:
            Connection(server.url, timeout=5).exchange(REQUEST)
        kinds.append(failure_kind(caught.value))
    assert kinds == ["connection reset", "bad response"]


def test_a_target_that_never_answers_is_a_timeout():
    import socket

    from sim.load.sender import Connection, failure_kind

    with socket.create_server(("127.0.0.1", 0)) as silent:  # connections queue, nobody reads
        with pytest.raises(Exception) as caught:
            Connection(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3).exchange(REQUEST)
    assert failure_kind(caught.value) == "timeout"


def test_a_limited_pop_hands_out_the_earliest_rows_of_all_queues_and_the_rest_later(vod):
    from sim.load.schedule import OpenArrivals, Schedule, Timebase, protocol_adapters, session_stream

    t0 = 1_000_000.0
    schedule = Schedule(
        session_stream(vod, 4, chunk_size=64),
        OpenArrivals(50.0, np.random.default_rng(2), t0),
        Timebase(t0, 20.0),
        protocol_adapters("legacy"),
    )
    schedule.refill(t0 + 30.0, budget=4)
    assert len(schedule.queues) >= 3
    total = schedule.pending
    batches = []
    while batch := schedule.pop_due(t0 + 1e6, limit=50):
        batches.append(batch)
    rows = [(id(q), row) for batch in batches for _, q, row in batch]
    times = [t for batch in batches for t, _, _ in batch]
    assert all(len(b) == 50 for b in batches[:-1])
    assert len(rows) == len(set(rows)) == total
    assert times == sorted(times)


# --- KAVA requests prepared ahead of their send times, but for sessionStartTime --------------


@pytest.fixture(scope="module", params=["post", "get"])
def kava_chunk(request, vod):
    import dataclasses

    from sim.player.model import generate_sessions
    from sim.protocols.beacons import Strings
    from sim.protocols.kava.policy import beacons

    chunk = beacons(next(generate_sessions(vod, 6, sessions=150, days=1, chunk_size=150)))
    columns = dict(chunk.columns)
    columns["encoding"] = Strings(np.zeros(len(chunk), np.int32), np.array([request.param], object))
    return dataclasses.replace(chunk, columns=columns)


def kava_one_by_one(chunk, i: int, session_start: int | None):
    """(request, ledger key, whether the player holds a sessionStartTime) through beacon_at
    and encode, with `session_start` where the player holds one."""
    from sim.protocols.kava.codec import beacon_at, encode, encoding_at, ledger_key

    beacon = beacon_at(chunk, i)
    holds = beacon.fields.get("sessionStartTime") is not None
    if holds and session_start is not None:
        beacon.fields["sessionStartTime"] = session_start
    else:
        beacon.fields.pop("sessionStartTime", None)
    return encode(beacon, encoding_at(chunk, i)), ledger_key(beacon), holds


def test_a_prepared_kava_request_is_encodes_request_without_or_with_the_session_start(kava_chunk):
    from sim.protocols.kava.codec import prepare_rows

    prepared = prepare_rows(kava_chunk, np.arange(len(kava_chunk)))
    holding = 0
    for i, p in enumerate(prepared):
        for start in (None, 1_764_000_000):
            request, key, holds = kava_one_by_one(kava_chunk, i, start)
            assert (p.request(start if holds else None), p.key, p.holds_start) == (request, key, holds)
        holding += holds
    assert 0 < holding < len(prepared)  # both kinds of rows were compared


def test_an_https_target_is_reached_over_verified_tls(tmp_path, monkeypatch):
    import shutil
    import socket
    import ssl
    import subprocess
    import threading

    from sim.load.sender import Connection

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with server_side.wrap_socket(conn, server_side=True) as tls:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")

    threading.Thread(target=serve, daemon=True).start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our certificate only
    try:
        assert Connection(f"https://127.0.0.1:{listener.getsockname()[1]}", timeout=5).exchange(REQUEST) == (
            200,
            b"secure",
        )
    finally:
        listener.close()


# --- the workers' ledgers merged into one -------------------------------------------------------


def _ledger_part(path, stamps):
    import orjson

    path.write_bytes(b"".join(orjson.dumps({"ts": t, "key": f"{path.stem}-{t}"}) + b"\n" for t in stamps))
    return path


def test_worker_ledgers_merge_into_one_in_send_order_and_the_parts_go(tmp_path):
    import orjson

    from sim.load.sender import merge_ledgers

    parts = [_ledger_part(tmp_path / "l.w0.jsonl", [1.0, 3.0, 5.0]), _ledger_part(tmp_path / "l.w1.jsonl", [2.0, 4.0])]
    assert merge_ledgers(parts, tmp_path / "l.jsonl", expected_lines=5) == 5
    lines = [orjson.loads(line) for line in (tmp_path / "l.jsonl").read_bytes().splitlines()]
    assert [line["ts"] for line in lines] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.jsonl"]


def test_ledgers_that_are_not_what_the_workers_wrote_are_left_as_they_are(tmp_path):
    from sim.load.sender import merge_ledgers

    parts = [_ledger_part(tmp_path / "l.w0.jsonl", [1.0, 3.0]), _ledger_part(tmp_path / "l.w1.jsonl", [2.0])]
    with pytest.raises(ValueError, match="3 lines, the workers wrote 4"):
        merge_ledgers(parts, tmp_path / "l.jsonl", expected_lines=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.w0.jsonl", "l.w1.jsonl"]
