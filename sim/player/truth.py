"""Ground truth read off each session's own timeline: what the viewer really watched.

The beacons of every protocol are made from the same action columns, so these figures are
what a perfect collector would measure. Per session (all seconds of wall-clock time):

* `play_s`: content playing time: from the first frame (PLAYING), REPLAY, RESUME, the end
  of a stall or of a mid-roll break until the next PAUSE, stall, ad break, ENDED, ERROR or
  QUIT. Seeks do not stop it; a desktop tab in the background does not either (the video
  plays on unseen), a mobile one does (the timeline pauses it). At a playback rate other
  than 1 it is the viewer's time, not the content seconds covered.
* `ad_play_s`: linear ads from AD_START to their AD_COMPLETE, AD_SKIP or the viewer's QUIT
  (an ad stopped early with the viewer staying ends where the next ad slot or the break's
  end begins), plus bumpers (their whole length).
* `stall_s`: rebuffering, STALL_START to STALL_END or to the QUIT of a viewer who left in it.
* `startup_s`: the wait for the first content frame (the PLAYING action's value: play
  request to first frame, ads and bumpers excluded); NaN when no frame was shown.
* `max_position_s`: the furthest content position the playhead reached, by playing or by
  seeking (what quartile beacons fire on); NaN when no frame was shown.

    play, ad, stall, startup, furthest = timeline_truth(kind, t, pos, value, first, count)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.player.timeline import Action

_A = {a.name: int(a) for a in Action}
(
    A_PLAYING,
    A_PAUSE,
    A_RESUME,
    A_SEEK,
    A_STALL_START,
    A_STALL_END,
    A_ENDED,
    A_REPLAY,
    A_ERROR,
    A_QUIT,
    A_BREAK_START,
    A_IMPRESSION,
    A_AD_START,
    A_AD_COMPLETE,
    A_AD_SKIP,
    A_BREAK_END,
    A_BUMPER,
) = (
    _A[n]
    for n in (
        "PLAYING",
        "PAUSE",
        "RESUME",
        "SEEK",
        "STALL_START",
        "STALL_END",
        "ENDED",
        "REPLAY",
        "ERROR",
        "QUIT",
        "AD_BREAK_START",
        "AD_IMPRESSION",
        "AD_START",
        "AD_COMPLETE",
        "AD_SKIP",
        "AD_BREAK_END",
        "BUMPER_START",
    )
)

# The session columns this module fills (float64), in the order timeline_truth returns them.
TRUTH_SESSION_COLUMNS = ("play_s", "ad_play_s", "stall_s", "startup_s", "max_position_s")


@njit(cache=True)
def timeline_truth(kind, t, pos, value, first, count):
    """Per session (CSR rows first[i], count[i] of the action columns): play, ad, stall and
    startup seconds and the furthest position reached (see the module docstring)."""
    n = len(first)
    play = np.zeros(n)
    ad = np.zeros(n)
    stall = np.zeros(n)
    startup = np.full(n, np.nan)
    furthest = np.full(n, np.nan)
    for i in range(n):
        started = paused = stalled = in_break = in_ad = ended = done = False
        t_prev = 0.0
        a0 = first[i]
        for a in range(a0, a0 + count[i]):
            ta = t[a]
            if not done and ta > t_prev:
                span = ta - t_prev
                if started and not (paused or stalled or in_break or ended):
                    play[i] += span
                if stalled:
                    stall[i] += span
                if in_ad:
                    ad[i] += span
            t_prev = ta
            k = kind[a]
            if started and not done and (pos[a] > furthest[i] or np.isnan(furthest[i])):
                furthest[i] = pos[a]
            if k == A_PLAYING:
                if not started:
                    started = True
                    startup[i] = value[a]
                    furthest[i] = pos[a]
            elif k == A_PAUSE:
                paused = True
            elif k == A_RESUME:
                paused = False
            elif k == A_SEEK:
                if started and value[a] > furthest[i]:
                    furthest[i] = value[a]
            elif k == A_STALL_START:
                stalled = True
            elif k == A_STALL_END:
                stalled = False
            elif k == A_BREAK_START:
                in_break = True
            elif k == A_BREAK_END:
                in_break = in_ad = False
            elif k == A_IMPRESSION:
                # an ad the viewer stopped early (and stayed) has no end action: the next slot ends it
                in_ad = False
            elif k == A_AD_START:
                in_ad = True
            elif k == A_AD_COMPLETE or k == A_AD_SKIP:
                in_ad = False
            elif k == A_BUMPER:
                ad[i] += value[a]
            elif k == A_ENDED:
                ended = True
            elif k == A_REPLAY:
                ended = False
                paused = False
            elif k == A_ERROR or k == A_QUIT:
                done = True
    return play, ad, stall, startup, furthest
