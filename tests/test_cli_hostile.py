"""Commands that could hurt: writing onto a device, a run killed half-way, absurd volumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ROOT
from helpers.cli import PLAYER_SIM, invoke, runner
from helpers.load import locust_cli
from sim.cli import COMMAND_MODULES, app

VOD = str(ROOT / "scenarios" / "typical-vod.yaml")


run = invoke


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
    assert result.output == (
        f"player-sim generate: --out {fifo}: not a regular file (a device, pipe or socket); "
        "give the name of a file to write\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_report_html_never_writes_onto_a_device(tmp_path):
    result = run("report", str(tmp_path / "none.jsonl"), "--html", "/dev/null")
    assert result.exit_code == 2
    assert result.output == (
        "player-sim report: --html /dev/null: not a regular file (a device, pipe or socket); "
        "give the name of a file to write\n"
    )
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sessions", str(10**12)], "--sessions must be between 1 and 1,000,000,000, got 1,000,000,000,000"),
        (["--days", "1e6"], "--days must be more than 0 and at most 3660, got 1e+06"),
        (["--days", "inf"], "--days must be more than 0 and at most 3660, got inf"),
        (["--days", "nan"], "--days must be more than 0 and at most 3660, got nan"),
    ],
)
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
    proc = subprocess.Popen(
        [*PLAYER_SIM, "generate", VOD, "--sessions", "5000000", "--format", "jsonl", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    assert "Traceback" not in err, err  # the whole of stderr: pytest cuts a long string short
    assert list(tmp_path.iterdir()) == []


# --- help -------------------------------------------------------------------------------------


def test_the_command_list_shows_one_line_summaries():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    listed = [ln.strip("│ ").rstrip() for ln in result.output.splitlines() if ln.startswith("│ ")]
    commands = [ln for ln in listed if ln.split(" ", 1)[0] in app_commands()]
    assert sorted(ln.split(" ", 1)[0] for ln in commands) == sorted(app_commands())
    for line in commands:
        summary = line.split(" ", 1)[1].strip()
        assert summary[0].isupper() and not summary.endswith("."), line
    # no summary wraps onto a second line
    assert len(listed) == len(commands) + 2  # + --version and --help


def app_commands() -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]


def test_version_prints_the_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("player-sim ") and len(result.output.split()) >= 2


def test_a_command_imports_its_own_module_only_and_the_help_still_lists_every_command():
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    probe = (
        "import sys\nfrom sim.cli import COMMAND_MODULES, _import_command\n_import_command(sys.argv[1:])\n"
        "print(sorted(m for m in COMMAND_MODULES if 'sim.cli.' + m in sys.modules))"
    )
    loaded = lambda *args: subprocess.run(
        [sys.executable, "-c", probe, *args],
        env=env,
        capture_output=True,  # noqa: E731
        text=True,
        timeout=120,
    ).stdout.strip()
    assert loaded("generate", "x.yaml", "--format", "csv") == "['generate']"
    assert loaded("validate", "--help") == "['validate']"
    everything = str(sorted(COMMAND_MODULES))
    assert loaded("--help") == loaded() == loaded("nosuch") == loaded("--version", "generate") == everything
    done = subprocess.run(
        [sys.executable, "-m", "sim.cli", "--help"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    summaries = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("│ ")}
    assert set(COMMAND_MODULES) <= set(summaries)
    assert "Write the beacons of simulated sessions" in summaries["generate"]


def test_preview_help_keeps_its_default_and_validate_help_names_real_commands():
    preview = runner.invoke(app, ["preview", "--help"], env={"COLUMNS": "200"})
    assert "(default 5; a scripted scenario: each script once per repeat)" in preview.output
    validate = runner.invoke(app, ["validate", "--help"], env={"COLUMNS": "200"})
    assert "`run`" not in validate.output and "generate" in validate.output


def test_no_help_text_holds_brackets_that_rich_would_take_for_markup():
    import re

    import typer.main

    app.registered_commands.import_all()
    eaten = []
    for name, command in typer.main.get_command(app).commands.items():
        for param in command.params:
            text = getattr(param, "help", None) or ""
            eaten += [f"{name} {param.name}: {m}" for m in re.findall(r"(?<!\\)\[[A-Za-z][^\]]*\]", text)]
    assert eaten == []
    generate = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    assert "'player-sim[dask]'" in generate.output and "this machine's cores" in generate.output


def test_every_load_option_is_documented_in_the_readme():
    import argparse

    from sim.load.plan import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    readme = (ROOT / "README.md").read_text()
    missing = [a.option_strings[0] for a in parser._actions if f"| `{a.option_strings[0]}" not in readme]
    assert missing == []


def test_player_sim_load_help_lists_locusts_options_and_ours():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([*PLAYER_SIM, "load", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in ("--headless", "--scenario", "--idle-gap", "--ramp-up", "--late-threshold", "--drop-after"):
        assert option in done.stdout


# --- errors that arrive late --------------------------------------------------------------------


def test_a_bad_scenario_stops_locust_before_any_user_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbehaviour:\n  play_rate: 3\n")
    done = subprocess.run(
        locust_cli(
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "30s",
            "--scenario",
            str(bad),
            "--host",
            "http://127.0.0.1:9",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2
    assert f"{bad}:3:14: behaviour.play_rate: must be a probability in [0, 1], got 3" in output
    assert "Traceback" not in output and "Ramping" not in output and "spawn" not in output.lower()


def test_when_every_send_is_refused_the_hint_says_to_start_a_collector():
    from sim.load.plan import unreachable_hint

    refused = {"sent": 25, "failed": 25, "failures": {"connection refused": 25}}
    hint = unreachable_hint(refused, "http://127.0.0.1:9")
    assert "nothing answered at http://127.0.0.1:9" in hint and "player-sim collector" in hint
    assert unreachable_hint({"sent": 25, "failed": 1, "failures": {"connection refused": 1}}, "h") is None
    assert unreachable_hint({"sent": 25, "failed": 25, "failures": {"503": 25}}, "h") is None


def test_demo_refuses_an_unknown_protocol_before_starting_anything(tmp_path):
    result = runner.invoke(app, ["demo", "--protocol", "kafka", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())
    assert "'kafka' is not one of 'legacy', 'kava', 'both'" in words
    assert not (tmp_path / "d").exists()


def test_demo_says_the_load_summary_in_one_line_and_quotes_locusts_errors(tmp_path):
    from sim.cli.demo import log_errors, summary_text

    summary = {
        "sent": 1200,
        "failed": 2,
        "failures": {"timeout": 2},
        "run_seconds": 40.0,
        "sessions": {"started": 300, "dropped": 1},
        "lateness": {"p50_ms": 2.0, "p99_ms": 18.5, "max_ms": 40.0},
    }
    assert summary_text(summary) == (
        "1,200 beacons sent in 40 s (30/s), 2 failed (timeout x2); sessions 300 started, "
        "1 dropped; lateness p50 2 ms, p99 18.5 ms, max 40 ms"
    )
    log = tmp_path / "locust.log"
    log.write_text("[2026] vm/INFO/locust.main: Starting\n[2026] vm/ERROR/player-sim: --scenario: no such file\n")
    assert log_errors(log) == "player-sim: --scenario: no such file"


def test_ctrl_c_of_a_two_process_run_ends_promptly_and_merges_every_workers_ledger(tmp_path, compiled_policies):
    from helpers.collector import running_collector
    from sim.cli.demo import free_port

    ledger = tmp_path / "ledger.jsonl"
    with running_collector(tmp_path / "c.duckdb") as collector:
        port = str(free_port())
        log = open(tmp_path / "locust.log", "w")
        # its own session, as a terminal's process group: Ctrl-C reaches the master and both workers
        proc = subprocess.Popen(
            locust_cli(
                "--headless",
                "-u",
                "2",
                "-r",
                "2",
                "-t",
                "120s",
                "--processes",
                "2",
                "--master-bind-port",
                port,
                "--master-port",
                port,
                "--host",
                collector.url,
                "--session-rate",
                "10",
                "--time-scale",
                "10",
                "--ledger",
                str(ledger),
            ),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while "POST " not in (tmp_path / "locust.log").read_text() and time.monotonic() < deadline:
                time.sleep(0.5)  # a worker's first report: the run is under way
            assert "POST " in (tmp_path / "locust.log").read_text(), (tmp_path / "locust.log").read_text()[-2000:]
            time.sleep(5)
            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail("still running 60 s after Ctrl-C:\n" + (tmp_path / "locust.log").read_text()[-3000:])
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = (tmp_path / "locust.log").read_text()
    assert took < 10, text[-2000:]
    assert "2 worker ledgers merged into" in text, text[-2000:]
    assert not list(tmp_path.glob("ledger.w*"))
    import re

    (sent,) = re.findall(r"player-sim: (\d+) sends, ", text)
    assert ledger.read_text().count("\n") == int(sent) > 0


SORTED_ROWS = """
from locust.stats import RequestStats, sort_stats
from sim.load.locust_glue import install
install()
stats = RequestStats()
for name in ("kava 11 BUFFER_START", "kava 2 PLAY_REQUEST", "legacy 3 PLAY", "kava 1 IMPRESSION", "kava 99 VIEW"):
    stats.log_request("POST", name, 5, 10)
print([e.name for e in sort_stats(stats.entries)])
print(stats.get("kava 2 PLAY_REQUEST", "POST").num_requests)
"""


def test_locust_statistics_rows_sort_with_their_numbers_as_numbers():
    # in a process of its own: Locust patches the standard library with gevent when it is imported
    done = subprocess.run(
        [sys.executable, "-c", SORTED_ROWS],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    order, found = done.stdout.splitlines()
    assert order == str(
        ["kava 1 IMPRESSION", "kava 2 PLAY_REQUEST", "kava 11 BUFFER_START", "kava 99 VIEW", "legacy 3 PLAY"]
    )
    assert found == "1"  # plain names still find their rows
