"""Locust glue: the sender user and the event hooks that run player-sim's load in Locust.

    # locustfile.py
    from sim.load.locust_glue import BeaconSenderUser, install
    install()

`install()` adds the options (shown in the web UI too) and the listeners: at test start
each process builds its schedule (worker index -> its own random stream and session ids, its
share of the rate or viewers, or of the `--shape` levels), its users run the send loop, at
test stop in-flight sends are drained and the ledger is renamed into place; workers report
lateness and failure figures to the master, which prints the run's summary. With a shape, the
run stops by itself once every process's shape is over (a worker tells the master).
"""

from __future__ import annotations

import logging
import math
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gevent
import gevent.lock
import orjson
from locust import User, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

from sim.load.plan import (
    DEFAULT_HOST,
    OptionError,
    add_arguments,
    build_schedule,
    check_options,
    load_components,
    prepare_inputs,
    run_id,
    unreachable_hint,
)
from sim.load.schedule import ScheduleStats
from sim.load.sender import (
    LatenessHistogram,
    Ledger,
    Sender,
    lateness_summary,
    merge_ledgers,
    worker_ledger_path,
    worker_summary,
)
from sim.load.viewers import ViewerHistory, process_figures, viewer_table

log = logging.getLogger("player-sim")

PLAN_MESSAGE = "player_sim_plan"  # master -> workers: how many share the load
FINISH_MESSAGE = "player_sim_finish"  # master -> workers: stop, drain, write the ledger
FINAL_MESSAGE = "player_sim_final"  # workers -> master: final figures
SHAPE_DONE_MESSAGE = "player_sim_shape_done"  # workers -> master: this worker's shape is over


@dataclass
class ProcessRun:
    """What one process holds during a test."""

    sender: Sender
    worker_index: int
    ledger_path: str | None
    targets: dict  # process_figures' keywords: workload, this process's targets, the mix


class LoadState:
    """The process-wide state the listeners share (one per process)."""

    def __init__(self):
        self.run: ProcessRun | None = None
        self.workers = 1
        self.worker_summaries: dict[str, dict] = {}
        self.failed_to_start: str | None = None
        self.last_summary: dict | None = None  # kept for the worker's final report
        self.last_lateness: LatenessHistogram | None = None
        self.last_viewers: dict | None = None  # the Viewers figures at the end of a run
        self.finishing: ProcessRun | None = None  # the run whose in-flight sends are draining
        self.finishing_lock = gevent.lock.Semaphore()  # one finish at a time
        self.preparing = None  # the inputs being prepared in a thread since the process started
        self.run_id: str | None = None  # the master's id for the run, on a worker
        self.starting = None  # the greenlet building this process's run
        self.final_from: set[str] = set()  # master: workers whose final figures arrived
        self.shape_done_from: set[str] = set()  # master: workers whose shape is over
        self.reported = False
        self.history = ViewerHistory()  # the Viewers table over time (where the web UI runs)


STATE = LoadState()


def _worker_index(runner) -> int | None:
    """None for a stand-alone process, else this worker's index."""
    if isinstance(runner, WorkerRunner):
        return max(runner.worker_index, 0)
    return None


def _say_error(options, message: str) -> None:
    """Log an error; print it too when Locust's log does not reach the terminal (a log file,
    or no log set up), so the user sees it exactly once."""
    log.error(message)
    if options is None or getattr(options, "logfile", None) or getattr(options, "skip_log_setup", False):
        print(f"player-sim: {message}", file=sys.stderr)


def _fail(environment, message: str) -> None:
    """Report a bad option and stop the run with a non-zero exit, no traceback."""
    STATE.failed_to_start = message
    _say_error(environment.parsed_options, message)
    environment.process_exit_code = 2
    runner = environment.runner
    if runner is not None:
        gevent.spawn_later(0, runner.quit)


