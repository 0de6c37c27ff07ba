"""The Analytics-tab figures, computed one way (SQL in DuckDB) from any events-table source.

Usage::

    m = compute("out/events.parquet")            # or a collector store, a folder, a glob
    m.protocols["kava"].headline["load_play_ratio"]
    print(m.to_json())

Each protocol is counted by its own rules and reported on its own (both side by side when
a source holds both). Field names follow Kaltura's report fields
(kaltura/server kKavaReportsMgr; viewing-realism.md 1.2). Where the events carry the
generator's ground truth (`truth_*` columns), the true figure is computed beside the
measured one, under the same key, so the distance between a pipeline's figure and the
truth is visible.

How the figures that need a choice are computed (also recorded per run in `methods`):

* Rows a collector rejected (`accepted = false`) are not counted: Kaltura would not have
  them either. Legacy rows whose collector `flags` name a reason the warehouse drops a line
  (DWH_DROP_FLAGS) are left out of the legacy headline too; raw counts keep every row.
* Plays, quartiles, loads are event counts (duplicated deliveries count twice, as they
  would in Kaltura). A "play" for per-play figures is one (sessionId, entryId).
* Quartile-based minutes (`sum_time_viewed_min`): per (sessionId, entryId) that reached a
  quartile, entry duration x last quartile reached. Legacy duration is the beacons'
  `duration` (seconds). KAVA beacons carry no duration: `truth_entry_duration` when present,
  else an estimate from positions: min over quartile beacons of position / quartile,
  and never less than the largest position seen (exact at 100 %, a slight over-estimate
  when only early quartiles fired).
* Interval-based minutes (`sum_view_period_min`, KAVA only): `playTimeSum` is cumulative
  within a KAVA session segment and resets to 0 after a ~30 s pause (eventIndex resets too).
  VIEWs of each (sessionId, entryId) are ordered by (ts, eventIndex); a segment ends where
  playTimeSum or eventIndex goes down next (eventIndex alone when the segment before was
  shorter than the first VIEW after the reset); each segment contributes the playTimeSum
  it ends on (its largest). So a duplicated or lost intermediate VIEW changes nothing; a
  lost last VIEW of a segment loses at most 10 s. VIEWs received out of order (a store
  orders by receipt time) would split a segment and count part of it twice.
* Unique viewers: exact distinct userId over plays (Kaltura uses HyperLogLog, ~2 %), all
  anonymous (null or empty userId) counted as one viewer. Unique known users: distinct
  non-empty userId over all events.
* Errors before start (for EBVS): ERROR beacons with errorPosition 1 (before playing) or 3
  (before play request), or with no errorPosition and a zero/unknown position.
* True figures (truth) are read off each session's timeline (truth_play_s, truth_stall_s,
  truth_startup_s, truth_max_position_s; see TRUTH_DEFINITIONS, printed with the report).
  A file without truth_play_s falls back to intended watching (fraction x duration).
* Caveats (KAVA_CAVEATS, LEGACY_CAVEATS) say, beside a figure, what the protocol cannot
  measure: the last partial VIEW interval, legacy PLAY fired on the play request.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from sim.geo import geo_table
from sim.metrics.dimensions import BREAKDOWNS, UA_CLASSIFIERS, dimension_sql
from sim.metrics.events import EventsSource, SourceError, open_events
from sim.protocols.choice import NAMES
from sim.protocols.event_types import KAVA_EVENT_IDS, LEGACY_DWH_DROPPED, LEGACY_EVENT_IDS, event_label

PROTOCOLS = NAMES  # the protocols the metrics know how to count

# Event ids by the names this module counts them under (sim.protocols.event_types holds the ids).
KAVA = dict(
    impression="IMPRESSION",
    play_request="PLAY_REQUEST",
    play="PLAY",
    q25="PLAY_REACHED_25_PERCENT",
    q50="PLAY_REACHED_50_PERCENT",
    q75="PLAY_REACHED_75_PERCENT",
    q100="PLAY_REACHED_100_PERCENT",
    buffer_start="BUFFER_START",
    error="ERROR",
    view="VIEW",
    ad_impression="AD_IMPRESSION",
    ad_start="AD_STARTED",
    ad_skip="AD_SKIPPED",
    ad_q1="AD_FIRST_QUARTILE",
    ad_q2="AD_MID_POINT",
    ad_q3="AD_THIRD_QUARTILE",
    ad_complete="AD_COMPLETED",
    ad_click="AD_CLICKED",
)
KAVA = {key: KAVA_EVENT_IDS[name] for key, name in KAVA.items()}
# Legacy: MEDIA_LOADED is the DWH's "loads".
LEGACY = dict(
    load="MEDIA_LOADED",
    play="PLAY",
    q25="PLAY_REACHED_25",
    q50="PLAY_REACHED_50",
    q75="PLAY_REACHED_75",
    q100="PLAY_REACHED_100",
)
LEGACY = {key: LEGACY_EVENT_IDS[name] for key, name in LEGACY.items()}
LEGACY_AD_STARTS = tuple(LEGACY_EVENT_IDS[f"{slot}_STARTED"] for slot in ("PREROLL", "MIDROLL", "POSTROLL", "OVERLAY"))
LEGACY_AD_CLICKS = tuple(LEGACY_EVENT_IDS[f"{slot}_CLICKED"] for slot in ("PREROLL", "MIDROLL", "POSTROLL", "OVERLAY"))
# Collector `flags` (comma-separated) naming a line the legacy warehouse ETL would reject.
DWH_DROP_FLAGS = (
    "missing_event_type",
    "event_type_dropped_by_dwh",
    "missing_partner_id",
    "partner_id_not_numeric",
    "uiconf_id_not_numeric",
    "missing_entry_id",
    "entry_id_is_url",
    "session_id_false",
)

# Headline figures in display order: key (Kaltura report field where there is one) -> label.
HEADLINE: dict[str, str] = {
    "count_loads": "Player impressions",
    "count_plays": "Plays",
    "load_play_ratio": "Play rate (plays / impressions)",
    "count_plays_25": "Reached 25 %",
    "count_plays_50": "Reached 50 %",
    "count_plays_75": "Reached 75 %",
    "count_plays_100": "Reached 100 %",
    "plays_25_ratio": "Reached 25 % / plays",
    "plays_50_ratio": "Reached 50 % / plays",
    "plays_75_ratio": "Reached 75 % / plays",
    "play_through_ratio": "Play-through ratio",
    "avg_view_drop_off": "Avg. drop-off",
    "avg_completion_rate": "Avg. completion rate (share of the entry covered)",
    "sum_time_viewed_min": "Minutes viewed (quartile-based)",
    "sum_view_period_min": "Minutes viewed (interval-based)",
    "avg_time_viewed_min": "Avg. view time, min (quartile-based)",
    "avg_view_period_time_min": "Avg. view time, min (interval-based)",
    "unique_viewers": "Unique viewers who played",
    "unique_known_users": "Known users (any event)",
    "avg_join_time_s": "Avg. join time, s",
    "avg_buffer_time": "Buffer ratio (buffer / play time)",
    "rebuffered_play_share": "Plays with a rebuffer",
    "rebuffers_per_play": "Rebuffers per play",
    "count_play_requests": "Play requests",
    "count_ebvs": "Exits before video start",
    "ebvs_ratio": "EBVS ratio (of play requests)",
    "start_failure_ratio": "Start failures (of play requests)",
    "avg_session_error_rate": "Session error rate",
    "count_ad_impressions": "Ad impressions",
    "count_ad_starts": "Ad starts",
    "count_ad_first_quartiles": "Ads past 25 %",
    "count_ad_midpoints": "Ads past 50 %",
    "count_ad_third_quartiles": "Ads past 75 %",
    "count_ad_completions": "Ad completions",
    "count_ad_skips": "Ads skipped",
    "count_ad_clicks": "Ad clicks",
    "ad_start_rate": "Ad start rate (starts / impressions)",
    "ad_completion_rate": "Ad completion rate (completions / starts)",
    "ad_click_through": "Ad click-through (clicks / impressions)",
    "avg_bitrate_kbps": "Avg. bitrate, kbps",
}
RATIOS = {
    "load_play_ratio",
    "plays_25_ratio",
    "plays_50_ratio",
    "plays_75_ratio",
    "play_through_ratio",
    "avg_view_drop_off",
    "avg_completion_rate",
    "avg_buffer_time",
    "rebuffered_play_share",
    "ebvs_ratio",
    "start_failure_ratio",
    "avg_session_error_rate",
    "ad_start_rate",
    "ad_completion_rate",
    "ad_click_through",
}

# Columns the metrics read, with the type they are read as; absent columns read as null.
COLUMNS: dict[str, str] = {
    "protocol": "VARCHAR",
    "eventType": "INTEGER",
    "sessionId": "VARCHAR",
    "entryId": "VARCHAR",
    "userId": "VARCHAR",
    "eventIndex": "BIGINT",
    "position": "DOUBLE",
    "duration": "DOUBLE",
    "playTimeSum": "DOUBLE",
    "bufferTime": "DOUBLE",
    "joinTime": "DOUBLE",
    "actualBitrate": "DOUBLE",
    "errorPosition": "INTEGER",
    "user_agent": "VARCHAR",
    "truth_session_seq": "VARCHAR",
    "truth_viewer": "VARCHAR",
    "truth_outcome": "VARCHAR",
    "truth_entry_duration": "DOUBLE",
    "truth_intended_fraction": "DOUBLE",
    "truth_live": "BOOLEAN",
    "truth_play_s": "DOUBLE",
    "truth_ad_play_s": "DOUBLE",
    "truth_stall_s": "DOUBLE",
    "truth_startup_s": "DOUBLE",
    "truth_max_position_s": "DOUBLE",
    "truth_device": "VARCHAR",
    "truth_os": "VARCHAR",
    "truth_browser": "VARCHAR",
    "truth_country": "VARCHAR",
    "client_ip": "VARCHAR",
    "geo_country": "VARCHAR",
}
TRUTH_PLAYED = ("partial", "completed", "stall_quit", "playback_error", "ad_break_quit")
TRUTH_EBVS = ("abandoned_startup", "abandoned_ad")
# A forward step between consecutive VIEWs up to this long is taken as continuous play (a
# 10 s report interval at up to 2x speed, plus rounding); a longer or backward one is a seek.
CONTINUOUS_VIEW_STEP_S = 22.0

# How each true figure is defined (printed with the report). The per-session truth columns are
# read off the session's own timeline, the one its beacons were made from (sim.player.truth).
TRUTH_DEFINITIONS = {
    "plays": "sessions whose first content frame was shown (outcome partial, completed, stall_quit, "
    "playback_error or ad_break_quit)",
    "minutes": "sum of truth_play_s over plays: wall-clock seconds of content playing (first frame to the "
    "viewer leaving, less pauses, rebuffering, ad breaks and time after the end; replays count)",
    "avg view time": "true minutes / plays",
    "reached NN %": "plays whose furthest position (truth_max_position_s, by playing or seeking) is at least "
    "NN % of the entry; VOD only, live sends no quartiles",
    "play-through": "plays that reached the end of the entry / plays",
    "completion rate": "sum over VOD plays of the furthest position / entry duration (at most 1), / plays",
    "buffer ratio": "sum of truth_stall_s (rebuffering, to STALL_END or to the quit in it) / sum of truth_play_s",
    "join time": "mean truth_startup_s over plays: play request to first frame, ads and bumpers excluded",
    "EBVS": "play requests that left during the startup wait or the pre-roll (outcome abandoned_startup "
    "or abandoned_ad), / play requests",
}
# What a protocol's beacons cannot see, shown beside the figure (report and HTML).
KAVA_CAVEATS = {
    "sum_view_period_min": "VIEW reports every 10 s of play: the last partial interval of each KAVA session "
    "segment (up to 10 s) is never sent; playTimeSum counts content seconds, so "
    "faster playback counts more",
    "avg_view_period_time_min": "as interval-based minutes: the last partial VIEW interval is not sent",
    "sum_time_viewed_min": "by definition duration x last quartile reached, not play time; forward seeks "
    "fire quartiles",
    "avg_buffer_time": "bufferTime rides on VIEWs: rebuffering in the last partial interval, or in a stall the "
    "viewer left during, is never reported",
    "avg_join_time_s": "joinTime runs from the play request to the first frame",
    "avg_completion_rate": "VIEW positions come every 10 s of play: the part of the entry played after the last "
    "VIEW is not covered, a large share of a short entry",
}
LEGACY_CAVEATS = {
    "count_plays": "mwEmbed and v7 fire PLAY on the play request (KDP on the first frame): viewers who leave "
    "before the first frame count as plays",
    "load_play_ratio": "plays counted on the play request in mwEmbed and v7",
    "sum_time_viewed_min": "by definition duration x last quartile reached; there is no play-time field",
}

Number = int | float | None


@dataclass
class ProtocolMetrics:
    protocol: str
    rows: int  # beacons of this protocol (after rejections)
    headline: dict[str, Number]  # HEADLINE keys; None = not measurable here
    truth: dict[str, Number] = field(default_factory=dict)  # same keys, from truth_* columns
    event_counts: dict[str, int] = field(default_factory=dict)  # raw count per eventType
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    timeline: dict[str, Any] = field(default_factory=dict)  # events and plays per time bucket
    methods: dict[str, str] = field(default_factory=dict)  # how a figure or dimension was derived
    caveats: dict[str, str] = field(default_factory=dict)  # HEADLINE key -> what the protocol cannot measure
    # Where a breakdown came from truth_* columns: the same dimension read as a collector would
    # (user agent, geolocated address), so the report can set measured beside truth.
    measured_breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Metrics:
    source: str
    tz_offset_min: int
    protocols: dict[str, ProtocolMetrics]
    notes: list[str] = field(default_factory=list)
    truth_definitions: dict[str, str] = field(default_factory=dict)  # how each true figure is defined

    def to_dict(self) -> dict[str, Any]:
        return _settled(asdict(self))

    def to_json(self, indent: bool = True) -> str:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2 if indent else 0).decode()


# DuckDB sums floating-point columns in parallel, so the last bits of a sum or an average depend on
# which thread took which rows: figures are given to 12 significant digits, the same on every run.
SIGNIFICANT_DIGITS = 12


def _settled(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _settled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_settled(v) for v in value]
    return value


def _ratio(a: Number, b: Number) -> float | None:
    if a is None or not b:
        return None
    return a / b


def _normalised_view(src: EventsSource) -> list[str]:
    """Create view `ev` (typed columns the metrics use); returns notes on what was filtered."""
    if not src.has("protocol"):
        raise SourceError(f"{src.description}: no `protocol` column (the events table must say legacy or kava)")
    if not src.has("eventtype"):
        raise SourceError(f"{src.description}: no `eventType` column")
    select = []
    ts_type = src.columns.get("ts", "")
    if not ts_type:
        select.append("cast(null as double) as ts")
    elif ts_type.upper().startswith("TIMESTAMP") or ts_type.upper() == "DATE":
        select.append("epoch(ts) as ts")
    else:
        select.append("try_cast(ts as double) as ts")
    for name, sql_type in COLUMNS.items():
        if src.has(name):
            expr = f'try_cast("{name}" as {sql_type})'
            if name == "protocol":
                expr = f"lower({expr})"
            select.append(f"{expr} as {name}")
        else:
            select.append(f"cast(null as {sql_type}) as {name}")
    dropped = "false"
    if src.has("flags"):
        # Only legacy rows, and only the flags that make the warehouse drop a line (others,
        # such as a sessionId it would cut to 50 characters, keep the row counted).
        drop = "|".join(DWH_DROP_FLAGS)
        dropped = (
            f"(lower(cast(protocol as varchar)) = 'legacy' and "
            f"coalesce(regexp_matches(cast(flags as varchar), '(^|,)\\s*({drop})\\s*(,|$)'), false))"
        )
    select.append(f"{dropped} as dwh_dropped")
    where, notes = "", []
    if src.has("accepted"):
        where = "where try_cast(accepted as boolean) is not false"
        rejected = src.con.execute(
            "select count(*) from events where try_cast(accepted as boolean) = false"
        ).fetchall()[0][0]
        if rejected:
            notes.append(f"{rejected:,} row(s) the collector rejected (accepted = false) are not counted")
    # Text files are parsed once into a table of just these columns; the metrics read it
    # about a dozen times. Parquet and stores are cheap to scan, so they stay views.
    kind = "table" if src.format in ("json", "csv") else "view"
    src.con.execute(f"create or replace temp {kind} ev as select {', '.join(select)} from events {where}")
    return notes


def _one(src: EventsSource, sql: str) -> dict[str, Any]:
    cur = src.con.execute(sql)
    rows = cur.fetchall()
    return dict(zip((d[0] for d in cur.description), rows[0])) if rows else {}


def _event_counts(src: EventsSource, protocol: str) -> dict[str, int]:
    rows = src.con.sql(
        f"select eventType, count(*) from ev where protocol = '{protocol}' group by 1 order by 1 nulls last"
    ).fetchall()
    return {("null" if k is None else str(k)): int(n) for k, n in rows}


def _quartile_minutes(src: EventsSource, protocol: str, codes: dict[str, int], duration_expr: str) -> dict[str, Any]:
    """Per (sessionId, entryId): duration x last quartile reached; summed, in minutes."""
    q = {codes["q25"]: 0.25, codes["q50"]: 0.5, codes["q75"]: 0.75, codes["q100"]: 1.0}
    last_q = "max(case eventType " + " ".join(f"when {c} then {f}" for c, f in q.items()) + " else 0 end)"
    q_est = (
        "min(position / case eventType " + " ".join(f"when {c} then {f}" for c, f in q.items()) + " end) "
        f"filter (where eventType in ({', '.join(map(str, q))}) and position > 0)"
    )
    sql = f"""
        with plays as (
            select sessionId, entryId, {last_q} as last_q,
                   max(nullif(duration, 0)) as dur_field, max(truth_entry_duration) as dur_truth,
                   max(position) as max_pos, {q_est} as dur_from_quartiles
            from ev where protocol = '{protocol}' and not dwh_dropped
            group by sessionId, entryId)
        select sum(last_q * ({duration_expr})) / 60 as minutes,
               count(*) filter (where last_q > 0) as plays_with_quartile,
               count(*) filter (where last_q > 0 and ({duration_expr}) is null) as without_duration
        from plays"""
    return _one(src, sql)


def _view_minutes(src: EventsSource) -> dict[str, Any]:
    """KAVA interval-based play time: the playTimeSum each session segment ends on, summed.

    One ordered pass: a VIEW ends its segment when it is the last VIEW of its (sessionId,
    entryId) or the next one has a lower playTimeSum or a lower eventIndex (a reset).
    """
    view = KAVA["view"]
    sql = f"""
        with v as (
            select coalesce(playTimeSum, 0) as pts, eventIndex,
                   lead(coalesce(playTimeSum, 0)) over w as next_pts, lead(eventIndex) over w as next_idx
            from ev where protocol = 'kava' and eventType = {view}
            window w as (partition by sessionId, entryId order by ts, eventIndex))
        select sum(pts) filter (where next_pts is null or next_pts < pts or next_idx < eventIndex) as play_s
        from v"""
    return _one(src, sql)


def _funnel_sql(load: int, play: int, k: dict[str, int]) -> str:
    """The select list of the counts both protocols' headlines share: loads, plays, quartiles, viewers."""
    return f"""count(*) filter (where eventType = {load}) as loads,
               count(*) filter (where eventType = {play}) as plays,
               count(*) filter (where eventType = {k["q25"]}) as q25,
               count(*) filter (where eventType = {k["q50"]}) as q50,
               count(*) filter (where eventType = {k["q75"]}) as q75,
               count(*) filter (where eventType = {k["q100"]}) as q100,
               count(distinct coalesce(nullif(userId, ''), chr(0))) filter (where eventType = {play}) as viewers,
               count(distinct nullif(userId, '')) as known_users"""


