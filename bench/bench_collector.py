"""The collector's requests per second against nginx answering a static body, and against what one
player-sim load worker sends; all measured in the same run on this machine.

    python bench/bench_collector.py [--seconds 8] [--connections 128] [--workers 1,2]
    python bench/bench_collector.py --baseline-tree /tmp/main --no-load-worker   # against another checkout

1. nginx (`apt-get install nginx wrk`), one worker process per core, answering every request
   with a fixed 200 body: the ceiling of any HTTP server on this machine;
2. the collector (`--workers N` for each N given), storing every request before answering;
3. one player-sim load worker (locustfile.py, one process, legacy, a saturating session rate)
   sending to a minimal sink, so the sender, not a store, is what is measured.

wrk (one process, `--connections` keep-alive connections) drives 1 and 2 with the same URL
for the same time. Besides requests per wall second, each target's CPU seconds over the run
are read from /proc (psutil), so requests per CPU second compare the servers on a machine
other jobs share. The headline ratios: collector/nginx (target >= 0.25) and collector/one
load worker (the collector must keep up with at least one). Every measurement is repeated
`--repeat` times (collector, then nginx right after) and the medians are printed, with the
load average, since other jobs on a shared machine move single runs by a factor of two.

With --baseline-tree (another checkout of player-sim, e.g. a `git worktree` of main) its collector
(its request path compiled into a folder of its own when it has sim/compiled) is measured in every
round too, in alternating order (this tree first, then the baseline; then the other way round), so
both see the same load from other jobs; the CPU a request of each and their ratio are printed.

Where a request's CPU goes: the collector's worker processes and its store writer (the main
process) are measured apart, beside a minimal handler on the collector's own HTTP layer
(`sim.collector.http1`, one worker, the same event loop, a fixed answer: the layer's own cost per
request, the floor under the collector), and `Collector.handle` (validation, decoding, row) timed
in this process on the same URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

import psutil

ROOT = Path(__file__).resolve().parent.parent
URLS = [
    "/api_v3/index.php?service=stats&action=collect&clientTag=kdp%3Av3.5.7.1&event%3AeventType=3"
    "&event%3AclientVer=3.0%3Av3.5.7.1&event%3ApartnerId=156652&event%3AentryId=0%5F4lxrbaw9"
    "&event%3AsessionId=1E83138E-D43C-8DBB-407C-9C68E52DDFBE&event%3AcurrentPoint=199800&event%3Aduration=403",
    "/api_v3/index.php?service=stats&apiVersion=3.1&expiry=86400&clientTag=kwidget%3Av2.90&format=1&ignoreNull=1"
    "&action=collect&event:eventType=2&event:partnerId=156652&event:entryId=0_4lxrbaw9"
    "&event:sessionId=5f0c1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b&event:uiconfId=3309432&event:seek=false",
    "/api_v3/index.php?service=stats&action=collect&apiVersion=3.3.0&format=1&clientTag=html5%3Av0.37.0"
    "&event%3AeventType=4&event%3ApartnerId=156652&event%3AentryId=1_abcd1234&event%3AsessionId=abc-123"
    "&event%3AcurrentPoint=101.5&event%3Aduration=403.2&hasKanalony=true",
]

# By default wrk sends the bench URL with the values a playing session changes from beacon to beacon
# (sessionId every 50 requests, eventTimestamp and currentPoint every request), so no cache of the
# collector sees only repeats; --same-url sends URLS[1] as it is.
WRK_VARIED = """
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "&event:sessionId=s" .. math.floor(n / 50)
    .. "&event:eventTimestamp=" .. (1700000000000 + n * 997) .. "&event:currentPoint=" .. (n % 3600) * 1000)
