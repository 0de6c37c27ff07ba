"""The whole `player-sim generate` command: parallel workers, speed per CPU second, memory per worker.

    python bench/bench_workers.py                        # 1M and 4M legacy sessions, parquet (minutes)
    python bench/bench_workers.py --sessions 300000 --big 0 --memory 1000000,10000000

Each measure runs the command as a user does (a fresh process, start-up included, no TTY) and
prints ratios against a baseline measured in the same run:
- wall time of `--workers 1` over `--workers 2` (target: 1.6x on a 2-core machine), at
  --sessions (1M) and at --big (4M): workers are for big runs, where the run's serial
  start (imports, plan: about 1.4 CPU s, a seventh of a 1M-session legacy run) and its last,
  shorter part weigh less. Legacy beacons, as the issue counts them (--protocol). On a
  shared machine this needs the other users idle: with Linux's autogroup scheduling a
  session's processes share one session's slice of the CPU, so more processes get no more
  of it. The load average is printed before and after;
- so, from each run's timeline (PLAYER_SIM_TIMELINE, see sim.parts.record): CPU seconds per
  step (start-up, plan, warm-up, each part's simulate/merge/write, carry, stitch) and per
  process, and the critical path, the longest chain of dependent steps in CPU seconds. With a
  core per process that is the wall time, whatever else runs: its ratio is the speed-up a
  quiet machine shows (estimated as max(critical path, CPU s / cores));
- beacons per CPU second of the command with one worker (every process it starts counted) over
  plain Python + Faker loops writing JSON lines (bench_beacons.plain_loop: the same columns,
  and 11 fields; target: 50x);
- with --memory-days, the peak RSS of the largest process of runs of growing length at the
  scenario's rate, one and two workers: flat means memory does not grow with the run. With
  --memory (sessions in the scenario's days) the rate grows too, and with it the rows of long
  sessions still sending (the merge's pending rows, the carry between parts) and the size of
  chunks and parts (partitions group whole quarter hours, so their sizes swing with the rate).
  Each prints the largest run's peak over the smallest's (target: flat).
"""

from __future__ import annotations

import argparse
import json
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