def on_test_start(environment, **_kw) -> None:
    runner = environment.runner
    STATE.history.clear()
    if isinstance(runner, MasterRunner):
        STATE.worker_summaries.clear()
        STATE.shape_done_from = set()
        STATE.reported = False
        STATE.run_id = run_id(environment.parsed_options)  # one id shared by every worker
        runner.send_message(PLAN_MESSAGE, {"workers": max(runner.worker_count, 1), "run": STATE.run_id})
        return
    # Building may take seconds on a busy machine: a worker's message loop (stop, quit)
    # must not wait for it, and the sender users idle until the run exists.
    STATE.starting = gevent.spawn(_start_process_run, environment)


def _start_process_run(environment) -> None:
    runner = environment.runner
    options = environment.parsed_options
    host = environment.host or DEFAULT_HOST
    index = _worker_index(runner)
    try:
        check_options(options, host)
        if STATE.preparing is not None:
            preparing, STATE.preparing = STATE.preparing, None
            preparing.get()  # a failure shows here again, in build_schedule
        # in a native thread: building the population and compiling the policies takes
        # seconds, and a worker must keep sending heartbeats to its master meanwhile
        schedule = gevent.get_hub().threadpool.apply(
            build_schedule,
            (options,),
            dict(worker_index=index or 0, workers=STATE.workers if index is not None else 1, host=host),
        )
    except OptionError as exc:
        return _fail(environment, str(exc))
    except Exception as exc:
        from sim.scenario.errors import ScenarioError

        if isinstance(exc, ScenarioError | FileNotFoundError):
            return _fail(environment, str(exc))
        raise
    ledger_path = worker_ledger_path(options.ledger, index) if options.ledger else None
    run = (STATE.run_id if index is not None else None) or run_id(options)
    sender = Sender(
        schedule,
        host,
        events=environment.events,
        ledger=Ledger(ledger_path) if ledger_path else None,
        concurrency=options.concurrency,
        retries=options.retries,
        timeout=options.request_timeout,
        late_threshold=options.late_threshold,
        run_id=run,
        worker=index or 0,
    )
    STATE.run = ProcessRun(sender, index or 0, ledger_path, _targets(options, index, host))
    if hasattr(schedule.arrivals, "done_at"):  # a --shape run ends with its shape
        gevent.spawn(_stop_when_shape_is_over, environment, STATE.run)


def _targets(options, index: int | None, host: str) -> dict:
    """This process's share of what the run asks for, and the scenario mix (Viewers tab)."""
    workers = STATE.workers if index is not None else 1
    mix = {c.name: c.weight for c in prepare_inputs(options).components}
    if options.workload == "open":
        return {"workload": "open", "target_rate": options.session_rate / workers, "mix": mix}
    viewers = options.viewers // workers + (1 if (index or 0) < options.viewers % workers else 0)
    return {"workload": "closed", "target_viewers": viewers, "mix": mix}


def _stop_when_shape_is_over(environment, run: ProcessRun) -> None:
    """Wait until this process's shape is over (and its last sessions have played, within
    the shape's graceful_stop), then end the run: a worker tells the master, which ends it
    once every worker has; a stand-alone process ends it itself."""
    arrivals = run.sender.schedule.arrivals
    said = None
    while STATE.run is run and not run.sender.stopped:
        done_at = arrivals.done_at
        now = time.time()
        if run.worker_index == 0:  # one line per stage change, not one per worker
            said = _say_stage(arrivals, now, said)
        if done_at is not None and now >= done_at:
            break
        gevent.sleep(0.1 if done_at is None else min(done_at - now, 0.5))
    else:
        return  # stopped some other way (-t, the web UI, a quit)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(SHAPE_DONE_MESSAGE, None)
    else:
        _end_run(environment, "the load shape is over")


def _say_stage(arrivals, now: float, said: int | None) -> int | None:
    """Log the shape's stage when it changes (stage 0: the stages are over); what was said."""
    stage = arrivals.stage_now(now) if hasattr(arrivals, "stage_now") else None
    if stage is None or now < arrivals.t0:
        return said
    number = stage["number"] or 0
    if number != said:
        where = f" stage {number}/{stage['of']}" if number else ""
        log.info(f"player-sim: shape{where}: {stage['text']}")
    return number


