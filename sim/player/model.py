"""The player model: scenarios + population + clock -> streamed SessionChunks of player actions.

Each scenario compiles to a row of numbers (probabilities, rates, distribution rows); a
numba kernel walks every session of a partition through the pipeline of
viewing-realism.md section 3.0 and writes the action columns of `sim.player.timeline`.

Usage::

    for chunk in generate_sessions([Scenario()], seed=7, sessions=100_000):
        print(chunk.n_sessions, chunk.n_actions)

Determinism and parallel work. A run is cut into *partitions*: contiguous time windows of
about `clock.PARTITION_SESSIONS` sessions, fixed by the seed and the scenario alone.
Partition p draws everything from its own `SeedSequence(seed, spawn_key=(MODEL_KEY, p))`,
so its sessions are the same whichever process makes them and whatever the chunk size.
A chunk is a run of consecutive partitions holding at least `chunk_size` sessions; chunk k
is therefore known from the plan alone. A worker `i` of `n` (`worker=(i, n)`) makes the
chunks k with k % n == i; all workers together make every chunk exactly once, and
`session_seq` (the session's rank in time order over the whole run) is globally unique.

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
re-watching costs them. Returning viewers: `returning` is drawn as the chance that a
Poisson viewer with this viewer's activity had an earlier session since the run began and
at least `returning.min_gap_s` before this one (sessions closer together are one visit);
exact per-viewer history would tie chunks together. The per-entry hourly burst factor of
viewing-realism 3.0 step 1 is not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np
from numba import njit

from ..population import Population, build_population
from ..scenario.distributions import DIST_ROW, KIND, compile_dist
from ..scenario.model import Scenario
from .clock import ArrivalPlan, partition_arrivals, plan_arrivals
from .timeline import ACTION_COLUMNS, SESSION_COLUMNS, Action, AdPosition, Outcome, SessionChunk
from .truth import TRUTH_SESSION_COLUMNS, timeline_truth

if TYPE_CHECKING:   # a run loads script.py when it is prepared (prepare_run); the annotation needs only the name
    from .script import ScriptTemplates

# Stream key of the player model in a run's SeedSequence: partition p draws from (seed, MODEL_KEY, p).
MODEL_KEY = 3
CHUNK_KEY = 4

# --- components ------------------------------------------------------------------------------


@dataclass
class Component:
    """A scenario in a run and its share of the sessions (what the loader returns, too)."""
    name: str
    scenario: Scenario
    weight: float = 1.0
    path: str | None = None


def as_components(components) -> list:
    """Normalise a Scenario, a list of Scenarios or a list of loader Components to components."""
    if isinstance(components, Scenario):
        components = [components]
    out = []
    for i, c in enumerate(components):
        if isinstance(c, Scenario):
            c = Component(name=c.name or f"scenario-{i}", scenario=c)
        if c.scenario.mix is not None:
            raise ValueError(f"{c.name}: a mix scenario must be loaded with sim.scenario.loader.load, "
                             "which resolves its component files")
        out.append(c)
    if not out:
        raise ValueError("no scenario components given")
    return out


# --- distributions in compiled code ------------------------------------------------------------

K_FIXED, K_UNIFORM, K_NORMAL, K_LOGNORMAL, K_EXPONENTIAL, K_BETA, K_WEIBULL, K_POISSON, K_TABLE = (
    KIND[n] for n in ("fixed", "uniform", "normal", "lognormal", "exponential", "beta", "weibull", "poisson", "table"))


@njit(cache=True, inline="always")
def draw(rng, dists, k, tables):
    """One draw from row k of the compiled distributions `dists` (see sim.scenario.distributions),
    clipped. The row is read in place, not through a row view, which numba reference-counts."""
    kind = int(dists[k, 0])
    if kind == K_FIXED:
        x = dists[k, 1]
    elif kind == K_UNIFORM:
        x = dists[k, 1] + (dists[k, 2] - dists[k, 1]) * rng.random()
    elif kind == K_NORMAL:
        x = rng.normal(dists[k, 1], dists[k, 2])
    elif kind == K_LOGNORMAL:
        x = np.exp(dists[k, 1] + dists[k, 2] * rng.standard_normal())
    elif kind == K_EXPONENTIAL:
        x = rng.exponential(dists[k, 1])
    elif kind == K_BETA:
        x = rng.beta(dists[k, 1], dists[k, 2])
    elif kind == K_WEIBULL:
        x = dists[k, 2] * rng.weibull(dists[k, 1])
    elif kind == K_POISSON:
        x = float(rng.poisson(dists[k, 1]))
    else:
        start, n = int(dists[k, 5]), int(dists[k, 6])
        u = rng.random()
        j = 0
        while j < n - 1 and tables[start + n + j] < u:
            j += 1
        x = tables[start + j]
    return min(max(x, dists[k, 3]), dists[k, 4])


@njit(cache=True)
def _draw_n(rng, dists, tables, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = draw(rng, dists, 0, tables)
    return out


def draw_many(dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` draws of a scenario distribution spec (a number or a Dist model)."""
    tables: list[float] = []
    row = compile_dist(dist, tables)
    return _draw_n(rng, np.asarray(row, float).reshape(1, -1), np.asarray(tables + [0.0], float), n)


# --- compiled scenario layout ------------------------------------------------------------------

N_BUCKETS = 16
N_CUES = 64
N_LADDER = 16
N_LANGS = 16
N_AD_BUCKETS = 8

P_PLAY_RATE, P_AUTOPLAY, P_AUTOPLAY_PLAY_RATE, P_MUTED_AUTOPLAY, P_UNMUTE_PER_S = range(5)
P_START_FAILURE, P_GRACE = 5, 6
P_ABANDON = 7                       # +device
P_BOUNCE, P_N_BUCKETS = 11, 12
P_BUCKET_MAX = 13                   # +N_BUCKETS
P_BUCKET_SHARE = P_BUCKET_MAX + N_BUCKETS
_B = P_BUCKET_SHARE + N_BUCKETS
P_IMPAIRED, P_STALL_CLEAN, P_STALL_IMPAIRED, P_QUIT_AFTER_STALL, P_PAUSE_PER_S, P_BACKWARD = range(_B, _B + 6)
P_FULLSCREEN = _B + 6               # +device
_C = P_FULLSCREEN + 4
(P_SPEED_SHARE, P_CAPTIONS_SHARE, P_N_LANGS, P_CLICK_SHARE, P_CLICK_SHARE_NETWORK, P_CLICK_DOWNLOAD,
 P_CLICK_REPORT, P_CLICK_RELATED, P_CLICK_RELATED_SELECTED, P_CLICK_INFO, P_FLAVOR_PER_S, P_MANUAL_SOURCE,
 P_REPLAY, P_ERROR_MID, P_TAB_PER_S) = range(_C, _C + 15)
