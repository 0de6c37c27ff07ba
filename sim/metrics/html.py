"""Writes Metrics as one self-contained HTML page of Plotly charts (works offline).

Usage::

    write_html(compute("events.parquet"), "report.html")

The page is rendered from templates/report.html.j2 (Jinja2, autoescaped) with plotly.js
inlined, so it opens without a network. Every figure reaches the page as JSON data in a
<script type="application/json"> block with <, > and & escaped, and the labels Plotly
draws (which it reads as a small HTML subset) are entity-escaped: no value from a beacon
(entry id, referrer, user agent) can become markup or script.
The file is written to a temporary name beside the target and renamed into place, so a
reader never sees half a report.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import UTC, datetime
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from sim.atomic import atomic_file
from sim.metrics.compute import HEADLINE, Metrics, ProtocolMetrics
from sim.metrics.report import caveat_of, columns_of, headline_rows
from sim.protocols.event_types import EVENT_NAMES

MEASURED, TRUTH, THIRD = "#3b6ea5", "#e07b39", "#5a9e6f"
PROTOCOL_COLOURS = {"legacy": "#3b6ea5", "kava": "#b5485d"}
MIX_DIMENSIONS = {"device": "Device", "os": "Operating system", "browser": "Browser", "country": "Country"}

# Internal names in the methods notes, said in plain words for readers of the page.
PLAIN = {
    "truth_entry_duration": "the true video length",
    "truth_intended_fraction": "the share the viewer meant to watch",
    "truth_play_s": "the true seconds of playing",
    "truth_max_position_s": "the furthest true position",
    "truth_stall_s": "the true rebuffering seconds",
    "truth_startup_s": "the true startup seconds",
    "truth_session_seq": "the true session",
    "truth_device": "the simulated viewer's real device",
    "truth_os": "the simulated viewer's real operating system",
    "truth_browser": "the simulated viewer's real browser",
    "truth_country": "the simulated viewer's real country",
    "user_agent classifier": "the browser's User-Agent header",
    "geo_country": "the country the collector looked up from the sender's address",
    "none (no truth_country, geo_country or client_ip)": "none: the events carry no country and no sender's address",
    "client_ip geolocated (GeoLite2)": "the sender's address, located with the GeoLite2 country table",
    "client_ip": "the sender's address",
    "entryId": "the video (entry id) each beacon names",
    "playTimeSum": "the play time the player reports",
    "eventType": "event",
    "eventIndex": "the event counter",
    "ts, UTC": "beacon time, UTC",
    "ts": "beacon time",
}
PLAIN_NAMES = re.compile(
    "|".join(rf"(?<![\w.]){re.escape(name)}(?!\w)" for name in sorted(PLAIN, key=len, reverse=True))
)
METHOD_LABELS = {"not measurable": "Not measurable", "flags": "Rejected lines"}


def plain(text: str) -> str:
    """A methods note with internal column names replaced by what they mean (longest names first)."""
    return PLAIN_NAMES.sub(lambda m: PLAIN[m.group(0)], text)


def label(value: Any) -> str:
    """A value Plotly draws as text: entity-escaped, since Plotly reads <b>, <a href> ... in labels."""
    return escape("(none)" if value is None else str(value))


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _axis(title: str, **extra) -> dict:
    return {"title": {"text": title}, "automargin": True, **extra}


def _count_axis(title: str, values: list, **extra) -> dict:
    """An axis of whole counts: no 0.5 ticks when the counts are small."""
    top = max((v for v in values if v is not None), default=0)
    return _axis(title, rangemode="tozero", **({"dtick": 1} if top <= 8 else {}), **extra)


def _figure(chart_id: str, title: str, traces: list[dict], x: dict, y: dict, **layout) -> dict:
    return {
        "id": chart_id,
        "title": title,
        "data": traces,
        "layout": {
            "xaxis": x,
            "yaxis": y,
            "barmode": "group",
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "margin": {"t": 70, "r": 20},
            **layout,
        },
    }


def _bars(name: str, xs: list, ys: list, colour: str, fmt: str = "%{y:,}", **extra) -> dict:
    return {
        "type": "bar",
        "name": name,
        "x": xs,
        "y": ys,
        "marker": {"color": colour},
        "texttemplate": fmt,
        "textposition": "outside",
        "cliponaxis": False,
        **extra,
    }


def _play_funnel(pm: ProtocolMetrics) -> dict | None:
    h, t = pm.headline, pm.truth
    steps = [
        ("Impressions", "count_loads"),
        ("Play requests", "count_play_requests"),
        ("Plays", "count_plays"),
        ("25 %", "count_plays_25"),
        ("50 %", "count_plays_50"),
        ("75 %", "count_plays_75"),
        ("100 %", "count_plays_100"),
    ]
    steps = [(name, key) for name, key in steps if h.get(key) is not None or t.get(key) is not None]
    if not steps:
        return None
    names = [n for n, _ in steps]
    traces = [_bars("measured", names, [h.get(k) for _, k in steps], MEASURED)]
    if t:
        traces.append(_bars("truth", names, [t.get(k) for _, k in steps], TRUTH))
    return _figure(
        f"{pm.protocol}-funnel",
        "Play funnel",
        traces,
        _axis("step", type="category"),
        _count_axis("count (sessions or beacons)", [y for tr in traces for y in tr["y"]]),
    )


def _drop_off(pm: ProtocolMetrics) -> dict | None:
    h, t = pm.headline, pm.truth
    plays = h.get("count_plays")
    if not plays:
        return None
    keys = ["count_plays", "count_plays_25", "count_plays_50", "count_plays_75", "count_plays_100"]
    measured = [None if h.get(k) is None else 100 * h[k] / plays for k in keys]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers+text",
            "name": "measured",
            "x": [0, 25, 50, 75, 100],
            "y": measured,
            "line": {"color": MEASURED},
            "textposition": "bottom left",  # 100 % at 0 goes unsaid
            "text": ["" if i == 0 or y is None else f"{y:.1f} %" for i, y in enumerate(measured)],
        }
    ]
    true_plays = t.get("count_plays")
    if true_plays:
        # older truth columns know who started and who finished, not who passed each quartile
        points = [(x, 100 * t[k] / true_plays) for x, k in zip((0, 25, 50, 75, 100), keys) if t.get(k) is not None]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers+text",
                "name": "truth",
                "x": [x for x, _ in points],
                "y": [y for _, y in points],
                "marker": {"color": TRUTH, "size": 9, "symbol": "diamond"},
                "line": {"color": TRUTH, "dash": "dot"},
                "textposition": "top right",
                "text": ["" if x == 0 else f"{y:.1f} %" for x, y in points],
            }
        )
    return _figure(
        f"{pm.protocol}-dropoff",
        "Quartile drop-off: share of plays still watching",
        traces,
        _axis("position in the video (%)", tickvals=[0, 25, 50, 75, 100], range=[-6, 112]),
        _axis("plays still watching (%)", range=[0, 110]),
    )


def _minutes(pm: ProtocolMetrics) -> dict | None:
    h, t = pm.headline, pm.truth
    keys = [k for k in ("sum_time_viewed_min", "sum_view_period_min") if h.get(k) is not None]
    if not keys:
        return None
    names = ["quartile-based" if k == "sum_time_viewed_min" else "interval-based" for k in keys]
    values = [h[k] for k in keys] + [t.get(k) or 0 for k in keys]
    fmt = "%{y:,.0f}" if max(values) >= 100 else "%{y:,.2f}"
    traces = [_bars("measured", names, [h[k] for k in keys], MEASURED, fmt)]
    if t:
        traces.append(_bars("truth", names, [t.get(k) for k in keys], TRUTH, fmt))
    return _figure(
        f"{pm.protocol}-minutes",
        "Minutes viewed",
        traces,
        _axis("how the minutes are counted", type="category"),
        _axis("minutes"),
    )


def _ad_funnel(pm: ProtocolMetrics) -> dict | None:
    h = pm.headline
    steps = [
        ("Ad impressions", "count_ad_impressions"),
        ("Started", "count_ad_starts"),
        ("25 %", "count_ad_first_quartiles"),
        ("50 %", "count_ad_midpoints"),
        ("75 %", "count_ad_third_quartiles"),
        ("Completed", "count_ad_completions"),
        ("Clicked", "count_ad_clicks"),
    ]
    steps = [(n, k) for n, k in steps if h.get(k) is not None]
    if not any(h[k] for _, k in steps):
        return None
    return _figure(
        f"{pm.protocol}-ads",
        "Ad funnel",
        [_bars("measured", [n for n, _ in steps], [h[k] for _, k in steps], THIRD)],
        _axis("step", type="category"),
        _count_axis("ad beacons (count)", [h[k] for _, k in steps]),
        showlegend=False,
    )


def _timeline(pm: ProtocolMetrics) -> dict | None:
    points = pm.timeline.get("points")
    if not points:
        return None
    bucket = pm.timeline["bucket_s"]
    per = {300: "5 minutes", 3600: "hour", 86400: "day"}.get(bucket, f"{bucket} s")
    xs = [_time(p[0]) for p in points]
    mode = "lines" if len(points) > 24 else "lines+markers"  # a lone bucket is a dot, not nothing
    traces = [
        {
            "type": "scatter",
            "mode": mode,
            "name": f"beacons per {per} (left axis)",
            "x": xs,
            "y": [p[1] for p in points],
            "line": {"color": MEASURED},
        },
        {
            "type": "scatter",
            "mode": mode,
            "name": f"plays per {per} (right axis)",
            "x": xs,
            "y": [p[2] for p in points],
            "line": {"color": TRUTH},
            "yaxis": "y2",
        },
    ]
    return _figure(
        f"{pm.protocol}-timeline",
        f"Beacons and plays over time (per {per})",
        traces,
        _axis("time (UTC)", type="date"),
        _count_axis(f"beacons per {per}", traces[0]["y"], color=MEASURED),
        yaxis2=_count_axis(
            f"plays per {per}", traces[1]["y"], overlaying="y", side="right", color=TRUTH, tickmode="auto"
        ),
    )


def clock_window_days(days: list[dict]) -> tuple[list[dict], list[dict]]:
    """(days inside the clock window, days left out): leading and trailing days without a player
    load hold only the ends of sessions begun the day before, so they are outside the window."""
    days = [d for d in days if d["key"] is not None]
    lo, hi = 0, len(days)
    while lo < hi and not days[lo]["loads"]:
        lo += 1
    while hi > lo and not days[hi - 1]["loads"]:
        hi -= 1
    return days[lo:hi], days[:lo] + days[hi:]


def _by_time(pm: ProtocolMetrics, notes: list[str]) -> list[dict]:
    b, out = pm.breakdowns, []
    zone = plain(pm.methods.get("by hour", "ts, UTC"))
    if "hour" in b:
        by_hour = {r["key"]: r["plays"] for r in b["hour"]}
        hours = [f"{h:02d}" for h in range(24)]
        out.append(
            _figure(
                f"{pm.protocol}-hour",
                "Plays by hour of day",
                [_bars("plays", hours, [by_hour.get(h, 0) for h in hours], MEASURED)],
                _axis(f"hour of day ({zone})", type="category"),
                _count_axis("plays", list(by_hour.values())),
                showlegend=False,
            )
        )
    if "day" in b:
        inside, outside = clock_window_days(b["day"])
        if outside:
            notes.append(
                f"Plays by day leaves out {', '.join(d['key'] for d in outside)}: no player was loaded "
                f"that day, only the ends of sessions begun before it ({sum(d['plays'] for d in outside)} "
                f"play(s), {sum(d['events'] for d in outside):,} beacons)."
            )
        if len(inside) > 1:
            out.append(
                _figure(
                    f"{pm.protocol}-day",
                    "Plays by day",
                    [_bars("plays", [d["key"] for d in inside], [d["plays"] for d in inside], MEASURED)],
                    _axis(f"day ({zone})", type="category"),
                    _count_axis("plays", [d["plays"] for d in inside]),
                    showlegend=False,
                )
            )
    if "entry" in b and b["entry"]:
        rows = list(reversed(b["entry"]))
        out.append(
            _figure(
                f"{pm.protocol}-entries",
                "Top videos by plays",
                [
                    _bars(
                        "plays",
                        [r["plays"] for r in rows],
                        [label(r["key"]) for r in rows],
                        MEASURED,
                        "%{x:,}",
                        orientation="h",
                    )
                ],
                _count_axis("plays", [r["plays"] for r in rows]),
                _axis("entry id", type="category"),
                showlegend=False,
                height=max(300, 28 * len(rows) + 120),
            )
        )
    return out


def _mixes(metrics: Metrics) -> list[dict]:
    """One chart per dimension: every protocol side by side (share of its plays), measured beside truth."""
    out = []
    for dim, title in MIX_DIMENSIONS.items():
        series = []  # (name, rows, colour, hatched)
        for p, pm in metrics.protocols.items():
            colour = PROTOCOL_COLOURS.get(p, THIRD)
            if pm.measured_breakdowns.get(dim):
                series.append((f"{p} measured", pm.measured_breakdowns[dim], colour, False))
            if pm.breakdowns.get(dim):
                from_truth = pm.methods.get(f"by {dim}", "").startswith("truth_")
                series.append((f"{p} {'truth' if from_truth else 'measured'}", pm.breakdowns[dim], colour, from_truth))
        if not series:
            continue
        order: list = []
        for _, rows, _, _ in series:
            order += [r["key"] for r in rows if r["key"] not in order]
        traces = []
        for name, rows, colour, hatched in series:
            total = sum(r["plays"] for r in rows) or 1
            share = {r["key"]: 100 * r["plays"] / total for r in rows}
            # truth: the protocol's colour, pale with a solid outline, so four bars per value stay apart
            fill = f"rgba({int(colour[1:3], 16)},{int(colour[3:5], 16)},{int(colour[5:7], 16)},0.3)"
            marker = {"color": fill if hatched else colour, "line": {"color": colour, "width": 1.5}}
            traces.append(
                _bars(
                    name,
                    [label(k) for k in order],
                    [share.get(k, 0) for k in order],
                    colour,
                    "%{y:.0f}",
                    marker=marker,
                    textfont={"size": 10},
                )
            )
        out.append(
            _figure(
                f"mix-{dim}", f"{title} mix", traces, _axis(title.lower(), type="category"), _axis("share of plays (%)")
            )
        )
    return out


def _event_rows(pm: ProtocolMetrics) -> list[dict]:
    names = EVENT_NAMES.get(pm.protocol, {})
    rows = []
    for key, count in pm.event_counts.items():
        try:
            name = names.get(int(key), "unknown to this protocol")
        except (TypeError, ValueError):
            name = "not a number"
        rows.append({"id": key, "name": name, "count": count})
    return rows


def _methods(pm: ProtocolMetrics) -> list[tuple[str, str]]:
    out = []
    for what, how in pm.methods.items():
        if what.startswith(("by ", "measured by ")):
            dim = what.split("by ", 1)[1]
            name = MIX_DIMENSIONS.get(dim, dim.capitalize())
            if what.startswith("measured"):
                what = f"{name} breakdown, measured"
            else:
                what = f"{name} breakdown{', truth' if pm.measured_breakdowns.get(dim) else ''}"
        else:
            what = HEADLINE.get(what) or METHOD_LABELS.get(what, what.capitalize())
        out.append((what, plain(how)))
    return out


def report_data(metrics: Metrics) -> dict[str, Any]:
    """Everything the page shows, as plain data: headline table, charts (Plotly figures), notes."""
    cols = columns_of(metrics)
    sections = []
    for pm in metrics.protocols.values():
        notes: list[str] = []
        charts = [c for c in (_play_funnel(pm), _drop_off(pm), _minutes(pm), _ad_funnel(pm), _timeline(pm)) if c]
        charts += _by_time(pm, notes)
        sections.append(
            {
                "protocol": pm.protocol,
                "rows": pm.rows,
                "charts": charts,
                "events": _event_rows(pm),
                "methods": _methods(pm),
                "notes": notes,
                "has_truth": bool(pm.truth),
            }
        )
    return {
        "source": metrics.source,
        "columns": [{"header": h, "truth": part == "truth"} for h, _, part in cols],
        "headline": [
            {"key": k, "label": lbl, "cells": cells, "caveat": plain(caveat_of(metrics, k))}
            for k, lbl, cells in headline_rows(metrics)
        ],
        "truth_definitions": [(what, plain(how)) for what, how in metrics.truth_definitions.items()],
        "sections": sections,
        "mixes": _mixes(metrics),
        "notes": list(metrics.notes),
    }


def _finite(value: Any) -> Any:
    """The data with NaN and infinities as null (JSON.parse rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no </script>, <!-- or & can end or bend it."""
    text = json.dumps(_finite(data), separators=(",", ":"), allow_nan=False, default=str)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render_html(metrics: Metrics) -> str:
    data = report_data(metrics)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(data=data, data_json=Markup(_json_for_script(data)), plotly_js=Markup(_plotly_js()))
    )


def write_html(metrics: Metrics, path: str | os.PathLike) -> None:
    """Write the report to `path` whole or not at all, readable by others as the umask allows."""
    with atomic_file(path, "w", shared=True, encoding="utf-8") as fh:
        fh.write(render_html(metrics))
