"""The Viewers figures of a live-load run, by scenario: viewers in progress, session start
rate (target, scheduled, achieved), sessions dropped, late sends and their lateness.

`process_figures` reads one process's schedule and sender (cumulative counts plus sparse
lateness histograms, small enough to ride on Locust's worker reports); `viewer_table`
turns the figures of one or many processes into rows, one per scenario and a total:

    table = viewer_table([process_figures(sender, workload="open", target_rate=20.0, mix={...})])
    table["total"]["achieved_rate"], table["scenarios"][0]["p99_ms"]
"""

from __future__ import annotations

import time

from sim.load.sender import LatenessHistogram, Sender


def process_figures(
    sender: Sender,
    *,
    workload: str,
    target_rate: float | None = None,
    target_viewers: int | None = None,
    mix: dict[str, float] | None = None,
    targets_by: dict[str, float] | None = None,
    stage: dict | None = None,
    now: float | None = None,
) -> dict:
    """This process's cumulative figures at `now` (wall clock). `target_rate` is its share
    of the open model's session rate, `target_viewers` its share of the closed model's
    viewers, `mix` the scenarios' weights (normalised here). Each scenario's target start
    rate is `target_rate` x its weight, unless `targets_by` gives it (a shape that follows the
    scenarios' day). `stage`: the shape's stage now, if any."""
    now = time.time() if now is None else now
    if sender.stopped_at is not None:
        now = min(now, sender.stopped_at)
    schedule = sender.schedule
    stats = schedule.stats
    active, offered = schedule.viewers(now)
    weights = mix or {}
    weight_sum = sum(weights.values()) or 1.0
    scenarios = {}
    for i, name in enumerate(stats.scenario_names):
        hist = sender.lateness_by.get(i)
        share = weights.get(name, 0.0) / weight_sum
        if targets_by is not None:
            target = targets_by.get(name, 0.0)
        else:
            target = None if target_rate is None else target_rate * share
        scenarios[name] = {
            "share": share,
            "target_rate": target,
            "active": int(active[i]),
            "offered": int(offered[i]),
            "started": int(stats.started_by[i]),
            "dropped": int(stats.dropped_by[i]),
            "lateness_hist": hist.to_sparse() if hist is not None else None,
        }
    return {
        "workload": workload,
        "elapsed_s": max(now - schedule.timebase.t0, 0.0),
        "target_rate": target_rate,
        "target_viewers": target_viewers,
        "stage": stage,
        "late_threshold": sender.late_threshold,
        "scenarios": scenarios,
    }


def _row(name: str, hist: LatenessHistogram, late_threshold: float, counts: dict) -> dict:
    return {
        "scenario": name,
        **counts,
        "sends": hist.count,
        "late": hist.over(late_threshold),
        "p50_ms": round(hist.quantile(0.5) * 1000, 1),
        "p99_ms": round(hist.quantile(0.99) * 1000, 1),
        "max_ms": round(hist.max * 1000, 1),
    }


def viewer_table(figures: list[dict]) -> dict:
    """Rows per scenario and a total from the figures of every process of the run.

    Rates are per wall second since each process's schedule started, summed over processes:
    `target_rate` is the rate the arrivals follow: the asked session rate (or a shape's level,
    averaged since the start) times the scenario's weight in the mix, or, for a shape with
    `mix: daily`, the scenario's own share of its day (open model);
    `scheduled_rate` the sessions the arrival model offered so far, `achieved_rate` those
    that started (their first beacon went out); the gap between the last two is sessions
    dropped or not yet started."""
    names: list[str] = []
    per: dict[str, dict] = {}
    hists: dict[str, LatenessHistogram] = {}
    total_hist = LatenessHistogram()
    workload = figures[0]["workload"] if figures else None
    late_threshold = figures[0]["late_threshold"] if figures else 0.25
    target_rate = None
    target_viewers = None
    elapsed = 0.0
    for f in figures:
        seconds = f["elapsed_s"]
        elapsed = max(elapsed, seconds)
        if f["target_rate"] is not None:
            target_rate = (target_rate or 0.0) + f["target_rate"]
        if f["target_viewers"] is not None:
            target_viewers = (target_viewers or 0) + f["target_viewers"]
        for name, s in f["scenarios"].items():
            if name not in per:
                names.append(name)
                per[name] = {
                    "active": 0,
                    "target_rate": None,
                    "scheduled_rate": 0.0,
                    "achieved_rate": 0.0,
                    "started": 0,
                    "dropped": 0,
                }
                hists[name] = LatenessHistogram()
            row = per[name]
            row["active"] += s["active"]
            row["started"] += s["started"]
            row["dropped"] += s["dropped"]
            target = s.get("target_rate")
            if target is not None:
                row["target_rate"] = (row["target_rate"] or 0.0) + target
            if seconds > 0:
                row["scheduled_rate"] += s["offered"] / seconds
                row["achieved_rate"] += s["started"] / seconds
            if s["lateness_hist"] is not None:
                hists[name].merge_sparse(s["lateness_hist"])
                total_hist.merge_sparse(s["lateness_hist"])
    rows = []
    total = {
        "active": 0,
        "target_rate": target_rate,
        "scheduled_rate": 0.0,
        "achieved_rate": 0.0,
        "started": 0,
        "dropped": 0,
    }
    for name in names:
        row = per[name]
        for key in ("active", "started", "dropped", "scheduled_rate", "achieved_rate"):
            total[key] += row[key]
        rows.append(_rounded(_row(name, hists[name], late_threshold, row)))
    stage = next((f["stage"] for f in figures if f.get("stage")), None)
    return {
        "workload": workload,
        "processes": len(figures),
        "elapsed_s": round(elapsed, 3),
        "target_viewers": target_viewers,
        "stage": stage,
        "late_threshold_ms": late_threshold * 1000,
        "scenarios": rows,
        "total": _rounded(_row("total", total_hist, late_threshold, total)),
    }


