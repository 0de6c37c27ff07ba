"""Which KAVA beacons a v7 player's kava plugin sends for a session timeline, and with which fields.

`beacons(chunk)` walks every session's actions in a numba kernel that mirrors
kaltura/playkit-js-kava `src/kava.ts` and `src/kava-timer.ts` (fact sheet: kaltura-protocols.md
section c) and returns a `BeaconChunk` whose columns are the wire parameter names. Two plugin
lines, per scenario (`player.kava.version`): `current`, the plugin's current source, and `0.15`,
v0.15.1 (`src/kava.js`, `src/kava-event-model.js`), the build a real player from the npm
registry runs; where they differ is said where the kernel or `_line_columns` makes them differ.

* IMPRESSION on LOAD, PLAY_REQUEST on the first play request, PLAY on the first frame followed
  at once by a VIEW, then a VIEW on every `view_interval_s`-th timer tick of playing time (the
  plugin's 1 s worker timer, started at PLAY: the first periodic VIEW comes 11 s after PLAY);
  a VIEW is skipped when playTimeSum did not change since the last one.
* Quartiles 25/50/75/90/100 fire on the first timeupdate (`TIMEUPDATE_S`) where currentTime /
  duration rounded to 2 decimals reaches them (100 % from 99.5 %, at the latest at ENDED), or
  at once after a SEEK lands past them, earlier ones first. Each once per entry: REPLAY does
  not re-arm them. 0.15 has no 90 %.
* ENDED: the media element pauses itself, so PAUSE follows at position = duration and the
  timer stops (the 30 s reset runs at the end). REPLAY is the burst a play() at the end makes:
  SEEK to 0, BUFFER_START, BUFFER_END, REPLAY, and RESUME when the browser fires a second
  `playing` (`REPLAY_RESUME_SHARE`).
* PAUSE stops the timer; after `reset_after_pause_s` + 1 ticks paused the KAVA session resets
  (eventIndex 1, playTimeSum, bufferTimeSum and averageBitrate cleared; sessionId kept), and
  again every `reset_after_pause_s` ticks while still paused.
* ERROR (with errorPosition 3 before the play request, 1 before the first frame, 2 mid-stream)
  is followed by the plugin's full reset.
* No VIEW during an ad break, while paused or while rebuffering: the timer counts only ticks
  of content playback (the plugin's timer also ticks during a rebuffer; the fact sheet and
  the metrics checklist put VIEWs on playing time only, and so do we). Ad beacons 8999-9009
  only when the scenario sets `player.kava.ad_events`.
* `sessionStartTime`: the server's `time` (a float with milliseconds) from the first answer
  of a KAVA session. In generated data each answer comes back `RESPONSE_RTT_S` after its
  send, stamped with the server's clock halfway: the first beacon of a session, and every
  beacon of the burst it opens, carries none; an answer read while the timer is stopped
  (paused, or at the end) clears it, so the beacon after a pause carries none and the next
  answer sets a new value. Live load replaces the values with the real answers' (see
  `codec.parse_response`).
* VIEW playTimeSum and position are currentTime as read on the timer's tick (`TICK_LAG_S`),
  raw doubles summed as the plugin sums them. VIEW and PLAY carry the browser's
  networkConnectionType, VIEW droppedFramesRatio and, for hls/dash, the adapter's quality
  figures (`_quality`); undefined string params are `""` on GET rows (sent as `key=`).
* `view_interval_s` and `reset_after_pause_s` are the plugin's `viewEventCountdown` and
  `resetSessionCountdown`, counted in whole 1 s ticks (rounded). Live playTimeSum grows by the
  interval minus bufferTime per report, as kava.ts does; live sends no quartiles.

What the timeline does not carry is filled in as assumptions, named in constants below:
canPlay (80 % of joinTime), viewabilityMode (2, in view), the share network and report
type (drawn per action from the chunk's "kava" stream), REPORT_SUBMITTED after half of
the REPORT_CLICKED, and the jitter and quality draws (per session keys from the chunk's
"kava_qoe" stream). No startup BUFFER_START/END pair is sent around the first frame.

Column conventions: float columns use NaN for "not sent"; integer columns use -1
(`NOT_SENT`); string columns are `Strings` with code -1 for "not sent". Besides the wire
parameters the chunk carries `user_agent`, `page_url`, `client_ip` (request context, see
`sim.protocols.beacons.Beacon`), `apiVersion` and `format` (added by the request builder) and
`encoding` ("post" or "get": the scenario's `player.kava.request_method`).
"""
from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit

from sim.player.timeline import Action, SessionChunk
from sim.protocols.beacons import AsciiStrings, BeaconChunk, Strings
from sim.protocols.session_ids import guid_pool, random_id_bytes
from sim.recycled import Recycler, small_pages

NOT_SENT = -1
API_VERSION = "3.3.0"
KALTURA_APPLICATION_PLAYER = "21"     # src/enums/kaltura-application.ts: PLAYER
PLAYER_SKIN_PLAYER = 1                # src/enums/player-skin.ts
DVR_THRESHOLD_S = 120.0               # kava defaultConfig.dvrThreshold


class EventType:
    """KAVA eventType ids (kaltura/playkit-js-kava src/kava-event-model.ts; ad ids from the JS-era model)."""

    IMPRESSION = 1
    PLAY_REQUEST = 2
    PLAY = 3
    RESUME = 4
    PLAY_REACHED_25 = 11
    PLAY_REACHED_50 = 12
    PLAY_REACHED_75 = 13
    PLAY_REACHED_100 = 14
    PLAY_REACHED_90 = 15
    SHARE_CLICKED = 21
    SHARE_NETWORK = 22
    DOWNLOAD = 23
    REPORT_CLICKED = 24
    REPORT_SUBMITTED = 25
    ENTER_FULLSCREEN = 31
    EXIT_FULLSCREEN = 32
    PAUSE = 33
    REPLAY = 34
    SEEK = 35
    RELATED_OPEN = 36
    RELATED_SELECTED = 37
    CAPTIONS = 38
    SOURCE_SELECTED = 39
    INFO = 40
    SPEED = 41
    FLAVOR_SWITCH = 43
    BUFFER_START = 45
    BUFFER_END = 46
    ERROR = 98
    VIEW = 99
    AD_IMPRESSION = 8999
    AD_STARTED = 9000
    AD_SKIPPED = 9001
    AD_FIRST_QUARTILE = 9002
    AD_MID_POINT = 9003
    AD_THIRD_QUARTILE = 9004
    AD_COMPLETED = 9005
    AD_ERROR = 9006
    AD_CLICKED = 9009


QUARTILE_EVENTS = (11, 12, 13, 15, 14)   # in firing order: 25, 50, 75, 90, 100 %

# Values the timeline does not carry, drawn per action from the chunk's "kava" stream.
SOCIAL_NETWORKS = np.array(["facebook", "twitter", "linkedin", "email"], dtype=object)
REPORT_TYPES = (1, 2, 3, 4)   # KalturaModerationFlagType: sexual, violent, harmful, spam
REPORT_SUBMIT_SHARE = 0.5     # viewers who open the report form and submit it (assumption)
CANPLAY_SHARE_OF_JOIN = 0.8   # canplay lands before the first frame; the timeline has no canplay (assumption)
AD_BREAK_TYPES = np.array(["preroll", "midroll", "postroll", "overlay"], dtype=object)
PLAYBACK_TYPES = np.array(["vod", "live", "dvr"], dtype=object)

# --- kernel layout --------------------------------------------------------------------------

# Integer fields of a beacon (int32): out_i[beacon, I_X] in the kernel (a beacon's fields together),
# then out_i[I_X, beacon] as columns (`_columns`).
(I_SESSION, I_TYPE, I_INDEX, I_CAPTION, I_PLAYBACK_TYPE, I_SOUND, I_TAB, I_SCREEN,
 I_VIEWABILITY, I_ERROR_CODE, I_ERROR_POSITION, I_SOCIAL, I_REPORT_TYPE, I_AD_ERROR_CODE,
 I_AD_POSITION, I_AD_BREAK_TYPE, I_LOADED_PLUGINS) = range(17)
N_INT = 17
# Float fields: out_f[beacon, F_X], then out_f[F_X, beacon].
(F_SEND_T, F_POSITION, F_SPEED, F_BUFFER_TIME, F_BUFFER_TIME_SUM, F_ACTUAL_BITRATE,
 F_AVERAGE_BITRATE, F_JOIN_TIME, F_CAN_PLAY, F_PLAY_TIME_SUM, F_TARGET_POSITION, F_AD_JOIN_TIME,
 F_AD_CURRENT_TIME, F_SST, F_DROPPED, F_FBH, F_TARGET_BUFFER, F_BANDWIDTH, F_SEGMENT_DL, F_MANIFEST_DL,
 F_OVERHEAD) = range(21)
N_FLOAT = 21

# Mutable per-session state shared with the send helper.
(S_INDEX, S_SST, S_STALLED, S_BUF_T, S_BUF_SUM, S_BUF_START, S_STOPPED, S_PEND_FIRST,
 S_PEND_LAST) = range(9)
N_STATE = 9

