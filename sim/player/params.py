"""Scenarios compiled for the session kernel: one record of named parameters per component.

`compile_scenarios` turns each component's scenario into a row of `PARAMS` (a NumPy
structured dtype: numba reads a field by name at the cost of a fixed offset), its
distributions into rows of `sim.scenario.distributions` (indices D_*), and its cue points,
bitrate ladder and caption languages into fixed-width arrays. Rates are per second here,
whatever unit the scenario language uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.population import Population
from sim.scenario.distributions import DIST_ROW, compile_dist

N_BUCKETS = 16  # watched_fraction.complete buckets by entry length
N_CUES = 64  # mid-roll cue points
N_LADDER = 16  # bitrate ladder rungs
N_LANGS = 16  # caption languages
N_AD_BUCKETS = 8  # pre-roll abandonment buckets by ad length
DEVICES = ("desktop", "mobile", "tablet", "ctv")  # per-device fields: [Device]
AD_POSITIONS = 3  # quartiles: [ad position - 1, quartile] for pre, mid, post

MID_NONE, MID_FRACTIONS, MID_SECONDS = 0, 1, 2  # `mid_rule`: how cue points read

# Every field is float64 (counts and flags too), so the kernel's arithmetic is the same whatever it reads.
PARAMS = np.dtype(
    [
        # start of a session
        ("play_rate", "f8"),
        ("autoplay", "f8"),
        ("autoplay_play_rate", "f8"),
        ("muted_autoplay", "f8"),
        ("unmute_per_s", "f8"),
        ("start_failure", "f8"),
        ("grace", "f8"),
        ("abandon", "f8", len(DEVICES)),
        # watched fraction F: early bounce, complete by entry length bucket, else the Beta middle
        ("bounce", "f8"),
        ("n_buckets", "f8"),
        ("bucket_max", "f8", N_BUCKETS),
        ("bucket_share", "f8", N_BUCKETS),
        # playback
        ("impaired", "f8"),
        ("stall_clean", "f8"),
        ("stall_impaired", "f8"),
        ("quit_after_stall", "f8"),
        ("pause_per_s", "f8"),
        ("backward", "f8"),
        ("fullscreen", "f8", len(DEVICES)),
        ("speed_share", "f8"),
        ("captions_share", "f8"),
        ("n_langs", "f8"),
        ("click_share", "f8"),
        ("click_share_network", "f8"),
        ("click_download", "f8"),
        ("click_report", "f8"),
        ("click_related", "f8"),
        ("click_related_selected", "f8"),
        ("click_info", "f8"),
        ("flavor_per_s", "f8"),
        ("manual_source", "f8"),
        ("replay", "f8"),
        ("error_mid", "f8"),
        ("tab_per_s", "f8"),
        ("loop_share", "f8"),
        ("second_loop", "f8"),
        ("n_ladder", "f8"),
        # ads
        ("has_pre", "f8"),
        ("pre_share", "f8"),
        ("pre_completion", "f8"),
        ("pre_abandon", "f8", len(DEVICES)),
        ("pre_ab_n", "f8"),
        ("pre_ab_max", "f8", N_AD_BUCKETS),
        ("pre_ab_share", "f8", N_AD_BUCKETS),
        ("has_mid", "f8"),
        ("mid_completion", "f8"),
        ("mid_break_exit", "f8"),
        ("mid_rule", "f8"),
        ("mid_every", "f8"),
        ("mid_every_from", "f8"),
        ("mid_min_duration", "f8"),
        ("n_cues", "f8"),
        ("has_post", "f8"),
        ("post_share", "f8"),
        ("post_completion", "f8"),
        ("overlay_share", "f8"),
        ("overlay_click", "f8"),
        ("bumper_pre", "f8"),
        ("bumper_post", "f8"),
        ("bumper_click", "f8"),
        ("ad_start_rate", "f8"),
        ("skippable_after", "f8"),
        ("skip_rate", "f8"),
        ("ad_click", "f8", len(DEVICES)),
        ("quartiles", "f8", (AD_POSITIONS, 3)),
    ]
)

# Rows of a component's compiled distributions (float64 [N_DISTS, DIST_ROW]).
(
    D_STARTUP,
    D_BOUNCE,
    D_MIDDLE,
    D_STALL,
    D_PAUSE,
    D_SEEKS,
    D_BACK,
    D_FWD,
    D_SPEED,
    D_AD_LEN,
    D_PRE_SIZE,
    D_MID_SIZE,
    D_POST_SIZE,
    D_BUMPER_LEN,
) = range(14)
N_DISTS = 14


@dataclass
class CompiledScenarios:
    """Every component's parameters as arrays the kernel reads (row c = component c)."""

    params: np.ndarray  # PARAMS [component]
    dists: np.ndarray  # float64 [component, N_DISTS, DIST_ROW]
    tables: np.ndarray  # float64: values and cumulative weights of table distributions
    cues: np.ndarray  # float64 [component, N_CUES] mid-roll cue points (fractions or seconds)
    ladders: np.ndarray  # float64 [component, N_LADDER] bitrate ladder kbps, ascending
    languages: np.ndarray  # float64 [component, N_LANGS] caption language indices (population)


