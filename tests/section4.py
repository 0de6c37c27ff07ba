"""viewing-realism.md section 4: the Analytics figures the default scenarios should produce, and
a run of a bundled scenario set up as that section's Monte-Carlo was (no seeks; C without ads,
except for its ad figures), measured by the report from KAVA beacons.

    figures, path = measure("typical-vod.yaml", sessions=4000, seed=1, out_dir=tmp)
    TARGETS["typical-vod.yaml"]["ebvs_ratio"]      # 0.017 (or the documented replacement)
"""

from __future__ import annotations

from pathlib import Path

from sim.generate import generate
from sim.metrics import compute
from sim.scenario.loader import load
from sim.scenario.model import Ads

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

# Section 4 table: metric -> (A typical VOD, B short clip, C long-form content only, D poor network on A).
_TABLE = {
    "load_play_ratio": (0.34, 0.24, 0.69, 0.29),
    "ebvs_ratio": (0.017, 0.021, 0.010, 0.136),
    "start_failure_ratio": (0.010, 0.010, 0.010, 0.040),
    "avg_join_time_s": (1.40, 1.39, 1.78, 3.95),
    "plays_25_ratio": (0.77, 0.87, 0.63, 0.70),
    "plays_50_ratio": (0.65, 0.81, 0.42, 0.55),
    "plays_75_ratio": (0.54, 0.73, 0.28, 0.44),
    "play_through_ratio": (0.47, 0.63, 0.21, 0.36),
    "avg_view_drop_off": (0.61, 0.76, 0.38, 0.51),
    "avg_completion_rate": (0.66, 0.80, 0.47, 0.58),
    "avg_view_period_time_min": (4.5, 0.59, 19.8, 3.6),
    "avg_time_viewed_min": (4.1, 0.56, 16.2, 3.0),
    "avg_buffer_time": (0.0086, 0.0073, 0.0077, 0.043),
    "rebuffered_play_share": (0.26, 0.08, 0.48, 0.57),
    "rebuffers_per_play": (0.71, 0.10, 2.8, 1.9),
}
COLUMNS = ("typical-vod.yaml", "short-clip.yaml", "long-form-ads.yaml", "typical-vod-poor-network.yaml")
TARGETS: dict[str, dict[str, float]] = {name: {k: v[j] for k, v in _TABLE.items()} for j, name in enumerate(COLUMNS)}
# Below the table, for C with ads: click-through of ad impressions (mix-weighted, CTV 0).
AD_TARGETS = {"ad_click_through": (0.002, 0.003)}


def components(name: str, *, ads: bool):
    """The bundled scenario as section 4 ran it: seeks off; ads only when asked for."""
    out = []
    for comp in load(SCENARIOS / name):
        sc = comp.scenario
        seeks = sc.behaviour.seeks.model_copy(update={"per_play": 0})
        update = {"behaviour": sc.behaviour.model_copy(update={"seeks": seeks})}
        if not ads:
            update["ads"] = Ads()
        comp.scenario = sc.model_copy(update=update)
        out.append(comp)
    return out


def measure(name: str, *, sessions: int, seed: int, out_dir: Path, ads: bool = False):
    """The report's KAVA figures (headline and truth) for a section-4 run of scenario `name`, and its file."""
    out = out_dir / f"{name}-{'ads' if ads else 'content'}-{sessions}-{seed}.parquet"
    if not out.exists():
        generate(components(name, ads=ads), seed=seed, sessions=sessions, protocol="kava", fmt="parquet", out=out)
    return compute(out, by=[]).protocols["kava"], out
