"""Beacons per second per core, scenario to file, against a plain Python + Faker loop in the same run.

    python bench/bench_beacons.py                  # default mix, legacy, 1M sessions (about 2 min)
    python bench/bench_beacons.py --sessions 200000 --memory 2000000,23300000
    python bench/bench_beacons.py --protocol kava --sessions 100000     # KAVA only
    python bench/bench_beacons.py --protocol kava --sessions 100000 --baseline-tree /tmp/base --repeat 5

Prints: the pipeline's rate to Parquet and to JSON lines (warm-up excluded, one process,
Arrow held to one thread; each measure the fastest of --repeat runs), the plain loop's
rate (random draws, Faker per session, one json.dumps per event) both writing the columns
the pipeline fills and writing 11 fields, the ratios to each, where the pipeline's time
goes by stage, and with --memory the peak RSS of streamed runs of growing size (flat =
memory does not grow with the run). Absolute numbers drift on a shared machine; the
ratios are the result.

With --baseline-tree (another checkout of player-sim, e.g. a `git worktree` of an older
commit) it measures only the Parquet rate, of that tree and of this one, each run in a fresh
process, the two trees alternating (--repeat rounds), and prints both medians and their ratio.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# BENCH_TREE: the checkout whose `sim` is measured (set by --baseline-tree for its child runs)
ROOT = Path(os.environ.get("BENCH_TREE") or Path(__file__).resolve().parent.parent).resolve()
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

import sim.generate as generate_module  # noqa: E402
from sim.generate import CHUNK_SESSIONS, SendOrderMerge, file_beacons, generate, stream_rows  # noqa: E402
from sim.player.model import chunk_partitions, make_chunk, prepare_run  # noqa: E402
from sim.scenario.loader import load  # noqa: E402
from sim.sinks import EventsBuilder, open_sink  # noqa: E402

SCENARIO = ROOT / "scenarios" / "default-mix.yaml"


def cpu() -> float:
    return time.process_time()


PROTOCOL = "legacy"  # --protocol: the protocol every run of this bench sends


def pipeline(components, sessions: int, fmt: str, out: Path, seed: int = 7) -> tuple[int, float, float]:
    """(beacons, wall s, cpu s) of one end-to-end run."""
    w, c = time.perf_counter(), cpu()
    stats = generate(components, seed=seed, sessions=sessions, protocol=PROTOCOL, fmt=fmt, out=out)
    return stats.beacons, time.perf_counter() - w, cpu() - c


# Columns a plain loop fills per event; the others hold per session.
PER_EVENT = {"ts", "eventType", "eventTimestamp", "currentPoint", "seek", "isFirstInSession", "historyEvents"}


def plain_loop(
    sessions: int, out: Path, events_per_session: float, schema: pa.Schema | None = None
) -> tuple[int, float, float]:
    """The baseline: each session drawn with `random`, identities from Faker, one json.dumps
    per event. With `schema` an event carries every column of it (the ones the pipeline
    fills: same names, same kinds of value); without, 11 fields."""
    from faker import Faker

    fake = Faker()
    Faker.seed(7)
    rng = random.Random(7)
    fields = [(f.name, f.type) for f in schema if f.name not in PER_EVENT] if schema is not None else None
    n = 0
    w, c = time.perf_counter(), cpu()
    with open(out, "w") as fh:
        t = 1_793_577_600.0
        for _ in range(sessions):
            t += rng.expovariate(1 / 4.3)
            session = _session_row(fake, rng, fields)
            events = max(1, int(rng.expovariate(1 / events_per_session)))
            for k in range(events):
                event = {"ts": t + 10 * k, "eventType": min(k + 1, 7), "currentPoint": 10_000 * k}
                if fields is not None:
                    event.update(
                        eventTimestamp=int(1000 * (t + 10 * k)),
                        seek=False,
                        isFirstInSession=k == 0,
                        historyEvents=f"{rng.getrandbits(24):024b}-{k + 1}-{k + 1}",
                    )
                fh.write(json.dumps({**session, **event}) + "\n")
                n += 1
    return n, time.perf_counter() - w, cpu() - c


def _session_row(fake, rng: random.Random, fields: list | None) -> dict:
    """A plain loop's per-session values: Faker identities, `random` for the rest."""
    if fields is None:
        return {
            "protocol": "legacy",
            "sessionId": fake.uuid4(),
            "partnerId": 2504201,
            "entryId": f"1_{rng.randrange(4500):08x}",
            "userId": fake.user_name(),
            "duration": rng.lognormvariate(5.7, 0.9),
            "user_agent": fake.user_agent(),
            "client_ip": fake.ipv4(),
        }
    identity = {
        "sessionId": fake.uuid4(),
        "user_agent": fake.user_agent(),
        "client_ip": fake.ipv4(),
        "userId": fake.user_name(),
        "page_url": fake.url(),
        "referrer": fake.url(),
        "cookie": "uv=uv_" + fake.md5(),
        "entryId": f"1_{rng.randrange(4500):08x}",
        "truth_country": fake.country_code(),
    }
    row = {}
    for name, kind in fields:
        if name in identity:
            row[name] = identity[name]
        elif pa.types.is_dictionary(kind) or pa.types.is_string(kind):
            row[name] = rng.choice(("legacy", "html5", "vod", "mobile", "ended", "v2.101"))
        elif pa.types.is_boolean(kind):
            row[name] = rng.random() < 0.5
        elif pa.types.is_integer(kind):
            row[name] = rng.randrange(1 << 24)
        else:
            row[name] = rng.lognormvariate(5.7, 0.9)
    return row


