"""Renders Metrics for people: the terminal headline table, and number formatting shared with HTML.

Usage::

    from rich.console import Console
    Console().print(headline_table(compute("store.duckdb")))
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from sim.metrics.compute import HEADLINE, RATIOS, Metrics
from sim.protocols.event_types import event_label

MISSING = "–"


def fmt(key: str, value) -> str:
    """One figure as shown to a reader: counts with separators, ratios as percent."""
    if value is None:
        return MISSING
    if key in RATIOS:
        return f"{value * 100:.1f} %"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def columns_of(metrics: Metrics) -> list[tuple[str, str, str]]:
    """(header, protocol, "headline" | "truth") for every column the headline table shows."""
    cols = []
    for name, pm in metrics.protocols.items():
        cols.append((name if not pm.truth else f"{name} measured", name, "headline"))
        if pm.truth:
            cols.append((f"{name} truth", name, "truth"))
    return cols


def headline_rows(metrics: Metrics) -> list[tuple[str, str, list[str]]]:
    """(key, label, formatted cells) for each headline figure measurable in some protocol."""
    cols = columns_of(metrics)
    rows = []
    for key, label in HEADLINE.items():
        values = [getattr(metrics.protocols[p], part).get(key) for _, p, part in cols]
        if all(v is None for v, (_, _, part) in zip(values, cols) if part == "headline"):
            continue
        rows.append((key, label, [fmt(key, v) for v in values]))
    return rows


def caveat_of(metrics: Metrics, key: str) -> str:
    """What the protocols cannot measure about figure `key` (shown beside it), or ""."""
    notes = [(name, pm.caveats[key]) for name, pm in metrics.protocols.items() if key in pm.caveats]
    if len(metrics.protocols) == 1:
        return "; ".join(text for _, text in notes)
    return "; ".join(f"{name}: {text}" for name, text in notes)


def headline_table(metrics: Metrics) -> Group:
    """The terminal report: headline figures per protocol (truth beside measured), then notes."""
    table = Table(title=f"Analytics-tab figures: {metrics.source}", title_justify="left")
    table.add_column("Metric")
    for header, _, part in columns_of(metrics):
        table.add_column(header, justify="right", style="cyan" if part == "truth" else None)
    rows = headline_rows(metrics)
    caveats = [caveat_of(metrics, key) for key, _, _ in rows]
    if any(caveats):
        table.add_column("What the beacons cannot see", style="dim", overflow="fold")
    for (_, label, cells), caveat in zip(rows, caveats):
        table.add_row(label, *cells, *([caveat] if any(caveats) else []))
    parts: list = [table]
    for name, pm in metrics.protocols.items():
        counts = ", ".join(f"{event_label(name, k)}: {v:,}" for k, v in pm.event_counts.items())
        parts.append(Text(f"{name}: {pm.rows:,} beacons; by eventType {counts}", style="dim"))
        for what, how in pm.methods.items():
            if not what.startswith("by "):
                parts.append(Text(f"  {what}: {how}", style="dim"))
        dims = "; ".join(f"{w[3:]} from {how}" for w, how in pm.methods.items() if w.startswith("by "))
        if dims:
            parts.append(Text(f"  breakdowns: {dims}", style="dim"))
    for what, how in metrics.truth_definitions.items():
        parts.append(Text(f"truth {what}: {how}", style="cyan"))
    for note in metrics.notes:
        parts.append(Text(f"note: {note}", style="yellow"))
    return Group(*parts)
