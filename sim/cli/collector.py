"""`player-sim collector`: run the reference analytics endpoint with its DuckDB store."""

from __future__ import annotations

import typer

from sim.cli import app, fail


def _bool(value: str, option: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise typer.BadParameter(f"{value!r} is not true or false", param_hint=option)


@app.command(short_help="Run the reference collector: Kaltura's endpoints, stored in DuckDB")
def collector(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, min=0, max=65535, help="Port; 0 picks a free one."),
    store: str = typer.Option(
        "player-sim.duckdb", help="DuckDB store (default: player-sim.duckdb in the current folder)."
    ),
    fail_rate: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of beacon requests answered 503 (recorded as faulted)."
    ),
    slow_ms: str = typer.Option(
        "0", help="Delay before answering, ms: 50, uniform:10:200, exponential:50 or lognormal:50:1.0."
    ),
    reset_rate: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of beacon requests whose connection is closed unanswered."
    ),
    view_events_enabled: str = typer.Option("true", help="What KAVA answers as viewEventsEnabled: true or false."),
    max_body_kib: int = typer.Option(64, min=1, help="Request bodies over this many KiB get 413."),
    workers: int = typer.Option(
        1, min=1, max=64, help="HTTP worker processes (all share the one store); one per core for the most requests/s."
    ),
    idle_timeout_s: float = typer.Option(
        30.0, min=0.1, help="Close a connection that sends no byte or no request head for this many seconds."
    ),
    body_timeout_s: float = typer.Option(10.0, min=0.1, help="Drop a request whose body takes longer than this."),
) -> None:
    """Run the reference collector: Kaltura's endpoints, stored in DuckDB.

    Serves Kaltura stats.collect and analytics.trackEvent, storing every request in DuckDB.

    The first line printed is the collector's URL (http://HOST:PORT).

    A live page is at /, its figures at /stats.json.

    A request is answered once it is committed to the store, so a collector killed at any
    moment has stored every request it answered; one the store cannot take is answered 503.
    Prometheus metrics are at /metrics. While it runs, `player-sim reconcile` reads the store
    through it (STORE.collector.json names the way).

    SIGINT or SIGTERM stops it after storing every request it acknowledged.
    """
    from sim.collector.app import CollectorConfig
    from sim.collector.faults import FaultPlan, FaultSpecError, parse_delay
    from sim.collector.server import ServeError, serve

    try:
        delay = parse_delay(slow_ms)
        FaultPlan(fail_rate, reset_rate, delay)  # checks the rates together
    except FaultSpecError as exc:
        fail("collector", str(exc))
    config = CollectorConfig(
        store=store,
        host=host,
        port=port,
        fail_rate=fail_rate,
        reset_rate=reset_rate,
        slow=delay,
        view_events_enabled=_bool(view_events_enabled, "--view-events-enabled"),
        max_body=max_body_kib * 1024,
        workers=workers,
        idle_timeout_s=idle_timeout_s,
        body_timeout_s=body_timeout_s,
    )
    try:
        code = serve(config)
    except ServeError as exc:
        fail("collector", str(exc), code=1)
    typer.echo(f"player-sim collector: stopped; {_stored(store)}", err=True)
    raise typer.Exit(code)


def _stored(store: str) -> str:
    """What the store holds now, in words (said on stop, so a run ends with a figure)."""
    import duckdb

    try:
        with duckdb.connect(store, read_only=True) as db:
            rows = db.execute("SELECT count(*) FROM events").fetchone()[0]
    except duckdb.Error as exc:
        return f"cannot count the requests in {store} ({str(exc).splitlines()[0]})"
    return f"{store} holds {rows:,} requests"