def stages(components, sessions: int, out: Path) -> dict[str, float]:
    """CPU seconds per stage of one streamed run like `generate`'s (same chunks), each stage
    timed where the pipeline calls it: the run's fixed set-up (population, arrival plan),
    player model, policy, events rows, send order (sorts and merge), Parquet write, and the
    rest of the run's time."""
    policy = f"{PROTOCOL} policy (beacons)"
    t = dict.fromkeys(
        (
            "population, arrival plan",
            "player model (sessions)",
            policy,
            "events rows",
            "send order (sort, merge)",
            "parquet write",
        ),
        0.0,
    )
    started = cpu()

    def timed(stage: str, fn):
        def call(*args, **kwargs):
            c = cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                t[stage] += cpu() - c

        return call

    c = cpu()
    run = prepare_run(components, 7, sessions=sessions)
    t["population, arrival plan"] = cpu() - c

    def chunks():
        for parts in chunk_partitions(run.plan, CHUNK_SESSIONS):
            c = cpu()
            chunk = make_chunk(run, parts)
            t["player model (sessions)"] += cpu() - c
            yield chunk

    schema = []
    order = "send order (sort, merge)"
    patched = {
        (EventsBuilder, "table"): "events rows",
        (generate_module, "send_order"): order,
        (SendOrderMerge, "push"): order,
        (SendOrderMerge, "flush"): order,
    }
    originals = {place: getattr(*place) for place in patched}
    for (owner, name), stage in patched.items():
        setattr(owner, name, timed(stage, originals[owner, name]))
    try:
        rows = stream_rows(
            chunks(), protocol=PROTOCOL, fmt="parquet", on_schema=schema.append, beacons_of=timed(policy, file_beacons)
        )
        first = next(rows)
        with open_sink("parquet", out, schema[0]) as sink:
            for table in itertools.chain([first], rows):
                c = cpu()
                sink.write(table)
                t["parquet write"] += cpu() - c
            c = cpu()
        t["parquet write"] += cpu() - c  # the last row group and the footer, written on closing
    finally:
        for (owner, name), fn in originals.items():
            setattr(owner, name, fn)
    t["the rest (glue)"] = cpu() - started - sum(t.values())
    return t


# A child's own peak RSS in KiB. Not ru_maxrss: on Linux a process keeps, across exec, the peak
# of the memory it was spawned from, so a child of this (large) process would report ours.
PEAK_KIB = "next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))"


