"""Writes Metrics as one self-contained HTML page with inline SVG charts (works offline).

Usage::

    write_html(compute("events.parquet"), "report.html")

Charts are hand-written SVG: bars and one line chart need no plotting library, the page
stays small and text-searchable, and it renders the same everywhere without a CDN.
The file is written to a temporary name beside the target and renamed into place, so a
reader never sees half a report.
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from html import escape

from .compute import Metrics, ProtocolMetrics
from .report import caveat_of, columns_of, headline_rows

WIDTH = 640
BAR = 20
PALETTE = ("#3b6ea5", "#e07b39", "#5a9e6f", "#b5485d", "#7a68a6", "#8c8c3a", "#4aa3b5", "#999999")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.4em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: .25em .8em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.truth, th.truth { color: #3b6ea5; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
.chart { border: 1px solid #ddd; padding: .5em; }
.note { color: #666; font-size: .9em; margin: .2em 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
"""


def _num(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1e6:.1f}M"
    if v >= 10_000:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:.2f}"


def hbar_chart(title: str, items: list[tuple[str, float]], value_fmt=_num) -> str:
    """Horizontal bars, one per (label, value), longest value full width."""
    if not items:
        return ""
    label_w, top = 150, 24
    height = top + len(items) * (BAR + 6) + 6
    top_value = max(v for _, v in items) or 1
    parts = [f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = top + i * (BAR + 6)
        w = (WIDTH - label_w - 70) * value / top_value
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(str(label))[:24]}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{BAR}" fill="{PALETTE[0]}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{escape(value_fmt(value))}</text>')
    return _svg(height, parts)


