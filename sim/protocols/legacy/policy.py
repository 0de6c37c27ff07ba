"""Which `stats.collect` beacons a legacy player plugin sends for a session timeline.

Usage::

    chunk = next(generate_sessions(components, seed=7, sessions=10_000))
    legacy = beacons(chunk, with_kava=True)      # a BeaconChunk, one row per GET

Three plugins, chosen per scenario by `player.legacy_flavor` (reference sheet, sections a, b):

* ``kdp``: KDP3's statisticsPlugin (Flash). WIDGET_LOADED then MEDIA_LOADED on load; PLAY on
  the first content frame; quartiles on playhead updates at a *rounded* percent of 25/50/75/98
  (so from 24.5 % etc.), only crossed by playback: a quartile the last seek target is already
  past never fires, so a forward seek suppresses the quartiles it jumps over (the later ones
  still fire when playback crosses them); one SEEK per scrub (every modelled seek is taken as
  a scrubber drag: the timeline does not tell drags from clicks); buffer 12/13; fullscreen
  14/15 de-bounced by state; share 9, download 10, report 11; bumper and ad events 21-40.
* ``mwembed``: mwEmbed's statistics plugin (HTML5 v2). MEDIA_LOADED *before* WIDGET_LOADED; PLAY
  on the first play request (`firstPlay`); quartiles on the 250 ms monitor at 25/50/75/98 %,
  one per tick, never suppressed by seeks (the plugin stores the seek target on the wrong
  object), so a seek past 50 % fires 25 then 50 on the next ticks; SEEK with a 2 s de-bounce;
  `seek` always false (same bug); share 9, download 10; nothing at all during an ad break;
  adds `historyEvents`; `hasKanalony` from version 2.61.
* ``v7``: kaltura-player's kanalytics plugin. WIDGET_LOADED then MEDIA_LOADED; PLAY on the
  first play request (`FIRST_PLAY`); quartiles on TIME_UPDATE at 25/50/75/100 %, all that are
  reached fire at once, also when a seek jumps past them (right after the SEEK beacon); SEEK
  with a 2 s de-bounce; no fullscreen, share or ad events; units in float seconds.
  `hasKanalony` rides inside the event (`event:hasKanalony`): kanalytics sets it on the stats
  event object it passes as `event` (playkit-js-kanalytics src/kanalytics.js, event.js);
  mwEmbed sends it as a top-level parameter (sheet b.3).

Eras (`eras`): KDP and mwEmbed viewers send user agents of their players' era (desktop
browsers with Flash 2010-2016; 2014-2020 browsers) and, when the scenario names no
`player.version`, each site (page) runs one release of the era. `eventTimestamp` is the
viewer's device clock: a per-viewer offset (`audience.clock_skew`), and for KDP its time-zone
bug (`time + tzOffset - tzOffset*60`, sheet a.4). Not modelled: KDP's `event:uid` seen in 2011
logs (not in its current source); contextId, featureType and applicationId (the scenario has
no field for them).

All three fire each quartile once per entry: the flags reset on a media change only, so a
REPLAY does not fire them again. No quartiles for live entries. Buffer events map the
content rebuffers (STALL_START/STALL_END); a BUFFER_END is sent only to close a BUFFER_START
that was sent. While an ad break plays, only KDP's ad events go out.

Columns of the BeaconChunk (wire names; null = -1 code in a Strings column, -1 in `format`
and `hasKanalony`): eventType, eventTimestamp (epoch ms, strictly increasing within a
session: two sends in the same millisecond go out 1 ms apart), currentPoint (ms for
kdp/mwembed, float s for v7), duration (s; whole seconds for kdp), partnerId, uiconfId (sent
as `uiConfId` by v7), seek, isFirstInSession, hasKanalony, clientVer, sessionId, entryId,
widgetId, userId, referrer, objectType, historyEvents; request params clientTag,
apiVersion, format, ks; request context user_agent, page_url, client_ip, cookie; and
`legacy_flavor` (kdp | mwembed | v7), which tells the codec how the row goes on the wire.
`ledger_index` is the send counter within the session (1-based).
"""
from __future__ import annotations

