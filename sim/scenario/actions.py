"""What a player can do and how a session can end: the words scripts and timelines share.

The scenario language's scripted sessions are written in these actions
(`sim.scenario.script`), and the player model's timelines are made of them
(`sim.player.timeline`, which the rest of the pipeline imports them from).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Action(IntEnum):
    """What a player does. `pos` is the content playhead (s) when the action happens."""

    LOAD = 1  # player loaded the entry (page view with a player)
    PLAY_REQUEST = 2  # play pressed or autoplay requested
    PLAYING = 3  # first content frame (the join); value = startup seconds
    PAUSE = 4
    RESUME = 5  # playback continues after a PAUSE
    SEEK = 6  # pos = playhead before the seek, value = target position
    STALL_START = 7  # rebuffer begins (content playback)
    STALL_END = 8  # value = stall seconds
    ENTER_FULLSCREEN = 9
    EXIT_FULLSCREEN = 10
    SPEED = 11  # value = new playback rate
    CAPTIONS = 12  # value = caption language index (into SessionChunk.caption_languages)
    FLAVOR_SWITCH = 13  # ABR rendition change; value = new bitrate kbps
    SOURCE_SELECTED = 14  # manual rendition change; value = new bitrate kbps
    SHARE = 15
    SHARE_NETWORK = 16
    DOWNLOAD = 17
    REPORT = 18
    RELATED_OPEN = 19
    RELATED_SELECTED = 20
    INFO = 21
    ENDED = 22  # playhead reached the end of the content
    REPLAY = 23  # playback restarts at 0 after ENDED
    ERROR = 24  # player error; value = error code. Fatal: QUIT follows
    QUIT = 25  # viewer leaves (always the last action of a session)
    SOUND = 26  # value = new sound mode (1 muted, 2 on)
    AD_BREAK_START = 30  # a pod begins; value = number of ads in the pod
    AD_IMPRESSION = 31  # an ad is requested / its slot shown
    AD_START = 32  # ad creative starts playing; value = ad length s
    AD_FIRST_QUARTILE = 33
    AD_MIDPOINT = 34
    AD_THIRD_QUARTILE = 35
    AD_COMPLETE = 36
    AD_SKIP = 37
    AD_CLICK = 38
    AD_ERROR = 39  # ad failed to play (or no fill)
    AD_BREAK_END = 40
    OVERLAY_START = 41  # overlay (non-linear) ad shown over content
    OVERLAY_CLICK = 42
    BUMPER_START = 43  # pre or post bumper (ad_pos says which); value = length s
    BUMPER_CLICK = 44


class AdPosition(IntEnum):
    NONE = 0
    PREROLL = 1
    MIDROLL = 2
    POSTROLL = 3
    OVERLAY = 4


class Outcome(IntEnum):
    """How a session ended (ground truth; no beacon carries it)."""

    NO_PLAY = 0  # loaded, never requested play
    START_FAILURE = 1  # error before the first frame
    ABANDONED_STARTUP = 2  # left while waiting for the first frame
    ABANDONED_AD = 3  # left during the pre-roll pod
    PARTIAL = 4  # played, left before the end
    COMPLETED = 5  # reached the end of the content
    STALL_QUIT = 6  # left during or right after a rebuffer
    PLAYBACK_ERROR = 7  # fatal error mid-stream
    AD_BREAK_QUIT = 8  # left at a mid-roll break


class Device(IntEnum):
    DESKTOP = 0
    MOBILE = 1
    TABLET = 2
    CTV = 3


# Per-action columns, all of one length, grouped by session and ordered by `t` within one.
ACTION_COLUMNS: dict[str, type] = {
    "session": np.int32,  # row in the session columns of this chunk
    "kind": np.int8,  # Action
    "t": np.float64,  # wall-clock offset from the session's LOAD, s (never decreases)
    "pos": np.float64,  # content playhead, s, within [0, duration]
    "value": np.float64,  # action-specific (see Action)
    "ad_pos": np.int8,  # AdPosition of an ad/bumper action, else 0
    "ad_index": np.int8,  # 0-based index of the ad in its pod
    "bitrate": np.float32,  # current content rendition, kbps
    "screen": np.int8,  # 1 normal, 2 fullscreen (state after the action)
    "sound": np.int8,  # 1 muted, 2 on
    "tab": np.int8,  # 1 hidden, 2 focused
    "speed": np.float32,  # current playback rate
}