def _rounded(row: dict) -> dict:
    for key in ("target_rate", "scheduled_rate", "achieved_rate"):
        if row[key] is not None:
            row[key] = round(row[key], 3)
    return row


class ViewerHistory:
    """The Viewers table over time, for the tab's charts: one sample every few seconds of the
    viewers in progress and of the cumulative session starts (achieved, and asked for: the
    target rate averaged since the start times the seconds since the start), per scenario and
    in total. `series()` turns them into rates over a trailing `window_s`:

        history.add(time.time(), viewer_table(figures))
        history.series()["scenarios"]["typical-vod"]["achieved_rate"]
    """

    def __init__(self, *, max_points: int = 1800, window_s: float = 10.0):
        self.max_points, self.window_s = max_points, window_s
        self.times: list[float] = []
        self.rows: list[dict[str, tuple]] = []  # per sample: name -> (active, started, target so far)
        self.target_viewers: list[int | None] = []
        self.stages: list[str | None] = []
        self.elapsed: float | None = None

    def clear(self) -> None:
        self.__init__(max_points=self.max_points, window_s=self.window_s)

    def add(self, now: float, table: dict) -> None:
        """Record one table; a table whose run is younger than the last sample's starts afresh."""
        elapsed = table.get("elapsed_s") or 0.0
        if self.elapsed is not None and elapsed < self.elapsed:
            self.clear()
        self.elapsed = elapsed
        rows = {}
        for row in [*table.get("scenarios", []), table["total"]] if table.get("total") else []:
            target = row.get("target_rate")
            rows[row["scenario"]] = (row["active"], row["started"], None if target is None else target * elapsed)
        self.times.append(round(now, 3))
        self.rows.append(rows)
        self.target_viewers.append(table.get("target_viewers"))
        stage = table.get("stage") or {}
        self.stages.append(stage.get("text"))
        if len(self.times) > self.max_points:
            for column in (self.times, self.rows, self.target_viewers, self.stages):
                del column[0]

    def series(self) -> dict:
        """{"time": [...], "window_s", "target_viewers": [...], "stage": [...], "scenarios": {name:
        {"active", "target_rate", "achieved_rate"}}, "total": {...}}: rates are session starts
        per second over the trailing window (None for the first sample and where no target is set)."""
        names = []
        for rows in self.rows:
            names.extend(n for n in rows if n not in names)
        j = 0
        back = []  # for each sample, the earliest sample inside its trailing window
        for i, t in enumerate(self.times):
            while self.times[j] < t - self.window_s - 1e-9:
                j += 1
            back.append(j if j < i else (i - 1 if i else None))
        out: dict[str, dict] = {}
        for name in names:
            active, achieved, target = [], [], []
            for i, rows in enumerate(self.rows):
                now = rows.get(name)
                active.append(None if now is None else now[0])
                k = back[i]
                then = self.rows[k].get(name) if k is not None else None
                if now is None or then is None:
                    achieved.append(None)
                    target.append(None)
                    continue
                seconds = self.times[i] - self.times[k]
                achieved.append(round((now[1] - then[1]) / seconds, 3))
                target.append(None if now[2] is None or then[2] is None else round((now[2] - then[2]) / seconds, 3))
            out[name] = {"active": active, "target_rate": target, "achieved_rate": achieved}
        total = out.pop("total", {"active": [], "target_rate": [], "achieved_rate": []})
        return {
            "time": list(self.times),
            "window_s": self.window_s,
            "target_viewers": list(self.target_viewers),
            "stage": list(self.stages),
            "scenarios": out,
            "total": total,
        }
