"""The `player-sim` command line: one module per command, registered on one Typer app.

Every command turns expected problems (bad scenario files, bad options, unreachable
targets) into a one-line message naming where the problem is and a non-zero exit;
tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

app = typer.Typer(
    name="player-sim",
    help="Simulated video-player sessions and the Kaltura analytics beacons they send.\n\n"
    "Live load runs with Locust: `player-sim load --help` lists Locust's options and player-sim's.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Help texts are written in one register: a command's summary (`short_help`, the line `player-sim
# --help` lists) is one imperative sentence without a full stop; its docstring starts with the same
# sentence and says more; an option's help is a sentence (capital letter, full stop) saying what it
# does, its default shown by Typer.


def version() -> str:
    """The installed player-sim's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("player-sim")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"player-sim {version()}")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Options of player-sim itself (the app's help says what it is)."""


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Say `player-sim COMMAND: message` on stderr and exit with `code` (2: bad input)."""
    typer.echo(f"player-sim {command}: {message}", err=True)
    raise typer.Exit(code) from None


def fail_problems(problems) -> NoReturn:
    """Say each problem of a scenario file (`file:line:column: field: message`) on stderr and
    exit 2: the located lines speak for themselves, without the command's name."""
    for problem in problems:
        typer.echo(str(problem), err=True)
    raise typer.Exit(2)


def check_output(command: str, option: str, path, *, folder: bool = False) -> None:
    """Refuse to write onto anything but a regular file (or a folder where one is written): a file is
    written beside its target and renamed over it, which would replace a device such as /dev/null."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        fail(command, f"{option} {path}: {exc.strerror or exc}")
    if stat.S_ISDIR(mode):
        if not folder:
            fail(command, f"{option} {path}: is a folder, expected a file name")
        return
    if not stat.S_ISREG(mode):
        fail(
            command, f"{option} {path}: not a regular file (a device, pipe or socket); give the name of a file to write"
        )


def terminate_as_interrupt() -> None:
    """Let SIGTERM unwind like Ctrl-C, so `finally` blocks drop the hidden temporaries of a run.
    The stop is also noted (`sim.workers.request_stop`): an exception raised while the process
    is inside a C callback (numba loading a compiled kernel) is dropped, and a run checks the
    note between its steps."""
    import signal

    from sim.workers import request_stop, stop_is_deferred

    def interrupted(signum, frame):
        request_stop()
        if not stop_is_deferred():
            raise KeyboardInterrupt

    request_stop(False)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    sys.unraisablehook = _quiet_about_lost_interrupts(sys.unraisablehook)


def _quiet_about_lost_interrupts(default_hook):
    """An unraisable-exception hook that prints nothing for the KeyboardInterrupt a stop raised
    where Python cannot raise (a C callback, a finaliser): the stop is noted and the run ends at
    its next step; anything else goes to `default_hook` as before."""

    def hook(unraisable) -> None:
        seen, exc = set(), unraisable.exc_value
        while exc is not None and id(exc) not in seen:
            if isinstance(exc, KeyboardInterrupt):
                return
            seen.add(id(exc))
            exc = exc.__cause__ or exc.__context__
        default_hook(unraisable)

    return hook


_exit_without_teardown = False


def skip_teardown_at_exit() -> None:
    """For a command whose output is all closed and in place: a successful exit then skips the
    interpreter's teardown (freeing the compiled kernels and pools costs about 0.4 CPU s)."""
    global _exit_without_teardown
    _exit_without_teardown = True


class _Commands(list):
    """`app`'s registered commands. Each command module adds its command to `app` when imported;
    listing them (Typer does when it builds the command line) first imports every module, unless
    `main` already imported the one command a run needs: the others' imports (numpy, rich,
    duckdb...) would cost every run a fifth of a second of start-up."""

    complete = False

    def import_all(self) -> None:
        if not self.complete:
            self.complete = True
            from sim.cli import commands  # noqa: F401

    def __iter__(self):
        self.import_all()
        return super().__iter__()

    def __len__(self) -> int:
        self.import_all()
        return super().__len__()


app.registered_commands = _Commands()
# One module per command, named after it (sim/cli/commands.py imports them all).
COMMAND_MODULES = ("collector", "demo", "generate", "load", "preview", "reconcile", "report", "schema", "validate")


def _import_command(args: list[str]) -> None:
    """Imports only the module of the command `args` name (the app's own options are all flags that
    come first); `player-sim --help`, no command or an unknown one: every module."""
    import importlib

    name = next((a for a in args if not a.startswith("-")), None)
    if name in COMMAND_MODULES and not any(a in ("--help", "--version") for a in args[: args.index(name)]):
        importlib.import_module(f"{__name__}.{name}")
        app.registered_commands.complete = True
    app.registered_commands.import_all()


def main() -> None:
    import sys

    _import_command(sys.argv[1:])
    try:
        app()
    except SystemExit as exc:
        if _exit_without_teardown and not exc.code:
            import os
            import sys

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise
