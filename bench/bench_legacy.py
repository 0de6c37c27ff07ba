"""Legacy stats.collect speed: the policy (sessions -> beacons) and the codec (beacon <-> request), per core.

    python bench/bench_legacy.py                   # 100k sessions per flavor
    python bench/bench_legacy.py --sessions 300000

Baselines measured in the same run: for the policy, a plain Python loop over the same
actions that builds one dict per beacon (the obvious implementation, without quartile
interpolation, history or ids); for the codec, `urllib.parse.urlencode` of the same
beacons' flat parameters and `parse_qsl` of its output. Prints rates and the ratios against
those baselines; absolute rates drift on a shared machine, the ratios are the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.player.model import generate_sessions  # noqa: E402
from sim.protocols.legacy.codec import ENCODINGS, beacon_at, decode, encode  # noqa: E402
from sim.protocols.legacy.policy import beacons  # noqa: E402
from sim.scenario.model import Scenario  # noqa: E402

PLAIN_EVENTS = {1: (1, 2), 2: (3,), 6: (17,), 7: (12,), 8: (13,), 9: (14,), 10: (15,), 23: (16,)}


def cpu() -> float:
    return time.process_time()


def plain_policy(chunk) -> int:
    """One dict per beacon from a Python loop over the actions."""
    out = []
    s, a = chunk.sessions, chunk.actions
    kind, t, pos = a["kind"].tolist(), a["t"].tolist(), a["pos"].tolist()
    for i, (first, n) in enumerate(zip(s["first_action"].tolist(), s["n_actions"].tolist())):
        start, entry = float(s["start"][i]), int(s["entry"][i])
        for j in range(first, first + n):
            for event_type in PLAIN_EVENTS.get(kind[j], ()):
                out.append(
                    {
                        "eventType": event_type,
                        "eventTimestamp": int((start + t[j]) * 1000),
                        "currentPoint": int(pos[j] * 1000),
                        "entryId": entry,
                        "partnerId": 2504201,
                    }
                )
    return len(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--codec-beacons", type=int, default=5000)
    args = ap.parse_args()

    print(f"{'':28}{'ours/s/core':>14}{'baseline/s':>14}{'x baseline':>12}")
    for flavor in ("kdp", "mwembed", "v7"):
        scenario = Scenario(player={"legacy_flavor": flavor}, behaviour={"play_rate": 0.6})
        chunks = list(generate_sessions([scenario], seed=5, sessions=args.sessions))
        beacons(chunks[0])  # compile / load the cached kernels
        c = cpu()
        made = [beacons(ch, with_kava=True) for ch in chunks]
        ours = sum(len(b) for b in made) / (cpu() - c)
        c = cpu()
        plain = sum(plain_policy(ch) for ch in chunks) / (cpu() - c)
        print(f"{flavor + ' policy':28}{ours:>14,.0f}{plain:>14,.0f}{ours / plain:>12.1f}")

        sample = [beacon_at(made[0], i) for i in range(min(args.codec_beacons, len(made[0])))]
        flat = [{**{f"event:{k}": v for k, v in b.fields.items()}, **b.params} for b in sample]
        c = cpu()
        queries = [urlencode(p) for p in flat]
        plain_enc = len(flat) / (cpu() - c)
        c = cpu()
        for q in queries:
            parse_qsl(q)
        plain_dec = len(flat) / (cpu() - c)
        for encoding in ENCODINGS:
            c = cpu()
            requests = [encode(b, encoding) for b in sample]
            enc = len(sample) / (cpu() - c)
            c = cpu()
            for r in requests:
                decode(r)
            dec = len(sample) / (cpu() - c)
            print(f"{flavor + ' encode ' + encoding:28}{enc:>14,.0f}{plain_enc:>14,.0f}{enc / plain_enc:>12.2f}")
            print(f"{flavor + ' decode ' + encoding:28}{dec:>14,.0f}{plain_dec:>14,.0f}{dec / plain_dec:>12.2f}")


if __name__ == "__main__":
    main()