def _funnel_headline(a: dict[str, Any], viewed_min: Number) -> dict[str, Number]:
    """The headline figures both protocols compute alike from `_funnel_sql`'s counts and the minutes viewed."""
    plays = a["plays"]
    return {
        "count_loads": a["loads"],
        "count_plays": plays,
        "load_play_ratio": _ratio(plays, a["loads"]),
        "count_plays_25": a["q25"],
        "count_plays_50": a["q50"],
        "count_plays_75": a["q75"],
        "count_plays_100": a["q100"],
        "plays_25_ratio": _ratio(a["q25"], plays),
        "plays_50_ratio": _ratio(a["q50"], plays),
        "plays_75_ratio": _ratio(a["q75"], plays),
        "play_through_ratio": _ratio(a["q100"], plays),
        "avg_view_drop_off": _ratio((a["q25"] + a["q50"] + a["q75"] + a["q100"]) / 4, plays),
        "sum_time_viewed_min": viewed_min,
        "avg_time_viewed_min": _ratio(viewed_min, plays),
        "unique_viewers": a["viewers"],
        "unique_known_users": a["known_users"],
    }


def _kava_headline(src: EventsSource) -> tuple[dict[str, Number], dict[str, str]]:
    k = KAVA
    before_start = (
        f"eventType = {k['error']} and (errorPosition in (1, 3) "
        "or (errorPosition is null and coalesce(position, 0) <= 0))"
    )
    a = _one(
        src,
        f"""
        select {_funnel_sql(k["impression"], k["play"], k)},
               count(*) filter (where eventType = {k["play_request"]}) as requests,
               avg(joinTime) filter (where eventType = {k["play"]}) as join_time,
               sum(bufferTime) filter (where eventType = {k["view"]}) as buffer_s,
               avg(actualBitrate) filter (where eventType = {k["view"]} and actualBitrate > 0) as bitrate,
               count(distinct sessionId) filter (where eventType = {k["error"]}) as error_sessions,
               count(distinct sessionId) filter (where eventType = {k["view"]}) as view_sessions,
               count(*) filter (where {before_start}) as errors_before_start,
               count(*) filter (where eventType = {k["buffer_start"]}) as rebuffers,
               count(distinct (sessionId, entryId)) filter (where eventType = {k["buffer_start"]}) as rebuffered,
               count(*) filter (where eventType = {k["ad_impression"]}) as ad_impressions,
               count(*) filter (where eventType = {k["ad_start"]}) as ad_starts,
               count(*) filter (where eventType = {k["ad_q1"]}) as ad_q1,
               count(*) filter (where eventType = {k["ad_q2"]}) as ad_q2,
               count(*) filter (where eventType = {k["ad_q3"]}) as ad_q3,
               count(*) filter (where eventType = {k["ad_complete"]}) as ad_completions,
               count(*) filter (where eventType = {k["ad_skip"]}) as ad_skips,
               count(*) filter (where eventType = {k["ad_click"]}) as ad_clicks,
               count(*) filter (where truth_entry_duration is not null) as with_truth_duration
        from ev where protocol = 'kava'""",
    )
    methods = {}
    if a["with_truth_duration"]:
        duration = "dur_truth"
        methods["sum_time_viewed_min"] = "entry duration from truth_entry_duration"
    else:
        duration = "greatest(max_pos, coalesce(dur_from_quartiles, max_pos))"
        methods["sum_time_viewed_min"] = (
            "entry duration estimated from positions at quartile beacons "
            "(position / quartile, at least the largest position)"
        )
    qm = _quartile_minutes(src, "kava", k, duration)
    vm = _view_minutes(src)
    covered = _covered_percentiles(src, bool(a["with_truth_duration"]))
    methods["avg_completion_rate"] = (
        "per play, the 1 % buckets of the entry its VIEW positions cover (a step of at most "
        f"{CONTINUOUS_VIEW_STEP_S:g} s forward between consecutive VIEWs covers the span, any other step only the "
        "new position), summed, / plays; entry duration from "
        + ("truth_entry_duration" if a["with_truth_duration"] else "the quartile estimate above")
    )
    methods["sum_view_period_min"] = "playTimeSum each KAVA session segment ends on (a reset starts a new one), summed"
    play_s = vm["play_s"]
    plays = a["plays"]
    ebvs = a["requests"] - (plays + a["errors_before_start"]) if a["requests"] else None
    headline = dict.fromkeys(HEADLINE)  # in the report's order
    headline.update(_funnel_headline(a, qm["minutes"]))
    headline |= {
        "avg_completion_rate": _ratio(covered, plays),
        "sum_view_period_min": None if play_s is None else play_s / 60,
        "avg_view_period_time_min": _ratio(None if play_s is None else play_s / 60, plays),
        "avg_join_time_s": a["join_time"],
        "avg_buffer_time": _ratio(a["buffer_s"], play_s),
        "rebuffered_play_share": _ratio(a["rebuffered"], plays),
        "rebuffers_per_play": _ratio(a["rebuffers"], plays),
        "count_play_requests": a["requests"],
        "count_ebvs": ebvs,
        "ebvs_ratio": _ratio(ebvs, a["requests"]),
        "start_failure_ratio": _ratio(a["errors_before_start"], a["requests"]),
        "avg_session_error_rate": _ratio(a["error_sessions"], a["view_sessions"]),
        "count_ad_impressions": a["ad_impressions"],
        "count_ad_starts": a["ad_starts"],
        "count_ad_first_quartiles": a["ad_q1"],
        "count_ad_midpoints": a["ad_q2"],
        "count_ad_third_quartiles": a["ad_q3"],
        "count_ad_completions": a["ad_completions"],
        "count_ad_skips": a["ad_skips"],
        "count_ad_clicks": a["ad_clicks"],
        "ad_start_rate": _ratio(a["ad_starts"], a["ad_impressions"]),
        "ad_completion_rate": _ratio(a["ad_completions"], a["ad_starts"]),
        "ad_click_through": _ratio(a["ad_clicks"], a["ad_impressions"]),
        "avg_bitrate_kbps": a["bitrate"],
    }
    if qm["without_duration"]:
        methods["sum_time_viewed_min"] += f"; {qm['without_duration']} play(s) without a duration left out"
    return headline, methods


