"""viewing-realism.md section 4 figures per bundled scenario: the report's measurement, the truth
and the reference value side by side.

    python bench/bench_realism.py [--sessions 20000] [--seed 1]

Runs each scenario as section 4's Monte-Carlo did (no seeks; long-form without ads for the
table, with ads for the ad figures), KAVA beacons to Parquet, then the report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from section4 import AD_TARGETS, COLUMNS, TARGETS, measure  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in COLUMNS:
            m, _ = measure(name, sessions=args.sessions, seed=args.seed, out_dir=Path(tmp))
            print(f"\n{name} ({args.sessions:,} sessions, seed {args.seed})")
            print(f"  {'figure':28} {'measured':>10} {'truth':>10} {'section 4':>10}")
            for key, target in TARGETS[name].items():
                got, truth = m.headline.get(key), m.truth.get(key)
                cell = lambda v: "-" if v is None else f"{v:10.4f}"  # noqa: E731
                print(f"  {key:28} {cell(got)} {cell(truth)} {target:10.4f}")
        m, _ = measure("long-form-ads.yaml", sessions=args.sessions, seed=args.seed, out_dir=Path(tmp), ads=True)
        print(f"\nlong-form-ads.yaml with ads ({args.sessions:,} sessions)")
        for key in (
            "count_ad_impressions",
            "count_ad_starts",
            "count_ad_completions",
            "count_ad_clicks",
            "ad_start_rate",
            "ad_completion_rate",
            "ad_click_through",
            "ebvs_ratio",
        ):
            print(f"  {key:28} {m.headline.get(key)!s:>12}  {AD_TARGETS.get(key, '')}")


if __name__ == "__main__":
    main()