import functools
import re

import numpy as np
from numba import njit

from sim.player.timeline import Action, SessionChunk
from sim.population import Population
from sim.protocols.beacons import AsciiStrings, BeaconChunk, Strings
from sim.protocols.legacy import eras
from sim.protocols.session_ids import HEX_LOWER, guid_pool, random_id_bytes
from sim.protocols.urlencoding import encode_uri_component

FLAVORS = ("kdp", "mwembed", "v7")
KDP, MWEMBED, V7 = 0, 1, 2

# Quartile thresholds as fractions of the duration, per flavor (rows) and quartile (columns).
# KDP compares Math.round(percent) >= 25 ..., i.e. the raw percent from 24.5 on.
QUARTILE_AT = np.array([
    [0.245, 0.495, 0.745, 0.975],
    [0.25, 0.50, 0.75, 0.98],
    [0.25, 0.50, 0.75, 1.00],
])
SEEK_DEBOUNCE_S = 2.0        # mwEmbed and v7 drop a seek within 2 s of the previous one
MONITOR_TICK_S = 0.25        # mwEmbed's monitorEvent rate: one quartile per tick
HAS_KANALONY_SINCE = (2, 61)  # first mwEmbed release that reports hasKanalony

# Legacy event types (KalturaStatsEventType).
WIDGET_LOADED, MEDIA_LOADED, PLAY = 1, 2, 3
PLAY_REACHED = (4, 5, 6, 7)
OPEN_VIRAL, OPEN_DOWNLOAD, OPEN_REPORT = 9, 10, 11
BUFFER_START, BUFFER_END = 12, 13
OPEN_FULL_SCREEN, CLOSE_FULL_SCREEN = 14, 15
REPLAY, SEEK = 16, 17
PRE_BUMPER_PLAYED, POST_BUMPER_PLAYED, BUMPER_CLICKED = 21, 22, 23
# KDP ads, by AdPosition 1..3 (pre, mid, post): started 24-26, clicked 28-30, quartiles
# 32-34 / 35-37 / 38-40; overlay started 27, clicked 31.
AD_EVENTS = range(21, 41)

HISTORY_BITS = 24  # mwEmbed's historyEvents bitmap covers event ids 1..24

# Columns every flavor fills on every beacon (userId, hasKanalony, format, objectType, ks and
# historyEvents depend on the flavor).
ALWAYS_SENT = frozenset({"eventType", "eventTimestamp", "currentPoint", "duration", "partnerId", "uiconfId", "seek",
                         "isFirstInSession", "clientVer", "clientTag", "apiVersion", "widgetId", "sessionId",
                         "entryId", "referrer", "ks", "user_agent", "page_url", "client_ip", "cookie"})