def _legacy_headline(src: EventsSource) -> tuple[dict[str, Number], dict[str, str]]:
    k = LEGACY
    a = _one(
        src,
        f"""
        select {_funnel_sql(k["load"], k["play"], k)},
               count(*) filter (where eventType in {LEGACY_AD_STARTS}) as ad_starts,
               count(*) filter (where eventType in {LEGACY_AD_CLICKS}) as ad_clicks
        from ev where protocol = 'legacy' and not dwh_dropped""",
    )
    qm = _quartile_minutes(src, "legacy", k, "coalesce(dur_field, dur_truth)")
    methods = {
        "sum_time_viewed_min": "entry duration from the beacons' duration field (s); "
        "truth_entry_duration where it is 0 or missing",
        "count_loads": f"eventType {event_label('legacy', k['load'])}, the warehouse's loads; "
        f"{', '.join(event_label('legacy', t) for t in LEGACY_DWH_DROPPED)} are not counted "
        "(raw counts keep them)",
        "not measurable": "legacy beacons carry no play time, join time, buffer time, play request, error or bitrate; "
        "ad impressions and completions have no legacy event",
    }
    if qm["without_duration"]:
        methods["sum_time_viewed_min"] += f"; {qm['without_duration']} play(s) without a duration left out"
    headline = dict.fromkeys(HEADLINE)
    headline.update(_funnel_headline(a, qm["minutes"]))
    headline.update({"count_ad_starts": a["ad_starts"], "count_ad_clicks": a["ad_clicks"]})
    return headline, methods