_D = _C + 15
P_HAS_PRE, P_PRE_SHARE, P_PRE_COMPLETION = _D, _D + 1, _D + 2
P_PRE_ABANDON = _D + 3              # +device
_E = P_PRE_ABANDON + 4
(P_HAS_MID, P_MID_COMPLETION, P_MID_BREAK_EXIT, P_MID_RULE, P_MID_EVERY, P_MID_MIN_DURATION, P_N_CUES,
 P_HAS_POST, P_POST_SHARE, P_POST_COMPLETION, P_OVERLAY_SHARE, P_OVERLAY_CLICK, P_BUMPER_PRE, P_BUMPER_POST,
 P_BUMPER_CLICK, P_AD_START_RATE, P_SKIPPABLE_AFTER, P_SKIP_RATE) = range(_E, _E + 18)
P_AD_CLICK = _E + 18                # +device
P_QUARTILES = P_AD_CLICK + 4        # +3 x (ad position - 1) + quartile: pre, mid, post
P_N_LADDER = P_QUARTILES + 9
P_PRE_AB_N = P_N_LADDER + 1         # pre-roll abandonment by ad length: bucket count
P_PRE_AB_MAX = P_PRE_AB_N + 1       # +N_AD_BUCKETS
P_PRE_AB_SHARE = P_PRE_AB_MAX + N_AD_BUCKETS
_F = P_PRE_AB_SHARE + N_AD_BUCKETS
P_MID_EVERY_FROM, P_LOOP_SHARE, P_SECOND_LOOP = _F, _F + 1, _F + 2
N_PARAMS = _F + 3

MID_NONE, MID_FRACTIONS, MID_SECONDS = 0, 1, 2

(D_STARTUP, D_BOUNCE, D_MIDDLE, D_STALL, D_PAUSE, D_SEEKS, D_BACK, D_FWD, D_SPEED, D_AD_LEN,
 D_PRE_SIZE, D_MID_SIZE, D_POST_SIZE, D_BUMPER_LEN) = range(14)
N_DISTS = 14

DEVICES = ("desktop", "mobile", "tablet", "ctv")


@dataclass
class CompiledScenarios:
    """Every component's parameters as arrays the kernel reads (row c = component c)."""
    params: np.ndarray      # float64 [component, N_PARAMS]
    dists: np.ndarray       # float64 [component, N_DISTS, DIST_ROW]
    tables: np.ndarray      # float64: values and cumulative weights of table distributions
    cues: np.ndarray        # float64 [component, N_CUES] mid-roll cue points (fractions or seconds)
    ladders: np.ndarray     # float64 [component, N_LADDER] bitrate ladder kbps, ascending
    languages: np.ndarray   # float64 [component, N_LANGS] caption language indices (population)


