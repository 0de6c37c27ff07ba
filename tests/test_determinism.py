"""Same scenario and seed give byte-identical output in separate processes.

Each run is a fresh interpreter with its own string-hash seed, as two machines (or two
workers) would be: nothing may depend on set or dict iteration order of strings.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generate(out: Path, hash_seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.cli",
            "generate",
            str(ROOT / "scenarios/default-mix.yaml"),
            "--sessions",
            "1500",
            "--seed",
            "11",
            "--protocol",
            "both",
            "--format",
            "jsonl",
            "--out",
            str(out),
        ],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    return out.read_bytes()


def test_two_processes_with_different_hash_seeds_write_identical_files(tmp_path):
    first = _generate(tmp_path / "a.jsonl", "1")
    second = _generate(tmp_path / "b.jsonl", "2")
    assert first and first == second