def compile_scenarios(components, population: Population) -> CompiledScenarios:
    """Turn each component's scenario into its `PARAMS` record and its distribution rows (D_*)."""
    n = len(components)
    params = np.zeros(n, PARAMS)
    dists = np.zeros((n, N_DISTS, DIST_ROW))
    cues = np.zeros((n, N_CUES))
    ladders = np.zeros((n, N_LADDER))
    languages = np.zeros((n, N_LANGS))
    tables: list[float] = []
    for c, comp in enumerate(components):
        P = params[c]  # a view: assigning a field writes the array
        _behaviour(comp, P)
        langs = population.components[c].caption_languages
        P["n_langs"] = min(len(langs), N_LANGS)
        languages[c, : min(len(langs), N_LANGS)] = langs[:N_LANGS]
        _ads(comp, P, cues[c])
        ladder = sorted(r * comp.scenario.player.bitrate_scale for r in comp.scenario.player.bitrate_ladder_kbps)
        ladder = ladder[:N_LADDER]
        P["n_ladder"] = len(ladder)
        ladders[c, : len(ladder)] = ladder
        for d, spec in _dist_specs(comp.scenario):
            dists[c, d] = compile_dist(spec, tables)
    return CompiledScenarios(
        params=params,
        dists=dists,
        tables=np.asarray(tables + [0.0], float),
        cues=cues,
        ladders=ladders,
        languages=languages,
    )


def _behaviour(comp, P) -> None:
    """The viewer's behaviour fields of component `comp` into its record P."""
    b = comp.scenario.behaviour
    P["play_rate"], P["autoplay"], P["autoplay_play_rate"] = b.play_rate, b.autoplay, b.autoplay_play_rate
    P["muted_autoplay"], P["unmute_per_s"] = b.sound.muted_autoplay_share, b.sound.unmute_per_min / 60
    P["start_failure"], P["grace"] = b.start_failure, b.startup.grace_s
    wf = b.watched_fraction
    P["bounce"] = wf.early_bounce
    buckets = (
        [(None, wf.complete)]
        if isinstance(wf.complete, (int, float))
        else [(k.max_duration_s, k.share) for k in wf.complete]
    )
    if len(buckets) > N_BUCKETS:
        raise ValueError(f"{comp.name}: behaviour.watched_fraction.complete: at most {N_BUCKETS} buckets")
    P["n_buckets"] = len(buckets)
    for j, (limit, share) in enumerate(buckets):
        P["bucket_max"][j] = np.inf if limit is None else limit
        P["bucket_share"][j] = share
    rb = b.rebuffering
    P["impaired"], P["stall_clean"], P["stall_impaired"] = (
        rb.impaired_share,
        rb.clean_per_min / 60,
        rb.impaired_per_min / 60,
    )
    P["quit_after_stall"], P["pause_per_s"], P["backward"] = (
        rb.quit_after_stall,
        b.pauses.per_min / 60,
        b.seeks.backward_share,
    )
    for d, name in enumerate(DEVICES):
        P["abandon"][d] = getattr(b.startup.abandon_per_s, name)
        P["fullscreen"][d] = getattr(b.fullscreen, name)
    P["speed_share"], P["captions_share"] = b.speed.share, b.captions.share
    ck = b.clicks
    (
        P["click_share"],
        P["click_share_network"],
        P["click_download"],
        P["click_report"],
        P["click_related"],
        P["click_related_selected"],
        P["click_info"],
    ) = (ck.share, ck.share_network, ck.download, ck.report, ck.related, ck.related_selected, ck.info)
    P["flavor_per_s"] = b.flavor_switch_per_min * b.flavor_switch_scale / 60
    P["manual_source"], P["replay"] = b.manual_source_share, b.replay_after_end
    P["loop_share"], P["second_loop"] = b.loop.share, b.loop.second_loop
    P["error_mid"], P["tab_per_s"] = b.error_mid_stream, b.tab_hidden_per_min / 60