end
"""
VARIED_BASE = URLS[1].replace("&event:sessionId=5f0c1a2b-3c4d-5e6f-7a8b-9c0d1e2f3a4b", "")
WRK_SCRIPT: list[str] = []  # the Lua script's path, unless --same-url

NGINX_CONF = """
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
daemon off;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 200 '{{"time":1,"viewEventsEnabled":true}}'; }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port))
    proc = subprocess.Popen(
        [shutil.which("nginx"), "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("bench_collector: nginx did not start")


def baseline_compiled(tree: Path) -> dict[str, str]:
    """The environment under which another checkout's collector runs its own request path compiled, as
    this tree's does: its modules built into a folder of their own (the compiled folder of this venv
    holds this tree's, and a module whose source differs would run as Python)."""
    if not (tree / "sim" / "compiled").is_dir():
        return {}
    digest = hashlib.sha1(str(tree.resolve()).encode()).hexdigest()[:12]
    env = {"PLAYER_SIM_COMPILED_DIR": str(Path(tempfile.gettempdir()) / f"player-sim-bench-compiled-{digest}")}
    subprocess.run(
        [sys.executable, "-m", "sim.compiled", "build"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), **env},
        stdout=subprocess.DEVNULL,
        check=False,
    )
    return env


def start_collector(
    store: Path, workers: int, tree: Path = ROOT, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """The collector of the checkout `tree` (its own `sim`, first on the path)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sim.cli import main; main()",
            "collector",
            "--port",
            "0",
            "--store",
            str(store),
            "--workers",
            str(workers),
        ],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        proc.kill()
        sys.exit(f"bench_collector: the collector did not start (first line {line!r})")
    # the URL is printed once the port listens; let every worker finish starting
    for _ in range(50):
        try:
            requests_ok = urlopen(line + URLS[1], timeout=5).status == 200
        except OSError:
            requests_ok = False
        if requests_ok:
            break
        time.sleep(0.2)
    return proc, line


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by a process, and by its children (the collector's workers)."""
    proc = psutil.Process(pid)
    own = children = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        if p.pid == pid:
            own = t.user + t.system
        else:
            children += t.user + t.system
    return own, children


def thread_cpu(pid: int) -> dict[tuple[int, int], float]:
    """CPU seconds so far of each thread of the worker processes (the children of `pid`)."""
    out = {}
    for p in psutil.Process(pid).children(recursive=True):
        try:
            for t in p.threads():
                out[p.pid, t.id] = t.user_time + t.system_time
        except psutil.NoSuchProcess:
            continue
    return out


def loop_threads(before: dict, after: dict) -> float:
    """CPU seconds of each worker's busiest thread over a run, added up: the thread running Python
    (the event loop: HTTP and the app); a worker's other threads serve /stats.json and /metrics."""
    busiest: dict[int, float] = {}
    for (pid, tid), seconds in after.items():
        busiest[pid] = max(busiest.get(pid, 0.0), seconds - before.get((pid, tid), 0.0))
    return sum(busiest.values())


def run_wrk(url: str, seconds: int, connections: int, pid: int) -> tuple[float, float, int, float, float]:
    """(requests/s, CPU seconds of the target's process tree, non-2xx answers, CPU seconds of the
    main process alone, CPU seconds of the workers' event-loop threads) over one wrk run."""
    threads0 = thread_cpu(pid)
    own0, children0 = tree_cpu(pid)
    script = ["-s", WRK_SCRIPT[0]] if WRK_SCRIPT else []
    target = url + (VARIED_BASE if WRK_SCRIPT else URLS[1])
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *script, target],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    own1, children1 = tree_cpu(pid)
    threads1 = thread_cpu(pid)
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return (
        (float(match.group(1)) if match else 0.0),
        (own1 - own0) + (children1 - children0),
        int(bad.group(1)) if bad else 0,
        own1 - own0,
        loop_threads(threads0, threads1),
    )


# a fixed answer on the collector's HTTP layer, one worker, the collector's event loop
MINIMAL_SERVER = """
import asyncio, socket, sys
from sim.collector.http1 import HttpServer, Limits
from sim.collector.worker import new_event_loop

class Fixed:
    head = b"content-type: application/json\\r\\n"
    def request(self, exchange):
        exchange.send(200, self.head, b'{"time":1,"viewEventsEnabled":true}')
    def refuse(self, exchange, status, code, message):
        exchange.send(status, self.head, b"{}")

async def serve(port):
    sock = socket.create_server(("127.0.0.1", port), backlog=1024)
    await HttpServer(Fixed(), Limits(), asyncio.get_running_loop()).start(sock, 1024)
    await asyncio.Event().wait()

new_event_loop().run_until_complete(serve(int(sys.argv[1])))
"""


def start_minimal() -> tuple[subprocess.Popen, str]:
    """`MINIMAL_SERVER`: what the HTTP layer costs a request with nothing behind it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", MINIMAL_SERVER, str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urlopen(url + URLS[1], timeout=5).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("bench_collector: the minimal HTTP server did not start")


def handle_us(varied: bool, n: int = 5000) -> float:
    """Microseconds of `Collector.handle` (validation, decoding, the row) for the bench's URLs, in this process."""
    from sim.collector.app import Collector, CollectorConfig

    collector = Collector(CollectorConfig())
    headers = {"host": "127.0.0.1", "user-agent": "wrk"}
    urls = [
        VARIED_BASE + f"&event:sessionId=s{i // 50}&event:eventTimestamp={1700000000000 + i * 997}"
        f"&event:currentPoint={(i % 3600) * 1000}"
        if varied
        else URLS[1]
        for i in range(3 * n)
    ]
    best = float("inf")
    for r in range(3):
        started = time.perf_counter()
        for url in urls[r * n : (r + 1) * n]:
            collector.handle("GET", url, headers, None, "127.0.0.1")
        best = min(best, (time.perf_counter() - started) / n * 1e6)
    return best


def one_load_worker(seconds: int, workdir: Path) -> float:
    """Beacons per second one player-sim load worker sends at a saturating rate to a minimal sink."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_load import locust, run_measured, start_sink

    sink, host = start_sink()
    try:
        summary = workdir / "load-summary.json"
        run_measured(
            locust(
                ROOT / "locustfile.py",
                host,
                seconds,
                1,
                "--protocol",
                "legacy",
                "--session-rate",
                "8000",  # far above what one process sends (400 offered only ~1,300 beacons/s: not saturated)
                "--time-scale",
                "50",
                "--concurrency",
                "64",
                "--summary-json",
                str(summary),
            ),
            seconds + 120,
        )
        s = json.loads(summary.read_text())
        return s["sent"] / s["run_seconds"]
    finally:
        sink.kill()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="collector --workers to measure")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--no-load-worker", action="store_true", help="skip the load worker measurement")
    parser.add_argument(
        "--same-url", action="store_true", help="every request the same URL (default: per-beacon values vary)"
    )
    parser.add_argument("--no-minimal", action="store_true", help="skip the HTTP layer's minimal handler (the floor)")
    parser.add_argument(
        "--baseline-tree", type=Path, help="another player-sim checkout whose collector is measured in the same rounds"
    )
    args = parser.parse_args()
    if args.baseline_tree is not None and not (args.baseline_tree / "sim" / "collector").is_dir():
        sys.exit(f"bench_collector: --baseline-tree {args.baseline_tree}: not a player-sim checkout (no sim/collector)")
    if not shutil.which("wrk") or not shutil.which("nginx"):
        print("bench_collector: skipped, needs wrk and nginx (apt-get install wrk nginx)")
        return
    sys.path.insert(0, str(ROOT))
    workers = sorted({int(w) for w in args.workers.split(",")})
    load_before = os.getloadavg()

    baseline_env = baseline_compiled(args.baseline_tree) if args.baseline_tree is not None else {}
    # before any server runs: a collector just stopped still checkpoints its store for a while
    handle = handle_us(not args.same_url)
    runs: dict = {}  # key -> list of run_wrk results
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        if not args.same_url:
            (workdir / "varied.lua").write_text(WRK_VARIED)
            WRK_SCRIPT.append(str(workdir / "varied.lua"))
        ngx, ngx_url = start_nginx(workdir)
        try:
            for r in range(args.repeat):
                for w in workers:
                    trees = [(w, ROOT)]
                    if args.baseline_tree is not None:  # alternate which goes first
                        trees.insert(r % 2, (("baseline", w), args.baseline_tree))
                    for key, tree in trees:
                        store = workdir / f"events-{w}-{r}-{len(runs)}.duckdb"
                        proc, url = start_collector(store, w, tree, baseline_env if tree != ROOT else None)
                        try:
                            run_wrk(url, 2, args.connections, proc.pid)  # warm up
                            runs.setdefault(key, []).append(run_wrk(url, args.seconds, args.connections, proc.pid))
                        finally:
                            stop(proc)
                    # nginx right after each collector run, so both see the same load from other jobs
                    runs.setdefault(("nginx", w), []).append(run_wrk(ngx_url, args.seconds, args.connections, ngx.pid))
                if args.no_minimal:
                    continue
                proc, url = start_minimal()
                try:
                    run_wrk(url, 2, args.connections, proc.pid)
                    runs.setdefault("minimal", []).append(run_wrk(url, args.seconds, args.connections, proc.pid))
                finally:
                    stop(proc)
        finally:
            stop(ngx)
        load_after = os.getloadavg()
        report(args, workers, runs, handle, load_before, load_after)
        if not args.no_load_worker:
            try:
                load_rps = one_load_worker(args.seconds, workdir)
            except subprocess.TimeoutExpired:
                print("  one load worker: did not finish in time (the machine is too busy); no ratio")
                return
            for w in workers:
                rps = statistics.median(r[0] for r in runs[w])
                print(
                    f"  ratio collector --workers {w}/one load worker ({load_rps:,.0f} beacons/s): {rps / load_rps:.2f}"
                )


def compiled_state() -> str:
    """How much of this tree's request path runs compiled (sim/compiled)."""
    from sim import compiled

    if compiled.turned_off():
        return "request path as Python (PLAYER_SIM_PURE_PYTHON)"
    built = len(compiled.MODULES) - len(compiled.stale_modules(compiled.compiled_dir()))
    return f"request path: {built} of {len(compiled.MODULES)} modules compiled"


def report(args, workers: list[int], runs: dict, handle: float, load_before, load_after) -> None:
    """The medians: req/s, CPU a request (workers and store writer apart), the ratios to nginx."""

    def us_per_request(result, part: str = "all") -> float:
        rps, cpu, _, own, loop = result
        spent = {"all": cpu, "main": own, "children": cpu - own, "loop": loop}[part]
        return spent / max(rps * args.seconds, 1) * 1e6

    med = statistics.median

    def split(results) -> str:
        """Where a request's CPU goes: worker processes (their event-loop threads apart) and the store writer."""
        return (
            f"workers {med(us_per_request(r, 'children') for r in results):.0f}, of which event-loop threads "
            f"{med(us_per_request(r, 'loop') for r in results):.0f}; "
            f"store writer {med(us_per_request(r, 'main') for r in results):.0f}"
        )

    c = args.connections
    print(
        f"wrk -c{c}, {args.seconds} s each, legacy stats.collect GET "
        f"({'one URL' if args.same_url else 'sessionId, eventTimestamp, currentPoint varied'}), {args.repeat} rounds, "
        "medians; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cores), "
        f"collector on Python {platform.python_version()} ({sys.executable}), {compiled_state()}:"
    )
    for w in workers:
        mine, theirs = runs[w], runs[("nginx", w)]
        rps, n_rps = med(r[0] for r in mine), med(r[0] for r in theirs)
        bad = sum(r[2] for r in mine)
        ratio = med(a[0] / max(b[0], 1e-9) for a, b in zip(mine, theirs))
        base = runs.get(("baseline", w))
        cpu_ratio = med(us_per_request(b) / max(us_per_request(a), 1e-9) for a, b in zip(mine, theirs))
        us, n_us = med(us_per_request(r) for r in mine), med(us_per_request(r) for r in theirs)
        print(
            f"  collector --workers {w}: {rps:9,.0f} req/s ({bad} non-2xx), {us:5.0f} us CPU a request ({split(mine)})"
        )
        print(f"  nginx (just after):    {n_rps:9,.0f} req/s,            {n_us:5.0f} us CPU a request")
        print(
            f"  ratio collector/nginx: {ratio:.3f} req/s ({'meets' if ratio >= 0.25 else 'BELOW'} the 0.25 target; "
            f"rounds {', '.join(f'{a[0] / max(b[0], 1e-9):.3f}' for a, b in zip(mine, theirs))}), "
            f"{cpu_ratio:.3f} per CPU-second"
        )
        if base:
            b_us = med(us_per_request(r) for r in base)
            base_ratio = med(a[0] / max(b[0], 1e-9) for a, b in zip(base, theirs))
            print(
                f"  baseline --workers {w}:  {med(r[0] for r in base):9,.0f} req/s,            {b_us:5.0f} us CPU a "
                f"request ({split(base)}); ratio to nginx {base_ratio:.3f}"
            )
            print(
                f"  CPU a request, this tree / baseline: {us / b_us:.3f} (rounds "
                f"{', '.join(f'{us_per_request(a) / us_per_request(b):.3f}' for a, b in zip(mine, base))})"
            )
    minimal = runs.get("minimal")
    if not minimal:
        print(f"  Collector.handle (validate, decode, row), in process: {handle:.0f} us a request")
        return
    print(
        f"  HTTP layer floor (sim.collector.http1, fixed answer, 1 worker): {med(r[0] for r in minimal):,.0f} req/s, "
        f"{med(us_per_request(r) for r in minimal):.0f} us CPU a request"
    )
    print(f"  Collector.handle (validate, decode, row), in process: {handle:.0f} us a request")


if __name__ == "__main__":
    main()
