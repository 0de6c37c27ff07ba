"""Breakdown dimensions as SQL expressions: device, OS, browser (user agent or truth), country, time.

Kaltura derives device, OS and browser from the user agent and country from IP
geolocation. We do the same with a small user-agent classifier (below) and the GeoLite2
country table of sim/geo.py, except where the generator's ground-truth columns
(`truth_device`, `truth_os`, `truth_browser`, `truth_country`) are present: then those are
used, and the report says so. Country without truth: the collector's `geo_country`, else
`client_ip` geolocated here (rows of a store older than `geo_country`, event files).

The classifier, first match wins (case-insensitive substrings of the user agent):

device   ctv:    SmartTV, Smart-TV, SMART-TV, Roku, AppleTV, CrKey, Tizen, Web0S/webOS, BRAVIA,
                 "; AFT" (Fire TV), HbbTV, PlayStation, Xbox
         tablet: iPad, Tablet, Android without Mobile, Kindle, Silk
         mobile: Mobi, iPhone, iPod, Android, Windows Phone
         desktop: anything else that is not empty
os       ios (iPhone/iPad/iPod), android, tvos (AppleTV), chromeos (CrOS), windows,
         macos (Macintosh/Mac OS X), linux, other
browser  edge (Edg/, Edge/, EdgA, EdgiOS), samsung (SamsungBrowser), opera (OPR/, Opera),
         firefox (Firefox/, FxiOS), chrome (Chrome/, CriOS, Chromium), safari (Safari/ with
         Version/), other
"""

from __future__ import annotations

UNKNOWN = "unknown"


def _like_any(column: str, needles: list[str]) -> str:
    return "(" + " or ".join(f"{column} ilike '%{n}%'" for n in needles) + ")"


# User-Agent words of connected TVs and consoles
CTV_MARKS = [
    "smarttv",
    "smart-tv",
    "roku",
    "appletv",
    "crkey",
    "tizen",
    "web0s",
    "webos",
    "bravia",
    "; aft",
    "hbbtv",
    "playstation",
    "xbox",
]


def ua_device(ua: str = "user_agent") -> str:
    return (
        f"case when {ua} is null or {ua} = '' then '{UNKNOWN}'"
        f" when {_like_any(ua, CTV_MARKS)} then 'ctv'"
        f" when {_like_any(ua, ['ipad', 'tablet', 'kindle', 'silk'])}"
        f" or ({ua} ilike '%android%' and {ua} not ilike '%mobi%') then 'tablet'"
        f" when {_like_any(ua, ['mobi', 'iphone', 'ipod', 'android', 'windows phone'])} then 'mobile'"
        f" else 'desktop' end"
    )


def ua_os(ua: str = "user_agent") -> str:
    return (
        f"case when {ua} is null or {ua} = '' then '{UNKNOWN}'"
        f" when {_like_any(ua, ['iphone', 'ipad', 'ipod'])} then 'ios'"
        f" when {ua} ilike '%android%' then 'android'"
        f" when {ua} ilike '%appletv%' then 'tvos'"
        f" when {ua} ilike '%cros%' then 'chromeos'"
        f" when {ua} ilike '%windows%' then 'windows'"
        f" when {_like_any(ua, ['macintosh', 'mac os x'])} then 'macos'"
        f" when {ua} ilike '%linux%' then 'linux'"
        f" else 'other' end"
    )


def ua_browser(ua: str = "user_agent") -> str:
    return (
        f"case when {ua} is null or {ua} = '' then '{UNKNOWN}'"
        f" when {_like_any(ua, ['edg/', 'edge/', 'edga/', 'edgios/'])} then 'edge'"
        f" when {ua} ilike '%samsungbrowser%' then 'samsung'"
        f" when {_like_any(ua, ['opr/', 'opera'])} then 'opera'"
        f" when {_like_any(ua, ['firefox/', 'fxios/'])} then 'firefox'"
        f" when {_like_any(ua, ['chrome/', 'crios/', 'chromium/'])} then 'chrome'"
        f" when {ua} ilike '%safari/%' and {ua} ilike '%version/%' then 'safari'"
        f" else 'other' end"
    )


UA_CLASSIFIERS = {"device": ua_device, "os": ua_os, "browser": ua_browser}
BREAKDOWNS = ("entry", "device", "os", "browser", "country", "hour", "day")


def dimension_sql(
    name: str, columns: set[str], tz_offset_min: int = 0, ua_columns: bool = False, ip_country: bool = False
) -> tuple[str, str]:
    """(SQL expression over the normalised events view, where the value comes from).

    ua_columns: the user agent is already classified into columns ua_device, ua_os and
    ua_browser (so a query classifies each distinct user agent once).
    ip_country: column ip_country holds client_ip geolocated (once per distinct address).
    """
    shift = f"to_timestamp(ts + {int(tz_offset_min) * 60})"
    if name == "entry":
        return f"coalesce(entryId, '{UNKNOWN}')", "entryId"
    if name == "hour":
        return f"lpad(cast(hour({shift} at time zone 'UTC') as varchar), 2, '0')", _tz_label(tz_offset_min)
    if name == "day":
        return f"strftime({shift} at time zone 'UTC', '%Y-%m-%d')", _tz_label(tz_offset_min)
    if name == "country":
        if "truth_country" in columns:
            return f"coalesce(lower(truth_country), '{UNKNOWN}')", "truth_country"
        geo = "geo_country" in columns
        if ip_country and "client_ip" in columns:
            origin = "geo_country, else client_ip geolocated (GeoLite2)" if geo else "client_ip geolocated (GeoLite2)"
            return f"coalesce(lower(geo_country), lower(ip_country), '{UNKNOWN}')", origin
        if geo:
            return f"coalesce(lower(geo_country), '{UNKNOWN}')", "geo_country (the collector geolocated client_ip)"
        return f"'{UNKNOWN}'", "none (no truth_country, geo_country or client_ip)"
    if name in UA_CLASSIFIERS:
        truth = f"truth_{name}"
        classified = f"ua_{name}" if ua_columns else UA_CLASSIFIERS[name]()
        if truth in columns:
            # Truth where the row has it, the classifier for rows that do not.
            return f"coalesce(lower({truth}), {classified})", truth
        return classified, "user_agent classifier"
    raise ValueError(f"unknown breakdown {name!r} (choose from {', '.join(BREAKDOWNS)})")


def _tz_label(tz_offset_min: int) -> str:
    if not tz_offset_min:
        return "ts, UTC"
    sign = "+" if tz_offset_min > 0 else "-"
    h, m = divmod(abs(int(tz_offset_min)), 60)
    return f"ts, UTC{sign}{h:02d}:{m:02d}"