def _ads(comp, P, cues: np.ndarray) -> None:
    """The ad fields of component `comp` into its record P, and its mid-roll cue points into `cues`."""
    ads = comp.scenario.ads
    for d, name in enumerate(DEVICES):
        P["ad_click"][d] = getattr(ads.click_rate, name)
        pre_ab = ads.preroll.abandon_per_ad if ads.preroll is not None else 0.0
        P["pre_abandon"][d] = pre_ab if isinstance(pre_ab, (int, float)) else getattr(pre_ab, name)
    if ads.preroll is not None:
        P["has_pre"], P["pre_share"], P["pre_completion"] = 1, ads.preroll.share, ads.preroll.completion
        by_length = ads.preroll.abandon_by_ad_length or []
        if len(by_length) > N_AD_BUCKETS:
            raise ValueError(f"{comp.name}: ads.preroll.abandon_by_ad_length: at most {N_AD_BUCKETS} buckets")
        P["pre_ab_n"] = len(by_length)
        for j, bucket in enumerate(by_length):
            P["pre_ab_max"][j] = np.inf if bucket.max_length_s is None else bucket.max_length_s
            P["pre_ab_share"][j] = bucket.share
    for j, pod in enumerate((ads.preroll, ads.midroll, ads.postroll)):
        q = pod.quartiles if pod is not None and pod.quartiles is not None else ads.quartiles
        P["quartiles"][j] = (q.first, q.mid, q.third)
    mid = ads.midroll
    if mid is not None:
        P["has_mid"], P["mid_completion"], P["mid_break_exit"] = 1, mid.completion, mid.break_exit
        P["mid_min_duration"] = mid.min_duration_s
        points = mid.at_fractions if mid.at_fractions is not None else mid.at_s
        if mid.every_s is not None:
            P["mid_every"] = mid.every_s
            P["mid_every_from"] = mid.every_s_from_duration_s or 0.0
        if points is not None:
            if len(points) > N_CUES:
                raise ValueError(f"{comp.name}: ads.midroll: at most {N_CUES} cue points")
            P["mid_rule"] = MID_FRACTIONS if mid.at_fractions is not None else MID_SECONDS
            P["n_cues"] = len(points)
            cues[: len(points)] = sorted(points)
        elif mid.every_s is None:  # no rule given: breaks at a third and two thirds (viewing-realism 3.3)
            P["mid_rule"], P["n_cues"] = MID_FRACTIONS, 2
            cues[:2] = (1 / 3, 2 / 3)
    if ads.postroll is not None:
        P["has_post"], P["post_share"], P["post_completion"] = 1, ads.postroll.share, ads.postroll.completion
    P["overlay_share"], P["overlay_click"] = ads.overlay.share, ads.overlay.click_rate
    P["bumper_pre"], P["bumper_post"], P["bumper_click"] = ads.bumpers.pre, ads.bumpers.post, ads.bumpers.click_rate
    P["ad_start_rate"] = ads.start_rate
    P["skippable_after"] = np.inf if ads.skippable_after_s is None else ads.skippable_after_s
    P["skip_rate"] = ads.skip_rate


def _dist_specs(sc):
    """(D_* row, distribution spec) of a scenario, in the order their tables are laid out."""
    b, ads = sc.behaviour, sc.ads
    wf, rb, mid = b.watched_fraction, b.rebuffering, ads.midroll
    return (
        (D_STARTUP, b.startup.time_s),
        (D_BOUNCE, wf.bounce_fraction),
        (D_MIDDLE, wf.middle),
        (D_STALL, rb.stall_s),
        (D_PAUSE, b.pauses.length_s),
        (D_SEEKS, b.seeks.per_play),
        (D_BACK, b.seeks.backward_s),
        (D_FWD, b.seeks.forward_fraction),
        (D_SPEED, b.speed.rates),
        (D_AD_LEN, ads.length_s),
        (D_PRE_SIZE, ads.preroll.size if ads.preroll else 1),
        (D_MID_SIZE, mid.size if mid else 1),
        (D_POST_SIZE, ads.postroll.size if ads.postroll else 1),
        (D_BUMPER_LEN, ads.bumpers.length_s),
    )