def vbar_chart(title: str, items: list[tuple[str, float]]) -> str:
    """Vertical bars (e.g. 24 hours), labels under the bars."""
    if not items:
        return ""
    height, top, bottom, left = 220, 24, 24, 40
    plot_h = height - top - bottom
    step = (WIDTH - left) / len(items)
    top_value = max(v for _, v in items) or 1
    parts = [f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{_num(top_value)}</text>']
    for i, (label, value) in enumerate(items):
        h = plot_h * value / top_value
        x = left + i * step
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{escape(str(label))}: {_num(value)}</title></rect>')
        if len(items) <= 31 or i % max(len(items) // 12, 1) == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(str(label))}</text>')
    return _svg(height, parts)


def line_chart(title: str, xs: list[float], series: dict[str, list[float]], bucket_s: int) -> str:
    """Lines over epoch-second x values, one per series, with a legend and first/last time."""
    if not xs:
        return ""
    height, top, bottom, left = 220, 40, 24, 50
    plot_w, plot_h = WIDTH - left - 10, height - top - bottom
    x0, x1 = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + bucket_s
    top_value = max((max(v) for v in series.values() if v), default=1) or 1
    parts = [f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{_num(top_value)}</text>',
             f'<text x="{left}" y="{height - 6}">{_time(x0)}</text>',
             f'<text x="{WIDTH - 10}" y="{height - 6}" text-anchor="end">{_time(x1)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 10}" y2="{top + plot_h}" stroke="#aaa"/>']
    for n, (name, ys) in enumerate(series.items()):
        pts = " ".join(f"{left + plot_w * (x - x0) / (x1 - x0):.1f},{top + plot_h - plot_h * y / top_value:.1f}"
                       for x, y in zip(xs, ys))
        colour = PALETTE[n % len(PALETTE)]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
                     f'<rect x="{left + n * 110}" y="22" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + n * 110 + 14}" y="31">{escape(name)}</text>')
    return _svg(height, parts)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _svg(height: int, parts: list[str]) -> str:
    return (f'<div class="chart"><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">{"".join(parts)}</svg></div>')


def _funnel(pm: ProtocolMetrics) -> str:
    h = pm.headline
    steps = [("Impressions", h["count_loads"]), ("Play requests", h.get("count_play_requests")),
             ("Plays", h["count_plays"]), ("25 %", h["count_plays_25"]), ("50 %", h["count_plays_50"]),
             ("75 %", h["count_plays_75"]), ("100 %", h["count_plays_100"])]
    chart = hbar_chart("Quartile funnel", [(k, v) for k, v in steps if v is not None])
    ads = [("Ad impressions", h.get("count_ad_impressions")), ("Started", h.get("count_ad_starts")),
           ("25 %", h.get("count_ad_first_quartiles")), ("50 %", h.get("count_ad_midpoints")),
           ("75 %", h.get("count_ad_third_quartiles")), ("Completed", h.get("count_ad_completions")),
           ("Clicked", h.get("count_ad_clicks"))]
    if h.get("count_ad_impressions"):
        chart += hbar_chart("Ad funnel", [(k, v) for k, v in ads if v is not None])
    return chart


def _protocol_section(pm: ProtocolMetrics) -> str:
    b = pm.breakdowns
    charts = [_funnel(pm)]
    if pm.timeline.get("points"):
        pts = pm.timeline["points"]
        charts.append(line_chart(f"Events over time (per {pm.timeline['bucket_s'] // 60} min)",
                                 [p[0] for p in pts], {"events": [p[1] for p in pts], "plays": [p[2] for p in pts]},
                                 pm.timeline["bucket_s"]))
    if "hour" in b:
        by_hour = {r["key"]: r["plays"] for r in b["hour"]}
        charts.append(vbar_chart(f"Plays by hour ({pm.methods.get('by hour', 'UTC')})",
                                 [(f"{h:02d}", by_hour.get(f"{h:02d}", 0)) for h in range(24)]))
    if "day" in b and len(b["day"]) > 1:
        charts.append(vbar_chart("Plays by day", [(r["key"][5:], r["plays"]) for r in b["day"]]))
    if "entry" in b:
        charts.append(hbar_chart("Top entries by plays", [(r["key"], r["plays"]) for r in b["entry"]]))
    for dim in ("device", "os", "browser", "country"):
        if dim in b:
            total = sum(r["plays"] for r in b[dim]) or 1
            charts.append(hbar_chart(f"{dim.capitalize()} mix (share of plays; from {pm.methods.get('by ' + dim)})",
                                     [(r["key"], r["plays"] / total) for r in b[dim]], lambda v: f"{v * 100:.1f} %"))
    counts = "".join(f"<tr><td>{escape(k)}</td><td>{v:,}</td></tr>" for k, v in pm.event_counts.items())
    methods = "".join(f'<p class="note">{escape(k)}: {escape(v)}</p>' for k, v in pm.methods.items())
    return (f"<h2>{escape(pm.protocol)}: {pm.rows:,} beacons</h2>"
            f'<div class="charts">{"".join(charts)}</div>{methods}'
            f"<details><summary>Beacons by eventType</summary><table><tr><th>eventType</th><th>beacons</th></tr>"
            f"{counts}</table></details>")


def render_html(metrics: Metrics) -> str:
    cols = columns_of(metrics)
    rows = headline_rows(metrics)
    caveats = [caveat_of(metrics, key) for key, _, _ in rows]
    head = "".join(f'<th class="{part}">{escape(h)}</th>' for h, _, part in cols)
    if any(caveats):
        head += "<th>What the beacons cannot see</th>"
    body = "".join(
        "<tr><td>" + escape(label) + "</td>"
        + "".join(f'<td class="{part}">{escape(c)}</td>' for c, (_, _, part) in zip(cells, cols))
        + (f'<td class="note">{escape(caveat)}</td>' if any(caveats) else "") + "</tr>"
        for (_, label, cells), caveat in zip(rows, caveats))
    notes = "".join(f'<p class="note truth">truth {escape(k)}: {escape(v)}</p>'
                    for k, v in metrics.truth_definitions.items())
    notes += "".join(f'<p class="note">note: {escape(n)}</p>' for n in metrics.notes)
    sections = "".join(_protocol_section(pm) for pm in metrics.protocols.values())
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>player-sim report</title>'
            f"<style>{STYLE}</style></head><body><h1>Analytics-tab figures: {escape(metrics.source)}</h1>"
            f"<table><tr><th>Metric</th>{head}</tr>{body}</table>{notes}{sections}</body></html>")


def write_html(metrics: Metrics, path: str | os.PathLike) -> None:
    """Write the report to `path` atomically (temporary file in the same folder, then rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_html(metrics))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)       # mkstemp makes 0600; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