# The server's answer comes back RESPONSE_RTT_S after the send, stamped with its clock halfway
# (`time`, seconds with milliseconds, as the collector and the KAVA receiver answer). Beacons
# sent within one round trip (a burst) go out before any of their answers is read.
RESPONSE_RTT_S = 0.05

# The plugin reads currentTime on its timer's tick, which does not land on the whole second
# the kernel counts, and the media clock runs a little behind the wall clock: VIEW position
# and playTimeSum are raw doubles a few tens of ms off the tick. The real player (0.15.1 in
# Chromium) sent 10.966436, 10.996181, 10.962933, 11.045311 for the first periodic VIEW; the
# lag is drawn per tick in [TICK_LAG_S, TICK_LAG_S + TICK_LAG_SPAN_S).
TICK_LAG_S = -0.01
TICK_LAG_SPAN_S = 0.055
CURRENT_TIME_RESOLUTION = 1e6     # currentTime as Chromium gives it: microseconds
# Quartiles fire on the first `timeupdate` (about every 250 ms) at or past the threshold: the
# real player sent 25 % of a 24 s clip at 5.95-6.14 s. 100 % (percent 1.00, from 99.5 %) falls
# past the end on about half of short clips, and then fires at the end's last update.
TIMEUPDATE_S = 0.25
# play() on an ended video: Chromium fires `playing` once or twice around `seeked` (twice in
# most of the real player's runs); the second one sends RESUME after REPLAY (`_isPaused` still set).
REPLAY_RESUME_SHARE = 0.75

# Quality-of-experience figures of an adaptive (hls/dash) session, read by VIEW from the
# adapter's stats (kava.ts `_getForwardBufferHealth`, `_getTargetBuffer`; FRAG_LOADED and
# MANIFEST_LOADED timings). Progressive `url` playback has no adapter stats and sends none.
# Values are assumptions shaped by the session: the rendition's bitrate, and whether the
# viewer's network is impaired (the player model's rebuffering group).
TARGET_BUFFER_S = 30.0            # hls.js maxBufferLength (the adapter's target while not near the end)
SEGMENT_S = 6.0                   # media seconds per segment
THROUGHPUT_X = (2.5, 6.0)         # network throughput over the rendition bitrate: good network, range
THROUGHPUT_X_IMPAIRED = (1.05, 1.6)
MANIFEST_S = (0.04, 0.25)         # manifest download seconds, range
OVERHEAD_S = (0.02, 0.18)         # DNS + TCP + TLS of a new connection, seconds, range
NEW_CONNECTION_SHARE = 0.1        # VIEW intervals after the first that open a new connection
# Dropped frames per VIEW interval (getVideoPlaybackQuality deltas, rounded to 3 decimals): the
# real player in Chromium dropped a frame or so in a third of its 10 s intervals (0.004 = 1 of
# 250 at 25 fps), none in the first interval.
DROPPED_SHARE = (0.35, 0.6)       # intervals with dropped frames: good network, impaired
DROPPED_FRAMES_MAX = (2, 8)       # at most this many dropped frames in such an interval
FRAMES_PER_INTERVAL = 250.0       # 25 fps x the 10 s interval
ADAPTIVE_ONLY = ("forwardBufferHealth", "manifestDownloadTime", "segmentDownloadTime", "bandwidth", "targetBuffer",
                 "networkConnectionOverhead")
# navigator.connection.effectiveType where the browser has the Network Information API
CONNECTION_TYPES = np.array(["", "4g", "3g"], dtype=object)   # "": undefined (sent as `key=` on GET)
CHROMIUM_BROWSERS = frozenset({"chrome", "edge", "samsung", "opera"})


@njit(cache=True, error_model="numpy")
def _round_to(x, scale):
    """x rounded half away from zero to 1/scale (plain arithmetic: no libm call in the kernel)."""
    if x < 0:
        return -math.floor(-x * scale + 0.5) / scale
    return math.floor(x * scale + 0.5) / scale


@njit(cache=True, error_model="numpy")
def _round3(x):
    return _round_to(x, 1000.0)


@njit(cache=True, error_model="numpy")
def _kbps_to_kava(kbps):
    # The plugin reports bandwidth / 1024 of the track's bits per second; -1 when unknown.
    if kbps <= 0:
        return -1.0
    return kbps * 1000.0 / 1024.0


@njit(cache=True, error_model="numpy")
def _u01(key, i):
    """A uniform draw in [0, 1) for counter `i` of the session whose key is `key` (splitmix64)."""
    z = key + np.uint64(i) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, error_model="numpy")
def _answers(S, now):
    """Read the server's answers that arrived by `now`, in the timer state of now
    (kava.ts `_updateSessionStartTimeModel`): the first answer of a KAVA session sets
    sessionStartTime, and one read while the timer is stopped (paused, ended) clears it."""
    first = S[S_PEND_FIRST]
    if first < 0 or first + RESPONSE_RTT_S > now:
        return
    if S[S_STOPPED] > 0:
        S[S_SST] = -1.0
    elif S[S_SST] < 0:
        S[S_SST] = math.floor((first + RESPONSE_RTT_S / 2) * 1000.0 + 0.5) / 1000.0
    if S[S_PEND_LAST] + RESPONSE_RTT_S <= now:
        S[S_PEND_FIRST] = -1.0
    else:
        S[S_PEND_FIRST] = S[S_PEND_LAST]   # later answers are still on their way


@njit(cache=True, error_model="numpy")
def _set_stopped(S, now, stopped):
    """The kava timer stops (PAUSE) or runs again; answers that came before count in the old state."""
    _answers(S, now)
    S[S_STOPPED] = stopped


@njit(cache=True, error_model="numpy")
def _send(S, out_i, out_f, n, spare, sess, t_abs, t_rel, etype, live, duration, playhead,
          speed, caption):
    """Write the common params of one beacon at row n (at row `spare` from there on, row 0 when
    counting), its other fields unset; return n + 1."""
    if S[S_STALLED] > 0:
        # An event sent while buffering takes the buffering so far, and the buffer clock restarts.
        S[S_BUF_T] += t_rel - S[S_BUF_START]
        S[S_BUF_SUM] += t_rel - S[S_BUF_START]
        S[S_BUF_START] = t_rel
    _answers(S, t_abs)
    r = min(n, spare)
    if spare:       # every field not sent until the caller sets it
        out_i[r, :] = NOT_SENT
        out_f[r, :] = np.nan
    out_i[r, I_SESSION] = sess
    out_i[r, I_TYPE] = etype
    out_i[r, I_INDEX] = np.int64(S[S_INDEX])
    out_f[r, F_SST] = S[S_SST] if S[S_SST] >= 0 else np.nan
    out_i[r, I_CAPTION] = caption
    if live:
        behind = duration - playhead
        if behind < 1.0:
            out_f[r, F_POSITION] = 0.0
        else:
            out_f[r, F_POSITION] = -math.floor(behind * 1000.0 + 0.5) / 1000.0
        out_i[r, I_PLAYBACK_TYPE] = 2 if behind >= 120.0 else 1
    else:
        rounded = math.floor(playhead * CURRENT_TIME_RESOLUTION + 0.5) / CURRENT_TIME_RESOLUTION
        # currentTime never passes the duration, rounding must not push it past either
        out_f[r, F_POSITION] = rounded if rounded <= duration else duration
        out_i[r, I_PLAYBACK_TYPE] = 0
    out_f[r, F_SEND_T] = t_abs
    out_f[r, F_SPEED] = speed
    S[S_INDEX] += 1
    # this request's answer is on its way
    if S[S_PEND_FIRST] < 0:
        S[S_PEND_FIRST] = t_abs
    S[S_PEND_LAST] = t_abs
    return n + 1


@njit(cache=True, error_model="numpy")
def _send_view(S, out_i, out_f, n, spare, sess, t_abs, t_rel, live, duration, playhead, speed, caption,
               play_time_sum, bitrate, average_bitrate, sound, tab, screen, Q, key):
    """A VIEW (99): the common params, then the per-interval figures, the viewer's modes and,
    for adaptive streams (Q[Q_ON] > 0), the interval's quality figures (`_quality`)."""
    r = min(n, spare)
    n = _send(S, out_i, out_f, n, spare, sess, t_abs, t_rel, 99, live, duration, playhead, speed, caption)
    out_f[r, F_PLAY_TIME_SUM] = play_time_sum
    out_f[r, F_BUFFER_TIME] = _round3(S[S_BUF_T])
    out_f[r, F_BUFFER_TIME_SUM] = _round3(S[S_BUF_SUM])
    out_f[r, F_ACTUAL_BITRATE] = _kbps_to_kava(bitrate)
    out_f[r, F_AVERAGE_BITRATE] = average_bitrate
    out_i[r, I_SOUND] = sound
    out_i[r, I_TAB] = tab
    out_i[r, I_VIEWABILITY] = 2
    out_i[r, I_SCREEN] = screen
    if spare:       # the figures change no count: counting skips them
        _quality(out_f, r, Q, key, n, t_rel, duration, playhead, live, bitrate)
    return n


# Per-session quality state (Q[...]): whether the session has adapter stats, its network,
# when the forward buffer last ran empty, and what the next VIEW interval holds.
Q_ON, Q_IMPAIRED, Q_THROUGHPUT_X, Q_EMPTY_T, Q_MANIFEST, Q_FIRST, Q_TARGET = range(7)
N_QUALITY = 7