def beacons(chunk: SessionChunk, with_kava: bool = False, in_send_order: bool = False) -> BeaconChunk:
    """The legacy beacons of every session in `chunk`, grouped by session in send order.

    `with_kava` says whether the scenario runs KAVA too: it sets `hasKanalony` (v7, and
    mwEmbed from 2.61; KDP never sends it). `in_send_order`: the rows of all sessions in one
    send order instead (by send time, then session, then the session's own order), which
    the event files want; the columns are built in that order, so nothing is sorted twice.
    """
    s = chunk.sessions
    a = chunk.actions
    # one _Settings per (scenario, player version): a scenario that names no version gets the
    # releases of its flavor's era, one per site (page)
    settings, first_variant, era = [], [], []
    for sc in chunk.scenarios:
        first_variant.append(len(settings))
        versions = _versions(sc)
        era.append(len(versions) > 1)
        settings += [_Settings.of(sc, version) for version in versions]
    scen = s["scenario"].astype(np.intp)
    flavor_of_scenario = np.array([FLAVORS.index(sc.player.legacy_flavor) for sc in chunk.scenarios], dtype=np.int8)
    flavor_s = flavor_of_scenario[scen] if len(scen) else np.zeros(0, np.int8)
    variant_s = np.array(first_variant, np.int32)[scen] if len(scen) else np.zeros(0, np.int32)
    if any(era):
        for c, sc in enumerate(chunk.scenarios):
            if era[c]:
                mine = scen == c
                variant_s[mine] += eras.site_versions(sc.player.legacy_flavor, s["referrer"][mine])

    bound = 2 * chunk.n_actions + 4 * chunk.n_sessions + 1
    out_session = np.empty(bound, np.int32)
    out_ms = np.empty(bound, np.int64)
    out_type = np.empty(bound, np.int16)
    out_point = np.empty(bound, np.float64)
    out_seek = np.empty(bound, np.bool_)
    out_counter = np.empty(bound, np.int32)
    out_hist = np.empty(bound, np.int32)
    n = _walk(flavor_s, s["start"], s["duration"], s["live"], s["first_action"], s["n_actions"],
              a["kind"], a["t"], a["pos"], a["value"], a["ad_pos"], QUARTILE_AT,
              out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist)
    if in_send_order:
        # A stable sort of the send times keeps ties in row order: by session, then by send.
        rows = np.argsort(out_ms[:n], kind="stable")
        session, ms, etype, point, seek, counter, hist = (
            col[:n][rows] for col in (out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist))
    else:
        session, ms, etype, seek = out_session[:n].copy(), out_ms[:n].copy(), out_type[:n].copy(), out_seek[:n].copy()
        point, counter, hist = out_point[:n], out_counter[:n], out_hist[:n]

    row_scen = variant_s[session]        # the row's (scenario, version) settings
    fl = flavor_s[session]
    is_kdp, is_mw, is_v7 = fl == KDP, fl == MWEMBED, fl == V7
    sends_user = ~is_v7

    duration = s["duration"][session]
    columns: dict[str, np.ndarray | Strings] = {
        "eventType": etype,
        # the viewer's device clock, not the true send time (KDP adds its time-zone bug)
        "eventTimestamp": ms + _clock_offsets(chunk, flavor_s)[session],
        # parseInt(currentTime * 1000) in KDP and mwEmbed; v7 sends player.currentTime
        "currentPoint": np.where(is_v7, point, np.floor(point * 1000.0)),
        "duration": np.where(is_kdp, np.floor(duration), duration),
        "partnerId": np.array([st.partner_id for st in settings], np.int64)[row_scen],
        "uiconfId": np.array([st.uiconf_id for st in settings], np.int64)[row_scen],
        "seek": seek,
        "isFirstInSession": np.zeros(n, np.bool_),
        "hasKanalony": np.array([st.has_kanalony(with_kava) for st in settings], np.int8)[row_scen],
        "format": np.array([st.format for st in settings], np.int8)[row_scen],
    }
    scen_codes = row_scen.astype(np.int32)
    for name in ("clientVer", "clientTag", "apiVersion", "widgetId", "objectType", "ks"):
        # one pool entry per distinct value: scenarios of a mix mostly share them
        values = [getattr(st, name) for st in settings]
        pool = list(dict.fromkeys(v for v in values if v is not None))
        code_of_scenario = np.array([-1 if v is None else pool.index(v) for v in values], np.int32)
        columns[name] = Strings(code_of_scenario[scen_codes], np.array(pool, dtype=object))

    pools = chunk.population.pools
    catalog = chunk.population.catalog
    ids = legacy_session_ids(chunk, flavor_s, with_kava)
    columns["sessionId"] = ids.with_codes(ids.codes[session])
    columns["entryId"] = Strings(s["entry"][session].astype(np.int32), catalog.entry_ids)
    user = s["user_id"][session].astype(np.int32)
    columns["userId"] = Strings(np.where(sends_user, user, -1).astype(np.int32), pools.user_ids)
    page = s["referrer"][session].astype(np.int32)
    n_pages = len(pools.referrers)
    referrer_pool = _referrer_pool(pools.referrers)
    columns["referrer"] = Strings(np.where(is_mw, page + n_pages, page).astype(np.int32), referrer_pool)
    columns["historyEvents"] = _history_events(hist, counter, is_mw)
    columns["user_agent"] = user_agents(chunk, flavor_s, session)
    columns["page_url"] = Strings(page, np.asarray(pools.referrers, dtype=object))
    columns["client_ip"] = Strings(s["ip"][session].astype(np.int32), pools.ips)
    viewers = s["viewer"].astype(np.int32)
    columns["cookie"] = _uv_cookies(chunk.population, chunk.seed, viewers).with_codes(viewers[session])
    columns["legacy_flavor"] = Strings(fl.astype(np.int32), np.array(FLAVORS, dtype=object))

    return BeaconChunk(
        protocol="legacy",
        columns=columns,
        session=session,
        send_t=ms / 1000.0,
        ledger_session=columns["sessionId"],
        ledger_index=counter.astype(np.int64),
        always_sent=ALWAYS_SENT,
        in_send_order=in_send_order,
    )


