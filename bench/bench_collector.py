"""How many requests per core the collector takes, against what one load-generator worker sends.

    python bench/bench_collector.py [--seconds 10] [--users 32]

Baseline (measured in the same run): a plain Locust FastHttpUser locustfile sending fixed
stats.collect URLs with no wait, headless, one process, against the collector. Both sides'
CPU seconds are read from /proc (psutil) over the same window, so the figures are requests
per CPU-second ("per core") for each side, and their ratio is what matters: the collector
must take at least twice what one generator worker can send.

A second phase saturates the collector with `wrk` (a C client costing far less CPU than
Locust; `apt-get install wrk`) to measure its own ceiling per CPU-second. The headline
ratio compares both sides saturated: the collector's requests per CPU-second against one
Locust worker's.
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

LOCUSTFILE = f'''
from locust import FastHttpUser, task

URLS = {URLS!r}


class FixedStatsCollect(FastHttpUser):
    """The baseline generator: fixed stats.collect URLs, no wait."""

    @task
    def send(self):
        for url in URLS:
            self.client.get(url, name="stats.collect")
'''


def start_collector(store: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", "from sim.cli import main; main()", "collector",
                             "--port", "0", "--store", str(store)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        proc.kill()
        sys.exit(f"bench_collector: the collector did not start (first line {line!r})")
    return proc, line


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


def run_locust(url: str, seconds: int, users: int, workdir: Path, collector_pid: int) -> dict:
    """Run one headless Locust process; measure both sides over the steady part of the run.

    CPU is sampled from /proc every 0.25 s; requests come from Locust's per-second history.
    The window skips the first 2 s and the last second, so Locust's start-up (imports, user
    spawn) and shutdown do not count against either side.
    """
    locustfile = workdir / "locustfile_baseline.py"
    locustfile.write_text(LOCUSTFILE)
    csv = workdir / "baseline"
    proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users),
                             "-r", str(users), "-t", f"{seconds}s", "--host", url, "--only-summary", "--csv",
                             str(csv), "--csv-full-history", "--loglevel", "ERROR"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []          # (time, locust CPU s, collector CPU s)
    while proc.poll() is None:
        try:
            samples.append((time.time(), tree_cpu(proc.pid), tree_cpu(collector_pid)))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    proc.wait()
    history = []          # (unix time, cumulative requests)
    rows = (workdir / "baseline_stats_history.csv").read_text().splitlines()
    header = rows[0].split(",")
    for line in rows[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("Name") == "Aggregated":
            history.append((float(row["Timestamp"]), int(row["Total Request Count"])))
    first_send = next(t for t, n in history if n > 0)
    lo, hi = first_send + 2.0, history[-1][0] - 1.0
    window = [(t, n) for t, n in history if lo <= t <= hi]
    (t0, n0), (t1, n1) = window[0], window[-1]

    def cpu_at(t: float) -> tuple[float, float]:
        nearest = min(samples, key=lambda s: abs(s[0] - t))
        return nearest[1], nearest[2]

    (g0, c0), (g1, c1) = cpu_at(t0), cpu_at(t1)
    stats = dict(zip(*[r.split(",") for r in (workdir / "baseline_stats.csv").read_text().splitlines()
                       if r.startswith("Type,") or ",Aggregated," in r]))
    return {"seconds": t1 - t0, "requests": n1 - n0, "rps": (n1 - n0) / (t1 - t0),
            "generator_cpu": g1 - g0, "collector_cpu": c1 - c0, "failures": int(stats["Failure Count"])}


def run_wrk(url: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", url + URLS[1]],
                         capture_output=True, text=True, check=False).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(match.group(1)) if match else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        proc, url = start_collector(workdir / "events.duckdb")
        try:
            time.sleep(0.5)
            m = run_locust(url, args.seconds, args.users, workdir, proc.pid)
            generator_per_core = m["requests"] / max(m["generator_cpu"], 1e-9)
            collector_per_core = m["requests"] / max(m["collector_cpu"], 1e-9)
            print(f"baseline: Locust FastHttpUser, 1 process, {args.users} users, no wait; "
                  f"steady window {m['seconds']:.1f} s of {args.seconds} s")
            print(f"  generator sent        {m['rps']:8.0f} req/s ({m['failures']} failures), "
                  f"CPU {m['generator_cpu']:5.2f} s -> {generator_per_core:7.0f} req per CPU-second")
            print(f"  collector took them   CPU {m['collector_cpu']:5.2f} s -> "
                  f"{collector_per_core:7.0f} req per CPU-second")
            if not shutil.which("wrk"):
                print("ceiling: wrk not found (apt-get install wrk); the ratio below is at Locust's rate only")
                print(f"ratio collector/generator per core: {collector_per_core / generator_per_core:.2f}x")
                return
            before = tree_cpu(proc.pid)
            ceiling = run_wrk(url, args.seconds)
            cpu = tree_cpu(proc.pid) - before
            saturated_per_core = ceiling * args.seconds / max(cpu, 1e-9)
            print(f"ceiling: wrk -c32 saturating the collector: {ceiling:8.0f} req/s, CPU {cpu:5.2f} s -> "
                  f"{saturated_per_core:7.0f} req per CPU-second")
            ratio = saturated_per_core / generator_per_core
            print(f"ratio collector/generator per core (both saturated): {ratio:.2f}x "
                  f"({'meets' if ratio >= 2 else 'BELOW'} the 2x target); "
                  f"raw: the collector took {ceiling / max(m['rps'], 1e-9):.2f}x the req/s one Locust worker sent")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
