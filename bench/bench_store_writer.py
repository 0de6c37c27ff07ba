"""The store writer's CPU a request: a real StoreWriter fed through its Unix socket, without HTTP.

    python bench/bench_store_writer.py [--rows 40000] [--batch 47] [--repeat 3]
    python bench/bench_store_writer.py --baseline-tree /tmp/base    # against another checkout, same run

Rows are what `Collector.handle` makes of bench_collector's URL with the values a playing
session changes varied (sessionId, eventTimestamp, currentPoint), once without and once with
the `X-Player-Sim-Run` header a load run sends (so rows carry run_id). They go to the writer as
a worker sends them: JSON batches of `--batch` rows (bench_collector's wrk -c128 run averages
~47), one batch in flight per connection (`--connections`, one per HTTP worker), each
answered after its journal append and fdatasync.

The writer runs in a process of its own (this tree's code, or --baseline-tree's), so its
process CPU (time.process_time: the socket thread, journal, fsync, and the inserter moving
batches into DuckDB, checkpoints included) is all that is counted; the count ends once every
row is in DuckDB and checkpointed (`close()`), so a store that checkpoints less often is not
credited with work it only put off. Each round measures
every tree in alternating order on a fresh store, and the durability floor: the same batches
appended to a file and fdatasync'ed one by one in this process, nothing else. The medians are
printed with the ratio to that floor, and to the baseline when one is given.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_collector import VARIED_BASE  # noqa: E402

PY_SPY = os.environ.get("PY_SPY", str(Path(sys.executable).with_name("py-spy")))

WRITER = r"""
import os, sys, threading, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[3]
from sim.collector.writer import StoreWriter
writer = StoreWriter(sys.argv[1], sys.argv[2])
writer.start(None)
print("ready", flush=True)
def threads():
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        name = names.get(int(tid), "other")
        name = "main" if name == "MainThread" else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out
sys.stdin.readline()
t0, before = time.process_time(), threads()
sys.stdin.readline()
while not writer.flush():
    time.sleep(0.05)