@njit(cache=True, error_model="numpy")
def _quality(out_f, r, Q, key, n, t_rel, duration, playhead, live, bitrate):
    """droppedFramesRatio on every VIEW (getVideoPlaybackQuality: every current browser), and
    for adaptive streams forwardBufferHealth, targetBuffer, bandwidth, segmentDownloadTime,
    manifestDownloadTime (an interval that loaded a manifest) and networkConnectionOverhead (an
    interval that opened a connection), each as kava-model rounds it."""
    # one draw per VIEW; its low bits serve as the second and third (cheaper than three draws)
    u = _u01(key, n)
    u2 = (u * 65536.0) % 1.0
    u3 = (u * 4294967296.0) % 1.0
    share = DROPPED_SHARE[1] if Q[Q_IMPAIRED] > 0 else DROPPED_SHARE[0]
    most = DROPPED_FRAMES_MAX[1] if Q[Q_IMPAIRED] > 0 else DROPPED_FRAMES_MAX[0]
    dropped = 1.0 + math.floor(u / share * most) if u < share and Q[Q_FIRST] <= 0 else 0.0
    # Math.round(dropped / total * 1000) / 1000 of the interval's frames
    out_f[r, F_DROPPED] = math.floor(dropped / FRAMES_PER_INTERVAL * 1000.0 + 0.5) / 1000.0
    if Q[Q_ON] <= 0:
        Q[Q_FIRST] = 0.0
        return
    target = Q[Q_TARGET]
    if not live and duration - playhead < target:
        target = duration - playhead          # the adapter does not buffer past the end
    if target > 0:
        # the buffer refills at (throughput - bitrate) since it last ran empty (start, seek, stall)
        fill = (t_rel - Q[Q_EMPTY_T]) * (Q[Q_THROUGHPUT_X] - 1.0) + 0.5
        available = fill if fill < target else target * (0.93 + 0.07 * u3)
        out_f[r, F_FBH] = math.floor(available * 1000.0 / target + 0.5) / 1000.0
        out_f[r, F_TARGET_BUFFER] = math.floor(target * 1000.0 + 0.5) / 1000.0
    if bitrate > 0:
        x = Q[Q_THROUGHPUT_X] * (0.85 + 0.3 * u2)
        kbps = bitrate * x
        # Math.round(bytes * 8 / seconds) / 1000: kbps with 3 decimals
        out_f[r, F_BANDWIDTH] = math.floor(kbps * 1000.0 + 0.5) / 1000.0
        out_f[r, F_SEGMENT_DL] = math.floor(SEGMENT_S / x * 1000.0 + 0.5) / 1000.0
    if Q[Q_MANIFEST] > 0:
        out_f[r, F_MANIFEST_DL] = math.floor((MANIFEST_S[0] + (MANIFEST_S[1] - MANIFEST_S[0]) * u3) * 1000.0
                                             + 0.5) / 1000.0
        Q[Q_MANIFEST] = 1.0 if live else 0.0    # live playlists reload all the time
    if Q[Q_FIRST] > 0 or u3 < NEW_CONNECTION_SHARE:
        out_f[r, F_OVERHEAD] = math.floor((OVERHEAD_S[0] + (OVERHEAD_S[1] - OVERHEAD_S[0]) * (1.0 - u3)) * 1000.0
                                          + 0.5) / 1000.0
        Q[Q_FIRST] = 0.0


# The walk's own per-session state, in S after the plugin's (S[W_...]), so the kernel's helpers
# share it: what the actions so far left. Flags are 1.0/0.0; counters are whole numbers.
(W_PTS, W_PREV_POS, W_LAST_VIEW, W_BR_TIME, W_BR_W, W_T0, W_PLAY_REQ_T, W_AD_IMP_T, W_EV_C, W_RS_C, W_TICKS,
 W_CAPTION, W_HEAD, W_REQUESTED, W_STARTED, W_PAUSED, W_IN_AD, W_ENDED, W_TIMER_ON) = range(N_STATE, N_STATE + 19)
N_WALK_STATE = N_STATE + 19

# Quartiles (VOD): percent = currentTime / duration rounded to 2 decimals >= 25/50/75/90 %, == 100 %,
# in firing order. The per-session quartile state QT holds, for quartile j, whether it fired
# (QT[QT_FIRED + j], 1.0/0.0), when the current span crosses it (QT_CROSS) and the playhead of
# the timeupdate that fires it in playback (QT_AT).
QUARTILE_THRESHOLDS = np.array([0.245, 0.495, 0.745, 0.895, 0.995])
QUARTILE_TYPES = np.array(QUARTILE_EVENTS, np.int64)
QT_FIRED, QT_CROSS, QT_AT = 0, 5, 10
N_QUARTILE_STATE = 15

# The kernel is `_walk` and one helper per part of a session. Helpers `_walk` calls for every
# session or every span of playback are inlined (inline="always"): a call with the output arrays
# costs about a third of the kernel's time there.

# Action kinds (sim.player.timeline.Action) as plain ints, the kernel's constants.
K_LOAD, K_PLAY_REQUEST, K_PLAYING = int(Action.LOAD), int(Action.PLAY_REQUEST), int(Action.PLAYING)
K_PAUSE, K_RESUME, K_SEEK = int(Action.PAUSE), int(Action.RESUME), int(Action.SEEK)
K_STALL_START, K_STALL_END = int(Action.STALL_START), int(Action.STALL_END)
K_ENTER_FULLSCREEN, K_EXIT_FULLSCREEN = int(Action.ENTER_FULLSCREEN), int(Action.EXIT_FULLSCREEN)
K_SPEED, K_CAPTIONS = int(Action.SPEED), int(Action.CAPTIONS)
K_FLAVOR_SWITCH, K_SOURCE_SELECTED = int(Action.FLAVOR_SWITCH), int(Action.SOURCE_SELECTED)
K_SHARE, K_SHARE_NETWORK, K_DOWNLOAD = int(Action.SHARE), int(Action.SHARE_NETWORK), int(Action.DOWNLOAD)
K_REPORT, K_RELATED_OPEN = int(Action.REPORT), int(Action.RELATED_OPEN)
K_RELATED_SELECTED = int(Action.RELATED_SELECTED)
K_INFO, K_ENDED, K_REPLAY = int(Action.INFO), int(Action.ENDED), int(Action.REPLAY)
K_ERROR, K_QUIT = int(Action.ERROR), int(Action.QUIT)
K_AD_BREAK_START, K_AD_BREAK_END = int(Action.AD_BREAK_START), int(Action.AD_BREAK_END)
K_AD_IMPRESSION, K_AD_ERROR = int(Action.AD_IMPRESSION), int(Action.AD_ERROR)
# The kernel's dispatch takes these groups as ranges of kinds.
assert (K_LOAD, K_STALL_END, K_ENTER_FULLSCREEN, K_INFO) == (1, 8, 9, 21)
assert K_SHARE <= K_SHARE_NETWORK <= K_DOWNLOAD <= K_REPORT <= K_RELATED_OPEN <= K_RELATED_SELECTED <= K_INFO
# The KAVA event a viewer action sends as it is (common params only), by action kind; 0: none of these.
PLAIN_EVENT_OF_KIND = np.zeros(K_QUIT + 1, np.int64)
PLAIN_EVENT_OF_KIND[K_SPEED] = EventType.SPEED             # playbackSpeed is a common param
PLAIN_EVENT_OF_KIND[K_SHARE] = EventType.SHARE_CLICKED
PLAIN_EVENT_OF_KIND[K_DOWNLOAD] = EventType.DOWNLOAD
PLAIN_EVENT_OF_KIND[K_RELATED_OPEN] = EventType.RELATED_OPEN
PLAIN_EVENT_OF_KIND[K_RELATED_SELECTED] = EventType.RELATED_SELECTED
PLAIN_EVENT_OF_KIND[K_INFO] = EventType.INFO
# The ad beacon of each ad action kind, AD_EVENT_OF_KIND[kind - K_AD_IMPRESSION] (kinds 31-39).
AD_EVENT_OF_KIND = np.zeros(K_AD_ERROR - K_AD_IMPRESSION + 1, np.int64)
for _kind, _event in ((Action.AD_IMPRESSION, EventType.AD_IMPRESSION), (Action.AD_START, EventType.AD_STARTED),
                      (Action.AD_FIRST_QUARTILE, EventType.AD_FIRST_QUARTILE),
                      (Action.AD_MIDPOINT, EventType.AD_MID_POINT),
                      (Action.AD_THIRD_QUARTILE, EventType.AD_THIRD_QUARTILE),
                      (Action.AD_COMPLETE, EventType.AD_COMPLETED), (Action.AD_SKIP, EventType.AD_SKIPPED),
                      (Action.AD_CLICK, EventType.AD_CLICKED), (Action.AD_ERROR, EventType.AD_ERROR)):
    AD_EVENT_OF_KIND[_kind - K_AD_IMPRESSION] = _event


