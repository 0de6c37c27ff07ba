"""`player-sim load [LOCUST OPTIONS]`: Locust with the bundled locustfile, player-sim's options known from the start.

`locust -f locustfile.py --help` cannot list player-sim's options: Locust parses --help before it
imports a locustfile, which is where they are registered. This command registers them first and
then hands every argument to Locust, so `player-sim load --help` lists Locust's options and ours,
and `player-sim load --headless -u 2 -t 1m --protocol kava` runs like the `locust` command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from sim.cli import app

LOCUSTFILE = Path(__file__).resolve().parents[2] / "locustfile.py"
# Run in a fresh interpreter: Locust patches the standard library with gevent when it is imported,
# which must happen before anything else (Typer and Rich are already loaded here).
BOOTSTRAP = """
import sys
from sim.load.locust_glue import install
install()
from locust.main import main
sys.argv[0] = "player-sim load"
sys.exit(main())
"""


@app.command(
    short_help="Run a live load with Locust (player-sim load --help lists every option)",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def load(ctx: typer.Context) -> None:
    """Run a live load with Locust (player-sim load --help lists every option).

    Every argument goes to Locust with the bundled locustfile; player-sim's options (--scenario,
    --protocol, --session-rate, --ledger ...) are listed by --help with Locust's own."""
    args = list(ctx.args)
    if not any(a in ("-f", "--locustfile") or a.startswith("--locustfile=") for a in args):
        args = ["-f", str(LOCUSTFILE), *args]
    env = dict(os.environ)
    root = str(LOCUSTFILE.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-c", BOOTSTRAP, *args], env)