def compile_scenarios(components, population: Population) -> CompiledScenarios:
    """Turn each component's scenario into its parameter row (see the P_* and D_* layout)."""
    n = len(components)
    params = np.zeros((n, N_PARAMS))
    dists = np.zeros((n, N_DISTS, DIST_ROW))
    cues = np.zeros((n, N_CUES))
    ladders = np.zeros((n, N_LADDER))
    languages = np.zeros((n, N_LANGS))
    tables: list[float] = []
    for c, comp in enumerate(components):
        sc, P = comp.scenario, params[c]
        b, ads = sc.behaviour, sc.ads
        P[P_PLAY_RATE], P[P_AUTOPLAY], P[P_AUTOPLAY_PLAY_RATE] = b.play_rate, b.autoplay, b.autoplay_play_rate
        P[P_MUTED_AUTOPLAY], P[P_UNMUTE_PER_S] = b.sound.muted_autoplay_share, b.sound.unmute_per_min / 60
        P[P_START_FAILURE], P[P_GRACE] = b.start_failure, b.startup.grace_s
        wf = b.watched_fraction
        P[P_BOUNCE] = wf.early_bounce
        buckets = ([(None, wf.complete)] if isinstance(wf.complete, (int, float))
                   else [(k.max_duration_s, k.share) for k in wf.complete])
        if len(buckets) > N_BUCKETS:
            raise ValueError(f"{comp.name}: behaviour.watched_fraction.complete: at most {N_BUCKETS} buckets")
        P[P_N_BUCKETS] = len(buckets)
        for j, (limit, share) in enumerate(buckets):
            P[P_BUCKET_MAX + j] = np.inf if limit is None else limit
            P[P_BUCKET_SHARE + j] = share
        rb = b.rebuffering
        P[P_IMPAIRED], P[P_STALL_CLEAN], P[P_STALL_IMPAIRED] = rb.impaired_share, rb.clean_per_min / 60, rb.impaired_per_min / 60
        P[P_QUIT_AFTER_STALL], P[P_PAUSE_PER_S], P[P_BACKWARD] = rb.quit_after_stall, b.pauses.per_min / 60, b.seeks.backward_share
        for d, name in enumerate(DEVICES):
            P[P_ABANDON + d] = getattr(b.startup.abandon_per_s, name)
            P[P_FULLSCREEN + d] = getattr(b.fullscreen, name)
            P[P_AD_CLICK + d] = getattr(ads.click_rate, name)
            pre_ab = ads.preroll.abandon_per_ad if ads.preroll is not None else 0.0
            P[P_PRE_ABANDON + d] = pre_ab if isinstance(pre_ab, (int, float)) else getattr(pre_ab, name)
        langs = population.components[c].caption_languages
        P[P_SPEED_SHARE], P[P_CAPTIONS_SHARE], P[P_N_LANGS] = b.speed.share, b.captions.share, min(len(langs), N_LANGS)
        languages[c, :min(len(langs), N_LANGS)] = langs[:N_LANGS]
        ck = b.clicks
        (P[P_CLICK_SHARE], P[P_CLICK_SHARE_NETWORK], P[P_CLICK_DOWNLOAD], P[P_CLICK_REPORT], P[P_CLICK_RELATED],
         P[P_CLICK_RELATED_SELECTED], P[P_CLICK_INFO]) = (ck.share, ck.share_network, ck.download, ck.report,
                                                          ck.related, ck.related_selected, ck.info)
        P[P_FLAVOR_PER_S] = b.flavor_switch_per_min * b.flavor_switch_scale / 60
        P[P_MANUAL_SOURCE], P[P_REPLAY] = b.manual_source_share, b.replay_after_end
        P[P_LOOP_SHARE], P[P_SECOND_LOOP] = b.loop.share, b.loop.second_loop
        P[P_ERROR_MID], P[P_TAB_PER_S] = b.error_mid_stream, b.tab_hidden_per_min / 60
        if ads.preroll is not None:
            P[P_HAS_PRE], P[P_PRE_SHARE], P[P_PRE_COMPLETION] = 1, ads.preroll.share, ads.preroll.completion
            by_length = ads.preroll.abandon_by_ad_length or []
            if len(by_length) > N_AD_BUCKETS:
                raise ValueError(f"{comp.name}: ads.preroll.abandon_by_ad_length: at most {N_AD_BUCKETS} buckets")
            P[P_PRE_AB_N] = len(by_length)
            for j, bucket in enumerate(by_length):
                P[P_PRE_AB_MAX + j] = np.inf if bucket.max_length_s is None else bucket.max_length_s
                P[P_PRE_AB_SHARE + j] = bucket.share
        for j, pod in enumerate((ads.preroll, ads.midroll, ads.postroll)):
            q = pod.quartiles if pod is not None and pod.quartiles is not None else ads.quartiles
            P[P_QUARTILES + 3 * j:P_QUARTILES + 3 * j + 3] = (q.first, q.mid, q.third)
        mid = ads.midroll
        if mid is not None:
            P[P_HAS_MID], P[P_MID_COMPLETION], P[P_MID_BREAK_EXIT] = 1, mid.completion, mid.break_exit
            P[P_MID_MIN_DURATION] = mid.min_duration_s
            points = mid.at_fractions if mid.at_fractions is not None else mid.at_s
            if mid.every_s is not None:
                P[P_MID_EVERY] = mid.every_s
                P[P_MID_EVERY_FROM] = mid.every_s_from_duration_s or 0.0
            if points is not None:
                if len(points) > N_CUES:
                    raise ValueError(f"{comp.name}: ads.midroll: at most {N_CUES} cue points")
                P[P_MID_RULE] = MID_FRACTIONS if mid.at_fractions is not None else MID_SECONDS
                P[P_N_CUES] = len(points)
                cues[c, :len(points)] = sorted(points)
            elif mid.every_s is None:   # no rule given: breaks at a third and two thirds (viewing-realism 3.3)
                P[P_MID_RULE], P[P_N_CUES] = MID_FRACTIONS, 2
                cues[c, :2] = (1 / 3, 2 / 3)
        if ads.postroll is not None:
            P[P_HAS_POST], P[P_POST_SHARE], P[P_POST_COMPLETION] = 1, ads.postroll.share, ads.postroll.completion
        P[P_OVERLAY_SHARE], P[P_OVERLAY_CLICK] = ads.overlay.share, ads.overlay.click_rate
        P[P_BUMPER_PRE], P[P_BUMPER_POST], P[P_BUMPER_CLICK] = ads.bumpers.pre, ads.bumpers.post, ads.bumpers.click_rate
        P[P_AD_START_RATE] = ads.start_rate
        P[P_SKIPPABLE_AFTER] = np.inf if ads.skippable_after_s is None else ads.skippable_after_s
        P[P_SKIP_RATE] = ads.skip_rate
        ladder = sorted(r * sc.player.bitrate_scale for r in sc.player.bitrate_ladder_kbps)[:N_LADDER]
        P[P_N_LADDER] = len(ladder)
        ladders[c, :len(ladder)] = ladder
        for d, spec in ((D_STARTUP, b.startup.time_s), (D_BOUNCE, wf.bounce_fraction), (D_MIDDLE, wf.middle),
                        (D_STALL, rb.stall_s), (D_PAUSE, b.pauses.length_s), (D_SEEKS, b.seeks.per_play),
                        (D_BACK, b.seeks.backward_s), (D_FWD, b.seeks.forward_fraction), (D_SPEED, b.speed.rates),
                        (D_AD_LEN, ads.length_s), (D_PRE_SIZE, ads.preroll.size if ads.preroll else 1),
                        (D_MID_SIZE, mid.size if mid else 1), (D_POST_SIZE, ads.postroll.size if ads.postroll else 1),
                        (D_BUMPER_LEN, ads.bumpers.length_s)):
            dists[c, d] = compile_dist(spec, tables)
    return CompiledScenarios(params=params, dists=dists, tables=np.asarray(tables + [0.0], float),
                             cues=cues, ladders=ladders, languages=languages)


# --- the kernel ---------------------------------------------------------------------------------

# The kernel writes action rows into one float64 array [row, ACTION_COLUMNS order]; the chunk's
# typed columns are filled from it. (A tuple of typed column arrays cost the runtime an atomic
# reference count update per column touched, two fifths of the kernel's time.)
C_SESSION, C_KIND, C_T, C_POS, C_VALUE, C_ADPOS, C_ADIDX, C_BITRATE, C_SCREEN, C_SOUND, C_TAB, C_SPEED = range(12)
S_BITRATE, S_SCREEN, S_SOUND, S_TAB, S_SPEED = range(5)   # player state carried on every action

# Assumptions (viewing-realism.md gives no figures for these).
CLICK_TO_PLAY_MEDIAN_S = 3.0     # LOAD -> clicked PLAY_REQUEST, lognormal sigma 0.8
AUTOPLAY_DELAY_S = 0.3
NO_PLAY_STAY_MEAN_S = 40.0       # how long a viewer who never plays stays on the page
LEAVE_AFTER_END_MEAN_S = 5.0
FAILED_START_LEAVE_MEAN_S = 3.0
TAB_HIDDEN_MEDIAN_S = 20.0       # lognormal sigma 1.0
FULLSCREEN_EXIT_SHARE = 0.85
MAX_REPLAYS = 5
MAX_SEEKS = 40
DOWNSWITCH_AFTER_STALL = 0.5
AD_JOIN_S = 0.4                  # ad request to first ad frame
AD_ERROR_S = 1.0                 # time an ad slot takes to fail
REPLAY_DELAY_S = 1.0
START_ERROR_CODE = 1002          # playkit NETWORK HTTP_ERROR: the manifest or first segment failed
PLAYBACK_ERROR_CODE = 3016       # playkit MEDIA error from the video element
AD_ERROR_CODE = 1009             # VAST: no ads / empty response
SOUND_MUTED, SOUND_ON = 1.0, 2.0

