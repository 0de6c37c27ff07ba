"""How many requests per core the collector takes, against what one load-generator worker sends.

    python bench/bench_collector.py [--seconds 10] [--users 32]

Baseline (measured in the same run): a plain Locust FastHttpUser locustfile sending fixed
stats.collect URLs with no wait, headless, one process, against the collector. Both sides'
CPU seconds are read from /proc (psutil) over the same window, so the figures are requests
per CPU-second ("per core") for each side, and their ratio is what matters: the collector
must take at least twice what one generator worker can send.

If `wrk` is installed, a second phase saturates the collector with it (wrk's C client costs
far less CPU than Locust) and prints the collector's own ceiling on one worker.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(url: str, seconds: int, users: int, workdir: Path) -> tuple[float, float, int]:
    """(requests/s, CPU seconds Locust used, failures) for one headless Locust process."""
    locustfile = workdir / "locustfile_baseline.py"
    locustfile.write_text(LOCUSTFILE)
    csv = workdir / "baseline"
    before = children_cpu()
    subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", url, "--only-summary", "--csv", str(csv),
                    "--loglevel", "ERROR"],
                   cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    cpu = children_cpu() - before
    rows = (workdir / "baseline_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    aggregated = next(r for r in rows[1:] if ",Aggregated," in r).split(",")
    stats = dict(zip(header, aggregated))
    return float(stats["Requests/s"]), cpu, int(stats["Failure Count"])


def run_wrk(url: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", url + URLS[1]],
                         capture_output=True, text=True, check=False).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(match.group(1)) if match else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp:
        workdir = Path(tmp)
        proc, url = start_collector(workdir / "events.duckdb")
        try:
            time.sleep(0.5)
            collector_before = tree_cpu(proc.pid)
            rps, locust_cpu, failures = run_locust(url, args.seconds, args.users, workdir)
            collector_cpu = tree_cpu(proc.pid) - collector_before
            requests_sent = rps * args.seconds
            generator_per_core = requests_sent / max(locust_cpu, 1e-9)
            collector_per_core = requests_sent / max(collector_cpu, 1e-9)
            print(f"baseline: Locust FastHttpUser, 1 process, {args.users} users, no wait, {args.seconds} s")
            print(f"  generator sent        {rps:10.0f} req/s   ({failures} failures), "
                  f"CPU {locust_cpu:5.1f} s -> {generator_per_core:8.0f} req per CPU-second")
            print(f"  collector took them   with CPU {collector_cpu:5.1f} s -> {collector_per_core:8.0f} req per CPU-second")
            ratio = collector_per_core / generator_per_core
            print(f"  ratio collector/generator per core: {ratio:.2f}x  "
                  f"({'meets' if ratio >= 2 else 'BELOW'} the 2x target)")
            if shutil.which("wrk"):
                before = tree_cpu(proc.pid)
                ceiling = run_wrk(url, args.seconds)
                cpu = tree_cpu(proc.pid) - before
                print(f"ceiling: wrk -c32 against the collector: {ceiling:10.0f} req/s, collector CPU {cpu:5.1f} s "
                      f"-> {ceiling * args.seconds / max(cpu, 1e-9):8.0f} req per CPU-second; "
                      f"{ceiling / max(rps, 1e-9):.2f}x what one Locust worker sent")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
    if os.environ.get("CI"):
        return


if __name__ == "__main__":
    main()