class _Settings:
    """What one scenario fixes for every legacy beacon of its sessions."""

    def __init__(self, flavor: str, version: str, partner_id: int, uiconf_id: int, widget_id: str | None,
                 ks: str | None):
        self.flavor = FLAVORS.index(flavor)
        self.version = version
        self.partner_id = partner_id
        self.uiconf_id = uiconf_id
        self.format = -1 if flavor == "kdp" else 1
        default_widget = f"_{partner_id}"
        if flavor == "kdp":
            self.clientVer, self.clientTag, self.apiVersion = f"3.0:v{version}", f"kdp:v{version}", "3.1.5"
            self.widgetId, self.objectType, self.ks = widget_id or default_widget, "KalturaStatsEvent", ks
        elif flavor == "mwembed":
            self.clientVer, self.clientTag, self.apiVersion = version, f"kwidget:v{version}", "3.1"
            self.widgetId, self.objectType, self.ks = widget_id or default_widget, "KalturaStatsEvent", ks
        else:
            # v7 always puts `ks=` in the URL, empty when the player has none
            self.clientVer, self.clientTag, self.apiVersion = version, f"html5:v{version}", "3.3.0"
            self.widgetId, self.objectType, self.ks = default_widget, None, ks or ""

    @classmethod
    def of(cls, scenario, version: str | None = None) -> _Settings:
        player, partner = scenario.player, scenario.partner
        return cls(player.legacy_flavor, version or player.version, partner.partner_id, partner.uiconf_id,
                   partner.widget_id, partner.ks)

    def has_kanalony(self, with_kava: bool) -> int:
        if self.flavor == KDP or (self.flavor == MWEMBED and _version_tuple(self.version) < HAS_KANALONY_SINCE):
            return -1
        return int(with_kava)


def _versions(scenario) -> tuple[str, ...]:
    """The player versions the scenario's sites run: the one it names, else its flavor's era."""
    player = scenario.player
    if "version" in player.model_fields_set or player.legacy_flavor not in eras.ERA_VERSIONS:
        return (player.version,)
    return eras.ERA_VERSIONS[player.legacy_flavor]