def _end_run(environment, reason: str) -> None:
    """End the run as Locust does at the end of -t or of a LoadTestShape: quit when headless,
    else stop and keep the web UI."""
    log.info(f"player-sim: {reason}, stopping")
    options = environment.parsed_options
    if options is not None and options.headless:
        environment.runner.quit()
    else:
        environment.runner.stop()


def _on_shape_done_message(environment, msg, **_kw) -> None:
    """Master: one worker's shape is over; the run ends when every worker's is."""
    STATE.shape_done_from.add(msg.node_id)
    if STATE.shape_done_from.issuperset(c.id for c in environment.runner.clients.all):
        STATE.shape_done_from = set()
        gevent.spawn(_end_run, environment, "every worker's load shape is over")


def on_test_stop(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _collect_final_summaries(environment)
        return
    summary = _finish_process_run(environment)
    if summary is not None and not isinstance(runner, WorkerRunner):
        _report(environment, summary)


def _on_worker_quitting(environment, **_kw) -> None:
    """Worker quitting by itself (Ctrl-C reaches every process of --processes at once): finish the
    run and send the master the final figures before Locust's own "quit" message, so the master
    need not wait for them and merges the ledgers with the line counts they were written with."""
    summary = _finish_process_run(environment)
    if summary is None:  # the master's finish message was first: send its figures again
        summary = STATE.last_summary
    if summary is not None:
        _send_final(environment, summary)


def _send_final(environment, summary: dict | None) -> None:
    final = dict(summary) if summary is not None else None
    if final is not None:
        final["lateness_hist"] = STATE.last_lateness.to_sparse()
        final["viewers"] = STATE.last_viewers
    environment.runner.send_message(FINAL_MESSAGE, final)


def on_test_stopping(environment, **_kw) -> None:
    """Let the sender loops return at once instead of waiting for Locust to kill them."""
    if STATE.run is not None:
        STATE.run.sender.stop()


def _finish_process_run(environment) -> dict | None:
    """Stop sending, wait for in-flight sends, write the ledger; this process's figures. A
    worker's Ctrl-C and the master's finish message can both ask at once: the second waits
    for the first, so neither reports before the ledger is written."""
    with STATE.finishing_lock:
        return _finish_process_run_once(environment)


def _finish_process_run_once(environment) -> dict | None:
    starting, STATE.starting = STATE.starting, None
    if starting is not None and not starting.ready():
        starting.kill()
        options = environment.parsed_options
        index = _worker_index(environment.runner)
        if options is not None and options.ledger:  # nothing was sent: an empty ledger says so
            ledger = Ledger(worker_ledger_path(options.ledger, index))
            ledger.close()
            if index is not None:  # and the master merges it with the others (Ctrl-C while this one built)
                return _nothing_sent(ledger, options.late_threshold)
    run, STATE.run = STATE.run, None
    if run is None:
        return None
    STATE.finishing = run  # the Viewers tab keeps showing it while it drains
    run.sender.stop()
    if not run.sender.drain():
        log.warning("in-flight sends did not finish within the request timeout; they are not in the ledger")
    run.sender.close()
    summary = run.sender.summary()
    STATE.last_summary = summary
    STATE.last_viewers = _figures(run)
    STATE.last_lateness = run.sender.lateness
    STATE.finishing = None
    return summary


def _nothing_sent(ledger: Ledger, late_threshold: float) -> dict:
    """The figures of a worker whose run ended before it was built: its empty ledger, to merge."""
    STATE.last_lateness, STATE.last_viewers = LatenessHistogram(), None
    STATE.last_summary = worker_summary(ScheduleStats(), STATE.last_lateness, late_threshold, ledger)
    return STATE.last_summary


def _on_finish_message(environment, msg, **_kw) -> None:
    """Worker: the master asks for the end of the run and this worker's final figures."""
    summary = _finish_process_run(environment)
    if summary is None and STATE.last_summary is not None:
        summary = STATE.last_summary
    _send_final(environment, summary)


def _on_final_message(environment, msg, **_kw) -> None:
    """Master: one worker's final figures."""
    STATE.final_from.add(msg.node_id)
    if msg.data is not None:
        STATE.worker_summaries[msg.node_id] = msg.data


def _collect_final_summaries(environment) -> None:
    """Master, at the end of a run: every worker stops, drains and reports before we print."""
    runner = environment.runner
    workers = [c.id for c in runner.clients.all]
    if not workers:
        return
    STATE.final_from = set()
    runner.send_message(FINISH_MESSAGE, None)
    options = environment.parsed_options
    deadline = time.time() + options.request_timeout * (options.retries + 1) + 10
    # a worker that has quit (Ctrl-C ends every process at once) sends nothing more: wait only for the others
    while time.time() < deadline and not STATE.final_from.issuperset(
        w for w in workers if w in {c.id for c in runner.clients.all}
    ):
        gevent.sleep(0.05)
    _report(environment, merge_summaries(list(STATE.worker_summaries.values()), options.late_threshold))
    STATE.reported = True
    if options.ledger:
        _merge_worker_ledgers(Path(options.ledger), list(STATE.worker_summaries.values()))


def _merge_worker_ledgers(out: Path, summaries: list[dict]) -> None:
    """Master: the workers' ledgers become the one ledger `--ledger` names when they are files
    on this machine (`--processes`, or workers beside the master); workers on other machines
    keep theirs, to gather and reconcile together (`player-sim reconcile 'ledger.w*.jsonl'`)."""
    written = {r["path"]: r["lines"] for s in summaries if (r := s.get("ledger"))}
    parts = [Path(p) for p in sorted(written)]
    if not parts:
        return
    if not all(p.is_file() for p in parts):
        log.info(
            f"player-sim: the workers' ledgers are on their machines ({', '.join(p.name for p in parts)}); "
            f"gather them and reconcile them together"
        )
        return
    try:
        lines = merge_ledgers(parts, out, expected_lines=sum(written.values()))
    except (OSError, ValueError) as exc:
        log.warning(f"player-sim: the workers' ledgers stay as they are ({exc})")
        return
    log.info(f"player-sim: {len(parts)} worker ledgers merged into {out} ({lines} sends)")


def _report(environment, summary: dict) -> None:
    lat = summary["lateness"]
    s = summary["sessions"]
    fails = ", ".join(f"{k}: {v}" for k, v in sorted(summary["failures"].items())) or "none"
    log.info(
        f"player-sim: {summary['sent']} sends, {summary['failed']} failed ({fails}); sessions "
        f"{s['started']} started, {s['dropped']} dropped; lateness p50 {lat['p50_ms']} ms, "
        f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms, {lat['late']} later than {lat['late_threshold_ms']:g} ms"
    )
    hint = unreachable_hint(summary, environment.host or DEFAULT_HOST)
    if hint:
        log.warning(f"player-sim: {hint}")
    path = getattr(environment.parsed_options, "summary_json", "")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        tmp.replace(path)


def on_report_to_master(client_id, data, **_kw) -> None:
    run = STATE.run
    if run is not None:
        summary = run.sender.summary()
        summary["lateness_hist"] = run.sender.lateness.to_sparse()
    elif STATE.last_summary is not None:
        summary = dict(STATE.last_summary)
        summary["lateness_hist"] = STATE.last_lateness.to_sparse()
    else:
        return
    summary["viewers"] = _process_viewers()
    data["player_sim"] = summary


def on_worker_report(client_id, data, **_kw) -> None:
    if "player_sim" in data:
        STATE.worker_summaries[client_id] = data["player_sim"]


def _process_viewers() -> dict | None:
    """This process's Viewers figures: live while a run goes on, else the last run's."""
    run = STATE.run or STATE.finishing
    if run is not None:
        return _figures(run)
    return STATE.last_viewers


def _figures(run: ProcessRun) -> dict:
    """The Viewers figures of a run; with a shape, the target follows it (the open model's
    target start rate averaged since the start, like the other rates, per scenario by its
    weight or, with `mix: daily`, by its own day; the closed model's viewers asked for now)
    and the figures name the stage running."""
    targets = run.targets
    arrivals = run.sender.schedule.arrivals
    target_at = getattr(arrivals, "target_at", None)
    if target_at is not None:
        now = min(time.time(), run.sender.stopped_at or math.inf)
        key = "target_rate" if targets["workload"] == "open" else "target_viewers"
        targets = {**targets, key: target_at(now), "stage": arrivals.stage_now(now)}
        by = arrivals.targets_by_scenario(now) if hasattr(arrivals, "targets_by_scenario") else None
        if by is not None:
            targets["targets_by"] = dict(zip(targets["mix"], by.tolist()))
    return process_figures(run.sender, **targets)


def viewers_report(environment) -> dict:
    """The Viewers tab's table: this process's figures, or on a master every worker's
    (as of its latest report, every few seconds)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        figures = [s["viewers"] for s in STATE.worker_summaries.values() if s.get("viewers")]
    else:
        figures = [f] if (f := _process_viewers()) is not None else []
    table = viewer_table(figures)
    table["state"] = getattr(runner, "state", None)
    return table


# The Viewers tab: Locust's web UI shows `extended_tabs` whose rows come with the request
# statistics (`extended_stats`), laid out by `extended_tables`.
VIEWERS_TAB = {"title": "Viewers", "key": "viewers"}
VIEWERS_COLUMNS = [
    {"key": "scenario", "title": "Scenario"},
    {"key": "active", "title": "Viewers in progress"},
    {"key": "target_rate", "title": "Target starts/s"},
    {"key": "scheduled_rate", "title": "Scheduled starts/s"},
    {"key": "achieved_rate", "title": "Achieved starts/s"},
    {"key": "started", "title": "Sessions started"},
    {"key": "dropped", "title": "Sessions dropped"},
    {"key": "sends", "title": "Sends"},
    {"key": "late", "title": "Late sends"},
    {"key": "p50_ms", "title": "Lateness p50 (ms)"},
    {"key": "p99_ms", "title": "Lateness p99 (ms)"},
    {"key": "max_ms", "title": "Lateness max (ms)"},
]
VIEWERS_PATH = "/player-sim/viewers"
CHARTS_PATH = "/player-sim/viewers/charts"  # the tab's charts, a page of its own shown in the tab
TAB_SCRIPT_PATH = "/player-sim/viewers/tab.js"
HISTORY_EVERY_S = 2.0
_SAMPLED_STATES = ("spawning", "running", "stopping")


def _read_page(name: str) -> bytes:
    return Path(__file__).with_name(name).read_bytes()


_CHARTS_PAGE: bytes | None = None


def charts_page() -> bytes:
    """The charts page with plotly.js inlined (built once)."""
    global _CHARTS_PAGE
    if _CHARTS_PAGE is None:
        from plotly.offline import get_plotlyjs

        _CHARTS_PAGE = _read_page("viewers_page.html").replace(b"/*PLOTLY*/", get_plotlyjs().encode())
    return _CHARTS_PAGE


def _sample_history(environment) -> None:
    """Record the Viewers table every few seconds while a run goes on (the charts' history)."""
    while True:
        gevent.sleep(HISTORY_EVERY_S)
        runner = environment.runner
        if runner is not None and getattr(runner, "state", None) in _SAMPLED_STATES:
            try:
                STATE.history.add(time.time(), viewers_report(environment))
            except Exception:  # a half-built run: the next sample will do
                log.debug("player-sim: viewers sample skipped", exc_info=True)


def install_viewers_tab(environment) -> None:
    """Add the Viewers tab, its JSON endpoint (`/player-sim/viewers`, with the history under
    "series") and its charts (`/player-sim/viewers/charts`, placed under the tab's table) to
    the web UI."""
    web_ui = environment.web_ui
    if web_ui is None:
        return
    from flask import Response, jsonify, request

    web_ui.template_args["extended_tabs"] = [VIEWERS_TAB]
    web_ui.template_args["extended_tables"] = [{"key": VIEWERS_TAB["key"], "structure": VIEWERS_COLUMNS}]

    @web_ui.app.route(VIEWERS_PATH)
    @web_ui.auth_required_if_enabled
    def player_sim_viewers():
        return jsonify({**viewers_report(environment), "series": STATE.history.series()})

    @web_ui.app.route(CHARTS_PATH)
    @web_ui.auth_required_if_enabled
    def player_sim_viewers_charts():
        return Response(charts_page(), mimetype="text/html")

    @web_ui.app.route(TAB_SCRIPT_PATH)
    def player_sim_viewers_tab_script():
        return Response(_read_page("viewers_tab.js"), mimetype="text/javascript")

    gevent.spawn(_sample_history, environment)

    @web_ui.app.after_request
    def add_viewer_rows(response):
        if request.path == "/" and response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data()
            if b"</body>" in page:
                response.set_data(
                    page.replace(b"</body>", f'<script src="{TAB_SCRIPT_PATH[1:]}"></script></body>'.encode(), 1)
                )
            return response
        if request.path != "/stats/requests" or not response.is_json:
            return response
        table = viewers_report(environment)
        rows = [*table["scenarios"], table["total"]] if table["scenarios"] else []
        response.set_data(
            orjson.dumps({**response.get_json(), "extended_stats": [{"key": VIEWERS_TAB["key"], "data": rows}]})
        )
        return response


def merge_summaries(summaries: list[dict], late_threshold: float) -> dict:
    """The run's figures from each worker's latest (cumulative) report."""
    hist = LatenessHistogram()
    total = {
        "sent": 0,
        "failed": 0,
        "failures": {},
        "by_label": {},
        "workers": len(summaries),
        "sessions": {"generated": 0, "started": 0, "dropped": 0},
        "preflights": {"sent": 0, "failed": 0},
        "skipped_beacons": 0,
        "views_suppressed": 0,
        "generate_s": 0.0,
    }
    for s in summaries:
        for k in ("sent", "failed", "skipped_beacons", "views_suppressed", "generate_s"):
            total[k] += s[k]
        total["run_seconds"] = max(total.get("run_seconds", 0.0), s.get("run_seconds", 0.0))
        for group in ("failures", "by_label", "sessions", "preflights"):
            for k, v in s.get(group, {}).items():
                total[group][k] = total[group].get(k, 0) + v
        hist.merge_sparse(s["lateness_hist"])
    total["lateness"] = lateness_summary(hist, late_threshold)
    # each worker's own: workers start their schedules seconds apart on a busy machine, and the
    # run's end is measured from the start of each
    total["workers_run_seconds"] = sorted(s.get("run_seconds", 0.0) for s in summaries)
    return total


def _ctrl_c_in_the_main_greenlet() -> None:
    """Ctrl-C raises KeyboardInterrupt in the main greenlet only, where Locust waits for it.
    Python raises it in whatever runs when the signal comes: a message handler (the master's
    receiver, a worker's finish) or a send loop would die half-way, and a worker's figures or
    ledger would be missing from the merge."""
    hub = gevent.get_hub()
    gevent.signal_handler(signal.SIGINT, lambda: hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt))


def on_init(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner | WorkerRunner):
        _ctrl_c_in_the_main_greenlet()
    if isinstance(runner, WorkerRunner):

        def plan(environment, msg, **_):
            STATE.workers = int(msg.data.get("workers", 1))
            STATE.run_id = msg.data.get("run")

        runner.register_message(PLAN_MESSAGE, plan)
        runner.register_message(FINISH_MESSAGE, _on_finish_message, concurrent=True)
        # registered after the runner's own listener, so (quitting fires in reverse) called before it
        environment.events.quitting.add_listener(_on_worker_quitting)
    if isinstance(runner, MasterRunner):
        runner.register_message(FINAL_MESSAGE, _on_final_message)
        runner.register_message(SHAPE_DONE_MESSAGE, _on_shape_done_message)
    install_viewers_tab(environment)
    options = environment.parsed_options
    if options is not None and not isinstance(runner, WorkerRunner):
        from sim.scenario.errors import ScenarioError

        try:
            check_options(options, environment.host or DEFAULT_HOST)
            load_components(options)  # a bad --scenario stops here, before any user is spawned
        except OptionError as exc:
            _say_error(options, str(exc))
            _end_forked_workers(options)
            sys.exit(2)
        except ScenarioError as exc:
            _say_error(options, f"--scenario: {len(exc.problems)} problem(s)\n{exc}")
            _end_forked_workers(options)
            sys.exit(2)
    if options is not None and not isinstance(runner, MasterRunner):
        # Scenarios, population and compiled policies take seconds: prepare them in a native
        # thread (a worker keeps its heartbeats going) before the run's clock starts.
        STATE.preparing = gevent.get_hub().threadpool.spawn(_prepare_quietly, options)
        if not isinstance(runner, WorkerRunner):
            STATE.preparing.get()


def _end_forked_workers(options) -> None:
    """With --processes, Locust forked this master's workers before the init event; a master that
    exits at init must end them, or each waits a minute for a heartbeat that never comes."""
    if not getattr(options, "processes", None):
        return
    import psutil  # a dependency of Locust's

    for child in psutil.Process().children():
        child.terminate()


def _prepare_quietly(options):
    try:
        return prepare_inputs(options)
    except Exception as exc:  # reported where the test starts, with the option it concerns
        return exc


def on_quitting(environment, **_kw) -> None:
    if isinstance(environment.runner, MasterRunner) and not STATE.reported:
        _report(
            environment,
            merge_summaries(list(STATE.worker_summaries.values()), environment.parsed_options.late_threshold),
        )
    if STATE.failed_to_start:
        environment.process_exit_code = 2


_installed = False


class NaturalName(str):
    """A statistics row name that sorts with its numbers as numbers: `kava 2 PLAY_REQUEST` before
    `kava 11 ...`, not after as text would put it. It is still a str (same hash, equal to the
    plain name), so lookups, JSON and the messages between master and workers are unchanged."""

    def _key(self) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(self))]

    def __lt__(self, other):
        return self._key() < NaturalName(other)._key() if isinstance(other, str) else NotImplemented

    def __gt__(self, other):
        return self._key() > NaturalName(other)._key() if isinstance(other, str) else NotImplemented

    def __le__(self, other):
        return not self > other

    def __ge__(self, other):
        return not self < other