def _covered_percentiles(src: EventsSource, truth_duration: bool) -> float | None:
    """Sum over KAVA plays of the share of the entry (in 1 % buckets) their VIEW positions cover."""
    view, q = KAVA["view"], {KAVA["q25"]: 0.25, KAVA["q50"]: 0.5, KAVA["q75"]: 0.75, KAVA["q100"]: 1.0}
    estimate = (
        "min(position / case eventType " + " ".join(f"when {c} then {f}" for c, f in q.items()) + " end) "
        f"filter (where eventType in ({', '.join(map(str, q))}) and position > 0)"
    )
    duration = "max(truth_entry_duration)" if truth_duration else f"greatest({estimate}, max(position))"
    row = _one(
        src,
        f"""
        with d as (
            select sessionId, entryId, {duration} as d
            from ev where protocol = 'kava' group by sessionId, entryId),
        v as (
            select sessionId, entryId, position as p, lag(position) over w as prev
            from ev where protocol = 'kava' and eventType = {view} and position >= 0
            window w as (partition by sessionId, entryId order by ts, eventIndex)),
        b as (
            select sessionId, entryId, unnest(range(
                cast(least(floor(100 * (case when p >= prev and p - prev <= {CONTINUOUS_VIEW_STEP_S}
                                             then prev else p end) / d.d), 99) as bigint),
                cast(least(floor(100 * p / d.d), 99) as bigint) + 1)) as bucket
            from v join d using (sessionId, entryId) where d.d > 0),
        per as (select count(distinct bucket) as buckets from b group by sessionId, entryId)
        select sum(buckets) / 100.0 as covered from per""",
    )
    return row.get("covered")