def _clock_offsets(chunk: SessionChunk, flavor_s: np.ndarray) -> np.ndarray:
    """Per session: how far the viewer's device clock is off (ms, when the scenario says clocks
    drift), plus KDP's `time + tzOffset - tzOffset*60` (sheet a.4): Flash's timezoneOffset is
    minutes behind UTC, so 59 ms per minute of the viewer's UTC offset."""
    s = chunk.sessions
    n = chunk.n_sessions
    offsets = np.zeros(n, np.int64)
    drifts = np.array([sc.audience.clock_skew for sc in chunk.scenarios], bool)
    if n and drifts.any():
        viewers = s["viewer"].astype(np.int64)
        by_viewer = eras.clock_offsets_ms(chunk.population, chunk.seed, viewers)
        offsets = np.where(drifts[s["scenario"].astype(np.intp)], by_viewer[viewers], 0)
    kdp = flavor_s == KDP
    if kdp.any():
        offsets = offsets + np.where(kdp, 59 * s["tz_offset_min"].astype(np.int64), 0)
    return offsets


_ERA_POOLS: list = [None, None]    # (population pool, the pool with the era pools after it): the last one's


def user_agents(chunk: SessionChunk, flavor_s: np.ndarray, session: np.ndarray) -> Strings:
    """The user_agent column: KDP and mwEmbed viewers as of their players' era (`eras`), v7's as
    they are. One pool (current, KDP era, mwEmbed era) per population."""
    pools = chunk.population.pools
    n = len(pools.user_agents)
    if _ERA_POOLS[0] is not pools.user_agents:
        _ERA_POOLS[:] = [pools.user_agents, np.concatenate([
            np.asarray(pools.user_agents, dtype=object), eras.era_user_agents(chunk.population, "kdp"),
            eras.era_user_agents(chunk.population, "mwembed")])]
    shift = np.array([n, 2 * n, 0], np.int32)[flavor_s]          # by flavor: kdp, mwembed, v7
    codes = (chunk.sessions["user_agent"].astype(np.int32) + shift)[session]
    return Strings(codes, _ERA_POOLS[1])


@functools.lru_cache(maxsize=256)
def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def mwembed_referrer(page_url: str) -> str:
    """mwEmbed reports the parent page without its query, or only its origin when the
    encoded URL would exceed 500 characters."""
    url = page_url.split("?", 1)[0]
    if len(encode_uri_component(url)) <= 500:
        return url
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/]*)", url)
    return m.group(1) if m else url[:500]


_REFERRER_POOL: list = [None, None]   # (page pool, its referrer pool): the last population's


def _referrer_pool(pages: np.ndarray) -> np.ndarray:
    """The pages, then each page as mwEmbed reports it: one pool object for the whole run, so
    the sinks convert it once, not once per chunk."""
    if _REFERRER_POOL[0] is not pages:
        _REFERRER_POOL[:] = [pages, np.concatenate([np.asarray(pages, dtype=object),
                                                    np.array([mwembed_referrer(u) for u in pages], dtype=object)])]
    return _REFERRER_POOL[1]


# Action codes as plain ints, which numba folds into the kernel as constants.
_LOAD, _PLAY_REQUEST = int(Action.LOAD), int(Action.PLAY_REQUEST)
_PLAYING, _SEEK = int(Action.PLAYING), int(Action.SEEK)
_STALL_START, _STALL_END = int(Action.STALL_START), int(Action.STALL_END)
_ENTER_FULLSCREEN, _EXIT_FULLSCREEN = int(Action.ENTER_FULLSCREEN), int(Action.EXIT_FULLSCREEN)
_SHARE, _DOWNLOAD, _REPORT, _REPLAY = int(Action.SHARE), int(Action.DOWNLOAD), int(Action.REPORT), int(Action.REPLAY)
_AD_BREAK_START, _AD_BREAK_END, _AD_START = int(Action.AD_BREAK_START), int(Action.AD_BREAK_END), int(Action.AD_START)
_AD_FIRST_QUARTILE, _AD_THIRD_QUARTILE = int(Action.AD_FIRST_QUARTILE), int(Action.AD_THIRD_QUARTILE)
_AD_CLICK, _OVERLAY_START, _OVERLAY_CLICK = int(Action.AD_CLICK), int(Action.OVERLAY_START), int(Action.OVERLAY_CLICK)
_BUMPER_START, _BUMPER_CLICK = int(Action.BUMPER_START), int(Action.BUMPER_CLICK)