@njit(cache=True, error_model="numpy", inline="always")
def _start_session(S, Q, QT, key, d, live, qoe, impaired, v015):
    """The plugin's and the walk's state at a session's LOAD; the playheads that fire each quartile."""
    S[S_INDEX] = 1.0
    S[S_SST] = -1.0
    S[S_STALLED] = 0.0
    S[S_BUF_T] = 0.0
    S[S_BUF_SUM] = 0.0
    S[S_BUF_START] = 0.0
    S[S_STOPPED] = 0.0
    S[S_PEND_FIRST] = -1.0
    S[S_PEND_LAST] = -1.0
    Q[Q_ON] = 1.0 if qoe else 0.0
    Q[Q_IMPAIRED] = 1.0 if impaired else 0.0
    lo, hi = (THROUGHPUT_X_IMPAIRED if impaired else THROUGHPUT_X)
    Q[Q_THROUGHPUT_X] = lo + (hi - lo) * _u01(key, 0x7FFFFFFF)
    Q[Q_EMPTY_T] = 0.0
    Q[Q_MANIFEST] = 1.0     # the manifest loads before the first frame: the first VIEW has its time
    Q[Q_FIRST] = 1.0        # ... and the first connection's overhead
    Q[Q_TARGET] = 3.0 * SEGMENT_S if live else TARGET_BUFFER_S
    for j in range(5):
        QT[QT_AT + j] = QUARTILE_THRESHOLDS[j] * d + TIMEUPDATE_S * _u01(key, 0x7FFFFFF0 + j)
    S[N_STATE:] = 0.0
    S[W_LAST_VIEW] = -1.0
    S[W_AD_IMP_T] = -1.0
    S[W_CAPTION] = -1.0
    for j in range(5):
        QT[QT_FIRED + j] = 0.0
    if v015:
        QT[QT_FIRED + 3] = 1.0     # 0.15 has no 90 % event (PLAY_REACHED_90 came with the player's milestones)


@njit(cache=True, error_model="numpy", inline="always")
def _play_through(S, Q, QT, out_i, out_f, n, spare, s, t_start, d, is_live, N, key, v015,
                  views_enabled, t_prev, ta, pa_, cur_br, cur_speed, cur_sound, cur_tab, cur_screen):
    """Content playing from t_prev to ta (playhead S[W_HEAD] to pa_): the quartiles it crosses
    and the kava timer's REPORT ticks (VIEWs), in time order; return the beacon count."""
    head = S[W_HEAD]
    pts = S[W_PTS]
    prev_pos = S[W_PREV_POS]
    last_view = S[W_LAST_VIEW]
    br_time = S[W_BR_TIME]
    br_w = S[W_BR_W]
    t0 = S[W_T0]
    ev_c = np.int64(S[W_EV_C])
    ticks = np.int64(S[W_TICKS])
    caption = np.int64(S[W_CAPTION])
    timer_on = S[W_TIMER_ON] > 0
    span = ta - t_prev
    # quartile crossings of the interpolated playhead (VOD)
    nq = 0
    if not is_live and d > 0:
        for j in range(5):
            QT[QT_CROSS + j] = np.inf
            if QT[QT_FIRED + j] == 0 and pa_ >= QT[QT_AT + j]:
                if head >= QT[QT_AT + j] or pa_ <= head:
                    QT[QT_CROSS + j] = t_prev
                else:
                    QT[QT_CROSS + j] = t_prev + (QT[QT_AT + j] - head) / (pa_ - head) * span
                nq += 1
    t_acc = t_prev
    k = np.int64(math.floor(t_prev - t0)) + 1
    kb = np.int64(math.floor(ta - t0))
    while True:
        tr = np.inf
        k_rep = k
        if timer_on and k <= kb:
            need = N - ev_c
            if need < 0:
                need = 0
            k_rep = k + need
            if k_rep <= kb:
                tr = t0 + k_rep
        jq = -1
        if nq > 0:
            for j in range(5):
                if QT[QT_FIRED + j] == 0 and QT[QT_CROSS + j] < np.inf:
                    jq = j
                    break
        if jq < 0 and tr == np.inf:
            break
        if jq >= 0 and QT[QT_CROSS + jq] <= tr:
            x = QT[QT_CROSS + jq]
            here = head + (pa_ - head) * (x - t_prev) / span
            pts += here - prev_pos
            prev_pos = here
            QT[QT_FIRED + jq] = 1.0
            nq -= 1
            n = _send(S, out_i, out_f, n, spare, s, t_start + x, x, QUARTILE_TYPES[jq], is_live, d, here, cur_speed,
                      caption)
            continue
        # a REPORT tick of the kava timer
        if cur_br > 0:
            br_time += tr - t_acc
            br_w += (tr - t_acc) * cur_br
        t_acc = tr
        here = head + (pa_ - head) * (tr - t_prev) / span
        # currentTime as read on the tick: a little behind, never behind the last reading
        ticks += 1
        if pa_ > head:      # a frozen playhead (rebuffer) reads as it stands
            here -= (TICK_LAG_S + TICK_LAG_SPAN_S * _u01(key, ticks)) * cur_speed
        here = math.floor(here * CURRENT_TIME_RESOLUTION + 0.5) / CURRENT_TIME_RESOLUTION
        if here > pa_:
            here = pa_
        if here < prev_pos:
            here = prev_pos
        if is_live:
            pts += N - S[S_BUF_T]
        else:
            pts += here - prev_pos
            prev_pos = here
        # kava.ts `_lastViewEventPlayTime` (current only): no VIEW repeating playTimeSum
        if views_enabled and (pts != last_view or v015):
            last_view = pts
            avg_br = _round3(_kbps_to_kava(br_w / br_time)) if br_time > 0 else 0.0
            n = _send_view(S, out_i, out_f, n, spare, s, t_start + tr, tr, is_live, d, here, cur_speed,
                           caption, pts, cur_br, avg_br, cur_sound, cur_tab, cur_screen, Q, key)
        S[S_BUF_T] = 0.0
        ev_c = 1
        k = k_rep + 1
    if timer_on and k <= kb:
        ev_c += kb - k + 1
    if cur_br > 0:
        br_time += ta - t_acc
        br_w += (ta - t_acc) * cur_br
    if not is_live:
        pts += pa_ - prev_pos
        prev_pos = pa_
    S[W_PTS] = pts
    S[W_PREV_POS] = prev_pos
    S[W_LAST_VIEW] = last_view
    S[W_BR_TIME] = br_time
    S[W_BR_W] = br_w
    S[W_EV_C] = ev_c
    S[W_TICKS] = ticks
    return n


@njit(cache=True, error_model="numpy", inline="always")
def _paused_ticks(S, t_prev, ta, R):
    """The stopped timer counts towards the session reset: the first after R + 1 ticks (the
    counter starts at 0 on PAUSE), then one every R ticks."""
    t0 = S[W_T0]
    rs_c = np.int64(S[W_RS_C])
    ticks = np.int64(math.floor(ta - t0)) - np.int64(math.floor(t_prev - t0))
    # The tick-lag draws' counter restarts from this count (the kernel has always shared the
    # name; the draws, and so the files, stay as they were).
    S[W_TICKS] = ticks
    first_reset = R - rs_c + 1
    if first_reset < 1:
        first_reset = 1
    if ticks >= first_reset:
        S[S_INDEX] = 1.0
        S[S_BUF_SUM] = 0.0
        S[W_PTS] = 0.0
        S[W_BR_TIME] = 0.0
        S[W_BR_W] = 0.0
        S[W_EV_C] = 0.0
        S[W_RS_C] = 1 + (ticks - first_reset) % R
    elif ticks > 0:
        S[W_RS_C] = rs_c + ticks


@njit(cache=True, error_model="numpy")
def _stream_figures(S, out_f, r, bitrate):
    """The buffer and bitrate figures PLAY and RESUME carry."""
    out_f[r, F_BUFFER_TIME] = _round3(S[S_BUF_T])
    out_f[r, F_BUFFER_TIME_SUM] = _round3(S[S_BUF_SUM])
    out_f[r, F_ACTUAL_BITRATE] = _kbps_to_kava(bitrate)


@njit(cache=True, error_model="numpy")
def _first_frame(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, value, N, views_enabled,
                 cur_br, cur_speed, cur_sound, cur_tab, cur_screen, key):
    """PLAYING for the first time: the timer starts, PLAY, and at once a VIEW with playTimeSum about 0."""
    S[W_STARTED] = 1.0
    S[W_TIMER_ON] = 1.0
    S[W_T0] = ta
    S[W_EV_C] = 0.0
    S[W_RS_C] = 0.0
    caption = np.int64(S[W_CAPTION])
    _set_stopped(S, ts, 0.0)
    Q[Q_EMPTY_T] = ta
    join = ta - S[W_PLAY_REQ_T] if S[W_REQUESTED] > 0 else value
    r = min(n, spare)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 3, is_live, d, pa_, cur_speed, caption)
    _stream_figures(S, out_f, r, cur_br)
    out_f[r, F_JOIN_TIME] = _round3(join)
    out_f[r, F_CAN_PLAY] = _round3(join * CANPLAY_SHARE_OF_JOIN)
    # _onPlaying reports right after PLAY: a VIEW with playTimeSum about 0
    if is_live:
        S[W_PTS] += N - S[S_BUF_T]
    else:
        S[W_PTS] += pa_ - S[W_PREV_POS]
        S[W_PREV_POS] = pa_
    pts = S[W_PTS]
    if views_enabled and pts != S[W_LAST_VIEW]:
        S[W_LAST_VIEW] = pts
        n = _send_view(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_speed,
                       caption, pts, cur_br, 0.0, cur_sound, cur_tab, cur_screen, Q, key)
    S[S_BUF_T] = 0.0
    return n