def _clean(column: str) -> str:
    """A truth column with NaN (not measured) read as null, so aggregates skip it."""
    return f"case when isnan({column}) then null else {column} end"


def _truth(src: EventsSource, protocol: str) -> dict[str, Number]:
    """True figures from the truth columns, keyed like the headline they stand beside (TRUTH_DEFINITIONS)."""
    if not src.has("truth_session_seq") or not src.has("truth_outcome"):
        return {}
    outcome = "replace(replace(lower(trim(any_value(truth_outcome))), ' ', '_'), '-', '_')"
    from_timeline = src.has("truth_play_s")
    if from_timeline:
        per_session = ", ".join(
            f"max({_clean('truth_' + c)}) as {c}" for c in ("play_s", "stall_s", "startup_s", "max_position_s")
        )
    else:  # files written before the timeline truth: intended watching, the nearest there is
        per_session = (
            "max(least(greatest(truth_intended_fraction, 0), 1) * truth_entry_duration) as play_s, "
            "null as stall_s, null as startup_s, null as max_position_s"
        )
    reached = "plays and not live and max_position_s >= {f} * dur - 1e-6"
    t = _one(
        src,
        f"""
        with s as (
            select truth_session_seq, {outcome} as outcome, max(truth_entry_duration) as dur,
                   coalesce(bool_or(truth_live), false) as live, any_value(truth_viewer) as viewer, {per_session}
            from ev where protocol = '{protocol}' and truth_session_seq is not null
            group by truth_session_seq),
        p as (select *, outcome in {TRUTH_PLAYED} as plays from s)
        select count(*) as sessions,
               count(*) filter (where outcome <> 'no_play') as requests,
               count(*) filter (where plays) as plays,
               count(*) filter (where outcome = 'start_failure') as start_failures,
               count(distinct viewer) filter (where plays) as viewers,
               sum(case when outcome = 'completed' and not {from_timeline} then dur else play_s end)
                   filter (where plays) / 60 as minutes,
               sum(stall_s) filter (where plays) as stall_s,
               sum(play_s) filter (where plays) as play_s,
               avg(startup_s) filter (where plays) as join_time,
               count(*) filter (where {reached.format(f=0.25)}) as q25,
               count(*) filter (where {reached.format(f=0.5)}) as q50,
               count(*) filter (where {reached.format(f=0.75)}) as q75,
               count(*) filter (where {reached.format(f=1)}) as q100,
               sum(least(max_position_s / dur, 1)) filter (where plays and not live and dur > 0) as covered,
               count(*) filter (where outcome = 'completed') as completions,
               count(*) filter (where outcome in {TRUTH_EBVS}) as ebvs
        from p""",
    )
    if not t.get("sessions"):
        return {}
    plays, minutes = t["plays"], t["minutes"]
    q100 = t["q100"] if from_timeline else t["completions"]
    truth = {
        "count_loads": t["sessions"],
        "count_plays": plays,
        "load_play_ratio": _ratio(plays, t["sessions"]),
        "count_plays_100": q100,
        "play_through_ratio": _ratio(q100, plays),
        "unique_viewers": t["viewers"],
        "sum_time_viewed_min": minutes,
        "sum_view_period_min": minutes,
        "avg_time_viewed_min": _ratio(minutes, plays),
        "avg_view_period_time_min": _ratio(minutes, plays),
    }
    if from_timeline:
        truth.update(
            {
                "count_plays_25": t["q25"],
                "count_plays_50": t["q50"],
                "count_plays_75": t["q75"],
                "plays_25_ratio": _ratio(t["q25"], plays),
                "plays_50_ratio": _ratio(t["q50"], plays),
                "plays_75_ratio": _ratio(t["q75"], plays),
                "avg_view_drop_off": _ratio((t["q25"] + t["q50"] + t["q75"] + t["q100"]) / 4, plays),
                "avg_completion_rate": _ratio(t["covered"], plays),
                "avg_join_time_s": t["join_time"],
                "avg_buffer_time": _ratio(t["stall_s"], t["play_s"]),
            }
        )
    if protocol == "kava":
        truth.update(
            {
                "count_play_requests": t["requests"],
                "count_ebvs": t["ebvs"],
                "ebvs_ratio": _ratio(t["ebvs"], t["requests"]),
                "start_failure_ratio": _ratio(t["start_failures"], t["requests"]),
            }
        )
    return truth


