"""Player model throughput: sessions/s per core against a plain per-session Python loop, same run.

    python bench/bench_sessions.py [--sessions 1000000] [--baseline 40000] [--no-memory]

Prints: numba compile time (cold cache, in a child process), the compiled model's
sessions per CPU second on one core (typical VOD, after a warm-up; CPU time, because the
machine is shared and wall time drifts with other load), the same figure for an obvious
per-session Python loop (`random`, one dict per action) of the same model, their ratio,
and the peak RSS of child processes that stream 1 M and 5 M sessions without keeping
them (memory must stay flat as the count grows).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.scenario.model import Scenario  # noqa: E402

TARGET_RATE = 100_000
TARGET_RATIO = 20.0


def plain_python_sessions(n: int, seed: int = 1) -> tuple[int, float]:
    """Typical VOD written the obvious way: one session at a time, one dict per action.

    Like for like with the compiled model: arrival times, a viewer by activity (Zipf) and
    their identity, an entry by popularity (Zipf), the start sequence, the watched fraction,
    stalls, pauses, flavor switches, tab changes and seeks in playing time, the per-play
    interactions, and the same fields per session and per action as a SessionChunk.
    Returns the number of actions and the CPU seconds the loop took (identity pools
    excluded, as the compiled model's population is).
    """
    from faker import Faker

    rnd = random.Random(seed)
    fake = Faker()
    fake.seed_instance(seed)
    b = Scenario().behaviour
    viewers = [
        {
            "ua": fake.user_agent(),
            "ip": fake.ipv4_public(),
            "user": fake.email() if rnd.random() < 0.85 else None,
            "country": rnd.choice(["US", "GB", "DE", "IN"]),
            "os": "windows",
            "browser": "chrome",
            "device": rnd.choices(["desktop", "mobile", "tablet"], [0.70, 0.25, 0.05])[0],
        }
        for _ in range(2000)
    ]
    viewer_cum = list(itertools.accumulate(1 / (k + 1) for k in range(len(viewers))))
    referrers = [f"https://learn.example.edu/course/{n}/lecture" for n in range(1, 51)]
    durations = [min(max(math.exp(math.log(300) + 0.9 * rnd.gauss(0, 1)), 30), 3600) for _ in range(200)]
    entry_cum = list(itertools.accumulate(1 / (k + 1) for k in range(200)))
    one_offs = [
        ("ENTER_FULLSCREEN", 0.15),
        ("SPEED", b.speed.share),
        ("CAPTIONS", b.captions.share),
        ("SOURCE_SELECTED", b.manual_source_share),
        ("SHARE", b.clicks.share),
        ("DOWNLOAD", b.clicks.download),
        ("REPORT", b.clicks.report),
        ("RELATED_OPEN", b.clicks.related),
        ("INFO", b.clicks.info),
    ]
    buckets = [(60, 0.66), (120, 0.56), (600, 0.50), (1200, 0.39), (float("inf"), 0.22)]
    hazard = {"desktop": 0.09, "mobile": 0.03, "tablet": 0.03}
    ladder = [400, 800, 1500, 3000, 6000]
    hourly = [
        0.69,
        0.43,
        0.26,
        0.26,
        0.26,
        0.43,
        1.04,
        2.59,
        5.18,
        7.33,
        8.20,
        8.63,
        7.77,
        8.20,
        8.63,
        8.20,
        6.90,
        5.18,
        3.88,
        3.88,
        4.31,
        3.88,
        2.59,
        1.29,
    ]
    total_actions = 0
    batch = []
    started = time.process_time()
    hours = rnd.choices(range(24), weights=hourly, k=n)
    starts = sorted(1_700_000_000 + 3600 * h + rnd.random() * 3600 for h in hours)
    for i in range(n):
        viewer = rnd.choices(range(len(viewers)), cum_weights=viewer_cum)[0]
        who = viewers[viewer]
        entry = rnd.choices(range(200), cum_weights=entry_cum)[0]
        duration = durations[entry]
        device = who["device"]
        state = {"bitrate": ladder[4], "screen": 1, "sound": 2, "tab": 2, "speed": 1.0}
        actions = []

        def act(kind, t, pos, value=0.0, ad_pos=0, ad_index=0, actions=actions, i=i, state=state):
            actions.append(
                {
                    "session": i,
                    "kind": kind,
                    "t": t,
                    "pos": pos,
                    "value": value,
                    "ad_pos": ad_pos,
                    "ad_index": ad_index,
                    **state,
                }
            )

        session = {
            "session_seq": i,
            "scenario": 0,
            "viewer": viewer,
            "returning": rnd.random() < 0.5,
            "entry": entry,
            "duration": duration,
            "live": False,
            "start": starts[i],
            "tz_offset_min": -300,
            "device": device,
            "os": who["os"],
            "browser": who["browser"],
            "country": who["country"],
            "user_agent": who["ua"],
            "ip": who["ip"],
            "user_id": who["user"],
            "referrer": rnd.choice(referrers),
            "autoplay": False,
            "intended_fraction": None,
            "impaired": False,
            "scripted": -1,
            "actions": actions,
        }
        t = pos = 0.0
        rung = 4
        act("LOAD", t, pos)
        if rnd.random() >= b.play_rate:
            act("QUIT", rnd.expovariate(1 / 40), pos)
            session["outcome"] = "NO_PLAY"
            batch.append(session)
            total_actions += len(actions)
            continue
        t += 3.0 * math.exp(0.8 * rnd.gauss(0, 1))
        act("PLAY_REQUEST", t, pos)
        startup = math.exp(math.log(1.2) + 0.6 * rnd.gauss(0, 1))
        if rnd.random() < b.start_failure:
            act("ERROR", t + startup, pos, 1002)
            act("QUIT", t + startup + 3, pos)
            session["outcome"] = "START_FAILURE"
            batch.append(session)
            total_actions += len(actions)
            continue
        lam = hazard[device]
        if startup > 2 and rnd.random() < 1 - math.exp(-lam * (startup - 2)):
            act("QUIT", t + 2 + rnd.random() * (startup - 2), pos)
            session["outcome"] = "ABANDONED_STARTUP"
            batch.append(session)
            total_actions += len(actions)
            continue
        t += startup
        act("PLAYING", t, pos, startup)
        complete = next(share for limit, share in buckets if duration <= limit)
        u = rnd.random()
        f = (
            rnd.uniform(0, 0.05)
            if u < 0.12
            else 1.0
            if u < 0.12 + complete
            else 0.05 + 0.95 * rnd.betavariate(1.0, 1.3)
        )
        session["intended_fraction"] = f
        budget = float("inf") if f >= 1 else f * duration
        impaired = session["impaired"] = rnd.random() < 0.30
        stall_rate = (0.5 if impaired else 0.02) / 60
        rate = stall_rate + 0.15 / 60 + 0.2 / 60 + 0.05 / 60
        horizon = budget if budget < float("inf") else duration
        pending = [(rnd.random() * horizon, kind) for kind, share in one_offs if rnd.random() < share]
        pending += [(rnd.random() * horizon, "SEEK") for _ in range(_poisson(rnd, 0.8))]
        pending.sort()
        played = 0.0
        outcome = "PARTIAL"
        while True:
            dt_event = rnd.expovariate(rate)
            dt_end, dt_budget = duration - pos, budget - played
            dt_next = pending[0][0] - played if pending else float("inf")
            dt = min(dt_event, dt_end, dt_budget, dt_next)
            t, pos, played = t + dt, pos + dt, played + dt
            if dt == dt_end:
                act("ENDED", t, duration)
                outcome = "COMPLETED"
                t += rnd.expovariate(1 / 5)
                act("QUIT", t, duration)
                break
            if dt == dt_budget:
                act("QUIT", t, pos)
                break
            if dt == dt_next:
                _, kind = pending.pop(0)
                if kind == "SEEK":
                    if rnd.random() < 0.55:
                        target = max(pos - rnd.uniform(10, 60), 0.0)
                    else:
                        target = min(pos + rnd.uniform(0.1, 0.4) * duration, duration)
                    act("SEEK", t, pos, target)
                    pos = target
                else:
                    act(kind, t, pos)
                continue
            which = rnd.random() * rate
            if which < stall_rate:
                length = math.exp(math.log(2.0) + rnd.gauss(0, 1))
                act("STALL_START", t, pos)
                if rnd.random() < 0.03:
                    act("QUIT", t + rnd.random() * length, pos)
                    outcome = "STALL_QUIT"
                    break
                t += length
                act("STALL_END", t, pos, length)
            elif which < stall_rate + 0.15 / 60:
                act("PAUSE", t, pos)
                t += math.exp(math.log(8.0) + 1.2 * rnd.gauss(0, 1))
                act("RESUME", t, pos)
            elif which < stall_rate + 0.35 / 60:
                rung = max(0, min(4, rung + rnd.choice((-1, 1))))
                state["bitrate"] = ladder[rung]
                act("FLAVOR_SWITCH", t, pos, ladder[rung])
            else:
                state["tab"] = 1
        session["outcome"] = outcome
        batch.append(session)
        total_actions += len(actions)
        if len(batch) >= 4096:  # hand a batch downstream, as a streaming loop would
            batch = []
    return total_actions, time.process_time() - started


def _poisson(rnd: random.Random, mean: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-mean)
    while True:
        p *= rnd.random()
        if p < limit:
            return k
        k += 1


def _child(code: str, env: dict | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return out.stdout.strip()


COMPILE_CODE = """
import time
t = time.perf_counter()
from sim.scenario.model import Scenario
from sim.player.model import generate_sessions
for _ in generate_sessions(Scenario(), seed=1, sessions=500, days=1):
    pass
first = time.perf_counter() - t
t = time.perf_counter()
for _ in generate_sessions(Scenario(), seed=2, sessions=500, days=1):
    pass
print(first - (time.perf_counter() - t))
"""

# The child's own peak RSS (VmHWM): ru_maxrss would keep, across exec, the peak of this process.
MEMORY_CODE = """
from sim.scenario.model import Scenario
from sim.player.model import generate_sessions
for _ in generate_sessions(Scenario(), seed=2, sessions=2000, days=1):   # load (or compile) the kernels first
    pass
n = 0
for chunk in generate_sessions(Scenario(), seed=1, sessions={n}):
    n += chunk.n_sessions
print(n, next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="sessions for the compiled model")
    parser.add_argument("--baseline", type=int, default=40_000, help="sessions for the plain Python loop")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1 M / 5 M peak-RSS runs")
    args = parser.parse_args()

    from sim.player.model import generate_sessions, prepare_run

    with tempfile.TemporaryDirectory() as cache:
        compile_s = float(_child(COMPILE_CODE, {"NUMBA_CACHE_DIR": cache}))
    print(f"numba compile (cold cache):          {compile_s:8.2f} s")

    sc = Scenario()
    for _ in generate_sessions(sc, seed=99, sessions=20_000, days=1):  # warm-up: load compiled kernels
        pass
    t = time.perf_counter()
    run = prepare_run(sc, 1, sessions=args.sessions)
    prepare_s = time.perf_counter() - t
    t = time.process_time()
    n = actions = 0
    for chunk in generate_sessions(sc, seed=1, sessions=args.sessions, population=run.population):
        n += chunk.n_sessions
        actions += chunk.n_actions
    model_s = time.process_time() - t
    model_rate = n / model_s
    print(f"population + plan ({args.sessions:,} sessions):  {prepare_s:8.2f} s")
    print(
        f"compiled model:  {n:>10,} sessions {model_s:7.2f} s  {model_rate:>10,.0f} sessions/s  "
        f"({actions / n:.1f} actions/session)"
    )

    base_actions, base_s = plain_python_sessions(args.baseline)
    base_rate = args.baseline / base_s
    print(
        f"plain Python:    {args.baseline:>10,} sessions {base_s:7.2f} s  {base_rate:>10,.0f} sessions/s  "
        f"({base_actions / args.baseline:.1f} actions/session)"
    )
    ratio = model_rate / base_rate
    print(f"ratio compiled / plain:              {ratio:8.1f} x   (target >= {TARGET_RATIO:.0f} x)")
    print(f"sessions/s per core:                 {model_rate:8,.0f}     (target >= {TARGET_RATE:,})")

    if not args.no_memory:
        for count in (1_000_000, 5_000_000):
            got, rss = _child(MEMORY_CODE.replace("{n}", str(count))).split()
            print(f"peak RSS streaming {int(got):>9,} sessions: {float(rss):8.0f} MiB")
    ok = model_rate >= TARGET_RATE and ratio >= TARGET_RATIO
    print("targets met" if ok else "TARGETS MISSED")


if __name__ == "__main__":
    main()
