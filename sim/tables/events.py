"""The events table's columns and types: one row per beacon, the same in event files, the collector's store
and what the metrics read.

Wire fields keep their wire names; names that differ only by case are one column (DuckDB
identifiers are case-insensitive), so v7's `uiConfId` lands in `uiconfId`. Ground truth
(`truth_*`) comes from the session; no beacon carries it. A run's schema holds the wire fields
of the protocols it sends (`PROTOCOL_FIELDS`); readers treat an absent column as null.
Building rows of it is `sim.sinks.events`.
"""

from __future__ import annotations

import pyarrow as pa

STRING = pa.dictionary(pa.int32(), pa.string())
INTEGER = pa.int32()
BIGINT = pa.int64()
DOUBLE = pa.float64()
BOOLEAN = pa.bool_()

# Wire fields of both protocols, in contract order. A field a beacon does not carry is null.
WIRE_FIELDS: dict[str, pa.DataType] = {
    "eventType": INTEGER,
    # legacy stats.collect (KalturaStatsEvent)
    "clientVer": STRING,
    "eventTimestamp": BIGINT,
    "sessionId": STRING,
    "partnerId": INTEGER,
    "entryId": STRING,
    "widgetId": STRING,
    "uiconfId": INTEGER,
    "userId": STRING,
    "currentPoint": DOUBLE,
    "duration": DOUBLE,
    "seek": BOOLEAN,
    "referrer": STRING,
    "isFirstInSession": BOOLEAN,
    "historyEvents": STRING,
    "objectType": STRING,
    "applicationId": STRING,
    "contextId": INTEGER,
    "featureType": INTEGER,
    "playlistId": STRING,
    # KAVA analytics.trackEvent
    "eventIndex": INTEGER,
    "position": DOUBLE,
    "playTimeSum": DOUBLE,
    "bufferTime": DOUBLE,
    "bufferTimeSum": DOUBLE,
    "joinTime": DOUBLE,
    "canPlay": DOUBLE,
    "actualBitrate": DOUBLE,
    "averageBitrate": DOUBLE,
    "soundMode": INTEGER,
    "tabMode": INTEGER,
    "screenMode": INTEGER,
    "viewabilityMode": INTEGER,
    "targetPosition": DOUBLE,
    "errorCode": INTEGER,
    "errorPosition": INTEGER,
    "errorDetails": STRING,
    "playbackType": STRING,
    "deliveryType": STRING,
    "clientTag": STRING,
    "playbackSpeed": DOUBLE,
    "caption": STRING,
    "sessionStartTime": DOUBLE,
    "playerSkin": INTEGER,
    "kalturaApplication": STRING,
    "socialNetwork": STRING,
    "reportType": INTEGER,
    "playerJSLoadTime": DOUBLE,
    "audioLanguage": STRING,
    "captionsLanguage": STRING,
    "networkConnectionType": STRING,
    "droppedFramesRatio": DOUBLE,
    "forwardBufferHealth": DOUBLE,
    "targetBuffer": DOUBLE,
    "bandwidth": DOUBLE,
    "segmentDownloadTime": DOUBLE,
    "manifestDownloadTime": DOUBLE,
    "networkConnectionOverhead": DOUBLE,
    "loadedPlugins": STRING,
    # request-level parameters
    "format": INTEGER,
    "apiVersion": STRING,
    "hasKanalony": BOOLEAN,
    "ignoreNull": INTEGER,
    "expiry": INTEGER,
    "has_ks": BOOLEAN,
}

# The wire fields each protocol can send: a run's file holds the fields of the protocols it
# sends (and any other column its policies send), so a legacy-only file carries no column
# that only KAVA fills. Fixed by the protocols, not by the data: the schema stays the same
# for every seed.
_LEGACY_ONLY = (
    "eventTimestamp",
    "widgetId",
    "currentPoint",
    "duration",
    "seek",
    "isFirstInSession",
    "historyEvents",
    "objectType",
    "applicationId",
    "contextId",
    "featureType",
    "playlistId",
    "hasKanalony",
    "ignoreNull",
    "expiry",
)
_SHARED = (
    "eventType",
    "clientVer",
    "sessionId",
    "partnerId",
    "entryId",
    "uiconfId",
    "userId",
    "referrer",
    "clientTag",
    "format",
    "apiVersion",
    "has_ks",
)
_KAVA_FIRST, _KAVA_LAST = "eventIndex", "loadedPlugins"
_names_in_order = list(WIRE_FIELDS)
PROTOCOL_FIELDS: dict[str, frozenset[str]] = {
    "legacy": frozenset(_LEGACY_ONLY + _SHARED),
    "kava": frozenset(
        _SHARED + tuple(_names_in_order[_names_in_order.index(_KAVA_FIRST) : _names_in_order.index(_KAVA_LAST) + 1])
    ),
}

# Request context: the headers the beacon goes out with (cookie: the legacy `uv` cookie).
CONTEXT_COLUMNS: dict[str, pa.DataType] = {
    "user_agent": STRING,
    "client_ip": STRING,
    "page_url": STRING,
    "cookie": STRING,
}

# Context every row has (from the session's identity); Parquet stores such columns as required,
# without the definition levels a nullable column costs per row. Truth columns always are set.
ALWAYS_SET = frozenset({"user_agent", "client_ip", "page_url"})

TRUTH_COLUMNS: dict[str, pa.DataType] = {
    "truth_scenario": STRING,
    "truth_session_seq": BIGINT,
    "truth_viewer": BIGINT,
    "truth_returning": BOOLEAN,
    "truth_device": STRING,
    "truth_os": STRING,
    "truth_browser": STRING,
    "truth_country": STRING,
    "truth_autoplay": BOOLEAN,
    "truth_intended_fraction": DOUBLE,
    "truth_impaired": BOOLEAN,
    "truth_outcome": STRING,
    "truth_entry_duration": DOUBLE,
    "truth_live": BOOLEAN,
    # read off the session's timeline (sim.player.truth): seconds; NaN startup/position = no frame shown
    "truth_play_s": DOUBLE,
    "truth_ad_play_s": DOUBLE,
    "truth_stall_s": DOUBLE,
    "truth_startup_s": DOUBLE,
    "truth_max_position_s": DOUBLE,
}

# A ks is never stored in clear: a `ks` column becomes `has_ks`.
SECRET_COLUMNS = {"ks": "has_ks"}