def _truth_definitions(src: EventsSource) -> dict[str, str]:
    if not src.has("truth_session_seq"):
        return {}
    if not src.has("truth_play_s"):
        return {
            "minutes": "truth_intended_fraction x truth_entry_duration (the source has no truth_play_s): "
            "intended watching, not real play time; no true join time, buffer ratio or quartiles"
        }
    return dict(TRUTH_DEFINITIONS)


def _caveats(protocol: str, headline: dict[str, Number]) -> dict[str, str]:
    """What each protocol's beacons cannot see, beside the figures it affects."""
    if protocol == "legacy":
        return {k: v for k, v in LEGACY_CAVEATS.items() if headline.get(k) is not None}
    caveats = {k: v for k, v in KAVA_CAVEATS.items() if headline.get(k) is not None}
    if headline.get("count_ad_starts"):
        caveats["avg_join_time_s"] = KAVA_CAVEATS["avg_join_time_s"] + "; here it includes pre-roll ads"
    return caveats


def _breakdowns(
    src: EventsSource,
    protocol: str,
    by: tuple[str, ...],
    top: int,
    tz_offset_min: int,
    methods: dict[str, str],
    without_truth: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Loads, plays and events per value of each dimension, in one pass (grouping sets).

    The user-agent classifier runs once per distinct user agent, not once per row.
    without_truth: read every dimension as a collector would, ignoring truth_* columns.
    """
    if not by:
        return {}
    codes = KAVA if protocol == "kava" else LEGACY
    load, play = codes.get("impression", codes.get("load")), codes["play"]
    columns = {c for c in src.columns if not (without_truth and c.startswith("truth_"))}
    # Addresses the collector did not geolocate (or files): looked up once per distinct address.
    ip_join = "country" in by and "truth_country" not in columns and "client_ip" in columns
    if ip_join:
        ips = pa.array(
            [
                r[0]
                for r in src.con.execute(
                    f"select distinct client_ip from ev where protocol = '{protocol}' "
                    f"and geo_country is null and client_ip is not null"
                ).fetchall()
            ],
            pa.string(),
        )
        located = pa.table({"client_ip": ips, "ip_country": geo_table().countries(ips)})
        src.con.register("ip_countries", located)
    keys = []
    for name in by:
        expr, origin = dimension_sql(name, columns, tz_offset_min, ua_columns=True, ip_country=ip_join)
        methods[f"by {name}"] = origin
        keys.append(f"{expr} as d_{name}")
    ua = ", ".join(f"{fn()} as ua_{dim}" for dim, fn in UA_CLASSIFIERS.items())
    sets = ", ".join(f"(d_{name})" for name in by)
    rows = src.con.execute(f"""
        with base as (select * from ev where protocol = '{protocol}'),
        agents as (select user_agent, {ua} from (select distinct user_agent from base)),
        dims as (select eventType, {", ".join(keys)} from base left join agents using (user_agent)
                 {"left join ip_countries using (client_ip)" if ip_join else ""})
        select {", ".join(f"d_{n}, grouping(d_{n})" for n in by)},
               count(*) filter (where eventType = {load}) as loads,
               count(*) filter (where eventType = {play}) as plays, count(*) as events
        from dims group by grouping sets ({sets})""").fetchall()
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in by}
    for row in rows:
        loads, plays, events = row[-3:]
        for i, name in enumerate(by):
            if row[2 * i + 1] == 0:
                out[name].append(
                    {
                        "key": row[2 * i],
                        "loads": loads,
                        "plays": plays,
                        "events": events,
                        "play_rate": _ratio(plays, loads),
                    }
                )
    for name, items in out.items():
        if name in ("hour", "day"):
            items.sort(key=lambda r: (r["key"] is None, r["key"] or ""))
        else:
            items.sort(key=lambda r: (-r["plays"], -r["loads"], str(r["key"])))
            del items[int(top) :]
    return out


def _timeline(src: EventsSource, protocol: str) -> dict[str, Any]:
    """Events and plays per time bucket (5 min, 1 h or 1 day, by the span of the data)."""
    play = KAVA["play"] if protocol == "kava" else LEGACY["play"]
    span = _one(src, f"select min(ts) as lo, max(ts) as hi from ev where protocol = '{protocol}'")
    if span["lo"] is None:
        return {}
    width = span["hi"] - span["lo"]
    bucket = 300 if width <= 6 * 3600 else 3600 if width <= 14 * 86400 else 86400
    rows = src.con.sql(f"""
        select floor(ts / {bucket}) * {bucket} as t, count(*) as events,
               count(*) filter (where eventType = {play}) as plays
        from ev where protocol = '{protocol}' and ts is not null group by 1 order by 1""").fetchall()
    return {"bucket_s": bucket, "points": [[t, e, p] for t, e, p in rows]}


def compute(
    source: str | os.PathLike | EventsSource,
    *,
    protocol: str | None = None,
    by: str | list[str] | tuple[str, ...] | None = None,
    top: int = 10,
    tz_offset_min: int = 0,
) -> Metrics:
    """The Analytics-tab figures of `source` (see open_events), per protocol.

    protocol: only this one ("legacy" or "kava"); default every protocol present.
    by: breakdowns to compute (entry, device, os, browser, country, hour, day); default all.
    top: rows kept per breakdown (hour and day keep all). tz_offset_min: minutes east of
    UTC for the hour and day breakdowns (Kaltura reports take a time-zone offset).
    """
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if by is None:
        dims = BREAKDOWNS
    else:
        dims = tuple([by] if isinstance(by, str) else by)
        for d in dims:
            if d not in BREAKDOWNS:
                raise ValueError(f"by: unknown breakdown {d!r} (choose from {', '.join(BREAKDOWNS)})")
    src = source if isinstance(source, EventsSource) else open_events(source)
    try:
        return _compute(src, protocol, dims, top, tz_offset_min)
    finally:
        if src is not source:
            src.con.close()


def _compute(src: EventsSource, protocol: str | None, dims: tuple[str, ...], top: int, tz_offset_min: int) -> Metrics:
    notes = list(src.notes) + _normalised_view(src)
    present = [
        p for (p,) in src.con.sql("select distinct protocol from ev where protocol is not null order by 1").fetchall()
    ]
    unknown = [p for p in present if p not in PROTOCOLS]
    if unknown:
        notes.append(f"rows with protocol {', '.join(map(repr, unknown))} are not counted")
    wanted = [p for p in PROTOCOLS if p in present and (protocol is None or p == protocol)]
    if not wanted:
        what = f"{protocol} events" if protocol else "legacy or kava events"
        raise SourceError(f"{src.description}: no {what}")

    result: dict[str, ProtocolMetrics] = {}
    for p in wanted:
        headline, methods = _kava_headline(src) if p == "kava" else _legacy_headline(src)
        rows = _one(src, f"select count(*) as n from ev where protocol = '{p}'")["n"]
        counts = _event_counts(src, p)
        if p == "legacy":
            dropped = _one(src, "select count(*) as n from ev where protocol = 'legacy' and dwh_dropped")["n"]
            if dropped:
                methods["flags"] = f"{dropped} row(s) flagged as dropped by the warehouse are left out"
        breakdowns = _breakdowns(src, p, dims, top, tz_offset_min, methods)
        from_truth = tuple(d for d in dims if methods.get(f"by {d}", "").startswith("truth_"))
        measured_methods: dict[str, str] = {}
        measured = _breakdowns(src, p, from_truth, top, tz_offset_min, measured_methods, without_truth=True)
        methods.update({f"measured {k}": v for k, v in measured_methods.items()})
        result[p] = ProtocolMetrics(
            protocol=p,
            rows=rows,
            headline=headline,
            truth=_truth(src, p),
            event_counts=counts,
            caveats=_caveats(p, headline),
            breakdowns=breakdowns,
            timeline=_timeline(src, p),
            methods=methods,
            measured_breakdowns=measured,
        )
    return Metrics(
        source=src.description,
        tz_offset_min=tz_offset_min,
        protocols=result,
        notes=notes,
        truth_definitions=_truth_definitions(src) if any(pm.truth for pm in result.values()) else {},
    )
