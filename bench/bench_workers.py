"""The whole `player-sim generate` command: parallel workers, speed per CPU second, memory per worker.

    python bench/bench_workers.py                        # 1M sessions, parquet (a few minutes)
    python bench/bench_workers.py --sessions 300000 --memory 1000000,10000000

Each measure runs the command as a user does (a fresh process, start-up included, no TTY) and
prints ratios against a baseline measured in the same run:
- wall time of `--workers 1` over `--workers 2` (target: 1.6x on a 2-core machine). On a
  shared machine this needs the other users idle: with Linux's autogroup scheduling a
  session's processes share one session's slice of the CPU, so more processes get no more
  of it. The load average is printed before and after;
- beacons per CPU second of the command with one worker (every process it starts counted) over
  plain Python + Faker loops writing JSON lines (bench_beacons.plain_loop: the same columns,
  and 11 fields; target: 50x);
- with --memory-days, the peak RSS of the largest process of runs of growing length at the
  scenario's rate, one and two workers: flat means memory does not grow with the run. With
  --memory (sessions in the scenario's days) the rate grows too, and with it the rows of long
  sessions that wait for later parts (the carry), as the pending rows of one stream did.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SCENARIO = ROOT / "scenarios" / "default-mix.yaml"


def command(sessions: int, out: Path, workers: int, fmt: str = "parquet", days: float | None = None) -> dict:
    """One run of the command: beacons, wall s, CPU s of it and every process it started, peak RSS MiB
    of the largest of them."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    size = ["--days", str(days)] if days else ["--sessions", str(sessions)]
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "generate", str(SCENARIO), *size, "--format", fmt,
                             "--out", str(out), "--workers", str(workers), "--seed", "7"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"generate failed:\n{stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    beacons = int(stdout.split(" sessions, ")[1].split(" beacons")[0].replace(",", ""))
    return {"beacons": beacons, "wall": wall, "cpu": cpu, "rss": after.ru_maxrss / 1024}


def peak_rss(sessions: int, workers: int, days: float | None = None) -> tuple[int, float]:
    """(beacons, peak RSS MiB of its largest process) of a run measured from a small, fresh process:
    on Linux a child keeps across exec the peak of the process it was forked from."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); from pathlib import Path; import tempfile\n"
            "from bench_workers import command\n"
            f"d = Path(tempfile.mkdtemp(dir={str(tempfile.gettempdir())!r})); "
            f"r = command({sessions}, d / 'e.parquet', {workers}, days={days!r})\n"
            "print(r['beacons'], r['rss']); import shutil; shutil.rmtree(d)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each timed measure, the fastest counts [2]")
    ap.add_argument("--memory", default="", help="comma list of session counts for peak-RSS runs (the rate grows)")
    ap.add_argument("--memory-days", default="", help="comma list of days for peak-RSS runs at the scenario's rate")
    args = ap.parse_args()

    from bench_beacons import plain_loop

    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        command(2000, tmp / "warm.parquet", 1)             # numba caches compiled, files warm
        best: dict[int, dict] = {}
        for i in range(max(1, args.repeat)):
            for workers in (1, 2):
                out = tmp / f"w{workers}.{i}.parquet"
                r = command(args.sessions, out, workers)
                out.unlink()
                if workers not in best or r["wall"] < best[workers]["wall"]:
                    best[workers] = r
        one, two = best[1], best[2]
        assert one["beacons"] == two["beacons"]
        base_sessions = 20_000
        import pyarrow as pa
        import pyarrow.parquet as pq

        command(20_000, tmp / "cols.parquet", 1)
        written = pq.read_table(tmp / "cols.parquet")
        schema = pa.schema([f for f in written.schema if written.column(f.name).null_count < written.num_rows])
        per_session = written.num_rows / 20_000
        del written
        n_b, _, cpu_b = plain_loop(base_sessions, tmp / "plain.jsonl", per_session, schema)
        n_n, _, cpu_n = plain_loop(base_sessions, tmp / "narrow.jsonl", per_session)
    print(f"load average after:  {load_average()}")

    rate = lambda n, s: n / s if s > 0 else float("inf")  # noqa: E731
    plain = rate(n_b, cpu_b)
    print(f"player-sim generate, default mix, legacy, {args.sessions:,} sessions -> {one['beacons']:,} beacons, "
          f"parquet; each the fastest of {max(1, args.repeat)} runs")
    print(f"{'':34}{'wall s':>9}{'CPU s':>9}{'beacons/CPU s':>15}{'x plain loop':>14}{'peak RSS MiB':>14}")
    for name, r in (("--workers 1", one), ("--workers 2", two)):
        print(f"{name:34}{r['wall']:9.2f}{r['cpu']:9.2f}{rate(r['beacons'], r['cpu']):15,.0f}"
              f"{rate(r['beacons'], r['cpu']) / plain:14.1f}{r['rss']:14.0f}")
    print(f"{f'plain Python + Faker loop ({len(schema)} columns)':34}{'':9}{cpu_b:9.2f}{plain:15,.0f}{1.0:14.1f}")
    narrow = rate(n_n, cpu_n)
    print(f"{'plain Python + Faker loop (11 fields)':34}{'':9}{cpu_n:9.2f}{narrow:15,.0f}{narrow / plain:14.1f}")
    print(f"--workers 2 over --workers 1, wall: {one['wall'] / two['wall']:.2f}x (target 1.6x)")
    print(f"--workers 1 over the plain loop, per CPU second: {rate(one['beacons'], one['cpu']) / plain:.1f}x "
          f"the same columns, {rate(one['beacons'], one['cpu']) / narrow:.1f}x 11 fields (target 50x)")
    if args.memory:
        print("peak RSS of the largest process of a run (parquet):")
        for sessions in (int(x) for x in args.memory.split(",")):
            for workers in (1, 2):
                beacons, mib = peak_rss(sessions, workers)
                print(f"  {sessions:>12,} sessions {beacons:>13,} beacons  --workers {workers}  {mib:8.0f} MiB")
    if args.memory_days:
        print("peak RSS of the largest process of a run (parquet), the scenario's sessions a day:")
        for days in (float(x) for x in args.memory_days.split(",")):
            for workers in (1, 2):
                beacons, mib = peak_rss(0, workers, days)
                print(f"  {days:>8g} days {beacons:>13,} beacons  --workers {workers}  {mib:8.0f} MiB")


if __name__ == "__main__":
    main()
