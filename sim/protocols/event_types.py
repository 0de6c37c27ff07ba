"""Event type ids and names of both protocols: the one source for labels (Locust rows, the live page, reports) and ids.

Legacy ids from KalturaStatsEventType (kaltura-protocols.md a.7); KAVA ids and names as
the v7 kava plugin spells them (c.2), plus the server-side and opt-in ad events.
"""

# dense tables, as the fact sheet lists them
# fmt: off
LEGACY_EVENT_NAMES = {
    1: "WIDGET_LOADED", 2: "MEDIA_LOADED", 3: "PLAY", 4: "PLAY_REACHED_25", 5: "PLAY_REACHED_50",
    6: "PLAY_REACHED_75", 7: "PLAY_REACHED_100", 8: "OPEN_EDIT", 9: "OPEN_VIRAL", 10: "OPEN_DOWNLOAD",
    11: "OPEN_REPORT", 12: "BUFFER_START", 13: "BUFFER_END", 14: "OPEN_FULL_SCREEN",
    15: "CLOSE_FULL_SCREEN", 16: "REPLAY", 17: "SEEK", 18: "OPEN_UPLOAD", 19: "SAVE_PUBLISH",
    20: "CLOSE_EDITOR", 21: "PRE_BUMPER_PLAYED", 22: "POST_BUMPER_PLAYED", 23: "BUMPER_CLICKED",
    24: "PREROLL_STARTED", 25: "MIDROLL_STARTED", 26: "POSTROLL_STARTED", 27: "OVERLAY_STARTED",
    28: "PREROLL_CLICKED", 29: "MIDROLL_CLICKED", 30: "POSTROLL_CLICKED", 31: "OVERLAY_CLICKED",
    32: "PREROLL_25", 33: "PREROLL_50", 34: "PREROLL_75", 35: "MIDROLL_25", 36: "MIDROLL_50",
    37: "MIDROLL_75", 38: "POSTROLL_25", 39: "POSTROLL_50", 40: "POSTROLL_75",
}

KAVA_EVENT_NAMES = {
    1: "IMPRESSION", 2: "PLAY_REQUEST", 3: "PLAY", 4: "RESUME", 11: "PLAY_REACHED_25_PERCENT",
    12: "PLAY_REACHED_50_PERCENT", 13: "PLAY_REACHED_75_PERCENT", 14: "PLAY_REACHED_100_PERCENT",
    15: "PLAY_REACHED_90_PERCENT", 21: "SHARE_CLICKED", 22: "SHARE_NETWORK", 23: "DOWNLOAD",
    24: "REPORT_CLICKED", 25: "REPORT_SUBMITTED", 31: "ENTER_FULLSCREEN", 32: "EXIT_FULLSCREEN",
    33: "PAUSE", 34: "REPLAY", 35: "SEEK", 36: "RELATED_OPEN", 37: "RELATED_SELECTED",
    38: "CAPTIONS", 39: "SOURCE_SELECTED", 40: "INFO", 41: "SPEED", 42: "AUDIO_SELECTED",
    43: "FLAVOR_SWITCH", 45: "BUFFER_START", 46: "BUFFER_END", 98: "ERROR", 99: "VIEW",
    100: "PLAY_MANIFEST", 10002: "BUTTON_CLICKED", 10003: "PAGE_LOAD",
    8999: "AD_IMPRESSION", 9000: "AD_STARTED", 9001: "AD_SKIPPED", 9002: "AD_FIRST_QUARTILE",
    9003: "AD_MID_POINT", 9004: "AD_THIRD_QUARTILE", 9005: "AD_COMPLETED", 9006: "AD_ERROR",
    9007: "AD_BUFFER_START", 9008: "AD_BUFFER_END", 9009: "AD_CLICKED",
}

# fmt: on

EVENT_NAMES = {"legacy": LEGACY_EVENT_NAMES, "kava": KAVA_EVENT_NAMES}

# Ids by name, for code that counts or filters events ("PLAY" -> 3): the names above are the one source.
LEGACY_EVENT_IDS = {name: code for code, name in LEGACY_EVENT_NAMES.items()}
KAVA_EVENT_IDS = {name: code for code, name in KAVA_EVENT_NAMES.items()}
EVENT_IDS = {"legacy": LEGACY_EVENT_IDS, "kava": KAVA_EVENT_IDS}

# Legacy event types the warehouse ETL discards (a.7): widget loaded, buffer start, buffer end. The
# collector flags them, the metrics leave them out of the warehouse's counts.
LEGACY_DWH_DROPPED = tuple(LEGACY_EVENT_IDS[n] for n in ("WIDGET_LOADED", "BUFFER_START", "BUFFER_END"))


def event_label(protocol: str | None, event_type: int | str | None) -> str:
    """`3 PLAY`: an event type (an id, or its text as counts key it) with its name beside it, when it has one."""
    if event_type is None or event_type == "null":
        return "?"
    try:
        name = EVENT_NAMES.get(protocol or "", {}).get(int(event_type))
    except (TypeError, ValueError):
        name = None
    return f"{event_type} {name}" if name else str(event_type)
