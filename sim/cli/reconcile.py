"""`player-sim reconcile LEDGER --store STORE`: proves what arrived, what was lost, what was duplicated."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from sim.cli import app, fail

LABELS = {
    "sent": "sent",
    "failed_at_send": "failed at send",
    "received": "received",
    "lost": "lost",
    "duplicated": "duplicated",
    "arrived_despite_failure": "arrived despite failure",
    "unexpected": "unexpected",
    "rejected": "rejected",
    "retried": "retried",
}
ALWAYS_SHOWN = ("sent", "received", "lost", "duplicated")


@app.command(short_help="Compare what a load run sent with what the collector stored")
def reconcile(
    ledger: str = typer.Argument(
        ...,
        metavar="LEDGER",
        help="A requests ledger (JSON lines: ts, method, url, headers, body, protocol, "
        "key), a folder of per-worker ledgers, or a quoted glob.",
    ),
    store: str = typer.Option(..., "--store", metavar="STORE", help="The collector's DuckDB store (table `events`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the reconciliation as JSON on stdout."),
    run: str = typer.Option(
        None,
        "--run",
        metavar="RUN",
        help="The load run to reconcile (default: the runs the ledger names; 'all': every row of the store).",
    ),
) -> None:
    """Compare what a load run sent with what the collector stored.

    The keys of the ledger against the keys of the store: sent, failed at send, received, lost,
    duplicated, unexpected, rejected (with reasons), in total and by protocol and event type.

    One store can hold many load runs: only the rows of the ledger's run are compared. It
    works while the collector runs (the store is read through it).

    Exit status: 0 when nothing was lost or duplicated, 1 when anything was lost or
    duplicated, 2 when the ledger or the store cannot be read.
    """
    import duckdb  # here, not at the top: every command's start-up would pay for it

    from sim.metrics import SourceError
    from sim.metrics.reconcile import COUNTS, reconcile as run_reconcile
    from sim.protocols.event_types import event_label

    try:
        result = run_reconcile(ledger, store, run)
    except SourceError as exc:
        fail("reconcile", str(exc))
    except duckdb.Error as exc:
        fail("reconcile", f"{ledger}: cannot reconcile ({str(exc).splitlines()[0]})")
    if json_out:
        typer.echo(result.to_json())
    else:
        runs = f" (run {', '.join(result.runs)})" if result.runs else ""
        table = Table(title=f"Reconciliation: {ledger} against {store}{runs}", title_justify="left")
        table.add_column("protocol", no_wrap=True, min_width=6)
        table.add_column("eventType")
        # counts that are 0 for the whole run (a healthy one: failures, rejections) are said
        # below the table instead, so it fits a terminal
        shown = [c for c in COUNTS if c in ALWAYS_SHOWN or result.totals[c]]
        for c in shown:
            table.add_column(
                LABELS[c], justify="right", no_wrap=True, style="red" if c in ("lost", "duplicated") else None
            )
        for row in result.by_type:
            table.add_row(
                row["protocol"] or "?", event_label(row["protocol"], row["eventType"]), *(f"{row[c]:,}" for c in shown)
            )
        table.add_row("total", "", *(f"{result.totals[c]:,}" for c in shown), style="bold", end_section=True)
        console = Console()
        console.print(table)
        zeros = [f"0 {LABELS[c]}" for c in COUNTS if c not in shown]
        if zeros:
            console.print(", ".join(zeros))
        for r in result.failed_reasons:
            console.print(f"failed at send {r['protocol']}: {r['error'] or '(no reason)'} x {r['lines']:,}")
        for r in result.rejected_reasons:
            console.print(f"rejected {r['protocol']}: {r['error_code'] or '(no code)'} x {r['rows']:,}")
        if result.unexpected_keys:
            console.print("unexpected keys (first 10): " + ", ".join(result.unexpected_keys))
        console.print(
            "[green]nothing lost or duplicated[/green]" if result.ok else "[red]events were lost or duplicated[/red]"
        )
    raise typer.Exit(0 if result.ok else 1)