# One-off events scheduled in played content seconds.
EV_SEEK, EV_ENTER_FS, EV_EXIT_FS, EV_SPEED, EV_CAPTIONS, EV_SOURCE, EV_SHARE, EV_DOWNLOAD = range(8)
EV_REPORT, EV_RELATED, EV_INFO, EV_ERROR, EV_OVERLAY, EV_TAB_VISIBLE = range(8, 14)
MAX_SCHEDULED = 64

_A = {a.name: int(a) for a in Action}
A_LOAD, A_PLAY_REQUEST, A_PLAYING, A_PAUSE, A_RESUME, A_SEEK = (_A[n] for n in ("LOAD", "PLAY_REQUEST", "PLAYING", "PAUSE", "RESUME", "SEEK"))
A_STALL_START, A_STALL_END, A_ENTER_FS, A_EXIT_FS, A_SPEED, A_CAPTIONS = (_A[n] for n in ("STALL_START", "STALL_END", "ENTER_FULLSCREEN", "EXIT_FULLSCREEN", "SPEED", "CAPTIONS"))
A_FLAVOR, A_SOURCE, A_SHARE, A_SHARE_NETWORK, A_DOWNLOAD, A_REPORT = (_A[n] for n in ("FLAVOR_SWITCH", "SOURCE_SELECTED", "SHARE", "SHARE_NETWORK", "DOWNLOAD", "REPORT"))
A_RELATED_OPEN, A_RELATED_SELECTED, A_INFO, A_ENDED, A_REPLAY, A_ERROR, A_QUIT, A_SOUND = (_A[n] for n in ("RELATED_OPEN", "RELATED_SELECTED", "INFO", "ENDED", "REPLAY", "ERROR", "QUIT", "SOUND"))
A_BREAK_START, A_IMPRESSION, A_AD_START, A_AD_Q1, A_AD_Q2, A_AD_Q3, A_AD_COMPLETE = (_A[n] for n in ("AD_BREAK_START", "AD_IMPRESSION", "AD_START", "AD_FIRST_QUARTILE", "AD_MIDPOINT", "AD_THIRD_QUARTILE", "AD_COMPLETE"))
A_AD_SKIP, A_AD_CLICK, A_AD_ERROR, A_BREAK_END, A_OVERLAY, A_OVERLAY_CLICK, A_BUMPER, A_BUMPER_CLICK = (_A[n] for n in ("AD_SKIP", "AD_CLICK", "AD_ERROR", "AD_BREAK_END", "OVERLAY_START", "OVERLAY_CLICK", "BUMPER_START", "BUMPER_CLICK"))
AD_PRE, AD_MID, AD_POST, AD_OVERLAY = int(AdPosition.PREROLL), int(AdPosition.MIDROLL), int(AdPosition.POSTROLL), int(AdPosition.OVERLAY)
O_NO_PLAY, O_START_FAILURE, O_ABANDONED_STARTUP, O_ABANDONED_AD, O_PARTIAL, O_COMPLETED, O_STALL_QUIT, O_PLAYBACK_ERROR, O_AD_BREAK_QUIT = (int(o) for o in Outcome)


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
    q1, q2, q3 = P[P_QUARTILES + 3 * (ad_pos - 1)], P[P_QUARTILES + 3 * (ad_pos - 1) + 1], P[P_QUARTILES + 3 * (ad_pos - 1) + 2]
    k = _emit(out, k, sess, A_BREAK_START, t, pos, n_ads, ad_pos, 0, st)
    for a in range(n_ads):
        k = _emit(out, k, sess, A_IMPRESSION, t, pos, 0.0, ad_pos, a, st)
        if rng.random() >= P[P_AD_START_RATE]:
            t += AD_ERROR_S
            k = _emit(out, k, sess, A_AD_ERROR, t, pos, AD_ERROR_CODE, ad_pos, a, st)
            continue
        t += AD_JOIN_S
        length = max(draw(rng, dists, D_AD_LEN, tables), 1.0)
        k = _emit(out, k, sess, A_AD_START, t, pos, length, ad_pos, a, st)
        fate = 0   # 0 complete, 1 skip, 2 abandon (viewer leaves), 3 stops early, viewer stays
        stop = length
        done, leave = completion, abandon
        if ad_pos == AD_PRE and P[P_PRE_AB_N] > 0:
            for j in range(int(P[P_PRE_AB_N])):
                if length <= P[P_PRE_AB_MAX + j]:
                    leave = P[P_PRE_AB_SHARE + j]
                    break
            done = 1.0 - leave
        if length > P[P_SKIPPABLE_AFTER] and rng.random() < P[P_SKIP_RATE]:
            fate = 1
            stop = P[P_SKIPPABLE_AFTER] + rng.random() * (length - P[P_SKIPPABLE_AFTER])
        else:
            u = rng.random()
            if u >= done:
                fate = 2 if u < done + leave else 3
                stop = _ad_stop_point(rng, length, done, q1, q2, q3)
        # click_rate is per ad impression (viewing-realism 3.3), and only a started ad can be clicked
        clicked = rng.random() * P[P_AD_START_RATE] < P[P_AD_CLICK + device]
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
    if rng.random() < P[P_BUMPER_CLICK]:
        k = _emit(out, k, sess, A_BUMPER_CLICK, t + rng.random() * length, pos, 0.0, ad_pos, 0, st)
    return k, t + length


@njit(cache=True, inline="always")
def _intended_fraction(rng, P, dists, tables, duration):
    """F: early bounce, complete (the share of the entry's length bucket), or the Beta middle."""
    complete = 0.0
    for j in range(int(P[P_N_BUCKETS])):
        if duration <= P[P_BUCKET_MAX + j]:
            complete = P[P_BUCKET_SHARE + j]
            break
    u = rng.random()
    if u < P[P_BOUNCE]:
        return min(max(draw(rng, dists, D_BOUNCE, tables), 0.0), 1.0)
    if u < P[P_BOUNCE] + complete:
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
    singles = ((EV_ENTER_FS, P[P_FULLSCREEN + device]), (EV_SPEED, P[P_SPEED_SHARE]),
               (EV_CAPTIONS, P[P_CAPTIONS_SHARE] if P[P_N_LANGS] > 0 else 0.0),
               (EV_SOURCE, P[P_MANUAL_SOURCE] if n_ladder > 1 else 0.0), (EV_SHARE, P[P_CLICK_SHARE]),
               (EV_DOWNLOAD, P[P_CLICK_DOWNLOAD]), (EV_REPORT, P[P_CLICK_REPORT]),
               (EV_RELATED, P[P_CLICK_RELATED]), (EV_INFO, P[P_CLICK_INFO]),
               (EV_ERROR, P[P_ERROR_MID]), (EV_OVERLAY, P[P_OVERLAY_SHARE]))
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