t1, after = time.process_time(), threads()
rows = writer.store.rows
writer.close()
t2 = time.process_time()
split = ",".join(f"{k}={after[k] - before.get(k, 0.0):.2f}" for k in sorted(after)) + f",close={t2 - t1:.2f}"
t1 = t2
print(f"{t1 - t0} {rows} {split}", flush=True)
"""


def make_rows(n: int, run: bool) -> list[dict]:
    from sim.collector.app import Collector, CollectorConfig

    collector = Collector(CollectorConfig())
    rows = []
    for i in range(n):
        headers = {"host": "127.0.0.1", "user-agent": "wrk"}
        if run:
            headers["x-player-sim-run"] = f"bench-run-{i // 20000}:{i % 4}:{i}:0"
        url = (
            VARIED_BASE + f"&event:sessionId=s{i // 50}&event:eventTimestamp={1700000000000 + i * 997}"
            f"&event:currentPoint={(i % 3600) * 1000}"
        )
        answer = collector.handle("GET", url, headers, None, f"{i % 150 + 20}.{i % 251}.{i % 13}.{i % 250 + 1}")
        rows.append(answer.row)
    return rows


def frames(rows: list[dict], batch: int) -> list[bytes]:
    import orjson

    from sim.collector.link import _HEAD

    out = []
    for at in range(0, len(rows), batch):
        payload = orjson.dumps(rows[at : at + batch])
        out.append(_HEAD.pack(len(payload), ord("B")) + payload)
    return out


def _answer(sock: socket.socket) -> None:
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            raise SystemExit("bench_store_writer: the writer closed the connection")
        head += chunk
    size = int.from_bytes(head[:4], "little")
    body = b""
    while len(body) < size:
        body += sock.recv(size - len(body))
    if b'"ok":true' not in body:
        raise SystemExit(f"bench_store_writer: the writer refused a batch: {body[:200]!r}")


def run_once(
    tree: Path, batches: list[bytes], connections: int, rate: float, rows_a_batch: int, profile: str | None = None
) -> tuple[float, int]:
    """(writer CPU seconds, rows in its store) for one pass of `batches` over `connections`."""
    with tempfile.TemporaryDirectory(prefix="bench-store-writer-") as tmp:
        metrics = os.path.join(tmp, "metrics")
        os.makedirs(metrics)
        sock_path = os.path.join(tmp, "store.sock")
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, os.path.join(tmp, "events.duckdb"), sock_path, metrics],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"bench_store_writer: the writer of {tree} did not start")
        spy = None
        if profile:  # py-spy on the writer for the pass (`--profile FILE`, speedscope format)
            spy = subprocess.Popen(
                [PY_SPY, "record", "-p", str(proc.pid), "-o", profile, "-f", "speedscope", "-r", "250", "-t"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        socks = []
        for _ in range(connections):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock_path)
            socks.append(s)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(0.05)
        # one batch in flight per connection, as each worker's StoreLink does; batch n leaves no earlier
        # than n * rows_a_batch / rate seconds in (the inserter's inserts grow with the rate)
        at, start, every = 0, time.perf_counter(), rows_a_batch / rate if rate else 0.0
        inflight: list[socket.socket] = []
        for s in socks:
            if at < len(batches):
                s.sendall(batches[at])
                at += 1
                inflight.append(s)
        while inflight:
            for s in list(inflight):
                _answer(s)
                if at < len(batches):
                    wait = start + at * every - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    s.sendall(batches[at])
                    at += 1
                else:
                    inflight.remove(s)
        proc.stdin.write("end\n")
        proc.stdin.flush()
        cpu, rows, split = proc.stdout.readline().split()
        if os.environ.get("BENCH_THREADS"):
            print(f"    {tree.name}: {float(cpu):.2f} s CPU, by thread (s): {split}", flush=True)
        proc.wait(60)
        if spy is not None:
            spy.wait(60)
        for s in socks:
            s.close()
        return float(cpu), int(rows)


def journal_floor(batches: list[bytes]) -> float:
    """CPU seconds of the durability floor: each batch appended to a file and fdatasync'ed, as the
    journal does, with nothing else (no socket, no DuckDB)."""
    with tempfile.TemporaryDirectory(prefix="bench-store-writer-") as tmp:
        fd = os.open(os.path.join(tmp, "journal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        started = time.process_time()
        for frame in batches:
            os.write(fd, frame)
            os.fdatasync(fd)
        cpu = time.process_time() - started
        os.close(fd)
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40000, help="rows a pass (default 40000)")
    parser.add_argument("--batch", type=int, default=47, help="rows a batch (default 47, as under wrk -c128)")
    parser.add_argument("--connections", type=int, default=1, help="connections (HTTP workers), default 1")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=10000, help="rows a second sent at most (default 10000, the collector's today)"
    )
    parser.add_argument("--baseline-tree", type=Path, help="another checkout of player-sim, measured alike")
    parser.add_argument("--only", choices=("plain", "run"), help="one kind of rows only")
    parser.add_argument("--profile", metavar="FILE", help="py-spy record this tree's writer (one pass) to FILE")
    args = parser.parse_args()

    trees = [("this", ROOT)] + ([("baseline", args.baseline_tree.resolve())] if args.baseline_tree else [])
    kinds = [k for k in ("plain", "run") if args.only in (None, k)]
    started = time.perf_counter()
    data = {kind: frames(make_rows(args.rows, kind == "run"), args.batch) for kind in kinds}
    print(
        f"rows built in {time.perf_counter() - started:.1f} s; {args.rows:,} rows a pass, "
        f"{args.batch} a batch, {args.rate:,.0f} rows/s"
    )
    if args.profile:
        cpu, rows = run_once(ROOT, data[kinds[-1]], args.connections, args.rate, args.batch, args.profile)
        print(f"profiled {rows:,} {kinds[-1]} rows ({cpu / rows * 1e6:.1f} us a row) to {args.profile}")
        return
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(args.repeat):
        for kind in kinds:
            order = trees if r % 2 == 0 else trees[::-1]
            for name, tree in order:
                cpu, rows = run_once(tree, data[kind], args.connections, args.rate, args.batch)
                if rows != args.rows:
                    raise SystemExit(f"bench_store_writer: {name} stored {rows} rows of {args.rows}")
                results.setdefault((name, kind), []).append(cpu / rows * 1e6)
            results.setdefault(("floor", kind), []).append(journal_floor(data[kind]) / args.rows * 1e6)
    load = os.getloadavg()[0]
    print(f"store writer CPU a request (us, median of {args.repeat}; load {load:.1f})")
    for kind in kinds:
        line = f"  {kind:5s} rows:"
        for name, _ in trees:
            values = results[(name, kind)]
            line += f"  {name} {statistics.median(values):5.1f} ({', '.join(f'{v:.1f}' for v in values)})"
        floor = statistics.median(results[("floor", kind)])
        line += f"  journal floor {floor:4.1f}  this/floor {statistics.median(results[('this', kind)]) / floor:.1f}"
        if args.baseline_tree:
            ratio = statistics.median(results[("this", kind)]) / statistics.median(results[("baseline", kind)])
            line += f"  this/baseline {ratio:.2f}"
        print(line)


if __name__ == "__main__":
    main()