# --- the per-session walk ---------------------------------------------------------------------

@njit(cache=True, inline="always")
def _emit(r, s, send_s, prev_ms, etype, point, seek, counter, hist,
          out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist):
    ms = np.int64(np.floor(send_s * 1000.0 + 0.5))
    if ms <= prev_ms:
        ms = prev_ms + 1
    out_session[r] = s
    out_ms[r] = ms
    out_type[r] = etype
    out_point[r] = point
    out_seek[r] = seek
    out_counter[r] = counter
    out_hist[r] = hist
    return ms


@njit(cache=True)
def _walk(flavor_s, start, duration, live, first_action, n_actions,
          kind, t, pos, value, ad_pos, quartile_at,
          out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist):
    r = 0
    for s in range(len(start)):
        fl = flavor_s[s]
        dur = duration[s]
        st = start[s]
        quartiles_on = (not live[s]) and dur > 0.0
        a0 = first_action[s]
        a1 = a0 + n_actions[s]
        prev_ms = np.int64(-1)
        counter = 0
        hist = 0
        play_sent = False
        fired = np.zeros(4, np.bool_)
        seeked = False
        last_seek_t = -1e300
        in_ads = False
        fullscreen = False
        buffering = False
        prev_t = 0.0
        prev_post = 0.0
        for a in range(a0, a1):
            k = kind[a]
            ta = t[a]
            p = pos[a]
            post = p
            # Playback from the previous action to this one: quartiles the playhead crosses.
            if play_sent and quartiles_on and p > prev_post:
                for q in range(4):
                    thr = quartile_at[fl, q] * dur
                    if not fired[q] and prev_post < thr - 1e-9 and p >= thr - 1e-9:
                        frac = (thr - prev_post) / (p - prev_post)
                        tq = prev_t + min(max(frac, 0.0), 1.0) * (ta - prev_t)
                        fired[q] = True
                        counter += 1
                        hist |= 1 << (q + 3)
                        prev_ms = _emit(r, s, st + tq, prev_ms, q + 4, thr, seeked, counter, hist,
                                        out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist)
                        r += 1
            send = st + ta
            e1 = 0  # up to two plain events per action, sent in this order
            e2 = 0
            if k == _LOAD:
                if fl == MWEMBED:
                    e1, e2 = 2, 1
                else:
                    e1, e2 = 1, 2
            elif k == _PLAY_REQUEST:  # mwEmbed firstPlay, v7 FIRST_PLAY
                if fl != KDP and not play_sent:
                    e1 = 3
                    play_sent = True
            elif k == _PLAYING:  # KDP's PLAYER_PLAYED (content starts)
                if fl == KDP and not play_sent:
                    e1 = 3
                    play_sent = True
            elif k == _SEEK:
                post = value[a]
                if fl == KDP:
                    e1 = 17
                elif ta - last_seek_t > SEEK_DEBOUNCE_S:
                    e1 = 17
                last_seek_t = ta
            elif k == _STALL_START:
                if not in_ads and not buffering:
                    e1 = 12
                    buffering = True
            elif k == _STALL_END:
                if buffering:
                    e1 = 13
                    buffering = False
            elif k == _ENTER_FULLSCREEN:
                if fl != V7 and not in_ads and not fullscreen:
                    e1 = 14
                fullscreen = True
            elif k == _EXIT_FULLSCREEN:
                if fl != V7 and not in_ads and fullscreen:
                    e1 = 15
                fullscreen = False
            elif k == _SHARE:
                if fl != V7 and not in_ads:
                    e1 = 9
            elif k == _DOWNLOAD:
                if fl != V7 and not in_ads:
                    e1 = 10
            elif k == _REPORT:
                if fl == KDP and not in_ads:
                    e1 = 11
            elif k == _REPLAY:
                post = 0.0
                if not in_ads:
                    e1 = 16
            elif k == _AD_BREAK_START:
                in_ads = True
            elif k == _AD_BREAK_END:
                in_ads = False
            elif fl == KDP:  # KDP's ad and bumper notifications
                ap = ad_pos[a]
                if k == _AD_START and 1 <= ap <= 3:
                    e1 = 23 + ap
                elif _AD_FIRST_QUARTILE <= k <= _AD_THIRD_QUARTILE and 1 <= ap <= 3:
                    e1 = 32 + 3 * (ap - 1) + (k - _AD_FIRST_QUARTILE)
                elif k == _AD_CLICK and 1 <= ap <= 4:
                    e1 = 27 + ap
                elif k == _OVERLAY_START:
                    e1 = 27
                elif k == _OVERLAY_CLICK:
                    e1 = 31
                elif k == _BUMPER_START:
                    if ap == 3:  # a bumper after the content
                        e1 = 22
                    else:
                        e1 = 21
                elif k == _BUMPER_CLICK:
                    e1 = 23
            for e in (e1, e2):
                if e == 0:
                    continue
                counter += 1
                if e <= HISTORY_BITS:
                    hist |= 1 << (e - 1)
                prev_ms = _emit(r, s, send, prev_ms, e, post, seeked, counter, hist,
                                out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist)
                r += 1
                if e == SEEK and fl != MWEMBED:
                    seeked = True  # on the events after the first reported seek (never in mwEmbed)
            # A seek that lands past a quartile: v7 fires it at once, mwEmbed on the next ticks.
            if k == _SEEK and play_sent and quartiles_on and fl != KDP:
                tick = 0
                t_next = t[a + 1] if a + 1 < a1 else ta + 1.0
                for q in range(4):
                    thr = quartile_at[fl, q] * dur
                    if not fired[q] and post >= thr - 1e-9:
                        fired[q] = True
                        counter += 1
                        hist |= 1 << (q + 3)
                        tq = ta
                        if fl == MWEMBED:
                            tick += 1
                            tq = min(ta + MONITOR_TICK_S * tick, max(t_next, ta))
                        prev_ms = _emit(r, s, st + tq, prev_ms, q + 4, post, seeked, counter, hist,
                                        out_session, out_ms, out_type, out_point, out_seek, out_counter, out_hist)
                        r += 1
            prev_t = ta
            prev_post = post
    return r