@njit(cache=True)
def walk_sessions(rng, comp, device, duration, live, autoplay, template, tmpl_rows, tmpl_start, tmpl_len,
                  tmpl_outcome, params, dists, tables, cues, ladders, languages, row0,
                  out, fraction_out, impaired_out, outcome_out, first_out, count_out):
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
        if tm >= 0:   # a scripted session: copy its precompiled timeline
            for r in range(tmpl_len[tm]):
                k = _copy_row(out, k, sess, template, tmpl_start[tm] + r)
            outcome_out[i] = tmpl_outcome[tm]
            count_out[i] = k - first_out[i]
            continue
        c = comp[i]
        P = params[c]
        D = dists[c]
        dev = device[i]
        dur = duration[i]
        is_live = live[i]
        n_ladder = int(P[P_N_LADDER])
        ladder = ladders[c]
        rung = n_ladder - 1
        st[S_BITRATE] = ladder[rung]
        st[S_SCREEN] = 1.0
        st[S_TAB] = 2.0
        st[S_SPEED] = 1.0
        st[S_SOUND] = SOUND_ON
        t = 0.0
        pos = dur if is_live else 0.0
        muted = autoplay[i] and rng.random() < P[P_MUTED_AUTOPLAY]
        if muted:
            st[S_SOUND] = SOUND_MUTED
        k = _emit(out, k, sess, A_LOAD, t, pos, 0.0, 0, 0, st)
        if not rng.random() < (P[P_AUTOPLAY_PLAY_RATE] if autoplay[i] else P[P_PLAY_RATE]):
            t = rng.exponential(NO_PLAY_STAY_MEAN_S)
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            outcome_out[i] = O_NO_PLAY
            count_out[i] = k - first_out[i]
            continue
        if autoplay[i]:
            t += AUTOPLAY_DELAY_S
        else:
            t += CLICK_TO_PLAY_MEDIAN_S * np.exp(0.8 * rng.standard_normal())
        if rng.random() >= 0.6:   # the player starts on the top rendition or the one below it
            rung = max(n_ladder - 2, 0)
            st[S_BITRATE] = ladder[rung]
        k = _emit(out, k, sess, A_PLAY_REQUEST, t, pos, 0.0, 0, 0, st)

        # --- before the first frame: bumper, pre-roll pod, start failure, startup wait
        if rng.random() < P[P_BUMPER_PRE]:
            k, t = _bumper(rng, out, k, sess, t, pos, AD_PRE, P, D, tables, st)
        if P[P_HAS_PRE] > 0 and rng.random() < P[P_PRE_SHARE]:
            n_ads = int(draw(rng, D, D_PRE_SIZE, tables) + 0.5)
            if n_ads > 0:
                abandon = min(P[P_PRE_ABANDON + dev], 1.0 - P[P_PRE_COMPLETION])
                k, t, left = _pod(rng, out, k, sess, t, pos, AD_PRE, n_ads, P[P_PRE_COMPLETION], abandon, False,
                                  P, D, tables, st, dev)
                if left:
                    outcome_out[i] = O_ABANDONED_AD
                    count_out[i] = k - first_out[i]
                    continue
        startup = max(draw(rng, D, D_STARTUP, tables), 0.01)
        if rng.random() < P[P_START_FAILURE]:
            t += startup
            k = _emit(out, k, sess, A_ERROR, t, pos, START_ERROR_CODE, 0, 0, st)
            t += rng.exponential(FAILED_START_LEAVE_MEAN_S)
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            outcome_out[i] = O_START_FAILURE
            count_out[i] = k - first_out[i]
            continue
        grace = P[P_GRACE]
        lam = P[P_ABANDON + dev]
        if startup > grace and lam > 0 and rng.random() < 1.0 - np.exp(-lam * (startup - grace)):
            # leaving time: the hazard's exponential, conditioned to fall before the first frame
            u = rng.random() * (1.0 - np.exp(-lam * (startup - grace)))
            t += grace - np.log1p(-u) / lam
            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
            outcome_out[i] = O_ABANDONED_STARTUP
            count_out[i] = k - first_out[i]
            continue
        t += startup
        k = _emit(out, k, sess, A_PLAYING, t, pos, startup, 0, 0, st)

        # --- content playback
        looping = rng.random() < P[P_LOOP_SHARE]
        impaired = rng.random() < P[P_IMPAIRED]
        impaired_out[i] = impaired
        stall_rate = P[P_STALL_IMPAIRED] if impaired else P[P_STALL_CLEAN]
        has_mid = P[P_HAS_MID] > 0 and dur >= P[P_MID_MIN_DURATION]
        cue_rule = int(P[P_MID_RULE]) if has_mid else MID_NONE
        n_cues = 0
        if has_mid and P[P_MID_EVERY] > 0 and (dur >= P[P_MID_EVERY_FROM] or is_live):
            while n_cues < N_CUES and (n_cues + 1) * P[P_MID_EVERY] < dur:
                cues_at[n_cues] = (n_cues + 1) * P[P_MID_EVERY]
                n_cues += 1
        elif cue_rule != MID_NONE and not is_live:
            for j in range(int(P[P_N_CUES])):
                at = cues[c, j] * dur if cue_rule == MID_FRACTIONS else cues[c, j]
                if at < dur:
                    cues_at[n_cues] = at
                    n_cues += 1
        cue_done[:n_cues] = False
        fraction = _intended_fraction(rng, P, D, tables, dur)
        fraction_out[i] = fraction
        outcome = -1
        ended_any = False
        replays = 0
        while True:   # one pass of content playback (the first play, then each replay)
            played = 0.0
            budget = np.inf if (fraction >= 1.0 and not is_live) else fraction * dur
            horizon = budget if budget < np.inf else dur - pos
            n_sched = _schedule(rng, P, D, tables, n_ladder, dev, horizon, played, sched_at, sched_kind)
            ended = False
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
                unmute = P[P_UNMUTE_PER_S] if st[S_SOUND] == SOUND_MUTED else 0.0
                rate = stall_rate + P[P_PAUSE_PER_S] + P[P_FLAVOR_PER_S] + P[P_TAB_PER_S] + unmute
                dt_poisson = rng.exponential(1.0 / rate) if rate > 0 else np.inf
                dt = min(dt_end, dt_budget, dt_cue, dt_sched, dt_poisson)
                t += dt
                played += dt * spd
                if not is_live:
                    pos = min(pos + dt * spd, dur)
                if dt == dt_end:
                    pos = dur
                    k = _emit(out, k, sess, A_ENDED, t, pos, 0.0, 0, 0, st)
                    ended = True
                    break
                if dt == dt_budget:
                    k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
                    outcome = O_COMPLETED if ended_any else O_PARTIAL
                    break
                if dt == dt_cue:
                    cue_done[cue] = True
                    n_ads = int(draw(rng, D, D_MID_SIZE, tables) + 0.5)
                    if n_ads > 0:
                        leaves = rng.random() < P[P_MID_BREAK_EXIT]
                        k, t, left = _pod(rng, out, k, sess, t, pos, AD_MID, n_ads, P[P_MID_COMPLETION], 0.0, leaves,
                                          P, D, tables, st, dev)
                        if left:
                            outcome = O_AD_BREAK_QUIT
                            break
                    continue
                if dt == dt_sched:
                    ev = sched_kind[s_next]
                    n_sched -= 1
                    sched_at[s_next], sched_kind[s_next] = sched_at[n_sched], sched_kind[n_sched]
                    if ev == EV_SEEK:
                        if rng.random() < P[P_BACKWARD]:
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
                        lang = languages[c, int(rng.random() * P[P_N_LANGS])]
                        k = _emit(out, k, sess, A_CAPTIONS, t, pos, lang, 0, 0, st)
                    elif ev == EV_SOURCE:
                        other = int(rng.random() * (n_ladder - 1))
                        rung = other if other < rung else other + 1
                        st[S_BITRATE] = ladder[rung]
                        k = _emit(out, k, sess, A_SOURCE, t, pos, ladder[rung], 0, 0, st)
                    elif ev == EV_SHARE:
                        k = _emit(out, k, sess, A_SHARE, t, pos, 0.0, 0, 0, st)
                        if rng.random() < P[P_CLICK_SHARE_NETWORK]:
                            k = _emit(out, k, sess, A_SHARE_NETWORK, t, pos, 0.0, 0, 0, st)
                    elif ev == EV_DOWNLOAD:
                        k = _emit(out, k, sess, A_DOWNLOAD, t, pos, 0.0, 0, 0, st)
                    elif ev == EV_REPORT:
                        k = _emit(out, k, sess, A_REPORT, t, pos, 0.0, 0, 0, st)
                    elif ev == EV_INFO:
                        k = _emit(out, k, sess, A_INFO, t, pos, 0.0, 0, 0, st)
                    elif ev == EV_RELATED:
                        k = _emit(out, k, sess, A_RELATED_OPEN, t, pos, 0.0, 0, 0, st)
                        if rng.random() < P[P_CLICK_RELATED_SELECTED]:
                            # the viewer picked another entry: this entry's session ends here
                            k = _emit(out, k, sess, A_RELATED_SELECTED, t, pos, 0.0, 0, 0, st)
                            k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
                            outcome = O_COMPLETED if ended_any else O_PARTIAL
                            break
                    elif ev == EV_ERROR:
                        k = _emit(out, k, sess, A_ERROR, t, pos, PLAYBACK_ERROR_CODE, 0, 0, st)
                        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
                        outcome = O_PLAYBACK_ERROR
                        break
                    elif ev == EV_OVERLAY:
                        k = _emit(out, k, sess, A_OVERLAY, t, pos, 0.0, AD_OVERLAY, 0, st)
                        if rng.random() < P[P_OVERLAY_CLICK]:
                            k = _emit(out, k, sess, A_OVERLAY_CLICK, t, pos, 0.0, AD_OVERLAY, 0, st)
                    elif ev == EV_TAB_VISIBLE:
                        st[S_TAB] = 2.0
                    continue
                # a Poisson event in playing time: which one, in proportion to its rate
                u = rng.random() * rate
                if u < stall_rate:
                    k = _emit(out, k, sess, A_STALL_START, t, pos, 0.0, 0, 0, st)
                    length = max(draw(rng, D, D_STALL, tables), 0.05)
                    if rng.random() < P[P_QUIT_AFTER_STALL]:
                        # viewing-realism 3.0 step 8: the viewer gives up when the stall is over
                        t += length
                        k = _emit(out, k, sess, A_QUIT, t, pos, 0.0, 0, 0, st)
                        outcome = O_STALL_QUIT
                        break
                    t += length
                    k = _emit(out, k, sess, A_STALL_END, t, pos, length, 0, 0, st)
                    if rung > 0 and rng.random() < DOWNSWITCH_AFTER_STALL:
                        rung -= 1
                        st[S_BITRATE] = ladder[rung]
                        k = _emit(out, k, sess, A_FLAVOR, t, pos, ladder[rung], 0, 0, st)
                elif u < stall_rate + P[P_PAUSE_PER_S]:
                    k = _emit(out, k, sess, A_PAUSE, t, pos, 0.0, 0, 0, st)
                    length = max(draw(rng, D, D_PAUSE, tables), 0.1)
                    t += length
                    if is_live:   # the live edge moves on while the viewer is paused
                        pos = max(pos - length, 0.0)
                    k = _emit(out, k, sess, A_RESUME, t, pos, 0.0, 0, 0, st)
                elif u < stall_rate + P[P_PAUSE_PER_S] + P[P_FLAVOR_PER_S]:
                    if n_ladder > 1:
                        up = rng.random() < (0.35 if impaired else 0.5)
                        rung = rung + 1 if (up and rung < n_ladder - 1) or rung == 0 else rung - 1
                        st[S_BITRATE] = ladder[rung]
                        k = _emit(out, k, sess, A_FLAVOR, t, pos, ladder[rung], 0, 0, st)
                elif u < stall_rate + P[P_PAUSE_PER_S] + P[P_FLAVOR_PER_S] + P[P_TAB_PER_S]:
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
            if not ended:
                break
            # --- after the end: post-roll, post bumper, maybe a replay
            ended_any = True
            st[S_TAB] = 2.0
            if P[P_HAS_POST] > 0 and rng.random() < P[P_POST_SHARE]:
                n_ads = int(draw(rng, D, D_POST_SIZE, tables) + 0.5)
                if n_ads > 0:
                    k, t, left = _pod(rng, out, k, sess, t, pos, AD_POST, n_ads, P[P_POST_COMPLETION],
                                      1.0 - P[P_POST_COMPLETION], False, P, D, tables, st, dev)
                    if left:
                        outcome = O_COMPLETED
                        break
            if rng.random() < P[P_BUMPER_POST]:
                k, t = _bumper(rng, out, k, sess, t, pos, AD_POST, P, D, tables, st)
            again = rng.random() < (P[P_SECOND_LOOP] if looping else P[P_REPLAY])
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
            outcome = O_COMPLETED
            break
        outcome_out[i] = outcome
        count_out[i] = k - first_out[i]
    return k