@njit(cache=True, error_model="numpy")
def _pause(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_speed):
    """The player pauses (the viewer, or the media element at the end): PAUSE, the timer stops."""
    S[W_PAUSED] = 1.0
    S[W_RS_C] = 0.0
    if S[W_TIMER_ON] > 0:
        _set_stopped(S, ts, 1.0)
    return _send(S, out_i, out_f, n, spare, s, ts, ta, 33, is_live, d, pa_, cur_speed, np.int64(S[W_CAPTION]))


@njit(cache=True, error_model="numpy")
def _crossed_quartiles(S, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, at, cur_speed, caption):
    """The quartiles a playhead jump to `at` passed (SEEK, the end's last time update), earlier ones first."""
    if not is_live and d > 0:
        for j in range(5):
            if QT[QT_FIRED + j] == 0 and at >= QUARTILE_THRESHOLDS[j] * d:
                QT[QT_FIRED + j] = 1.0
                n = _send(S, out_i, out_f, n, spare, s, ts, ta, QUARTILE_TYPES[j], is_live, d, at, cur_speed, caption)
    return n


@njit(cache=True, error_model="numpy")
def _playback_action(S, Q, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value,
                     N, views_enabled, cur_br, cur_speed, cur_sound, cur_tab, cur_screen, key):
    """LOAD, PLAY_REQUEST, PLAYING, PAUSE, RESUME, SEEK and the stalls; return the beacon count."""
    caption = np.int64(S[W_CAPTION])
    r = min(n, spare)
    if k_ == K_LOAD:
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, 1, is_live, d, pa_, cur_speed, caption)
        out_i[r, I_LOADED_PLUGINS] = 1
    elif k_ == K_PLAY_REQUEST:    # the plugin's FIRST_PLAY
        if S[W_REQUESTED] == 0:
            S[W_REQUESTED] = 1.0
            S[W_PLAY_REQ_T] = ta
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 2, is_live, d, pa_, cur_speed, caption)
    elif k_ == K_PLAYING:
        if S[W_STARTED] == 0:
            n = _first_frame(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, value, N, views_enabled,
                             cur_br, cur_speed, cur_sound, cur_tab, cur_screen, key)
    elif k_ == K_PAUSE:
        if S[W_PAUSED] == 0:
            n = _pause(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_speed)
    elif k_ == K_RESUME:
        if S[W_PAUSED] > 0:
            S[W_PAUSED] = 0.0
            S[W_RS_C] = 0.0
            _set_stopped(S, ts, 0.0)
            S[W_PREV_POS] = pa_
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 4, is_live, d, pa_, cur_speed, caption)
            _stream_figures(S, out_f, r, cur_br)
    elif k_ == K_SEEK:    # currentTime is already the target when SEEKING fires
        target = value
        S[W_HEAD] = target
        S[W_PREV_POS] = target
        Q[Q_EMPTY_T] = ta
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, 35, is_live, d, target, cur_speed, caption)
        out_f[r, F_TARGET_POSITION] = min(_round_to(target, 1e6), d) if not is_live else _round_to(target, 1e6)
        n = _crossed_quartiles(S, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, target,
                               cur_speed, caption)
    elif k_ == K_STALL_START:
        if S[S_STALLED] == 0:
            S[S_STALLED] = 1.0
            S[S_BUF_START] = ta
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 45, is_live, d, pa_, cur_speed, caption)
    elif k_ == K_STALL_END:
        if S[S_STALLED] > 0:
            S[S_STALLED] = 0.0
            S[S_BUF_T] += ta - S[S_BUF_START]
            S[S_BUF_SUM] += ta - S[S_BUF_START]
            Q[Q_EMPTY_T] = ta
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 46, is_live, d, pa_, cur_speed, caption)
    return n


@njit(cache=True, error_model="numpy")
def _viewer_action(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value, u_a, caption_count,
                   cur_br, cur_speed):
    """Fullscreen, speed, captions, renditions, share, download, report, related and info; return the count."""
    caption = np.int64(S[W_CAPTION])
    r = min(n, spare)
    plain = PLAIN_EVENT_OF_KIND[k_]
    if plain > 0:
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, plain, is_live, d, pa_, cur_speed, caption)
    elif k_ == K_ENTER_FULLSCREEN or k_ == K_EXIT_FULLSCREEN:
        etype = 31 if k_ == K_ENTER_FULLSCREEN else 32
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, etype, is_live, d, pa_, cur_speed, caption)
        out_i[r, I_SCREEN] = 2 if k_ == K_ENTER_FULLSCREEN else 1
    elif k_ == K_CAPTIONS:   # only while playing does the plugin take the new track
        if S[W_STARTED] > 0:
            c = np.int64(value)
            caption = c if 0 <= c < caption_count else -1
            S[W_CAPTION] = caption
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 38, is_live, d, pa_, cur_speed, caption)
    elif k_ == K_FLAVOR_SWITCH or k_ == K_SOURCE_SELECTED:   # ABR / manual
        etype = 43 if k_ == K_FLAVOR_SWITCH else 39
        Q[Q_MANIFEST] = 1.0     # an hls level switch loads the new level's playlist
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, etype, is_live, d, pa_, cur_speed, caption)
        out_f[r, F_ACTUAL_BITRATE] = _kbps_to_kava(cur_br)
    elif k_ == K_SHARE_NETWORK:
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, 22, is_live, d, pa_, cur_speed, caption)
        out_i[r, I_SOCIAL] = np.int64(u_a * 4.0) % 4
    elif k_ == K_REPORT:   # the form opens; some viewers submit it
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, 24, is_live, d, pa_, cur_speed, caption)
        if u_a < REPORT_SUBMIT_SHARE:
            r = min(n, spare)
            n = _send(S, out_i, out_f, n, spare, s, ts, ta, 25, is_live, d, pa_, cur_speed, caption)
            out_i[r, I_REPORT_TYPE] = 1 + np.int64(u_a / REPORT_SUBMIT_SHARE * 4.0) % 4
    return n


@njit(cache=True, error_model="numpy")
def _replay(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_br, cur_speed, key):
    """play() at the end; quartile flags stay set.

    play() on an ended element seeks to 0 first (SEEK, targetPosition 0), the player buffers
    (BUFFER_START/END), then PLAYING: `_isEnded` sends REPLAY and restarts the timer, and
    `_isPaused`, still set by the end's PAUSE, sends RESUME when a second PLAYING comes
    (REPLAY_RESUME_SHARE). All in one burst: none carries the sessionStartTime that the end's
    PAUSE cleared (their answers come after the timer runs again: the first one sets a new value).
    """
    caption = np.int64(S[W_CAPTION])
    S[W_HEAD] = pa_
    S[W_PREV_POS] = pa_
    Q[Q_EMPTY_T] = ta
    r = min(n, spare)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 35, is_live, d, pa_, cur_speed, caption)
    out_f[r, F_TARGET_POSITION] = pa_
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 45, is_live, d, pa_, cur_speed, caption)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 46, is_live, d, pa_, cur_speed, caption)
    S[W_ENDED] = 0.0
    S[W_TIMER_ON] = 1.0
    S[W_T0] = ta
    S[W_EV_C] = 0.0
    S[W_RS_C] = 0.0
    _set_stopped(S, ts, 0.0)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 34, is_live, d, pa_, cur_speed, caption)
    if S[W_PAUSED] > 0 and _u01(key, 0x7FFFFFE0 + np.int64(ta * 1000.0)) < REPLAY_RESUME_SHARE:
        r = min(n, spare)
        n = _send(S, out_i, out_f, n, spare, s, ts, ta, 4, is_live, d, pa_, cur_speed, caption)
        _stream_figures(S, out_f, r, cur_br)
    S[W_PAUSED] = 0.0      # the media plays (without RESUME the plugin's flag stays set)
    return n


@njit(cache=True, error_model="numpy")
def _error(S, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, value, cur_speed, v015):
    """A critical ERROR, then the plugin's full reset."""
    r = min(n, spare)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, 98, is_live, d, pa_, cur_speed, np.int64(S[W_CAPTION]))
    out_i[r, I_ERROR_CODE] = np.int64(value)
    started = S[W_STARTED] > 0
    if v015:    # 0.15 ErrorPosition: PRE_PLAYING 1 until the first PLAYING, then MID_STREAM 2
        out_i[r, I_ERROR_POSITION] = 1 if not started else 2
    else:
        out_i[r, I_ERROR_POSITION] = 3 if S[W_REQUESTED] == 0 else (1 if not started else 2)
    S[S_INDEX] = 1.0
    S[S_BUF_T] = 0.0
    S[S_BUF_SUM] = 0.0
    S[S_SST] = -1.0
    S[S_PEND_FIRST] = -1.0
    S[S_STALLED] = 0.0
    S[S_STOPPED] = 0.0
    S[W_PTS] = 0.0
    S[W_PREV_POS] = 0.0
    S[W_LAST_VIEW] = -1.0
    S[W_BR_TIME] = 0.0
    S[W_BR_W] = 0.0
    S[W_REQUESTED] = 0.0
    S[W_STARTED] = 0.0
    S[W_PAUSED] = 0.0
    S[W_ENDED] = 0.0
    S[W_TIMER_ON] = 0.0
    for j in range(5):
        QT[QT_FIRED + j] = 0.0
    QT[QT_FIRED + 3] = 1.0 if v015 else 0.0
    return n


