"""Commands that could hurt: writing onto a device, a run killed half-way, absurd volumes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).parent.parent
VOD = str(ROOT / "scenarios" / "typical-vod.yaml")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("partition", [[], ["--partition", "day"]])
def test_generate_never_writes_onto_a_device(partition):
    before = os.stat("/dev/null")
    result = run("generate", VOD, "--sessions", "5", "--format", "jsonl", "--out", "/dev/null", *partition)
    assert result.exit_code == 2
    assert "--out /dev/null: " in result.output
    after = os.stat("/dev/null")
    assert (after.st_ino, after.st_rdev, after.st_mode) == (before.st_ino, before.st_rdev, before.st_mode)


def test_generate_never_writes_onto_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = run("generate", VOD, "--sessions", "5", "--format", "jsonl", "--out", str(fifo))
    assert result.exit_code == 2
    assert result.output == (f"player-sim generate: --out {fifo}: not a regular file (a device, pipe or socket); "
                             "give the name of a file to write\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_report_html_never_writes_onto_a_device(tmp_path):
    result = run("report", str(tmp_path / "none.jsonl"), "--html", "/dev/null")
    assert result.exit_code == 2
    assert result.output == ("player-sim report: --html /dev/null: not a regular file (a device, pipe or socket); "
                             "give the name of a file to write\n")
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("args, message", [
    (["--sessions", str(10**12)], "--sessions must be between 1 and 1,000,000,000, got 1,000,000,000,000"),
    (["--days", "1e6"], "--days must be more than 0 and at most 3660, got 1e+06"),
    (["--days", "inf"], "--days must be more than 0 and at most 3660, got inf"),
    (["--days", "nan"], "--days must be more than 0 and at most 3660, got nan"),
])
def test_absurd_volumes_are_refused_before_anything_is_allocated(args, message, tmp_path):
    result = run("generate", VOD, *args, "--format", "jsonl", "--out", str(tmp_path / "x.jsonl"))
    assert result.exit_code == 2
    assert result.output == f"player-sim generate: {message}\n"


def test_days_times_the_scenarios_rate_is_bounded_too(tmp_path):
    scenario = tmp_path / "busy.yaml"
    scenario.write_text("name: busy\nclock:\n  sessions_per_day: 100000000\n")
    result = run("generate", str(scenario), "--days", "3000", "--format", "jsonl", "--out", str(tmp_path / "x.jsonl"))
    assert result.exit_code == 2
    assert "is 300,000,000,000 sessions, more than 1,000,000,000; give fewer days" in result.output


def test_sigterm_during_generate_leaves_no_hidden_temporary(tmp_path):
    out = tmp_path / "events.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "from sim.cli import main; main()", "generate", VOD,
                             "--sessions", "5000000", "--format", "jsonl", "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "generate wrote nothing in 120 s"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
