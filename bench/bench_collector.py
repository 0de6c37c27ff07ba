"""The collector's requests per second against nginx answering a static body, and against what one
player-sim load worker sends; all measured in the same run on this machine.

    python bench/bench_collector.py [--seconds 8] [--connections 128] [--workers 1,2]

1. nginx (`apt-get install nginx wrk`), one worker process per core, answering every request
   with a fixed 200 body: the ceiling of any HTTP server on this machine;
2. the collector (`--workers N` for each N given), storing every request before answering;
3. one player-sim load worker (locustfile.py, one process, legacy, a saturating session rate)
   sending to a minimal sink, so the sender, not a store, is what is measured.

wrk (one process, `--connections` keep-alive connections) drives 1 and 2 with the same URL
for the same time. Besides requests per wall second, each target's CPU seconds over the run
are read from /proc (psutil), so requests per CPU second compare the servers on a machine
other jobs share. The headline ratios: collector/nginx (target >= 0.25) and collector/one
load worker (the collector must keep up with at least one).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
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
    proc = subprocess.Popen([shutil.which("nginx"), "-c", str(conf), "-p", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("bench_collector: nginx did not start")


def start_collector(store: Path, workers: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", "from sim.cli import main; main()", "collector",
                             "--port", "0", "--store", str(store), "--workers", str(workers)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the granian worker)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def run_wrk(url: str, seconds: int, connections: int, pid: int) -> tuple[float, float, int]:
    """(requests/s, CPU seconds of the target's process tree, non-2xx answers) over one wrk run."""
    before = tree_cpu(pid)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url + URLS[1]],
                         capture_output=True, text=True, check=False).stdout
    cpu = tree_cpu(pid) - before
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return (float(match.group(1)) if match else 0.0), cpu, int(bad.group(1)) if bad else 0


def one_load_worker(seconds: int, workdir: Path) -> float:
    """Beacons per second one player-sim load worker sends at a saturating rate to a minimal sink."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_load import locust, run_measured, start_sink

    sink, host = start_sink()
    try:
        summary = workdir / "load-summary.json"
        run_measured(locust(ROOT / "locustfile.py", host, seconds, 1, "--protocol", "legacy", "--session-rate",
                            "400", "--time-scale", "50", "--concurrency", "64", "--summary-json", str(summary)),
                     seconds + 120)
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
    parser.add_argument("--no-load-worker", action="store_true", help="skip the load worker measurement")
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        print("bench_collector: skipped, needs wrk and nginx (apt-get install wrk nginx)")
        return
    workers = sorted({int(w) for w in args.workers.split(",")})

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        ngx, ngx_url = start_nginx(workdir)
        results = {}
        try:
            for w in workers:
                proc, url = start_collector(workdir / f"events-{w}.duckdb", w)
                try:
                    run_wrk(url, 2, args.connections, proc.pid)             # warm up
                    results[w] = run_wrk(url, args.seconds, args.connections, proc.pid)
                finally:
                    stop(proc)
                # nginx right after each collector run, so both see the same load from other jobs
                results[("nginx", w)] = run_wrk(ngx_url, args.seconds, args.connections, ngx.pid)
        finally:
            stop(ngx)
        load_rps = None if args.no_load_worker else one_load_worker(args.seconds, workdir)

    c = args.connections
    print(f"wrk -c{c}, {args.seconds} s each, same URL (legacy stats.collect GET), same run:")
    for w in workers:
        rps, cpu, bad = results[w]
        n_rps, n_cpu, _ = results[("nginx", w)]
        per_cpu, n_per_cpu = rps * args.seconds / max(cpu, 1e-9), n_rps * args.seconds / max(n_cpu, 1e-9)
        print(f"  collector --workers {w}: {rps:9,.0f} req/s ({bad} non-2xx), {per_cpu:8,.0f} req per CPU-second")
        print(f"  nginx (just after):    {n_rps:9,.0f} req/s,            {n_per_cpu:8,.0f} req per CPU-second")
        ratio = rps / max(n_rps, 1e-9)
        print(f"  ratio collector/nginx: {ratio:.3f} req/s ({'meets' if ratio >= 0.25 else 'BELOW'} the 0.25 target), "
              f"{per_cpu / max(n_per_cpu, 1e-9):.3f} per CPU-second")
        if load_rps:
            print(f"  ratio collector/one load worker ({load_rps:,.0f} beacons/s): {rps / load_rps:.2f}")


if __name__ == "__main__":
    main()