# --- string columns, built per session or per pool, never per beacon ---------------------------


def _as_strings(ascii_rows: np.ndarray) -> np.ndarray:
    width = ascii_rows.shape[1]
    return np.ascontiguousarray(ascii_rows).view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def legacy_session_ids(chunk: SessionChunk, flavor_s: np.ndarray, with_kava: bool = False) -> AsciiStrings:
    """One session id per session (code s is session s's): KDP an uppercase GUID (Flex UIDUtil),
    mwEmbed a lowercase GUID, v7 `<guid>:<guid>` (player part, media part), all from
    `chunk.rng("legacy")`; with KAVA beside it, a v7 player's KAVA session id (`pairing`)."""
    n = len(flavor_s)
    random_bytes = random_id_bytes(chunk.rng("legacy"), n)
    data, offsets = guid_pool(random_bytes, flavor_s == KDP, flavor_s == V7)
    codes = np.arange(n, dtype=np.int32)
    v7 = flavor_s == V7
    if with_kava and v7.any():
        from sim.protocols.pairing import kava_session_ids
        kava_data, kava_offsets = kava_session_ids(chunk)
        data = np.concatenate([data, kava_data])
        offsets = np.concatenate([offsets, kava_offsets[1:] + offsets[-1]])
        codes = np.where(v7, codes + n, codes).astype(np.int32)
    return AsciiStrings(codes, data, offsets)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uv_cookies(population: Population, seed: np.random.SeedSequence, viewers: np.ndarray) -> AsciiStrings:
    """`uv=uv_<32 hex>` of every viewer of the population (code = viewer number): a hash of the
    run's seed and the viewer number, so a viewer carries the same cookie in every chunk of
    the run. Made once per run and kept on the population: every chunk codes into the same
    pool. `viewers`: the chunk's, which the pool must cover."""
    run_key = np.uint64(int(seed.entropy) & 0xFFFFFFFFFFFFFFFF)
    key = ("legacy uv cookies", int(run_key))
    needed = int(viewers.max()) + 1 if len(viewers) else 0
    pool = population.derived.get(key)
    if pool is not None and pool.pool_size >= needed:
        return pool
    n = max(needed, len(population.viewers) if population.viewers is not None else 0)
    with np.errstate(over="ignore"):
        v = np.arange(n, dtype=np.uint64) ^ run_key
        halves = np.stack([_splitmix64(v), _splitmix64(v ^ np.uint64(0xD1B54A32D192ED03))], axis=1)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = ((halves[:, :, None] >> shifts) & np.uint64(15)).astype(np.uint8).reshape(n, 32)
    prefix = np.frombuffer(b"uv=uv_", dtype=np.uint8)
    ascii_rows = np.concatenate([np.broadcast_to(prefix, (n, 6)), HEX_LOWER[nibbles]], axis=1)
    width = ascii_rows.shape[1]
    pool = population.derived[key] = AsciiStrings(np.zeros(0, np.int32), ascii_rows.ravel(),
                                                  np.arange(0, n * width + 1, width, dtype=np.int32))
    return pool


