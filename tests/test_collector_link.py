"""The worker's side of the store link: rows of one loop turn go as one batch, each answered once
the writer answers it, and a writer that goes away fails the waiting rows instead of hanging them."""

from __future__ import annotations

import asyncio
import socket
import threading

import orjson

from sim.collector.link import StoreLink, recv_frame, send_frame


def _writer(path: str, batches: list, answer_first: int) -> threading.Thread:
    """A stand-in store writer: answers `answer_first` batches ok, then closes the connection."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            for _ in range(answer_first):
                kind, payload = recv_frame(conn)
                batches.append((kind, orjson.loads(payload)))
                send_frame(conn, b"A", orjson.dumps({"ok": True}))
            recv_frame(conn)  # the next batch arrives and is never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_rows_of_one_loop_turn_go_as_one_batch_and_a_lost_writer_fails_the_waiting_rows(tmp_path):
    path = str(tmp_path / "w.sock")
    batches: list = []
    writer = _writer(path, batches, answer_first=2)
    loop = asyncio.new_event_loop()
    try:
        link = StoreLink(path, loop)

        async def scenario():
            first = await asyncio.gather(*[link.submit({"n": i}) for i in range(3)])
            second = await asyncio.gather(*[link.submit({"n": i}) for i in range(3, 5)])
            lost = await asyncio.wait_for(asyncio.gather(*[link.submit({"n": 9}), link.submit({"n": 10})]), 10)
            after = await asyncio.wait_for(link.submit({"n": 11}), 10)
            return first, second, lost, after

        first, second, lost, after = loop.run_until_complete(scenario())
        loop.run_until_complete(link.close(timeout=1))
    finally:
        loop.close()
    writer.join(5)
    assert batches == [(b"B", [{"n": 0}, {"n": 1}, {"n": 2}]), (b"B", [{"n": 3}, {"n": 4}])]
    assert all(r == {"ok": True} for r in first + second)
    assert all(r["ok"] is False and "unreachable" in r["error"] for r in lost + [after])