# --- who watches what: per-session context ----------------------------------------------------

@njit(cache=True)
def alias_table(weights):
    """Vose's alias table for drawing index i with probability weights[i] / sum in O(1)."""
    n = len(weights)
    prob = weights * (n / weights.sum())
    alias = np.arange(n)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    ns = nl = 0
    for i in range(n):
        if prob[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s_ = small[ns]
        g = large[nl - 1]
        alias[s_] = g
        prob[g] = prob[g] + prob[s_] - 1.0
        if prob[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    for j in range(nl):
        prob[large[j]] = 1.0
    for j in range(ns):
        prob[small[j]] = 1.0
    return prob, alias


@dataclass
class Choosers:
    """Alias tables over the concatenated viewers and entries, and each cell's slice of them."""
    cell_vstart: np.ndarray   # int64 first viewer row of each cell's time-zone group
    cell_vn: np.ndarray       # int64 viewers in it
    cell_volume: np.ndarray   # float64 sessions of the cell over the whole run
    v_prob: np.ndarray        # float64 alias acceptance per viewer row
    v_alias: np.ndarray       # int64 alias (global viewer row)
    v_share: np.ndarray       # float64 viewer's share of its group's sessions (activity)
    comp_estart: np.ndarray   # int64 first entry of each component
    comp_en: np.ndarray
    e_prob: np.ndarray
    e_alias: np.ndarray       # int64 alias (global entry)
    comp_rstart: np.ndarray   # int64 first referrer of each component
    comp_rn: np.ndarray


def build_choosers(plan: ArrivalPlan, population: Population) -> Choosers:
    n_viewers = len(population.viewers)
    v_prob, v_alias, v_share = np.ones(n_viewers), np.arange(n_viewers), np.zeros(n_viewers)
    cell_vstart, cell_vn = [], []
    for c, g in zip(plan.cell_component.tolist(), plan.cell_tz.tolist()):
        r = population.components[c].tz_viewers[g]
        cell_vstart.append(r.start)
        cell_vn.append(len(r))
    for sl in population.components:
        for r, cdf in zip(sl.tz_viewers, sl.tz_activity_cdf):
            w = np.diff(cdf, prepend=0.0)
            prob, alias = alias_table(w)
            v_prob[r.start:r.stop], v_alias[r.start:r.stop], v_share[r.start:r.stop] = prob, alias + r.start, w / w.sum()
    n_entries = len(population.catalog.entry_ids)
    e_prob, e_alias = np.ones(n_entries), np.arange(n_entries)
    for sl in population.components:
        prob, alias = alias_table(np.diff(sl.entry_cdf, prepend=0.0))
        e_prob[sl.entries.start:sl.entries.stop], e_alias[sl.entries.start:sl.entries.stop] = prob, alias + sl.entries.start
    comps = population.components
    return Choosers(cell_vstart=np.array(cell_vstart, np.int64), cell_vn=np.array(cell_vn, np.int64),
                    cell_volume=plan.counts.sum(axis=0).astype(float), v_prob=v_prob, v_alias=v_alias.astype(np.int64),
                    v_share=v_share, comp_estart=np.array([sl.entries.start for sl in comps], np.int64),
                    comp_en=np.array([len(sl.entries) for sl in comps], np.int64), e_prob=e_prob,
                    e_alias=e_alias.astype(np.int64), comp_rstart=np.array([sl.referrers.start for sl in comps], np.int64),
                    comp_rn=np.array([len(sl.referrers) for sl in comps], np.int64))


@njit(cache=True)
def draw_context(rng, cells, cell_component, elapsed, min_gap, autoplay_share, cell_vstart, cell_vn, cell_volume,
                 v_prob, v_alias, v_share, comp_estart, comp_en, e_prob, e_alias, comp_rstart, comp_rn,
                 viewer, entry, referrer, autoplay, returning):
    """Each session's viewer (by activity), entry (by popularity), page, autoplay flag and returning flag.

    `elapsed`: each session's time since the run began and `min_gap`: each component's
    `returning.min_gap_s`, both as fractions of the run."""
    for i in range(len(cells)):
        cell = cells[i]
        c = cell_component[cell]
        j = cell_vstart[cell] + int(rng.random() * cell_vn[cell])
        v = j if rng.random() < v_prob[j] else v_alias[j]
        viewer[i] = v
        # chance that this viewer (Poisson, at its activity share of the cell) came earlier in the run
        earlier = max(elapsed[i] - min_gap[c], 0.0)
        returning[i] = rng.random() < 1.0 - np.exp(-cell_volume[cell] * v_share[v] * earlier)
        j = comp_estart[c] + int(rng.random() * comp_en[c])
        entry[i] = j if rng.random() < e_prob[j] else e_alias[j]
        referrer[i] = comp_rstart[c] + int(rng.random() * comp_rn[c])
        autoplay[i] = rng.random() < autoplay_share[c]


# --- partitions and chunks ---------------------------------------------------------------------

@dataclass
class Run:
    """Everything a run needs to make any partition: built once, shared by every chunk."""
    components: list
    population: Population
    plan: ArrivalPlan
    compiled: CompiledScenarios
    seed: int
    scripts: "ScriptTemplates"
    choosers: Choosers
    actions_per_session: float = 6.0   # running estimate, sizes the next chunk's action buffers


def prepare_run(components, seed: int, *, sessions: int | None = None, days: float | None = None,
                population: Population | None = None, partition_sessions: int | None = None) -> Run:
    """Components, population, arrival plan and compiled scenarios of a run (`partition_sessions`:
    see `plan_arrivals`)."""
    from .script import compile_scripts

    components = as_components(components)
    population = population or build_population(components, seed)
    scripts = compile_scripts(components, population)
    if sessions is None and all(c.scenario.script for c in components):
        sessions = scripts.sessions_per_cycle   # a scripted run plays each script `repeat` times
    sizing = {} if partition_sessions is None else {"partition_sessions": partition_sessions}
    plan = plan_arrivals(components, population, seed, sessions=sessions, days=days, **sizing)
    return Run(components=components, population=population, plan=plan,
               compiled=compile_scenarios(components, population), seed=seed, scripts=scripts,
               choosers=build_choosers(plan, population))


def chunk_partitions(plan: ArrivalPlan, chunk_size: int) -> list[range]:
    """Consecutive partitions grouped so each chunk holds at least `chunk_size` sessions (the last: the rest)."""
    totals = plan.part_counts.sum(axis=1)
    chunks, start, acc = [], 0, 0
    for p, n in enumerate(totals.tolist()):
        acc += n
        if acc >= chunk_size:
            chunks.append(range(start, p + 1))
            start, acc = p + 1, 0
    if start < len(totals):
        chunks.append(range(start, len(totals)))
    return chunks


def _partition(run: Run, p: int, S: dict, row0: int, actions: np.ndarray, k0: int) -> tuple[int, np.ndarray]:
    """Write partition p's sessions into rows row0.. of the chunk columns S and its actions from
    row k0 of `actions` (float64 [row, ACTION_COLUMNS]); returns the partition's action count and
    the action rows (a larger copy when they did not fit)."""
    plan, pop, comp_arr = run.plan, run.population, run.compiled
    rng = np.random.default_rng(np.random.SeedSequence(run.seed, spawn_key=(MODEL_KEY, p)))
    times, cells = partition_arrivals(plan, p, rng)
    n = len(times)
    rows = slice(row0, row0 + n)
    cell_component = plan.cell_component.astype(np.int64)
    comp = cell_component[cells]
    viewer, entry, referrer = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    autoplay, returning = S["autoplay"][rows], S["returning"][rows]
    ch = run.choosers
    run_s = max(plan.seconds, 1.0)
    min_gap = np.array([c.scenario.audience.returning.min_gap_s / run_s for c in run.components])
    draw_context(rng, cells.astype(np.int64), cell_component, (times - plan.start) / run_s, min_gap,
                 comp_arr.params[:, P_AUTOPLAY].copy(), ch.cell_vstart, ch.cell_vn, ch.cell_volume, ch.v_prob,
                 ch.v_alias, ch.v_share, ch.comp_estart, ch.comp_en, ch.e_prob, ch.e_alias, ch.comp_rstart,
                 ch.comp_rn, viewer, entry, referrer, autoplay, returning)
    vw = pop.viewers
    ua = vw.user_agent[viewer]
    user = vw.user_id[viewer]
    scripted = S["scripted"][rows]
    scripted[:] = -1
    tmpl_rows = np.full(n, -1, np.int64)
    run.scripts.assign(plan, p, cells, comp, rng, pop, entry, ua, user, scripted, tmpl_rows)
    duration = pop.catalog.durations[entry]
    live = pop.catalog.live[entry]
    device = pop.pools.ua_device[ua].astype(np.int64)
    first = S["first_action"][rows]
    while True:
        walker = np.random.default_rng(np.random.SeedSequence(run.seed, spawn_key=(MODEL_KEY, p, 1)))
        k = walk_sessions(walker, comp, device, duration, live, autoplay, run.scripts.rows, tmpl_rows,
                          run.scripts.start, run.scripts.length, run.scripts.outcome, comp_arr.params,
                          comp_arr.dists, comp_arr.tables, comp_arr.cues, comp_arr.ladders, comp_arr.languages,
                          row0, actions[k0:], S["intended_fraction"][rows], S["impaired"][rows], S["outcome"][rows],
                          first, S["n_actions"][rows])
        if k0 + k <= len(actions):
            break
        # full: grow the rows, keep what earlier partitions wrote, walk this one again
        grown = np.empty((int((k0 + k) * 1.5) + 1024, actions.shape[1]))
        grown[:k0] = actions[:k0]
        actions = grown
    first += k0
    ip = vw.ip[viewer]
    S["session_seq"][rows] = plan.part_first[p] + np.arange(n, dtype=np.int64)
    S["scenario"][rows] = comp
    S["viewer"][rows] = viewer
    S["entry"][rows] = entry
    S["duration"][rows] = duration
    S["live"][rows] = live
    S["start"][rows] = times
    S["tz_offset_min"][rows] = vw.tz_offset_min[viewer]
    S["device"][rows] = device
    S["os"][rows] = pop.pools.ua_os[ua]
    S["browser"][rows] = pop.pools.ua_browser[ua]
    S["country"][rows] = pop.pools.ip_country[ip]
    S["user_agent"][rows] = ua
    S["ip"][rows] = ip
    S["user_id"][rows] = user
    S["referrer"][rows] = referrer
    return k, actions


@njit(cache=True)
def _split_rows(rows, n, session, kind, t, pos, value, ad_pos, ad_index, bitrate, screen, sound, tab, speed):
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


def make_chunk(run: Run, partitions: range) -> SessionChunk:
    """One SessionChunk from consecutive partitions, written straight into the chunk's columns."""
    n_total = int(run.plan.part_counts[partitions].sum())
    S = {name: np.empty(n_total, dtype) for name, dtype in SESSION_COLUMNS.items()}
    # room for the actions at the rate seen so far in this run (a full buffer grows and retries)
    rows = np.empty((int(run.actions_per_session * 1.2 * n_total) + 1024, len(ACTION_COLUMNS)))
    row0 = k0 = 0
    for p in partitions:
        k, rows = _partition(run, p, S, row0, rows, k0)
        k0 += k
        row0 += int(run.plan.part_counts[p].sum())
    if n_total:
        run.actions_per_session = max(run.actions_per_session, k0 / n_total)
    actions = {name: np.empty(k0, dtype) for name, dtype in ACTION_COLUMNS.items()}
    _split_rows(rows, k0, *actions.values())
    truth = timeline_truth(actions["kind"], actions["t"], actions["pos"], actions["value"], S["first_action"],
                           S["n_actions"])
    for name, values in zip(TRUTH_SESSION_COLUMNS, truth):
        S[name] = values
    seed = np.random.SeedSequence(run.seed, spawn_key=(CHUNK_KEY, partitions.start))
    return SessionChunk(sessions=S, actions=actions, scenarios=[c.scenario for c in run.components],
                        scenario_names=[c.name for c in run.components], population=run.population, seed=seed)


def generate_sessions(components, seed: int, *, sessions: int | None = None, days: float | None = None,
                      chunk_size: int = 65536, worker: tuple[int, int] | None = None,
                      population: Population | None = None) -> Iterator[SessionChunk]:
    """Stream the sessions of a run as SessionChunks in time order.

    `components`: a Scenario, a list of Scenarios, or the loader's Components. `sessions`
    fixes the total volume (default: the clock's sessions_per_day x days); `days` overrides
    the clock's run length. `worker=(i, n)` yields only the chunks k with k % n == i.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    run = prepare_run(components, seed, sessions=sessions, days=days, population=population)
    for k, parts in enumerate(chunk_partitions(run.plan, chunk_size)):
        if worker is None or k % worker[1] == worker[0]:
            yield make_chunk(run, parts)
