"""The session kernel: one partition's sessions walked through the player's life, as action rows.

`walk_sessions` follows the pipeline of viewing-realism.md section 3.0 for each session,
reading its component's compiled parameters (`sim.player.params`) and drawing from one
generator, and writes the action columns of `sim.player.timeline` as rows of one float64
array. Each stage of a session is a named helper: `_start` (LOAD to the first frame),
`_playback` (passes of the content and what follows each), `_play_pass`, `_scheduled_event`,
`_poisson_event`, `_pod` (an ad break), `_after_end`. The order of the draws is part of the
output: the same seed gives the same sessions only while it stays the same.

Position semantics. VOD: `pos` is the content playhead. Live entries: `duration` is the DVR
window and `pos` the viewer's place in it; a viewer joins at the live edge (`pos =
duration`) and stays there while playing; pauses and backward seeks move `pos` back (the
window slides on while the viewer lags behind), forward seeks move it toward the edge. Live
sessions never reach ENDED: viewers leave when their intended watching time is used up.

Timeline conventions downstream stages rely on:
- a viewer who gives up over a stall (`quit_after_stall`) sits through it and leaves when it
  ends: QUIT at the stall's end, with no STALL_END (playback never resumed);
- leaving during a pre-roll ad, or at a mid-roll break (`break_exit`), quits inside the
  open break (no AD_BREAK_END); leaving during a post-roll does too, after ENDED;
- ERROR is always fatal and followed by QUIT; before PLAYING it is a start failure;
- REPLAY follows ENDED (and any post-roll) at pos 0; the PLAYING join is not repeated;
- a looping player (`behaviour.loop`) replays by itself: REPLAY then a whole pass, with
  probability `second_loop` each time; otherwise the viewer leaves at the end;
- tab changes ride on the `tab` column: mobile and tablet browsers pause a hidden tab
  (PAUSE/RESUME with tab 1 then 2); on desktop and CTV playback goes on unseen and only
  actions inside the hidden spell show tab 1 (there is no tab action code);
- `intended_fraction` is NaN for sessions that never played.

Modelling choices beyond the scenario language (assumptions, named constants below): the
delay from LOAD to a clicked play, how long non-players stay on the page, tab-hidden
episode length, 85 % of fullscreen entries exit again, at most 5 replays, an ABR down-switch
after half of the stalls, and viewers who will finish (F = 1) watch to the end whatever
re-watching costs them. The per-entry hourly burst factor of viewing-realism 3.0 step 1 is
not modelled.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.player.params import (
    D_AD_LEN,
    D_BACK,
    D_BOUNCE,
    D_BUMPER_LEN,
    D_FWD,
    D_MID_SIZE,
    D_MIDDLE,
    D_PAUSE,
    D_POST_SIZE,
    D_PRE_SIZE,
    D_SEEKS,
    D_SPEED,
    D_STALL,
    D_STARTUP,
    MID_FRACTIONS,
    MID_NONE,
    N_CUES,
)
from sim.player.timeline import Action, AdPosition, Outcome
from sim.scenario.sampling import draw

# The helpers a session walks through are inlined into `walk_sessions` (numba IR): as calls, each passed its
# arrays with atomic reference count updates, which made the kernel measurably slower.
# The kernel writes action rows into one float64 array [row, ACTION_COLUMNS order]; the chunk's
# typed columns are filled from it. (A tuple of typed column arrays cost the runtime an atomic
# reference count update per column touched, two fifths of the kernel's time.)
C_SESSION, C_KIND, C_T, C_POS, C_VALUE, C_ADPOS, C_ADIDX, C_BITRATE, C_SCREEN, C_SOUND, C_TAB, C_SPEED = range(12)
S_BITRATE, S_SCREEN, S_SOUND, S_TAB, S_SPEED = range(5)  # player state carried on every action

# Assumptions (viewing-realism.md gives no figures for these).
CLICK_TO_PLAY_MEDIAN_S = 3.0  # LOAD -> clicked PLAY_REQUEST, lognormal sigma 0.8
AUTOPLAY_DELAY_S = 0.3
NO_PLAY_STAY_MEAN_S = 40.0  # how long a viewer who never plays stays on the page
LEAVE_AFTER_END_MEAN_S = 5.0
FAILED_START_LEAVE_MEAN_S = 3.0
TAB_HIDDEN_MEDIAN_S = 20.0  # lognormal sigma 1.0
FULLSCREEN_EXIT_SHARE = 0.85
MAX_REPLAYS = 5
MAX_SEEKS = 40
DOWNSWITCH_AFTER_STALL = 0.5
AD_JOIN_S = 0.4  # ad request to first ad frame
AD_ERROR_S = 1.0  # time an ad slot takes to fail
REPLAY_DELAY_S = 1.0
START_ERROR_CODE = 1002  # playkit NETWORK HTTP_ERROR: the manifest or first segment failed
PLAYBACK_ERROR_CODE = 3016  # playkit MEDIA error from the video element
AD_ERROR_CODE = 1009  # VAST: no ads / empty response
SOUND_MUTED, SOUND_ON = 1.0, 2.0

# One-off events scheduled in played content seconds.
EV_SEEK, EV_ENTER_FS, EV_EXIT_FS, EV_SPEED, EV_CAPTIONS, EV_SOURCE, EV_SHARE, EV_DOWNLOAD = range(8)
EV_REPORT, EV_RELATED, EV_INFO, EV_ERROR, EV_OVERLAY, EV_TAB_VISIBLE = range(8, 14)
MAX_SCHEDULED = 64

_A = {a.name: int(a) for a in Action}
A_LOAD, A_PLAY_REQUEST, A_PLAYING, A_PAUSE, A_RESUME, A_SEEK = (
    _A[n] for n in ("LOAD", "PLAY_REQUEST", "PLAYING", "PAUSE", "RESUME", "SEEK")
)
A_STALL_START, A_STALL_END, A_ENTER_FS, A_EXIT_FS, A_SPEED, A_CAPTIONS = (
    _A[n] for n in ("STALL_START", "STALL_END", "ENTER_FULLSCREEN", "EXIT_FULLSCREEN", "SPEED", "CAPTIONS")
)
A_FLAVOR, A_SOURCE, A_SHARE, A_SHARE_NETWORK, A_DOWNLOAD, A_REPORT = (
    _A[n] for n in ("FLAVOR_SWITCH", "SOURCE_SELECTED", "SHARE", "SHARE_NETWORK", "DOWNLOAD", "REPORT")
)
A_RELATED_OPEN, A_RELATED_SELECTED, A_INFO, A_ENDED, A_REPLAY, A_ERROR, A_QUIT, A_SOUND = (
    _A[n] for n in ("RELATED_OPEN", "RELATED_SELECTED", "INFO", "ENDED", "REPLAY", "ERROR", "QUIT", "SOUND")
)
A_BREAK_START, A_IMPRESSION, A_AD_START, A_AD_Q1, A_AD_Q2, A_AD_Q3, A_AD_COMPLETE = (
    _A[n]
    for n in (
        "AD_BREAK_START",
        "AD_IMPRESSION",
        "AD_START",
        "AD_FIRST_QUARTILE",
        "AD_MIDPOINT",
        "AD_THIRD_QUARTILE",
        "AD_COMPLETE",
    )
)
A_AD_SKIP, A_AD_CLICK, A_AD_ERROR, A_BREAK_END, A_OVERLAY, A_OVERLAY_CLICK, A_BUMPER, A_BUMPER_CLICK = (
    _A[n]
    for n in (
        "AD_SKIP",
        "AD_CLICK",
        "AD_ERROR",
        "AD_BREAK_END",
        "OVERLAY_START",
        "OVERLAY_CLICK",
        "BUMPER_START",
        "BUMPER_CLICK",
    )
)
AD_PRE, AD_MID, AD_POST, AD_OVERLAY = (
    int(AdPosition.PREROLL),
    int(AdPosition.MIDROLL),
    int(AdPosition.POSTROLL),
    int(AdPosition.OVERLAY),
)
(
    O_NO_PLAY,
    O_START_FAILURE,
    O_ABANDONED_STARTUP,
    O_ABANDONED_AD,
    O_PARTIAL,
    O_COMPLETED,
    O_STALL_QUIT,
    O_PLAYBACK_ERROR,
    O_AD_BREAK_QUIT,
) = (int(o) for o in Outcome)


@njit(cache=True, inline="always")
def _emit(out, k, sess, kind, t, pos, value, ad_pos, ad_index, st):
    """Write one action row into `out` (if it fits; the caller grows it and reruns otherwise)."""
    if k < out.shape[0]:
        out[k, C_SESSION] = sess
        out[k, C_KIND] = kind
        out[k, C_T] = t
        out[k, C_POS] = pos
        out[k, C_VALUE] = value
        out[k, C_ADPOS] = ad_pos
        out[k, C_ADIDX] = ad_index
        out[k, C_BITRATE] = st[S_BITRATE]
        out[k, C_SCREEN] = st[S_SCREEN]
        out[k, C_SOUND] = st[S_SOUND]
        out[k, C_TAB] = st[S_TAB]
        out[k, C_SPEED] = st[S_SPEED]
    return k + 1


@njit(cache=True, inline="always")
def _copy_row(out, k, sess, template, r):
    """Copy scripted action row r of `template` (float64, ACTION_COLUMNS order) into `out`."""
    if k < out.shape[0]:
        for j in range(out.shape[1]):
            out[k, j] = template[r, j]
        out[k, C_SESSION] = sess
    return k + 1


@njit(cache=True, inline="always")
def _ad_stop_point(rng, length, completion, q1, q2, q3):
    """Where an ad that does not complete stops, following the quartile funnel given no completion."""
    rest = max(1.0 - completion, 1e-12)
    p1 = min(max((q1 - completion) / rest, 0.0), 1.0)
    p2 = min(max((q2 - completion) / rest, 0.0), p1)
    p3 = min(max((q3 - completion) / rest, 0.0), p2)
    u = rng.random()
    if u < p3:
        lo = 0.75
    elif u < p2:
        lo = 0.5
    elif u < p1:
        lo = 0.25
    else:
        lo = 0.0
    return length * (lo + 0.25 * rng.random() * 0.999)


@njit(cache=True)
def _pod(rng, out, k, sess, t, pos, ad_pos, n_ads, completion, abandon, exit_at_end, P, dists, tables, st, device):
    """An ad break: returns (k, t, left) where left means the viewer quit during or at the end of it.

    Per started ad: skipped (if skippable), else completed with `completion`, else abandoned
    (the viewer leaves) with `abandon`, else stopped early with the viewer staying. Pre-roll
    abandonment by ad length, when given, replaces both: the ad completes unless abandoned.
    `exit_at_end`: the viewer leaves when the break ends instead of resuming content.
    """
    q1, q2, q3 = P.quartiles[ad_pos - 1, 0], P.quartiles[ad_pos - 1, 1], P.quartiles[ad_pos - 1, 2]
    k = _emit(out, k, sess, A_BREAK_START, t, pos, n_ads, ad_pos, 0, st)
    for a in range(n_ads):
        k = _emit(out, k, sess, A_IMPRESSION, t, pos, 0.0, ad_pos, a, st)
        if rng.random() >= P.ad_start_rate:
            t += AD_ERROR_S
            k = _emit(out, k, sess, A_AD_ERROR, t, pos, AD_ERROR_CODE, ad_pos, a, st)
            continue
        t += AD_JOIN_S
        length = max(draw(rng, dists, D_AD_LEN, tables), 1.0)
        k = _emit(out, k, sess, A_AD_START, t, pos, length, ad_pos, a, st)
        fate = 0  # 0 complete, 1 skip, 2 abandon (viewer leaves), 3 stops early, viewer stays
        stop = length
        done, leave = completion, abandon
        if ad_pos == AD_PRE and P.pre_ab_n > 0:
            for j in range(int(P.pre_ab_n)):
                if length <= P.pre_ab_max[j]:
                    leave = P.pre_ab_share[j]
                    break
            done = 1.0 - leave
        if length > P.skippable_after and rng.random() < P.skip_rate:
            fate = 1
            stop = P.skippable_after + rng.random() * (length - P.skippable_after)
        else:
            u = rng.random()
            if u >= done:
                fate = 2 if u < done + leave else 3
                stop = _ad_stop_point(rng, length, done, q1, q2, q3)
        # click_rate is per ad impression (viewing-realism 3.3), and only a started ad can be clicked
        clicked = rng.random() * P.ad_start_rate < P.ad_click[device]
        t_click = stop * rng.random()
        for q in range(3):
            at = length * 0.25 * (q + 1)
            if clicked and t_click < at and t_click <= stop:
                k = _emit(out, k, sess, A_AD_CLICK, t + t_click, pos, 0.0, ad_pos, a, st)
                clicked = False
            if at < stop or (fate == 0 and at <= stop):
                k = _emit(out, k, sess, A_AD_Q1 + q, t + at, pos, 0.0, ad_pos, a, st)
        if clicked:
            k = _emit(out, k, sess, A_AD_CLICK, t + t_click, pos, 0.0, ad_pos, a, st)
        t += stop
        if fate == 0:
            k = _emit(out, k, sess, A_AD_COMPLETE, t, pos, 0.0, ad_pos, a, st)
        elif fate == 1:
            k = _emit(out, k, sess, A_AD_SKIP, t, pos, 0.0, ad_pos, a, st)
        elif fate == 2:
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            return k, t, True
    if exit_at_end:
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, t, True
    k = _emit(out, k, sess, A_BREAK_END, t, pos, n_ads, ad_pos, 0, st)
    return k, t, False


@njit(cache=True)
def _bumper(rng, out, k, sess, t, pos, ad_pos, P, dists, tables, st):
    length = max(draw(rng, dists, D_BUMPER_LEN, tables), 0.5)
    k = _emit(out, k, sess, A_BUMPER, t, pos, length, ad_pos, 0, st)
    if rng.random() < P.bumper_click:
        k = _emit(out, k, sess, A_BUMPER_CLICK, t + rng.random() * length, pos, 0.0, ad_pos, 0, st)
    return k, t + length


@njit(cache=True, inline="always")
def _intended_fraction(rng, P, dists, tables, duration):
    """F: early bounce, complete (the share of the entry's length bucket), or the Beta middle."""
    complete = 0.0
    for j in range(int(P.n_buckets)):
        if duration <= P.bucket_max[j]:
            complete = P.bucket_share[j]
            break
    u = rng.random()
    if u < P.bounce:
        return min(max(draw(rng, dists, D_BOUNCE, tables), 0.0), 1.0)
    if u < P.bounce + complete:
        return 1.0
    return min(max(0.05 + 0.95 * draw(rng, dists, D_MIDDLE, tables), 0.0), 1.0)


@njit(cache=True, inline="always")
def _schedule(rng, P, dists, tables, n_ladder, device, horizon, played, sched_at, sched_kind):
    """Draw this play's one-off interactions at uniform points of the played content ahead."""
    n = 0
    n_seeks = min(int(draw(rng, dists, D_SEEKS, tables) + 0.5), MAX_SEEKS)
    for _ in range(n_seeks):
        sched_at[n], sched_kind[n] = played + rng.random() * horizon, EV_SEEK
        n += 1
    singles = (
        (EV_ENTER_FS, P.fullscreen[device]),
        (EV_SPEED, P.speed_share),
        (EV_CAPTIONS, P.captions_share if P.n_langs > 0 else 0.0),
        (EV_SOURCE, P.manual_source if n_ladder > 1 else 0.0),
        (EV_SHARE, P.click_share),
        (EV_DOWNLOAD, P.click_download),
        (EV_REPORT, P.click_report),
        (EV_RELATED, P.click_related),
        (EV_INFO, P.click_info),
        (EV_ERROR, P.error_mid),
        (EV_OVERLAY, P.overlay_share),
    )
    for ev, p in singles:
        if rng.random() < p:
            sched_at[n], sched_kind[n] = played + rng.random() * horizon, ev
            n += 1
    return n


@njit(cache=True, inline="always")
def _next_cue(cues_at, cue_done, n_cues, pos):
    best = -1
    for j in range(n_cues):
        if not cue_done[j] and cues_at[j] >= pos and (best < 0 or cues_at[j] < cues_at[best]):
            best = j
    return best


@njit(cache=True, inline="always")
def _start(rng, out, k, sess, P, D, tables, ladder, dev, pos, autoplay, st):
    """LOAD to the first frame: play or not, bumper, pre-roll pod, start failure, startup wait.

    Returns (k, t, rung, outcome): outcome -1 when PLAYING was reached, else how the session ended.
    """
    n_ladder = int(P.n_ladder)
    rung = n_ladder - 1
    st[S_BITRATE] = ladder[rung]
    st[S_SCREEN] = 1.0
    st[S_TAB] = 2.0
    st[S_SPEED] = 1.0
    st[S_SOUND] = SOUND_ON
    t = 0.0
    muted = autoplay and rng.random() < P.muted_autoplay
    if muted:
        st[S_SOUND] = SOUND_MUTED
    k = _emit(out, k, sess, A_LOAD, t, pos, 0.0, 0, 0, st)
    if not rng.random() < (P.autoplay_play_rate if autoplay else P.play_rate):
        t = rng.exponential(NO_PLAY_STAY_MEAN_S)
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, t, rung, O_NO_PLAY
    if autoplay:
        t += AUTOPLAY_DELAY_S
    else:
        t += CLICK_TO_PLAY_MEDIAN_S * np.exp(0.8 * rng.standard_normal())
    if rng.random() >= 0.6:  # the player starts on the top rendition or the one below it
        rung = max(n_ladder - 2, 0)
        st[S_BITRATE] = ladder[rung]
    k = _emit(out, k, sess, A_PLAY_REQUEST, t, pos, 0.0, 0, 0, st)

    if rng.random() < P.bumper_pre:
        k, t = _bumper(rng, out, k, sess, t, pos, AD_PRE, P, D, tables, st)
    if P.has_pre > 0 and rng.random() < P.pre_share:
        n_ads = int(draw(rng, D, D_PRE_SIZE, tables) + 0.5)
        if n_ads > 0:
            abandon = min(P.pre_abandon[dev], 1.0 - P.pre_completion)
            k, t, left = _pod(
                rng, out, k, sess, t, pos, AD_PRE, n_ads, P.pre_completion, abandon, False, P, D, tables, st, dev
            )
            if left:
                return k, t, rung, O_ABANDONED_AD
    startup = max(draw(rng, D, D_STARTUP, tables), 0.01)
    if rng.random() < P.start_failure:
        t += startup
        k = _emit(out, k, sess, A_ERROR, t, pos, START_ERROR_CODE, 0, 0, st)
        t += rng.exponential(FAILED_START_LEAVE_MEAN_S)
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, t, rung, O_START_FAILURE
    grace = P.grace
    lam = P.abandon[dev]
    if startup > grace and lam > 0 and rng.random() < 1.0 - np.exp(-lam * (startup - grace)):
        # leaving time: the hazard's exponential, conditioned to fall before the first frame
        u = rng.random() * (1.0 - np.exp(-lam * (startup - grace)))
        t += grace - np.log1p(-u) / lam
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, t, rung, O_ABANDONED_STARTUP
    t += startup
    k = _emit(out, k, sess, A_PLAYING, t, pos, startup, 0, 0, st)
    return k, t, rung, -1


@njit(cache=True, inline="always")
def _cue_points(P, cues, c, dur, is_live, cues_at, cue_done):
    """This session's mid-roll break positions into `cues_at` (content seconds, or played seconds
    live); returns how many."""
    has_mid = P.has_mid > 0 and dur >= P.mid_min_duration
    cue_rule = int(P.mid_rule) if has_mid else MID_NONE
    n_cues = 0
    if has_mid and P.mid_every > 0 and (dur >= P.mid_every_from or is_live):
        while n_cues < N_CUES and (n_cues + 1) * P.mid_every < dur:
            cues_at[n_cues] = (n_cues + 1) * P.mid_every
            n_cues += 1
    elif cue_rule != MID_NONE and not is_live:
        for j in range(int(P.n_cues)):
            at = cues[c, j] * dur if cue_rule == MID_FRACTIONS else cues[c, j]
            if at < dur:
                cues_at[n_cues] = at
                n_cues += 1
    cue_done[:n_cues] = False
    return n_cues


@njit(cache=True, inline="always")
def _scheduled_event(
    rng,
    out,
    k,
    sess,
    t,
    pos,
    rung,
    ev,
    ended_any,
    P,
    D,
    tables,
    c,
    ladder,
    languages,
    dur,
    budget,
    played,
    st,
    sched_at,
    sched_kind,
    n_sched,
):
    """A one-off interaction drawn by `_schedule` (EV_*) comes due.

    Returns (k, pos, rung, n_sched, outcome): outcome -1 while the session goes on."""
    n_ladder = int(P.n_ladder)
    if ev == EV_SEEK:
        if rng.random() < P.backward:
            target = max(pos - draw(rng, D, D_BACK, tables), 0.0)
        else:
            target = min(pos + draw(rng, D, D_FWD, tables) * dur, dur)
        target = min(max(target, 0.0), dur)
        k = _emit(out, k, sess, A_SEEK, t, pos, target, 0, 0, st)
        pos = target
    elif ev == EV_ENTER_FS:
        if st[S_SCREEN] == 1.0:
            st[S_SCREEN] = 2.0
            k = _emit(out, k, sess, A_ENTER_FS, t, pos, 0.0, 0, 0, st)
            if rng.random() < FULLSCREEN_EXIT_SHARE and n_sched < MAX_SCHEDULED:
                ahead = (budget - played) if budget < np.inf else (dur - pos)
                sched_at[n_sched], sched_kind[n_sched] = played + rng.random() * ahead, EV_EXIT_FS
                n_sched += 1
    elif ev == EV_EXIT_FS:
        if st[S_SCREEN] == 2.0:
            st[S_SCREEN] = 1.0
            k = _emit(out, k, sess, A_EXIT_FS, t, pos, 0.0, 0, 0, st)
    elif ev == EV_SPEED:
        st[S_SPEED] = max(draw(rng, D, D_SPEED, tables), 0.1)
        k = _emit(out, k, sess, A_SPEED, t, pos, st[S_SPEED], 0, 0, st)
    elif ev == EV_CAPTIONS:
        lang = languages[c, int(rng.random() * P.n_langs)]
        k = _emit(out, k, sess, A_CAPTIONS, t, pos, lang, 0, 0, st)
    elif ev == EV_SOURCE:
        other = int(rng.random() * (n_ladder - 1))
        rung = other if other < rung else other + 1
        st[S_BITRATE] = ladder[rung]
        k = _emit(out, k, sess, A_SOURCE, t, pos, ladder[rung], 0, 0, st)
    elif ev == EV_SHARE:
        k = _emit(out, k, sess, A_SHARE, t, pos, 0.0, 0, 0, st)
        if rng.random() < P.click_share_network:
            k = _emit(out, k, sess, A_SHARE_NETWORK, t, pos, 0.0, 0, 0, st)
    elif ev == EV_DOWNLOAD:
        k = _emit(out, k, sess, A_DOWNLOAD, t, pos, 0.0, 0, 0, st)
    elif ev == EV_REPORT:
        k = _emit(out, k, sess, A_REPORT, t, pos, 0.0, 0, 0, st)
    elif ev == EV_INFO:
        k = _emit(out, k, sess, A_INFO, t, pos, 0.0, 0, 0, st)
    elif ev == EV_RELATED:
        k = _emit(out, k, sess, A_RELATED_OPEN, t, pos, 0.0, 0, 0, st)
        if rng.random() < P.click_related_selected:
            # the viewer picked another entry: this entry's session ends here
            k = _emit(out, k, sess, A_RELATED_SELECTED, t, pos, 0.0, 0, 0, st)
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            return k, pos, rung, n_sched, (O_COMPLETED if ended_any else O_PARTIAL)
    elif ev == EV_ERROR:
        k = _emit(out, k, sess, A_ERROR, t, pos, PLAYBACK_ERROR_CODE, 0, 0, st)
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, pos, rung, n_sched, O_PLAYBACK_ERROR
    elif ev == EV_OVERLAY:
        k = _emit(out, k, sess, A_OVERLAY, t, pos, 0.0, AD_OVERLAY, 0, st)
        if rng.random() < P.overlay_click:
            k = _emit(out, k, sess, A_OVERLAY_CLICK, t, pos, 0.0, AD_OVERLAY, 0, st)
    elif ev == EV_TAB_VISIBLE:
        st[S_TAB] = 2.0
    return k, pos, rung, n_sched, -1


@njit(cache=True, inline="always")
def _poisson_event(
    rng,
    out,
    k,
    sess,
    t,
    pos,
    rung,
    u,
    stall_rate,
    impaired,
    P,
    D,
    tables,
    ladder,
    dev,
    is_live,
    played,
    st,
    sched_at,
    sched_kind,
    n_sched,
):
    """A Poisson event in playing time: `u` (uniform over the summed rates) picks which, in
    proportion to its rate: a stall, a pause, an ABR switch, a tab change or an unmute.

    Returns (k, t, pos, rung, n_sched, outcome): outcome -1 while the session goes on."""
    n_ladder = int(P.n_ladder)
    if u < stall_rate:
        k = _emit(out, k, sess, A_STALL_START, t, pos, 0.0, 0, 0, st)
        length = max(draw(rng, D, D_STALL, tables), 0.05)
        if rng.random() < P.quit_after_stall:
            # viewing-realism 3.0 step 8: the viewer gives up when the stall is over
            t += length
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            return k, t, pos, rung, n_sched, O_STALL_QUIT
        t += length
        k = _emit(out, k, sess, A_STALL_END, t, pos, length, 0, 0, st)
        if rung > 0 and rng.random() < DOWNSWITCH_AFTER_STALL:
            rung -= 1
            st[S_BITRATE] = ladder[rung]
            k = _emit(out, k, sess, A_FLAVOR, t, pos, ladder[rung], 0, 0, st)
    elif u < stall_rate + P.pause_per_s:
        k = _emit(out, k, sess, A_PAUSE, t, pos, 0.0, 0, 0, st)
        length = max(draw(rng, D, D_PAUSE, tables), 0.1)
        t += length
        if is_live:  # the live edge moves on while the viewer is paused
            pos = max(pos - length, 0.0)
        k = _emit(out, k, sess, A_RESUME, t, pos, 0.0, 0, 0, st)
    elif u < stall_rate + P.pause_per_s + P.flavor_per_s:
        if n_ladder > 1:
            up = rng.random() < (0.35 if impaired else 0.5)
            rung = rung + 1 if (up and rung < n_ladder - 1) or rung == 0 else rung - 1
            st[S_BITRATE] = ladder[rung]
            k = _emit(out, k, sess, A_FLAVOR, t, pos, ladder[rung], 0, 0, st)
    elif u < stall_rate + P.pause_per_s + P.flavor_per_s + P.tab_per_s:
        hidden = TAB_HIDDEN_MEDIAN_S * np.exp(rng.standard_normal())
        if dev == 1 or dev == 2:
            # mobile browsers pause video in a background tab
            st[S_TAB] = 1.0
            k = _emit(out, k, sess, A_PAUSE, t, pos, 0.0, 0, 0, st)
            t += hidden
            if is_live:
                pos = max(pos - hidden, 0.0)
            st[S_TAB] = 2.0
            k = _emit(out, k, sess, A_RESUME, t, pos, 0.0, 0, 0, st)
        elif st[S_TAB] == 2.0 and n_sched < MAX_SCHEDULED:
            # desktop keeps playing unseen; the tab column of later actions shows it
            st[S_TAB] = 1.0
            sched_at[n_sched], sched_kind[n_sched] = played + hidden * st[S_SPEED], EV_TAB_VISIBLE
            n_sched += 1
    else:
        st[S_SOUND] = SOUND_ON
        k = _emit(out, k, sess, A_SOUND, t, pos, SOUND_ON, 0, 0, st)
    return k, t, pos, rung, n_sched, -1


@njit(cache=True, inline="always")
def _play_pass(
    rng,
    out,
    k,
    sess,
    t,
    pos,
    rung,
    fraction,
    ended_any,
    stall_rate,
    impaired,
    P,
    D,
    tables,
    c,
    ladder,
    languages,
    dev,
    dur,
    is_live,
    st,
    sched_at,
    sched_kind,
    cues_at,
    cue_done,
    n_cues,
):
    """One pass of content playback (the first play or a replay) until the end, the viewer's
    watching budget, or a way out (a break, a stall, an error, a related entry).

    Returns (k, t, pos, rung, outcome): outcome -1 when the content ended (ENDED emitted)."""
    played = 0.0
    budget = np.inf if (fraction >= 1.0 and not is_live) else fraction * dur
    horizon = budget if budget < np.inf else dur - pos
    n_sched = _schedule(rng, P, D, tables, int(P.n_ladder), dev, horizon, played, sched_at, sched_kind)
    while True:
        # when each candidate happens, in wall seconds of playing from now
        spd = st[S_SPEED]
        dt_end = np.inf if is_live else (dur - pos) / spd
        dt_budget = (budget - played) / spd
        # live breaks follow played time; VOD breaks sit at content positions
        cue = _next_cue(cues_at, cue_done, n_cues, played if is_live else pos)
        dt_cue = np.inf if cue < 0 else (cues_at[cue] - (played if is_live else pos)) / spd
        s_next = -1
        for j in range(n_sched):
            if s_next < 0 or sched_at[j] < sched_at[s_next]:
                s_next = j
        dt_sched = np.inf if s_next < 0 else max(sched_at[s_next] - played, 0.0) / spd
        unmute = P.unmute_per_s if st[S_SOUND] == SOUND_MUTED else 0.0
        rate = stall_rate + P.pause_per_s + P.flavor_per_s + P.tab_per_s + unmute
        dt_poisson = rng.exponential(1.0 / rate) if rate > 0 else np.inf
        dt = min(dt_end, dt_budget, dt_cue, dt_sched, dt_poisson)
        t += dt
        played += dt * spd
        if not is_live:
            pos = min(pos + dt * spd, dur)
        if dt == dt_end:
            pos = dur
            k = _emit(out, k, sess, A_ENDED, t, pos, 0.0, 0, 0, st)
            return k, t, pos, rung, -1
        if dt == dt_budget:
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            return k, t, pos, rung, (O_COMPLETED if ended_any else O_PARTIAL)
        if dt == dt_cue:
            cue_done[cue] = True
            n_ads = int(draw(rng, D, D_MID_SIZE, tables) + 0.5)
            if n_ads > 0:
                leaves = rng.random() < P.mid_break_exit
                k, t, left = _pod(
                    rng, out, k, sess, t, pos, AD_MID, n_ads, P.mid_completion, 0.0, leaves, P, D, tables, st, dev
                )
                if left:
                    return k, t, pos, rung, O_AD_BREAK_QUIT
            continue
        if dt == dt_sched:
            ev = sched_kind[s_next]
            n_sched -= 1
            sched_at[s_next], sched_kind[s_next] = sched_at[n_sched], sched_kind[n_sched]
            k, pos, rung, n_sched, outcome = _scheduled_event(
                rng,
                out,
                k,
                sess,
                t,
                pos,
                rung,
                ev,
                ended_any,
                P,
                D,
                tables,
                c,
                ladder,
                languages,
                dur,
                budget,
                played,
                st,
                sched_at,
                sched_kind,
                n_sched,
            )
        else:
            u = rng.random() * rate
            k, t, pos, rung, n_sched, outcome = _poisson_event(
                rng,
                out,
                k,
                sess,
                t,
                pos,
                rung,
                u,
                stall_rate,
                impaired,
                P,
                D,
                tables,
                ladder,
                dev,
                is_live,
                played,
                st,
                sched_at,
                sched_kind,
                n_sched,
            )
        if outcome >= 0:
            return k, t, pos, rung, outcome


@njit(cache=True, inline="always")
def _after_end(rng, out, k, sess, t, pos, P, D, tables, st, dev, again_share):
    """The content ended: post-roll pod, post bumper, then a replay (with probability
    `again_share`) or leaving. Returns (k, t, outcome, replay): outcome -1 when the viewer replays."""
    st[S_TAB] = 2.0
    if P.has_post > 0 and rng.random() < P.post_share:
        n_ads = int(draw(rng, D, D_POST_SIZE, tables) + 0.5)
        if n_ads > 0:
            k, t, left = _pod(
                rng,
                out,
                k,
                sess,
                t,
                pos,
                AD_POST,
                n_ads,
                P.post_completion,
                1.0 - P.post_completion,
                False,
                P,
                D,
                tables,
                st,
                dev,
            )
            if left:
                return k, t, O_COMPLETED, False
    if rng.random() < P.bumper_post:
        k, t = _bumper(rng, out, k, sess, t, pos, AD_POST, P, D, tables, st)
    return k, t, -1, rng.random() < again_share


@njit(cache=True, inline="always")
def _playback(
    rng,
    out,
    k,
    sess,
    t,
    pos,
    rung,
    P,
    D,
    tables,
    c,
    cues,
    ladder,
    languages,
    dev,
    dur,
    is_live,
    st,
    sched_at,
    sched_kind,
    cues_at,
    cue_done,
):
    """From the first frame to the viewer leaving: passes of the content, breaks, replays.

    Returns (k, outcome, intended fraction, impaired)."""
    looping = rng.random() < P.loop_share
    impaired = rng.random() < P.impaired
    stall_rate = P.stall_impaired if impaired else P.stall_clean
    n_cues = _cue_points(P, cues, c, dur, is_live, cues_at, cue_done)
    fraction = _intended_fraction(rng, P, D, tables, dur)
    first_fraction = fraction
    ended_any = False
    replays = 0
    while True:
        k, t, pos, rung, outcome = _play_pass(
            rng,
            out,
            k,
            sess,
            t,
            pos,
            rung,
            fraction,
            ended_any,
            stall_rate,
            impaired,
            P,
            D,
            tables,
            c,
            ladder,
            languages,
            dev,
            dur,
            is_live,
            st,
            sched_at,
            sched_kind,
            cues_at,
            cue_done,
            n_cues,
        )
        if outcome >= 0:
            return k, outcome, first_fraction, impaired
        ended_any = True
        k, t, outcome, again = _after_end(
            rng, out, k, sess, t, pos, P, D, tables, st, dev, P.second_loop if looping else P.replay
        )
        if outcome >= 0:
            return k, outcome, first_fraction, impaired
        if replays < MAX_REPLAYS and again:
            replays += 1
            t += REPLAY_DELAY_S
            pos = 0.0
            k = _emit(out, k, sess, A_REPLAY, t, pos, 0.0, 0, 0, st)
            # a looping player's viewer who stays watches the next pass through
            fraction = 1.0 if looping else _intended_fraction(rng, P, D, tables, dur)
            continue
        t += rng.exponential(LEAVE_AFTER_END_MEAN_S)
        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
        return k, O_COMPLETED, first_fraction, impaired


@njit(cache=True)
def walk_sessions(
    rng,
    comp,
    device,
    duration,
    live,
    autoplay,
    template,
    tmpl_rows,
    tmpl_start,
    tmpl_len,
    tmpl_outcome,
    params,
    dists,
    tables,
    cues,
    ladders,
    languages,
    row0,
    out,
    fraction_out,
    impaired_out,
    outcome_out,
    first_out,
    count_out,
):
    """Walk every session of a partition; returns the number of actions (may exceed `out`'s rows).

    Session i of the partition is row `row0 + i` of its chunk (the `session` column).
    """
    st = np.zeros(5)
    sched_at = np.empty(MAX_SCHEDULED)
    sched_kind = np.empty(MAX_SCHEDULED, np.int64)
    cues_at = np.empty(N_CUES)
    cue_done = np.zeros(N_CUES, np.bool_)
    k = 0
    for i in range(len(comp)):
        first_out[i] = k
        sess = row0 + i
        fraction_out[i] = np.nan
        impaired_out[i] = False
        tm = tmpl_rows[i]
        if tm >= 0:  # a scripted session: copy its precompiled timeline
            for r in range(tmpl_len[tm]):
                k = _copy_row(out, k, sess, template, tmpl_start[tm] + r)
            outcome_out[i] = tmpl_outcome[tm]
            count_out[i] = k - first_out[i]
            continue
        c = comp[i]
        P = params[c]
        D = dists[c]
        ladder = ladders[c]
        pos = duration[i] if live[i] else 0.0
        k, t, rung, outcome = _start(rng, out, k, sess, P, D, tables, ladder, device[i], pos, autoplay[i], st)
        if outcome < 0:
            k, outcome, fraction_out[i], impaired_out[i] = _playback(
                rng,
                out,
                k,
                sess,
                t,
                pos,
                rung,
                P,
                D,
                tables,
                c,
                cues,
                ladder,
                languages,
                device[i],
                duration[i],
                live[i],
                st,
                sched_at,
                sched_kind,
                cues_at,
                cue_done,
            )
        outcome_out[i] = outcome
        count_out[i] = k - first_out[i]
    return k


@njit(cache=True)
def split_rows(rows, n, session, kind, t, pos, value, ad_pos, ad_index, bitrate, screen, sound, tab, speed):
    """The first n action rows into the typed columns (ACTION_COLUMNS order), in one pass:
    a numpy cast per column would read every row once per column."""
    for i in range(n):
        session[i] = rows[i, C_SESSION]
        kind[i] = rows[i, C_KIND]
        t[i] = rows[i, C_T]
        pos[i] = rows[i, C_POS]
        value[i] = rows[i, C_VALUE]
        ad_pos[i] = rows[i, C_ADPOS]
        ad_index[i] = rows[i, C_ADIDX]
        bitrate[i] = rows[i, C_BITRATE]
        screen[i] = rows[i, C_SCREEN]
        sound[i] = rows[i, C_SOUND]
        tab[i] = rows[i, C_TAB]
        speed[i] = rows[i, C_SPEED]