def _history_events(bits: np.ndarray, counter: np.ndarray, is_mw: np.ndarray) -> Strings:
    """mwEmbed's `historyEvents`: a 24-char bitmap of the event ids sent so far for this entry
    (this one included; character i stands for id i+1), then `-<count for entry>-<count total>`.
    One entry per player here, so both counts are the send counter."""
    codes = np.full(len(bits), -1, np.int32)
    rows = np.flatnonzero(is_mw)
    if not len(rows):
        return Strings(codes, np.array([], dtype=object))
    key = bits[rows].astype(np.int64) << 32 | counter[rows].astype(np.int64)
    row_codes, unique = _dense_codes(key)
    bitmaps = ((unique[:, None] >> np.arange(32, 32 + HISTORY_BITS)) & 1).astype(np.uint8) + ord("0")
    pool = np.array([f"{bitmap}-{c}-{c}" for bitmap, c in zip(_as_strings(bitmaps).tolist(),
                                                                  (unique & 0xFFFFFFFF).tolist())], dtype=object)
    codes[rows] = row_codes
    return Strings(codes, pool)


@njit(cache=True)
def _dense_codes(keys):
    """Codes 0.. in order of first appearance, and the distinct keys (all >= 0): np.unique
    without a sort. An open-addressing table: numba's typed dict is several times slower."""
    bits = 4
    while (1 << bits) < 2 * len(keys):
        bits += 1
    mask = np.int64((1 << bits) - 1)
    slot_key = np.full(1 << bits, -1, np.int64)
    slot_code = np.empty(1 << bits, np.int32)
    codes = np.empty(len(keys), np.int32)
    distinct = np.empty(len(keys), np.int64)
    n = 0
    for i in range(len(keys)):
        k = keys[i]
        # Fibonacci hashing: the top bits of k times 2^64 / golden ratio
        j = np.int64((np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))
        while slot_key[j] != k and slot_key[j] >= 0:
            j = (j + np.int64(1)) & mask
        if slot_key[j] < 0:
            slot_key[j] = k
            slot_code[j] = n
            distinct[n] = k
            n += 1
        codes[i] = slot_code[j]
    return codes, distinct[:n].copy()