def command(
    sessions: int,
    out: Path,
    workers: int,
    fmt: str = "parquet",
    days: float | None = None,
    timeline: Path | None = None,
    protocol: str = "legacy",
) -> dict:
    """One run of the command: beacons, wall s, CPU s of it and every process it started, peak RSS MiB
    of the largest of them; with `timeline`, what each process did when (see `critical_path`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if timeline is not None:
        timeline.unlink(missing_ok=True)
        env.update(PLAYER_SIM_TIMELINE=str(timeline), PLAYER_SIM_T0=repr(time.time()))
    started = time.perf_counter()
    size = ["--days", str(days)] if days else ["--sessions", str(sessions)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "generate",
            str(SCENARIO),
            *size,
            "--format",
            fmt,
            "--protocol",
            protocol,
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--seed",
            "7",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"generate failed:\n{stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    beacons = int(stdout.split(" sessions, ")[1].split(" beacons")[0].replace(",", ""))
    result = {"beacons": beacons, "wall": wall, "cpu": cpu, "rss": after.ru_maxrss / 1024}
    if timeline is not None:
        result["path"] = critical_path([json.loads(line) for line in timeline.read_text().splitlines()], cpu)
    return result


# Steps of the parent that wait for others rather than work (their CPU is counted, not chained).
WAITING = {"parts"}


def critical_path(events: list[dict], total_cpu: float) -> dict:
    """The run's longest chain of dependent work, in CPU seconds: the wall time it would take
    with a core for each process and nothing else running, so independent of the machine's load.

    Steps of one process follow each other; a part's first step follows the start of the
    workers; a part takes its carry ("carry in") only after the part before it has written
    it ("carry out"); the parent joins a piece into the output file ("join") only after its
    part has written it, and in order; the stitch follows every part. A step finishes at max(the finish of
    what it follows) + its CPU seconds; the latest finish is the critical path. CPU that no
    step recorded (interpreter exit, the parent's bookkeeping) is added at the end, serially.
    """
    by_pid: dict[int, list[dict]] = {}
    for e in events:
        by_pid.setdefault(e["pid"], []).append(e)
    parent = next(e["pid"] for e in events if e["what"] == "start-up")
    carry_out: dict[int, float] = {}  # part -> when its onward carry is written
    steps: dict[str, float] = {}
    # The parent's steps before the parts, then each worker's in order, then the parent's after.
    chain_before = [
        e
        for e in by_pid[parent]
        if e["what"] not in WAITING and e["part"] is None and e["what"] not in ("stitch", "publish")
    ]
    clock = 0.0
    for e in sorted(chain_before, key=lambda e: e["end"]):
        clock += e["cpu"]
        steps[e["what"]] = steps.get(e["what"], 0.0) + e["cpu"]
    workers_start = clock
    part_events = sorted((e for e in events if e["part"] is not None), key=lambda e: e["end"])
    last = dict.fromkeys(by_pid, workers_start)
    waiting: list[dict] = []
    written: dict[int, float] = {}  # part -> when its piece is written (its last "write" so far)

    def unwritten(part: int) -> bool:  # a "join" needs its piece's every write
        return part not in written or any(w["what"] == "write" and w["part"] == part for w in waiting)

    for e in part_events:  # a "carry in" may be logged before the "carry out" it needs: it waits
        waiting.append(e)
        progress = True
        while waiting and progress:
            progress = False
            blocked: set[int] = set()  # processes whose earlier step waits: their later ones too
            for w in list(waiting):
                if (
                    w["pid"] in blocked
                    or (w["what"] == "carry in" and w["part"] - 1 not in carry_out)
                    or (w["what"] == "join" and unwritten(w["part"]))
                ):
                    blocked.add(w["pid"])
                    continue
                ready = last[w["pid"]]
                if w["what"] == "carry in":
                    ready = max(ready, carry_out[w["part"] - 1])
                elif w["what"] == "join":
                    ready = max(ready, written[w["part"]])
                done = ready + w["cpu"]
                last[w["pid"]] = done
                if w["what"] == "carry out":
                    carry_out[w["part"]] = done
                elif w["what"] == "write":
                    written[w["part"]] = max(written.get(w["part"], 0.0), done)
                steps[w["what"]] = steps.get(w["what"], 0.0) + w["cpu"]
                waiting.remove(w)
                progress = True
    clock = max(last.values())
    for e in by_pid[parent]:
        if e["what"] in ("stitch", "publish"):
            clock += e["cpu"]
            steps[e["what"]] = steps.get(e["what"], 0.0) + e["cpu"]
    recorded = sum(e["cpu"] for e in events if e["what"] not in WAITING)
    parent_parts = sum(e["cpu"] for e in by_pid[parent] if e["what"] in WAITING)
    nested = sum(
        e["cpu"]
        for e in by_pid[parent]
        if e["what"] not in WAITING
        and any(w["start"] <= e["start"] and e["end"] <= w["end"] for w in by_pid[parent] if w["what"] in WAITING)
    )
    steps["parent while parts run"] = max(parent_parts - nested, 0.0)
    rest = max(total_cpu - recorded - steps["parent while parts run"], 0.0)
    steps["not in any step"] = rest
    per_process = {pid: sum(e["cpu"] for e in es if e["what"] not in WAITING) for pid, es in by_pid.items()}
    return {
        "critical": clock + rest,
        "before parts": workers_start,
        "steps": steps,
        "per_process": per_process,
        "carry wait s": sum(e["end"] - e["start"] for e in events if e["what"] == "carry wait"),
    }


def peak_rss(sessions: int, workers: int, days: float | None = None) -> tuple[int, float]:
    """(beacons, peak RSS MiB of its largest process) of a run measured from a small, fresh process:
    on Linux a child keeps across exec the peak of the process it was forked from."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); from pathlib import Path; import tempfile\n"
        "from bench_workers import command\n"
        f"d = Path(tempfile.mkdtemp(dir={str(tempfile.gettempdir())!r})); "
        f"r = command({sessions}, d / 'e.parquet', {workers}, days={days!r})\n"
        "print(r['beacons'], r['rss']); import shutil; shutil.rmtree(d)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1])


def print_paths(one: dict, two: dict) -> None:
    """CPU seconds per step and process, and the critical path, of the runs shown: the speed-up
    as a quiet machine would show it, whatever the load now."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    names = list(dict.fromkeys([*one["path"]["steps"], *two["path"]["steps"]]))
    print(f"CPU seconds per step (timeline of the runs above){'--workers 1':>16}{'--workers 2':>14}")
    for name in names:
        print(f"  {name:48}{one['path']['steps'].get(name, 0.0):14.2f}{two['path']['steps'].get(name, 0.0):14.2f}")
    for r, w in ((one, 1), (two, 2)):
        procs = ", ".join(f"{cpu:.2f}" for cpu in r["path"]["per_process"].values())
        print(f"  --workers {w}: CPU s per process {procs}; carry waits {r['path']['carry wait s']:.2f} wall s")
    print(f"{'':50}{'--workers 1':>14}{'--workers 2':>14}")
    estimate = {}
    for label, key in (("total CPU s", "cpu"), ("critical path, CPU s", "critical")):
        print(
            f"  {label:48}{(one if key == 'cpu' else one['path'])[key]:14.2f}"
            f"{(two if key == 'cpu' else two['path'])[key]:14.2f}"
        )
    print(
        f"  {'  of which before the parts start':48}{one['path']['before parts']:14.2f}"
        f"{two['path']['before parts']:14.2f}"
    )
    for r, w in ((one, 1), (two, 2)):
        # On `cores` idle cores a run takes at least its critical path and its CPU shared out.
        estimate[w] = max(r["path"]["critical"], r["cpu"] / cores)
    print(f"  {f'quiet-machine wall estimate, {cores} cores':48}{estimate[1]:14.2f}{estimate[2]:14.2f}")
    print(f"--workers 2 over --workers 1 on a quiet machine (estimate from CPU s): {estimate[1] / estimate[2]:.2f}x")


def workers_runs(sessions: int, repeat: int, tmp: Path, protocol: str) -> tuple[dict, dict]:
    """`--workers 1` and `--workers 2` runs of `sessions`, alternating, each the fastest of `repeat`."""
    best: dict[int, dict] = {}
    for i in range(max(1, repeat)):
        for workers in (1, 2):
            out = tmp / f"w{workers}.{i}.parquet"
            r = command(sessions, out, workers, timeline=tmp / "timeline.jsonl", protocol=protocol)
            out.unlink()
            if workers not in best or r["wall"] < best[workers]["wall"]:
                best[workers] = r
    assert best[1]["beacons"] == best[2]["beacons"]
    return best[1], best[2]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fair_share_ceiling(others: float, cores: int) -> float:
    """The most `--workers 2` can gain over `--workers 1` in wall time while `others` processes
    (the load average before the runs) keep running: shared fairly, one process gets
    min(1, cores / (1 + others)) cores and two get min(2, 2 cores / (2 + others)). One busy
    process beside the run on 2 cores leaves 4/3 to 1: 1.33x, whatever the run does."""
    one = min(1.0, cores / (1.0 + others))
    two = min(2.0, 2.0 * cores / (2.0 + others))
    return two / one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=1_000_000)
    # The figures are legacy beacons; named, since the command's default protocol is KAVA.
    ap.add_argument("--protocol", default="legacy", help="legacy, kava or both [legacy]")
    ap.add_argument(
        "--big",
        type=int,
        default=4_000_000,
        help="sessions of a second --workers 2 vs 1 measure, of the size workers are for (0: none) [4,000,000]",
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs of each timed measure, the fastest counts [2]")
    ap.add_argument("--memory", default="", help="comma list of session counts for peak-RSS runs (the rate grows)")
    ap.add_argument("--memory-days", default="", help="comma list of days for peak-RSS runs at the scenario's rate")
    args = ap.parse_args()

    from bench_beacons import plain_loop

    others = os.getloadavg()[0]
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        command(2000, tmp / "warm.parquet", 1, protocol=args.protocol)  # numba caches compiled, files warm
        one, two = workers_runs(args.sessions, args.repeat, tmp, args.protocol)
        big = workers_runs(args.big, args.repeat, tmp, args.protocol) if args.big else None
        base_sessions = 20_000
        import pyarrow as pa
        import pyarrow.parquet as pq

        command(20_000, tmp / "cols.parquet", 1, protocol=args.protocol)
        written = pq.read_table(tmp / "cols.parquet")
        schema = pa.schema([f for f in written.schema if written.column(f.name).null_count < written.num_rows])
        per_session = written.num_rows / 20_000
        del written
        n_b, _, cpu_b = plain_loop(base_sessions, tmp / "plain.jsonl", per_session, schema)
        n_n, _, cpu_n = plain_loop(base_sessions, tmp / "narrow.jsonl", per_session)
    print(f"load average after:  {load_average()}")

    rate = lambda n, s: n / s if s > 0 else float("inf")  # noqa: E731
    plain = rate(n_b, cpu_b)
    print(
        f"player-sim generate, default mix, {args.protocol}, {args.sessions:,} sessions -> {one['beacons']:,} beacons, "
        f"parquet; each the fastest of {max(1, args.repeat)} runs"
    )
    print(f"{'':34}{'wall s':>9}{'CPU s':>9}{'beacons/CPU s':>15}{'x plain loop':>14}{'peak RSS MiB':>14}")
    for name, r in (("--workers 1", one), ("--workers 2", two)):
        print(
            f"{name:34}{r['wall']:9.2f}{r['cpu']:9.2f}{rate(r['beacons'], r['cpu']):15,.0f}"
            f"{rate(r['beacons'], r['cpu']) / plain:14.1f}{r['rss']:14.0f}"
        )
    print(f"{f'plain Python + Faker loop ({len(schema)} columns)':34}{'':9}{cpu_b:9.2f}{plain:15,.0f}{1.0:14.1f}")
    narrow = rate(n_n, cpu_n)
    print(f"{'plain Python + Faker loop (11 fields)':34}{'':9}{cpu_n:9.2f}{narrow:15,.0f}{narrow / plain:14.1f}")
    print(
        f"--workers 2 over --workers 1, wall: {one['wall'] / two['wall']:.2f}x (target 1.6x; "
        f"load average {load_average()})"
    )
    print(
        f"  fair sharing with the load seen before the runs ({others:.2f}) on both of them caps it at "
        f"{fair_share_ceiling(others, os.cpu_count() or 1):.2f}x: a quiet-machine figure needs a load near 0"
    )
    print_paths(one, two)
    if big is not None:
        print(
            f"the same at {args.big:,} sessions ({big[0]['beacons']:,} beacons): the start-up of a run and its "
            f"last, shorter part weigh less in runs of the size workers are for"
        )
        print(
            f"--workers 2 over --workers 1, wall: {big[0]['wall'] / big[1]['wall']:.2f}x "
            f"(load average {load_average()})"
        )
        print_paths(*big)
    print(
        f"--workers 1 over the plain loop, per CPU second: {rate(one['beacons'], one['cpu']) / plain:.1f}x "
        f"the same columns, {rate(one['beacons'], one['cpu']) / narrow:.1f}x 11 fields (target 50x)"
    )
    if args.memory:
        sizes = [int(x) for x in args.memory.split(",")]
        print("peak RSS of the largest process of a run (parquet):")
        memory_runs(sizes, peak_rss, lambda n: f"{n:,} sessions")
    if args.memory_days:
        lengths = [float(x) for x in args.memory_days.split(",")]
        print("peak RSS of the largest process of a run (parquet), the scenario's sessions a day:")
        memory_runs(lengths, lambda d, w: peak_rss(0, w, d), lambda d: f"{d:g} days")


def memory_runs(sizes: list, run, name) -> None:
    """Peak RSS of `run(size, workers)` for each size, one and two workers, and how it grows."""
    peaks = {}
    for size in sizes:
        for workers in (1, 2):
            beacons, peaks[size, workers] = run(size, workers)
            print(f"  {name(size):>22} {beacons:>13,} beacons  --workers {workers}  {peaks[size, workers]:8.0f} MiB")
    print_growth(peaks, sizes, name)


def print_growth(peaks: dict, sizes: list, name) -> None:
    """The largest run's peak RSS over the smallest's, per worker count (flat: 1.0x)."""
    if len(sizes) < 2:
        return
    small, large = min(sizes), max(sizes)
    for workers in (1, 2):
        print(
            f"peak RSS, {name(large)} over {name(small)}, --workers {workers}: "
            f"{peaks[large, workers] / peaks[small, workers]:.2f}x (target: flat, 1.0x)"
        )


if __name__ == "__main__":
    main()
