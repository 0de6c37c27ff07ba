"""The collector's live figures (`/stats.json`, SQL over the store) and the self-contained page at `/`.

    LiveStats(store).snapshot()
    # {"total": 12, "accepted": 10, ..., "by_protocol": {"legacy": 10},
    #  "by_type": [{"protocol": "legacy", "eventType": 3, "name": "PLAY", "count": 4}, ...],
    #  "headline": {"legacy": {"loads": 5, "plays": 4, "play_rate": 0.8, ...}, "kava": {...}}}

Loads and plays follow each protocol's own reporting: legacy MEDIA_LOADED (2) is a load
and PLAY (3) a play (kaltura/dwh aggregation); KAVA IMPRESSION (1) and PLAY (3).
"""
from __future__ import annotations

import threading
import time

from ..protocols.event_types import EVENT_NAMES

_LOAD_TYPE = {"legacy": 2, "kava": 1}
_RATE_WINDOW_S = 5.0
_SERIES_S, _BUCKET_S = 300, 5          # the charts over time: the last 5 minutes in 5 s buckets
# Play funnel steps per protocol: (label, eventType); loads and plays as in the headline.
_FUNNEL = {"legacy": (("loads", 2), ("plays", 3), ("25 %", 4), ("50 %", 5), ("75 %", 6), ("100 %", 7)),
           "kava": (("loads", 1), ("play requests", 2), ("plays", 3), ("25 %", 11), ("50 %", 12), ("75 %", 13),
                    ("100 %", 14))}


def event_name(protocol: str, event_type: int | None) -> str:
    names = EVENT_NAMES["legacy" if protocol == "legacy" else "kava"]
    return names.get(event_type, "?") if event_type is not None else "(none)"