def peak_rss(sessions: int, fmt: str) -> tuple[int, float]:
    """(beacons, peak RSS MiB) of a streamed run in a fresh process."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import tempfile, os\n"
        "from sim.generate import generate\nfrom sim.scenario.loader import load\n"
        f"d = tempfile.mkdtemp(); s = generate(load({str(SCENARIO)!r}), seed=7, sessions={sessions}, "
        f"protocol={PROTOCOL!r}, fmt={fmt!r}, out=os.path.join(d, 'e.{fmt}'))\n"
        f"print(s.beacons, {PEAK_KIB})\n"
        "import shutil; shutil.rmtree(d)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1]) / 1024


def fastest(repeat: int, run, out: Path) -> tuple[int, float, float]:
    """(beacons, wall s, cpu s) of the fastest (least CPU) of `repeat` calls of run(path).
    Each call writes a new file: replacing a large one would add the kernel's freeing of the
    old one. The previous file is deleted between calls, untimed; the last ends up at `out`."""
    best, path = None, out
    for i in range(max(1, repeat)):
        if i:
            path.unlink()
        path = out.with_name(f"{out.stem}.{i}{out.suffix}")
        result = run(path)
        best = result if best is None or result[2] < best[2] else best
    path.rename(out)
    return best


def one_rate(sessions: int) -> None:
    """A child run of --baseline-tree: warm up (numba caches), one Parquet run, its figures as JSON."""
    components = load(SCENARIO)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline(components, 2_000, "parquet", Path(tmp) / "warm.parquet")
        beacons, wall, cpu_s = pipeline(components, sessions, "parquet", Path(tmp) / "e.parquet")
    print(json.dumps({"beacons": beacons, "wall": wall, "cpu": cpu_s, "sim": str(Path(sys.modules["sim"].__file__))}))


def against_tree(baseline: Path, sessions: int, rounds: int) -> None:
    """Parquet beacons/s/core of `baseline` and of this tree, alternating in fresh processes."""
    trees = {"baseline": baseline.resolve(), "this tree": ROOT}
    rates: dict[str, list[float]] = {name: [] for name in trees}
    load_before = os.getloadavg()
    for i in range(max(1, rounds)):
        # alternate which goes first, so a load that changes within a round weighs on both
        for name in list(trees) if i % 2 == 0 else list(trees)[::-1]:
            env = {**os.environ, "BENCH_TREE": str(trees[name]), "PYTHONPATH": str(trees[name])}
            out = subprocess.run(
                [sys.executable, __file__, "--protocol", PROTOCOL, "--sessions", str(sessions), "--one-rate"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            run = json.loads(out.strip().splitlines()[-1])
            if not run["sim"].startswith(str(trees[name])):
                raise SystemExit(f"{name}: imported {run['sim']}, not the tree {trees[name]}")
            rates[name].append(run["beacons"] / run["cpu"])
            print(
                f"  round {i + 1} {name:10} {run['beacons']:>10,} beacons {rates[name][-1]:>12,.0f} beacons/s/core",
                flush=True,
            )
    load_after = os.getloadavg()
    base, this = (statistics.median(rates[name]) for name in trees)
    per_round = statistics.median(t / b for t, b in zip(rates["this tree"], rates["baseline"]))
    print(f"default mix, {PROTOCOL}, {sessions:,} sessions, parquet, {len(rates['baseline'])} rounds")
    print(f"  baseline {trees['baseline']}: median {base:,.0f} beacons/s/core")
    print(f"  this tree {ROOT}: median {this:,.0f} beacons/s/core")
    print(
        f"  ratio of medians {this / base:.3f} ({100 * (this / base - 1):+.1f} %), "
        f"median of per-round ratios {per_round:.3f}"
    )
    print(
        f"  load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # A run's fixed set-up (population, arrival plan) takes about 0.1 s: small runs mostly measure
    # it. 1M sessions (4.3M beacons) is the steady rate the per-core target is about.
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--memory", default="", help="comma list of session counts for peak-RSS runs")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measure, the fastest counts [3]")
    ap.add_argument(
        "--protocol",
        choices=("legacy", "kava", "both"),
        default="legacy",
        help="the beacons generated (the plain loops stay the same) [legacy]",
    )
    ap.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="another checkout: compare its Parquet rate with this tree's, alternating",
    )
    ap.add_argument("--one-rate", action="store_true", help=argparse.SUPPRESS)  # a child of --baseline-tree
    args = ap.parse_args()
    global PROTOCOL
    PROTOCOL = args.protocol
    if args.one_rate:
        one_rate(args.sessions)
        return
    if args.baseline_tree is not None:
        against_tree(args.baseline_tree, args.sessions, args.repeat)
        return

    components = load(SCENARIO)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipeline(components, 2_000, "parquet", tmp / "warm.parquet")  # numba compile, caches
        pipeline(components, 2_000, "jsonl", tmp / "warm.jsonl")
        n_pq, wall_pq, cpu_pq = fastest(
            args.repeat, lambda out: pipeline(components, args.sessions, "parquet", out), tmp / "e.parquet"
        )
        # JSON lines take about 1.2 KB a row: 200k sessions (1 GB) show the steady rate without
        # writing 5 GB for a 1M-session run.
        jsonl_sessions = min(args.sessions, 200_000)
        n_js, wall_js, cpu_js = fastest(
            args.repeat, lambda out: pipeline(components, jsonl_sessions, "jsonl", out), tmp / "e.jsonl"
        )
        per_session = n_pq / args.sessions
        # The plain loops' rate does not depend on the count (no set-up is timed); 20k sessions
        # (86k events) are plenty, and take the same-row loop about 10 s.
        base_sessions = min(max(1000, args.sessions // 10), 20_000)
        n_b, wall_b, cpu_b = fastest(
            args.repeat, lambda out: plain_loop(base_sessions, out, per_session), tmp / "plain.jsonl"
        )
        written = pq.read_table(tmp / "e.parquet")
        # the columns the pipeline fills (a JSON line leaves out the ones it never sends)
        schema = pa.schema([f for f in written.schema if written.column(f.name).null_count < written.num_rows])
        del written
        n_s, wall_s, cpu_s = fastest(
            args.repeat, lambda out: plain_loop(base_sessions, out, per_session, schema), tmp / "same.jsonl"
        )
        breakdown = stages(components, args.sessions, tmp / "s.parquet")

    rate = lambda n, s: n / s if s > 0 else float("inf")  # noqa: E731
    same, narrow = rate(n_s, cpu_s), rate(n_b, cpu_b)
    print(
        f"default mix, {PROTOCOL}, {args.sessions:,} sessions -> {n_pq:,} beacons ({per_session:.2f} per session); "
        f"each rate the fastest of {max(1, args.repeat)} runs"
    )
    print(f"{'':40}{'beacons/s/core':>17}{'wall beacons/s':>17}{'x same-row loop':>17}{'x 11-field loop':>17}")
    jsonl_label = "pipeline -> jsonl" + (f" ({jsonl_sessions:,} sessions)" if jsonl_sessions != args.sessions else "")
    for name, n, w, c in (
        ("pipeline -> parquet", n_pq, wall_pq, cpu_pq),
        (jsonl_label, n_js, wall_js, cpu_js),
        (f"plain loop, the same {len(schema)} columns", n_s, wall_s, cpu_s),
        ("plain loop, 11 fields", n_b, wall_b, cpu_b),
    ):
        print(f"{name:40}{rate(n, c):17,.0f}{rate(n, w):17,.0f}{rate(n, c) / same:17.1f}{rate(n, c) / narrow:17.1f}")
    total = sum(breakdown.values())
    print("where the parquet pipeline's CPU time goes:")
    for name, s in breakdown.items():
        print(
            f"  {name:30}{s:8.2f} s {100 * s / total:5.1f} %  "
            f"{rate(n_pq, s) if s else float('inf'):14,.0f} beacons/s alone"
        )
    if args.memory:
        print("peak RSS of streamed runs (parquet):")
        for sessions in (int(x) for x in args.memory.split(",")):
            beacons, mib = peak_rss(sessions, "parquet")
            print(f"  {sessions:>12,} sessions {beacons:>13,} beacons  {mib:8.0f} MiB")


if __name__ == "__main__":
    main()