@njit(cache=True, error_model="numpy")
def _ad_action(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value, ad_pos, ad_index, cur_speed):
    """An ad beacon (8999-9009) for ad action kinds 31-39."""
    etype = AD_EVENT_OF_KIND[k_ - K_AD_IMPRESSION]
    if etype == 8999:
        S[W_AD_IMP_T] = ta
    r = min(n, spare)
    n = _send(S, out_i, out_f, n, spare, s, ts, ta, etype, is_live, d, pa_, cur_speed, np.int64(S[W_CAPTION]))
    if 1 <= ad_pos <= 4:
        out_i[r, I_AD_BREAK_TYPE] = ad_pos - 1
        out_i[r, I_AD_POSITION] = ad_index + 1
    if etype == 9000 and S[W_AD_IMP_T] >= 0:
        out_f[r, F_AD_JOIN_TIME] = _round3(ta - S[W_AD_IMP_T])
    if etype == 9006:
        out_i[r, I_AD_ERROR_CODE] = np.int64(value) if value > 0 else 1009
        out_f[r, F_AD_CURRENT_TIME] = 0.0
    if etype == 9005 or etype == 9001 or etype == 9006:
        S[W_AD_IMP_T] = -1.0
    return n


@njit(cache=True, error_model="numpy")
def _walk(spare, first, count, start, duration, live, view_n, reset_n, ad_events, views_enabled,
          kind, t, pos, value, ad_pos, ad_index, bitrate, screen, sound, tab, speed, u,
          caption_count, old, qoe, impaired, keys, out_i, out_f, per_session):
    """Run the kava plugin over every session; return the number of beacons.

    Beacon n goes to row n of out_i/out_f up to row `spare`, the outputs' last: every row from
    there on lands on it, so the rows are whole only when the result is at most `spare` (the
    caller runs again with larger outputs when not). spare=0 only counts. `per_session` gets
    each session's count. `old[s]`: the session
    runs the 0.15 plugin line (see `beacons`).
    """
    S = np.zeros(N_WALK_STATE, np.float64)
    Q = np.zeros(N_QUALITY, np.float64)
    QT = np.zeros(N_QUARTILE_STATE, np.float64)
    n = 0
    for s in range(first.shape[0]):
        n_start = n
        d = duration[s]
        is_live = live[s]
        t_start = start[s]
        key = keys[s]
        v015 = old[s]
        N = view_n[s]
        _start_session(S, Q, QT, key, d, is_live, qoe[s], impaired[s], v015)
        a0 = first[s]
        a1 = a0 + count[s]
        if a1 <= a0:
            per_session[s] = 0
            continue
        cur_br = bitrate[a0]
        cur_speed = speed[a0]
        cur_screen = screen[a0]
        cur_sound = sound[a0]
        cur_tab = tab[a0]
        t_prev = t[a0]
        S[W_HEAD] = pos[a0]           # playhead right after the previous action
        for a in range(a0, a1):
            ta = t[a]
            pa_ = pos[a]
            k_ = kind[a]
            # --- time passing since the previous action, in the state it left ---------------
            # The timer runs while the player buffers, too; the current line's VIEW is then
            # blocked (playTimeSum did not change) and we leave its ticks out, as the metrics
            # expect VIEWs on playing time only. 0.15 has no such check (its `_onReport` sends
            # every REPORT): its VIEWs go on through a rebuffer.
            playing = (S[W_STARTED] > 0 and S[W_PAUSED] == 0 and (S[S_STALLED] == 0 or v015) and S[W_IN_AD] == 0
                       and S[W_ENDED] == 0)
            if playing and ta > t_prev:
                n = _play_through(S, Q, QT, out_i, out_f, n, spare, s, t_start, d, is_live, N, key, v015,
                                  views_enabled, t_prev, ta, pa_, cur_br, cur_speed, cur_sound, cur_tab, cur_screen)
            elif S[W_TIMER_ON] > 0 and S[W_PAUSED] > 0 and ta > t_prev:
                _paused_ticks(S, t_prev, ta, reset_n[s])
            t_prev = ta
            if k_ == K_QUIT:    # the page goes away
                break
            # --- the action itself, in the state it leaves -----------------------------------
            cur_br = bitrate[a]
            cur_speed = speed[a]
            cur_screen = screen[a]
            cur_sound = sound[a]
            cur_tab = tab[a]
            S[W_HEAD] = pa_
            ts = t_start + ta
            if k_ <= K_STALL_END:
                n = _playback_action(S, Q, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value[a],
                                     N, views_enabled, cur_br, cur_speed, cur_sound, cur_tab, cur_screen, key)
            elif k_ <= K_INFO:
                # 0.15's event model has no fullscreen, share, download, report, related or info event
                if not (v015 and (k_ == K_ENTER_FULLSCREEN or k_ == K_EXIT_FULLSCREEN or K_SHARE <= k_ <= K_INFO)):
                    n = _viewer_action(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value[a], u[a],
                                       caption_count, cur_br, cur_speed)
            elif k_ == K_ENDED:   # the last time update (quartiles up to 100 %), the media's PAUSE
                S[W_ENDED] = 1.0
                n = _crossed_quartiles(S, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_speed,
                                       np.int64(S[W_CAPTION]))
                # The media element pauses itself at the end and fires `pause` before `ended`
                # (HTML "reaches the end"): the plugin sends PAUSE at position = duration and stops
                # its timer, so the 30 s reset runs while the player sits at the end.
                if S[W_STARTED] > 0 and S[W_PAUSED] == 0:
                    n = _pause(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_speed)
                S[S_BUF_T] = 0.0
            elif k_ == K_REPLAY:
                if S[W_ENDED] > 0:
                    n = _replay(S, Q, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, cur_br, cur_speed, key)
            elif k_ == K_ERROR:
                n = _error(S, QT, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, value[a], cur_speed, v015)
            elif k_ == K_AD_BREAK_START:   # content stops, VIEWs stop
                S[W_IN_AD] = 1.0
            elif k_ == K_AD_BREAK_END:
                S[W_IN_AD] = 0.0
                S[W_PREV_POS] = pa_
            elif ad_events[s] and K_AD_IMPRESSION <= k_ <= K_AD_ERROR:
                n = _ad_action(S, out_i, out_f, n, spare, s, ts, ta, is_live, d, pa_, k_, value[a], ad_pos[a],
                               ad_index[a], cur_speed)
            # SOUND (26), overlays and bumpers (41-44) send nothing over KAVA
        per_session[s] = n - n_start
    return n


def _scenario_settings(chunk: SessionChunk):
    """Per-scenario settings as arrays indexed by the scenario column."""
    scs = chunk.scenarios
    kava = [sc.player.kava for sc in scs]
    return dict(
        view_n=np.array([max(1, round(k.view_interval_s)) for k in kava], np.int64),
        reset_n=np.array([max(1, round(k.reset_after_pause_s)) for k in kava], np.int64),
        ad_events=np.array([k.ad_events for k in kava], np.bool_),
        encoding=np.array([k.method for k in kava], dtype=object),
        old=np.array([k.version == "0.15" for k in kava], np.bool_),
        adaptive=np.array([sc.player.delivery in ("hls", "dash") for sc in scs], np.bool_),
        partner_id=np.array([sc.partner.partner_id for sc in scs], np.int64),
        ui_conf_id=np.array([sc.partner.uiconf_id or NOT_SENT for sc in scs], np.int64),
        ks=np.array([sc.partner.ks or "" for sc in scs], dtype=object),
        client_ver=np.array([sc.player.version for sc in scs], dtype=object),
        client_tag=np.array([f"html5:v{sc.player.version}" for sc in scs], dtype=object),
        delivery=np.array([sc.player.delivery for sc in scs], dtype=object),
        loaded_plugins=np.array([_loaded_plugins(sc) for sc in scs], dtype=object),
    )


def _loaded_plugins(scenario) -> str:
    """The IMPRESSION's `loadedPlugins`: the plugins the player registered (ima when the scenario has ads)."""
    plugins = ["kava"]
    ads = scenario.ads
    if ads.preroll is not None or ads.midroll is not None or ads.postroll is not None:
        plugins.append("ima")
    return ",".join(plugins)