class LiveStats:
    """Figures over the store, recomputed at most once a second whatever the page count."""

    def __init__(self, store, min_interval_s: float = 1.0):
        self.store = store
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._cached: dict | None = None
        self._at = 0.0
        self._reader = None
        self.current_run = lambda: None     # the run id of the last committed request (set by the writer)

    def snapshot(self) -> dict:
        with self._lock:
            now = time.time()
            if self._cached is None or now - self._at >= self.min_interval_s:
                self._cached = self._compute(now)
                self._at = now
            return self._cached

    def _compute(self, now: float) -> dict:
        if self._reader is None:
            self._reader = self.store.reader()
        con = self._reader
        total, accepted, faulted, flagged, recent = con.execute(
            """SELECT count(*), count(*) FILTER (accepted), count(*) FILTER (fault IS NOT NULL),
                      count(*) FILTER (accepted AND flags IS NOT NULL),
                      count(*) FILTER (accepted AND received_at >= ?)
               FROM events""", [now - _RATE_WINDOW_S]).fetchall()[0]
        by_type = con.execute(
            """SELECT protocol, eventType, count(*) AS n FROM events WHERE accepted
               GROUP BY ALL ORDER BY n DESC, protocol, eventType""").fetchall()
        sessions = dict(con.execute(
            "SELECT protocol, count(DISTINCT sessionId) FROM events WHERE accepted GROUP BY ALL").fetchall())
        errors = con.execute(
            """SELECT error_code, count(*) FROM events WHERE NOT accepted AND fault IS NULL
               GROUP BY ALL ORDER BY 2 DESC LIMIT 10""").fetchall()
        run = self._run_figures(con, self.current_run())
        series = self._series(con, now)
        by_protocol: dict[str, int] = {}
        counts: dict[tuple[str, int | None], int] = {}
        for protocol, event_type, n in by_type:
            by_protocol[protocol] = by_protocol.get(protocol, 0) + n
            counts[(protocol, event_type)] = n
        headline = {}
        for protocol in sorted(by_protocol):
            loads = counts.get((protocol, _LOAD_TYPE.get(protocol)), 0)
            plays = counts.get((protocol, 3), 0)
            figures = {"loads": loads, "plays": plays,
                       "play_rate": round(plays / loads, 4) if loads else None,
                       "sessions": sessions.get(protocol, 0)}
            if protocol == "kava":
                # a VIEW stands for about 10 s of playing (kava-timer); a quick reading, not a report
                figures["minutes_viewed"] = round(counts.get(("kava", 99), 0) * 10 / 60, 1)
            headline[protocol] = figures
        return {
            "time": now, "total": total, "accepted": accepted, "faulted": faulted,
            "rejected": total - accepted - faulted, "flagged": flagged,
            "events_per_second": round(recent / _RATE_WINDOW_S, 2),
            "by_protocol": by_protocol,
            "by_type": [{"protocol": p, "eventType": t, "name": event_name(p, t), "count": n}
                        for p, t, n in by_type],
            "errors": [{"code": c, "count": n} for c, n in errors],
            "headline": headline,
            "funnel": {p: [{"step": step, "count": counts.get((p, t), 0)} for step, t in _FUNNEL[p]]
                       for p in sorted(by_protocol) if p in _FUNNEL},
            "series": series,
            "run": run,
        }

    @staticmethod
    def _series(con, now: float) -> dict:
        """Accepted, rejected and flagged requests per 5 s over the last 5 minutes, by receipt time
        (empty buckets as zeros, so a pause shows as a drop, not as a line across it)."""
        end = (now // _BUCKET_S) * _BUCKET_S
        start = end - _SERIES_S + _BUCKET_S
        rows = con.execute(
            f"""SELECT floor(received_at / {_BUCKET_S}) * {_BUCKET_S} AS t, count(*) FILTER (accepted),
                       count(*) FILTER (NOT accepted AND fault IS NULL),
                       count(*) FILTER (accepted AND flags IS NOT NULL)
                FROM events WHERE received_at >= ? GROUP BY 1""", [start]).fetchall()
        got = {int(t): (a, r, f) for t, a, r, f in rows}
        points = [[t, *got.get(t, (0, 0, 0))] for t in range(int(start), int(end) + 1, _BUCKET_S)]
        return {"bucket_s": _BUCKET_S, "columns": ["time", "accepted", "rejected", "flagged"], "points": points}

    @staticmethod
    def _run_figures(con, run: str | None) -> dict | None:
        """Sent / received / lost of one load run, from its requests' sequence numbers: each load
        worker numbers its sends from 0, so sent is one past the highest number seen per worker
        (sends still in flight, or refused before reaching the collector, count as lost here until
        they arrive; `player-sim reconcile` gives the exact figures from the ledger)."""
        if run is None:
            return None
        sent, received, retried = con.execute(
            """SELECT coalesce(sum(top + 1), 0), coalesce(sum(got), 0), coalesce(sum(rows - got), 0) FROM (
                 SELECT max(run_seq) AS top, count(DISTINCT run_seq) AS got, count(*) AS rows
                 FROM events WHERE run_id = ? AND run_seq IS NOT NULL GROUP BY run_worker)""", [run]).fetchall()[0]
        return {"id": run, "sent": int(sent), "received": int(received), "lost": int(sent - received),
                "retried": int(retried)}


_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>player-sim collector</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .6em} h2{font-size:1em;margin:1.2em 0 .4em}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.6em}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right}
th{background:#eee} td.l,th.l{text-align:left} #status{color:#888;font-size:.9em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:.8em;margin-top:1em}
.plot{background:#fff;border:1px solid #ddd;border-radius:6px;height:300px}
</style>
<script>/*PLOTLY*/</script>
</head><body>
<h1>player-sim collector</h1>
<div id="status">loading&hellip;</div>
<div class="cards">
 <div class="card">events/s<b id="eps">-</b></div>
 <div class="card">accepted<b id="accepted">-</b></div>
 <div class="card">rejected<b id="rejected">-</b></div>
 <div class="card">faulted<b id="faulted">-</b></div>
 <div class="card">flagged<b id="flagged">-</b></div>
</div>
<h2>Current load run <span id="run_id"></span></h2>
<div class="cards">
 <div class="card">sent<b id="run_sent">-</b></div>
 <div class="card">received<b id="run_received">-</b></div>
 <div class="card">lost<b id="run_lost">-</b></div>
</div>
<div class="charts">
 <div class="plot" id="chart_eps"></div>
 <div class="plot" id="chart_outcomes"></div>
 <div class="plot" id="chart_funnel"></div>
</div>
<h2>Headline</h2>
<table id="headline"><thead><tr><th class="l">protocol</th><th>loads</th><th>plays</th>
<th>play rate</th><th>sessions</th><th>minutes viewed</th></tr></thead><tbody></tbody></table>
<h2>Events by protocol and type</h2>
<table id="types"><thead><tr><th class="l">protocol</th><th>eventType</th><th class="l">name</th>
<th>count</th></tr></thead><tbody></tbody></table>
<h2>Rejections</h2>
<table id="errors"><thead><tr><th class="l">error code</th><th>count</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
function cell(text, cls){var td=document.createElement("td");td.textContent=text;if(cls)td.className=cls;return td;}
function fill(id, rows){
  var body=document.querySelector("#"+id+" tbody");body.textContent="";
  rows.forEach(function(r){var tr=document.createElement("tr");
    r.forEach(function(c,i){tr.appendChild(cell(c===null||c===undefined?"-":String(c), i===0||(id==="types"&&i===2)?"l":""));});
    body.appendChild(tr);});
}
function show(s){
  document.getElementById("eps").textContent=s.events_per_second;
  ["accepted","rejected","faulted","flagged"].forEach(function(k){document.getElementById(k).textContent=s[k];});
  var run=s.run||{};document.getElementById("run_id").textContent=run.id||"(none yet)";
  ["sent","received","lost"].forEach(function(k){document.getElementById("run_"+k).textContent=run.id?run[k]:"-";});
  fill("headline", Object.keys(s.headline).map(function(p){var h=s.headline[p];
    return [p,h.loads,h.plays,h.play_rate===null?null:(100*h.play_rate).toFixed(1)+" %",h.sessions,h.minutes_viewed];}));
  fill("types", s.by_type.map(function(t){return [t.protocol,t.eventType,t.name,t.count];}));
  fill("errors", s.errors.map(function(e){return [e.code,e.count];}));
  document.getElementById("status").textContent="updated "+new Date(s.time*1000).toLocaleTimeString()+
    " \\u2014 "+s.total+" requests stored";
  charts(s);
}
var PLOT_CONFIG={displaylogo:false,responsive:true};
function layout(title, x, y, xtype){return {title:{text:title,font:{size:14},x:0.01,xanchor:"left"},
  margin:{t:40,r:20,b:50,l:60},xaxis:{title:{text:x},automargin:true,type:xtype||"-"},yaxis:{title:{text:y},rangemode:"tozero",automargin:true},
  legend:{orientation:"h",y:-0.3},barmode:"group"};}
function charts(s){
  if(!window.Plotly)return;
  var pts=s.series.points, step=s.series.bucket_s;
  var xs=pts.map(function(p){return new Date(p[0]*1000);});
  Plotly.react("chart_eps",[{type:"scatter",mode:"lines",name:"events/s",x:xs,
    y:pts.map(function(p){return (p[1]+p[2])/step;}),line:{color:"#3b6ea5"}}],
    layout("Events per second (last 5 minutes)","time","events/s (accepted and rejected)"),PLOT_CONFIG);
  var colours={accepted:"#5a9e6f",rejected:"#b5485d",flagged:"#e07b39"};
  Plotly.react("chart_outcomes",["accepted","rejected","flagged"].map(function(k,i){
    return {type:"scatter",mode:"lines",name:k,x:xs,y:pts.map(function(p){return p[i+1];}),
            line:{color:colours[k]}};}),
    layout("Requests per "+step+" s by outcome","time","requests per "+step+" s"),PLOT_CONFIG);
  Plotly.react("chart_funnel",Object.keys(s.funnel).map(function(p){
    return {type:"bar",name:p,x:s.funnel[p].map(function(f){return f.step;}),
            y:s.funnel[p].map(function(f){return f.count;}),texttemplate:"%{y:,}",textposition:"outside",
            cliponaxis:false};}),
    layout("Play funnel (accepted beacons)","step","beacons","category"),PLOT_CONFIG);
  document.body.dataset.charts="3";
}
function refresh(){
  fetch("stats.json",{cache:"no-store"}).then(function(r){return r.json();}).then(show)
    .catch(function(e){document.getElementById("status").textContent="cannot reach the collector: "+e;});
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""


def _page() -> bytes:
    """The page with plotly.js inlined: the collector may run where no network reaches a CDN."""
    from plotly.offline import get_plotlyjs
    return _PAGE.replace(b"/*PLOTLY*/", get_plotlyjs().encode())


PAGE_HTML = _page()