def sort_statistics_naturally() -> None:
    """Every place Locust sorts its statistics rows (console, web UI, CSV, HTML) sorts the keys of
    `RequestStats.entries`; a row created with a NaturalName sorts naturally in all of them."""
    from locust.stats import EntriesDict

    plain_missing = EntriesDict.__missing__
    if getattr(plain_missing, "natural", False):
        return

    def __missing__(self, key):
        name, method = key
        return plain_missing(self, (NaturalName(name) if type(name) is str else name, method))

    __missing__.natural = True
    EntriesDict.__missing__ = __missing__


def install() -> None:
    """Register the options and listeners on Locust's global events (once)."""
    global _installed
    if _installed:
        return
    _installed = True
    sort_statistics_naturally()
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(on_init)
    events.test_start.add_listener(on_test_start)
    events.test_stopping.add_listener(on_test_stopping)
    events.test_stop.add_listener(on_test_stop)
    events.report_to_master.add_listener(on_report_to_master)
    events.worker_report.add_listener(on_worker_report)
    events.quitting.add_listener(on_quitting)


class BeaconSenderUser(User):
    """Not a viewer: a sender that pops due beacons of thousands of simulated viewers and
    sends them over its own keep-alive pool (`--concurrency` requests in flight)."""

    host = DEFAULT_HOST
    wait_time = constant(0)

    @task
    def send_due_beacons(self) -> None:
        run = STATE.run
        if run is None or run.sender.stopped:  # not built yet, or the test is stopping
            gevent.sleep(0.05)
            return
        run.sender.run()
