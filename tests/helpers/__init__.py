"""Helpers the tests share: the tree's paths (here), the command line in and out of process (`cli`), a real
collector on an ephemeral port (`collector`). Fixtures built on them are in tests/conftest.py."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
MIX = SCENARIOS / "default-mix.yaml"
VOD = SCENARIOS / "typical-vod.yaml"