def session_ids(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` KAVA session ids `<guid>:<guid>` (lowercase 8-4-4-4-12 hex), as an AsciiStrings
    pool (data, offsets).

    Part 1 stands for the player on the page, part 2 for the media; a session is one entry
    loaded in one player, so both are new per session.
    """
    return guid_pool(random_id_bytes(rng, n), np.zeros(n, bool), np.ones(n, bool))


def _error_details(codes: np.ndarray) -> Strings:
    """errorDetails: the player's critical error as a JSON string (category is code // 1000 in playkit)."""
    present = codes >= 0
    uniq, inverse = np.unique(codes[present], return_inverse=True)
    pool = np.array([f'{{"severity":2,"category":{c // 1000},"code":{c}}}' for c in uniq.tolist()], dtype=object)
    out = np.full(len(codes), -1, np.int32)
    out[present] = inverse
    return Strings(out, pool)


def _count_bound_inputs(chunk: SessionChunk, settings):
    s = chunk.sessions
    a = chunk.actions
    scen = s["scenario"].astype(np.int64)
    return dict(
        first=s["first_action"].astype(np.int64),
        count=s["n_actions"].astype(np.int64),
        start=s["start"].astype(np.float64),
        duration=s["duration"].astype(np.float64),
        live=s["live"].astype(np.bool_),
        view_n=settings["view_n"][scen],
        reset_n=settings["reset_n"][scen],
        ad_events=settings["ad_events"][scen],
        old=settings["old"][scen],
        qoe=settings["adaptive"][scen],
        impaired=s["impaired"].astype(np.bool_),
        kind=a["kind"].astype(np.int64),
        t=a["t"].astype(np.float64),
        pos=a["pos"].astype(np.float64),
        value=a["value"].astype(np.float64),
        ad_pos=a["ad_pos"].astype(np.int64),
        ad_index=a["ad_index"].astype(np.int64),
        bitrate=a["bitrate"].astype(np.float64),
        screen=a["screen"].astype(np.int64),
        sound=a["sound"].astype(np.int64),
        tab=a["tab"].astype(np.int64),
        speed=a["speed"].astype(np.float64),
    )


def _run(inputs, u, caption_count, views_enabled, keys, out_i, out_f, per_session):
    """The beacons of every session into out_i/out_f's rows (see `_walk`); returns their number."""
    return _walk(out_i.shape[0] - 1, inputs["first"], inputs["count"], inputs["start"], inputs["duration"],
                 inputs["live"], inputs["view_n"], inputs["reset_n"], inputs["ad_events"],
                 views_enabled, inputs["kind"], inputs["t"], inputs["pos"], inputs["value"],
                 inputs["ad_pos"], inputs["ad_index"], inputs["bitrate"], inputs["screen"],
                 inputs["sound"], inputs["tab"], inputs["speed"], u, caption_count,
                 inputs["old"], inputs["qoe"], inputs["impaired"], keys, out_i, out_f, per_session)


# Columns filled on every beacon (clientVer is left out: an empty player version is not sent).
ALWAYS_SENT = frozenset({"eventType", "partnerId", "entryId", "sessionId", "eventIndex", "referrer", "playbackType",
                         "clientTag", "position", "playbackSpeed", "playerSkin", "kalturaApplication", "uiConfId",
                         "apiVersion", "format", "ks", "user_agent", "page_url", "client_ip"})


# Common params of the current line only: a run with a 0.15 scenario leaves them unset on its rows.
LINE_COMMON = frozenset({"playbackSpeed", "playerSkin", "kalturaApplication"})


def _const(values: np.ndarray, codes: np.ndarray) -> Strings:
    """A string column from per-scenario values: one pool entry per distinct value, "" = not sent."""
    pool, inverse = np.unique(values.astype(str), return_inverse=True)
    pool = pool.astype(object)
    mapped = inverse.astype(np.int32)[codes]
    empty = np.flatnonzero(pool == "")
    if len(empty):
        mapped = np.where(mapped == empty[0], -1, mapped).astype(np.int32)
    return Strings(mapped, pool)


def _line_columns(chunk: SessionChunk, settings, out_i, out_f, row_scen, captions) -> dict:
    """The fields where the two plugin lines differ, and the VIEW/PLAY fields taken from the
    browser, as columns; masks the kernel's common columns in place for the 0.15 rows.

    0.15 (playkit-js-kava v0.15.1 src/kava-event-model.js) against the current source
    (src/kava-event-model.ts), with the kaltura/playkit-js-kava commit of each change:
    * common params: 0.15 has no `playbackSpeed` (only its VIEW and SPEED models carry it) and
      no `caption` (only CAPTIONS carries it): both made common in 40b8250 (FEC-9652, 2020-03);
      no `kalturaApplication` (1c76ade, FEC-12923, 2023-02) and no `playerSkin` (dad678f,
      FEC-14469, 2025-04).
    * VIEW: 0.15 sends `captionsLanguage` (dropped by 40b8250, caption became common) and
      `playbackSpeed`; the current VIEW adds `screenMode` (cd73937, FEC-10376, 2020-08) and
      `viewabilityMode` (6cdc4b1, FEC-10709, 2021-01).
    * IMPRESSION: `loadedPlugins` (3176d3e, FEC-13690, 2024-06); 0.15 has none.
    * In the kernel (`_walk`): the 90 % event (dc70d4e, FEC-14911, the player's milestones),
      errorPosition 3 before the play request (fd83b8f, FEC-9740, 2020-04), the fullscreen,
      share, download, report, related and info events (6677f44, FEC-13362, 2023-12), and the
      VIEW that repeats playTimeSum held back (216a9ac, FEC-13778, 2024-03) are the current
      line's. POST became the default in 3bc8615 (v1.5.5, 2023-05): `KavaSettings.method`.
    * Both: VIEW `audioLanguage` is the active audio track's language, undefined without one
      (GET: `audioLanguage=`); PLAY and VIEW carry `networkConnectionType`,
      navigator.connection.effectiveType, undefined where the browser lacks the API (Safari,
      Firefox, anything on iOS).
    """
    etype = out_i[I_TYPE]
    sess = out_i[I_SESSION]
    total = len(etype)
    view = etype == EventType.VIEW
    any_old, is_get = bool(settings["old"].any()), settings["encoding"] == "get"
    get = is_get[row_scen] if is_get.any() else None
    old = settings["old"][row_scen] if any_old else None
    not_sent = np.full(total, -1, np.int32)
    audio = np.where(view & get, 0, -1).astype(np.int32) if get is not None else not_sent
    captions_language = not_sent
    if old is not None:
        caption = out_i[I_CAPTION]
        old_view = old & view
        empty = np.where(old_view & get, 0, -1) if get is not None else -1
        captions_language = np.where(old_view & (caption >= 0), caption + 1, empty).astype(np.int32)
        out_f[F_SPEED, old & ~view & (etype != EventType.SPEED)] = np.nan
        caption[old & (etype != EventType.CAPTIONS)] = -1
        out_i[I_VIEWABILITY, old_view] = -1
        out_i[I_SCREEN, old_view] = -1
    pools = chunk.population.pools
    chromium = np.isin(np.asarray(pools.browser_names, dtype=object), list(CHROMIUM_BROWSERS))
    ios = np.asarray(pools.os_names, dtype=object) == "ios"
    sessions = chunk.sessions
    has_api = chromium[sessions["browser"].astype(np.int64)] & ~ios[sessions["os"].astype(np.int64)]
    # effectiveType: "4g" on a good network, "3g" where the player model impaired it; undefined
    # without the API: "" (`key=`) on GET, left out of a JSON body
    undefined = np.where(is_get[sessions["scenario"].astype(np.int64)], 0, -1)
    conn = np.where(has_api, np.where(sessions["impaired"], 2, 1), undefined).astype(np.int32)
    conn = np.where(view | (etype == EventType.PLAY), conn[sess], -1).astype(np.int32)
    return {
        "_old": old if old is not None else np.zeros(total, np.bool_),
        "audioLanguage": Strings(audio, np.array([""], dtype=object)),
        "captionsLanguage": Strings(captions_language, np.array(["", *captions], dtype=object)),
        "networkConnectionType": Strings(conn, CONNECTION_TYPES),
        "playerSkin": (np.where(old, -1, PLAYER_SKIN_PLAYER).astype(np.int8) if old is not None
                       else np.full(total, PLAYER_SKIN_PLAYER, np.int8)),
        "kalturaApplication": Strings(np.where(old, -1, 0).astype(np.int32) if old is not None
                                      else np.zeros(total, np.int32),
                                      np.array([KALTURA_APPLICATION_PLAYER], dtype=object)),
    }


@njit(cache=True, error_model="numpy")
def _columns(rec_i, rec_f, order, out_i, out_f):
    """The kernel's beacons (one row of fields each) as columns out_i[field, k], out_f[field, k],
    rows taken in `order`: a beacon's fields are read together, each column written in sequence."""
    n = order.shape[0]
    for k in range(n):
        j = order[k]
        for c in range(rec_i.shape[1]):
            out_i[c, k] = rec_i[j, c]
        for c in range(rec_f.shape[1]):
            out_f[c, k] = rec_f[j, c]


_SCRATCH = threading.local()
# The columns `beacons` returns: Arrow arrays made over them hold them until the rows are written.
_COLUMNS = Recycler()


def _scratch(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's beacon rows (integer and float fields), at least `rows` of them, kept per
    thread from call to call: fresh memory of this size costs more in page faults than the
    kernel takes to fill it. Only `beacons` uses them, and nothing it returns points into them."""
    have = getattr(_SCRATCH, "rows", None)
    if have is None or have[0].shape[0] < rows:
        size = max(rows, int(rows * 1.25))
        have = _SCRATCH.rows = (
            small_pages(size * N_INT, np.dtype(np.int32)).reshape(size, N_INT),
            small_pages(size * N_FLOAT, np.dtype(np.float64)).reshape(size, N_FLOAT),
        )
    return have


# Rows to make room for per timeline action before the kernel's first run: the previous chunk's
# beacons per action with a margin, or this before the first (the default mix sends about 3.1).
# A chunk that sends more runs the kernel twice.
BEACONS_PER_ACTION = 4.0
ROOM_MARGIN = 1.1


def beacons(chunk: SessionChunk, view_events_enabled: bool = True, in_send_order: bool = False) -> BeaconChunk:
    """The KAVA beacons a v7 player sends for every session in `chunk`, as columns.

    `view_events_enabled` stands for the server's `viewEventsEnabled` answer: False stops
    every VIEW (the plugin reads it from the first response of each KAVA session).
    `in_send_order`: the rows of all sessions in one send order (see BeaconChunk), not
    grouped by session.

        chunk_beacons = beacons(chunk)
        first = beacon_at(chunk_beacons, 0)     # sim.protocols.kava.codec
    """
    settings = _scenario_settings(chunk)
    inputs = _count_bound_inputs(chunk, settings)
    rng = chunk.rng("kava")
    ids = session_ids(rng, chunk.n_sessions)
    u = rng.random(chunk.n_actions)
    captions = chunk.population.pools.caption_languages
    n_sess = chunk.n_sessions
    per_session = np.zeros(n_sess, np.int64)
    # per-session keys of the jitter and quality draws, from a stream of their own (the "kava"
    # stream's draws, and so session ids, stay as they were)
    keys = chunk.rng("kava_qoe").integers(0, np.iinfo(np.int64).max, n_sess, dtype=np.int64).astype(np.uint64)
    # One run into the scratch rows; when they are too few (a row past the last is lost), a
    # second into as many as the first counted.
    per_action = getattr(_SCRATCH, "per_action", BEACONS_PER_ACTION)
    rec_i, rec_f = _scratch(int(chunk.n_actions * per_action) + 1)
    total = _run(inputs, u, len(captions), view_events_enabled, keys, rec_i, rec_f, per_session)
    _SCRATCH.per_action = total / max(chunk.n_actions, 1) * ROOM_MARGIN
    if total >= rec_i.shape[0]:
        rec_i, rec_f = _scratch(total + 1)
        written = _run(inputs, u, len(captions), view_events_enabled, keys, rec_i, rec_f, per_session)
        assert written == total
    rec_i, rec_f = rec_i[:total], rec_f[:total]
    if in_send_order:
        # sim.generate.send_order's order: by send time, then session, then the session's own order
        order = np.lexsort((chunk.sessions["session_seq"][rec_i[:, I_SESSION]], rec_f[:, F_SEND_T]))
    else:
        order = np.arange(total)
    out_i, out_f = _COLUMNS.take((N_INT, total), np.int32), _COLUMNS.take((N_FLOAT, total), np.float64)
    _columns(rec_i, rec_f, order, out_i, out_f)

    sess = out_i[I_SESSION]
    etype = out_i[I_TYPE]
    scen = chunk.sessions["scenario"].astype(np.int64)
    row_scen = scen[sess]
    pools = chunk.population.pools
    catalog = chunk.population.catalog

    def per_session_strings(codes_by_session: np.ndarray, pool: np.ndarray) -> Strings:
        return Strings(codes_by_session.astype(np.int32)[sess], pool)

    def small_int(col: int, dtype) -> np.ndarray:
        return out_i[col].astype(dtype)

    session_strings = AsciiStrings(sess.astype(np.int32), *ids)
    loaded = _const(settings["loaded_plugins"], row_scen)
    loaded.codes[etype != EventType.IMPRESSION] = -1
    user_codes = chunk.sessions["user_id"].astype(np.int32)
    line = _line_columns(chunk, settings, out_i, out_f, row_scen, captions)
    old_rows = line.pop("_old")
    if old_rows.any():
        loaded.codes[old_rows] = -1
    columns = {
        # event-specific params
        "playTimeSum": out_f[F_PLAY_TIME_SUM],
        "bufferTime": out_f[F_BUFFER_TIME],
        "bufferTimeSum": out_f[F_BUFFER_TIME_SUM],
        "actualBitrate": out_f[F_ACTUAL_BITRATE],
        "averageBitrate": out_f[F_AVERAGE_BITRATE],
        "joinTime": out_f[F_JOIN_TIME],
        "canPlay": out_f[F_CAN_PLAY],
        "audioLanguage": line["audioLanguage"],
        "captionsLanguage": line["captionsLanguage"],
        "soundMode": small_int(I_SOUND, np.int8),
        "tabMode": small_int(I_TAB, np.int8),
        "viewabilityMode": small_int(I_VIEWABILITY, np.int8),
        "screenMode": small_int(I_SCREEN, np.int8),
        "forwardBufferHealth": out_f[F_FBH],
        "manifestDownloadTime": out_f[F_MANIFEST_DL],
        "segmentDownloadTime": out_f[F_SEGMENT_DL],
        "bandwidth": out_f[F_BANDWIDTH],
        "droppedFramesRatio": out_f[F_DROPPED],
        "targetBuffer": out_f[F_TARGET_BUFFER],
        "networkConnectionType": line["networkConnectionType"],
        "networkConnectionOverhead": out_f[F_OVERHEAD],
        "targetPosition": out_f[F_TARGET_POSITION],
        "socialNetwork": Strings(out_i[I_SOCIAL].astype(np.int32), SOCIAL_NETWORKS),
        "reportType": small_int(I_REPORT_TYPE, np.int8),
        "errorCode": small_int(I_ERROR_CODE, np.int32),
        "errorDetails": _error_details(out_i[I_ERROR_CODE]),
        "errorPosition": small_int(I_ERROR_POSITION, np.int8),
        "loadedPlugins": loaded,
        "adBreakType": Strings(out_i[I_AD_BREAK_TYPE].astype(np.int32), AD_BREAK_TYPES),
        "adPosition": small_int(I_AD_POSITION, np.int16),
        "adJoinTime": out_f[F_AD_JOIN_TIME],
        "adErrorCode": small_int(I_AD_ERROR_CODE, np.int32),
        "adCurrentTime": out_f[F_AD_CURRENT_TIME],
        # common params
        "eventType": etype.astype(np.int16),
        "partnerId": settings["partner_id"][row_scen],
        "entryId": per_session_strings(chunk.sessions["entry"], catalog.entry_ids),
        "sessionId": session_strings,
        "eventIndex": out_i[I_INDEX].astype(np.int32),
        "referrer": per_session_strings(chunk.sessions["referrer"], pools.referrers),
        "deliveryType": _const(settings["delivery"], row_scen),
        "playbackType": Strings(out_i[I_PLAYBACK_TYPE].astype(np.int32), PLAYBACK_TYPES),
        "clientVer": _const(settings["client_ver"], row_scen),
        "clientTag": _const(settings["client_tag"], row_scen),
        "position": out_f[F_POSITION],
        "playbackSpeed": out_f[F_SPEED],
        "playerSkin": line["playerSkin"],
        "caption": Strings(out_i[I_CAPTION].astype(np.int32), np.asarray(captions, dtype=object)),
        "sessionStartTime": out_f[F_SST],
        "ks": _const(settings["ks"], row_scen),
        "uiConfId": settings["ui_conf_id"][row_scen],
        "kalturaApplication": line["kalturaApplication"],
        "userId": Strings(np.where(user_codes >= 0, user_codes, -1).astype(np.int32)[sess], pools.user_ids),
        # added by the request builder
        "apiVersion": Strings(np.zeros(total, np.int32), np.array([API_VERSION], dtype=object)),
        "format": np.ones(total, np.int8),
        # request context and transport
        "user_agent": per_session_strings(chunk.sessions["user_agent"], pools.user_agents),
        "page_url": per_session_strings(chunk.sessions["referrer"], pools.referrers),
        "client_ip": per_session_strings(chunk.sessions["ip"], pools.ips),
        "encoding": _const(settings["encoding"], row_scen),
    }
    # Columns no scenario of the run can fill (the settings cover all of `chunk.scenarios`, so
    # every chunk leaves out the same) stay out: the events table holds them as nulls at no
    # cost (`EventsBuilder.table`), and converting and writing them is not free.
    if not (settings["encoding"] == "get").any():
        del columns["audioLanguage"]
    if not settings["old"].any():
        del columns["captionsLanguage"]
    if not settings["adaptive"].any():
        for name in ADAPTIVE_ONLY:
            del columns[name]
    return BeaconChunk(
        protocol="kava",
        columns=columns,
        session=sess.astype(np.int32),
        send_t=out_f[F_SEND_T].copy(),
        ledger_session=session_strings,
        ledger_index=out_i[I_INDEX].astype(np.int64),
        always_sent=ALWAYS_SENT - LINE_COMMON if settings["old"].any() else ALWAYS_SENT,
        in_send_order=in_send_order,
    )
