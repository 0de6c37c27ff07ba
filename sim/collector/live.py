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
from importlib import resources

from sim.protocols.event_types import EVENT_IDS, EVENT_NAMES

_L, _K = EVENT_IDS["legacy"], EVENT_IDS["kava"]
_LOAD_TYPE = {"legacy": _L["MEDIA_LOADED"], "kava": _K["IMPRESSION"]}
_PLAY_TYPE = {"legacy": _L["PLAY"], "kava": _K["PLAY"]}
_RATE_WINDOW_S = 5.0
_SERIES_S, _BUCKET_S = 300, 5  # the charts over time: the last 5 minutes in 5 s buckets
# Play funnel steps per protocol: (label, eventType); loads and plays as in the headline.
_FUNNEL = {
    "legacy": (
        ("loads", _L["MEDIA_LOADED"]),
        ("plays", _L["PLAY"]),
        ("25 %", _L["PLAY_REACHED_25"]),
        ("50 %", _L["PLAY_REACHED_50"]),
        ("75 %", _L["PLAY_REACHED_75"]),
        ("100 %", _L["PLAY_REACHED_100"]),
    ),
    "kava": (
        ("loads", _K["IMPRESSION"]),
        ("play requests", _K["PLAY_REQUEST"]),
        ("plays", _K["PLAY"]),
        ("25 %", _K["PLAY_REACHED_25_PERCENT"]),
        ("50 %", _K["PLAY_REACHED_50_PERCENT"]),
        ("75 %", _K["PLAY_REACHED_75_PERCENT"]),
        ("100 %", _K["PLAY_REACHED_100_PERCENT"]),
    ),
}


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
        self.current_run = lambda: None  # the run id of the last committed request (set by the writer)

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
               FROM events""",
            [now - _RATE_WINDOW_S],
        ).fetchall()[0]
        by_type = con.execute(
            """SELECT protocol, eventType, count(*) AS n FROM events WHERE accepted
               GROUP BY ALL ORDER BY n DESC, protocol, eventType"""
        ).fetchall()
        sessions = dict(
            con.execute("SELECT protocol, count(DISTINCT sessionId) FROM events WHERE accepted GROUP BY ALL").fetchall()
        )
        errors = con.execute(
            """SELECT error_code, count(*) FROM events WHERE NOT accepted AND fault IS NULL
               GROUP BY ALL ORDER BY 2 DESC LIMIT 10"""
        ).fetchall()
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
            plays = counts.get((protocol, _PLAY_TYPE.get(protocol)), 0)
            figures = {
                "loads": loads,
                "plays": plays,
                "play_rate": round(plays / loads, 4) if loads else None,
                "sessions": sessions.get(protocol, 0),
            }
            if protocol == "kava":
                # a VIEW stands for about 10 s of playing (kava-timer); a quick reading, not a report
                figures["minutes_viewed"] = round(counts.get(("kava", 99), 0) * 10 / 60, 1)
            headline[protocol] = figures
        return {
            "time": now,
            "total": total,
            "accepted": accepted,
            "faulted": faulted,
            "rejected": total - accepted - faulted,
            "flagged": flagged,
            "events_per_second": round(recent / _RATE_WINDOW_S, 2),
            "by_protocol": by_protocol,
            "by_type": [{"protocol": p, "eventType": t, "name": event_name(p, t), "count": n} for p, t, n in by_type],
            "errors": [{"code": c, "count": n} for c, n in errors],
            "headline": headline,
            "funnel": {
                p: [{"step": step, "count": counts.get((p, t), 0)} for step, t in _FUNNEL[p]]
                for p in sorted(by_protocol)
                if p in _FUNNEL
            },
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
                FROM events WHERE received_at >= ? GROUP BY 1""",
            [start],
        ).fetchall()
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
                 FROM events WHERE run_id = ? AND run_seq IS NOT NULL GROUP BY run_worker)""",
            [run],
        ).fetchall()[0]
        return {
            "id": run,
            "sent": int(sent),
            "received": int(received),
            "lost": int(sent - received),
            "retried": int(retried),
        }


def _page() -> bytes:
    """The page (package data: page/live.html and its script page/live.js) with plotly.js inlined: the
    collector may run where no network reaches a CDN."""
    from plotly.offline import get_plotlyjs

    files = resources.files(__package__) / "page"
    html = (files / "live.html").read_bytes()
    script = (files / "live.js").read_bytes()
    return html.replace(b"/*LIVE*/", script, 1).replace(b"/*PLOTLY*/", get_plotlyjs().encode(), 1)


PAGE_HTML = _page()
