"""`player-sim` from the tests: in process (typer's runner, fast) or as its own process (a crash in a compiled
stage then fails one test, not the run)."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner, Result

from helpers import ROOT
from sim.cli import app

PLAYER_SIM = [sys.executable, "-c", "from sim.cli import main; main()"]
runner = CliRunner()


def invoke(*args, catch_exceptions: bool = True, **kw) -> Result:
    """`player-sim ARGS` in this process; arguments may be paths or numbers."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=catch_exceptions, **kw)


def player_sim(*args, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """`player-sim ARGS` as a process from the tree's root, its output captured as text."""
    return subprocess.run(
        [*PLAYER_SIM, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=kw.pop("cwd", ROOT), **kw
    )
