"""What the viewer's browser does to a beacon request on its way out: its own request headers,
`Origin`, the `Referer` its referrer policy allows, cookies or none, and the CORS preflight.

    agent = browser_of(user_agent)                 # the browser behind a User-Agent (cached)
    headers, preflight = sent_headers(request.headers, request.method, XHR, page, target)
    # headers: what the browser puts on the beacon request; preflight: the OPTIONS request's
    # headers when the request needs one (a cross-origin non-simple XHR), else None

The codecs give each beacon the headers the plugin's page context implies (User-Agent, the
page as Referer, the legacy `uv` cookie, X-Forwarded-For as the CDN edge adds it,
Content-Type). This module turns them into what a browser sends (Fetch standard; Chromium's
`cors/`, `loader/` and `embedder_support/user_agent_utils.cc`):

* XHR (KAVA, mwEmbed, v7 kanalytics) cross-origin: `Origin` on every request; no cookies
  (XMLHttpRequest without `withCredentials`); a preflight (OPTIONS with `Origin`,
  `Access-Control-Request-Method`, `Access-Control-Request-Headers`) before a request that
  is not "simple": the KAVA JSON POST (Content-Type application/json). GET and the form POST
  are simple. Flash (KDP's URLLoader) goes through the browser's plugin stack: cookies
  stay, no Origin, no preflight, no fetch metadata.
* `Referer`: browsers since 2020-2021 (Chrome 85, Firefox 87, Safari 14) default to
  `strict-origin-when-cross-origin`, so a cross-origin beacon carries the page's origin and
  a `/`; older ones send the full page URL (`no-referrer-when-downgrade`).
* The browser's own headers, consistent with its User-Agent: Chromium-based browsers send
  `sec-ch-ua`, `sec-ch-ua-mobile`, `sec-ch-ua-platform` (from 89), `Sec-Fetch-*` (from 76);
  Firefox and Safari send their own sets without client hints.

The beacon host is addressed protocol-relative by the players (`//analytics.kaltura.com`,
`//stats.kaltura.com`), so the request has the page's scheme whatever the target's URL: a
live load test's `http://` target stands in for the production host and no referrer is
dropped for a "downgrade". Preflight results are kept `Access-Control-Max-Age` seconds,
capped as each engine caps it (Chromium 2 h, Firefox 24 h, WebKit 10 min), 5 s when the
server sends none, per URL within one page view (a session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

# How the plugin sends a beacon (per row): no browser semantics, an XHR, or Flash's URLLoader.
OFF, XHR, FLASH = 0, 1, 2

DEFAULT_MAX_AGE_S = 5.0  # Fetch: a preflight result without Access-Control-Max-Age is kept 5 s
SIMPLE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
SIMPLE_METHODS = ("GET", "HEAD", "POST")

# Where the players send beacons when the request files name no host (reference sheet a.1, c.1).
BEACON_HOSTS = {"legacy": "stats.kaltura.com", "kava": "analytics.kaltura.com"}


@dataclass(frozen=True)
class Browser:
    """A browser as its User-Agent gives it away, and what that implies on the wire."""

    engine: str  # chromium | firefox | webkit | other
    major: int  # the browser's own major version (Chrome's for Chromium builds)
    brands: tuple  # sec-ch-ua (brand, version) pairs, GREASE included, in send order; () = none
    platform: str  # sec-ch-ua-platform
    mobile: bool
    fetch_metadata: bool  # sends Sec-Fetch-Site/Mode/Dest
    trims_referrer: bool  # default policy strict-origin-when-cross-origin
    preflight_cap_s: float  # the longest a preflight result is kept
    accept_language: str
    zstd: bool  # Accept-Encoding includes zstd (on secure origins)

    def accept_encoding(self, secure: bool) -> str:
        if self.engine == "webkit":
            return "gzip, deflate, br"
        if not secure:
            return "gzip, deflate"
        return "gzip, deflate, br, zstd" if self.zstd else "gzip, deflate, br"

    @property
    def sec_ch_ua(self) -> str:
        return ", ".join(f'"{brand}";v="{version}"' for brand, version in self.brands)


# Chromium's GREASE brand (user_agent_utils.cc GetGreasedUserAgentBrandVersion, seed = major version):
# "Not" c1 "A" c2 "Brand", its version one of 8/99/24, the list permuted by the seed.
_GREASE_CHARS = (" ", "(", ":", "-", ".", "/", ")", ";", "=", "?", "_")
_GREASE_VERSIONS = ("8", "99", "24")
_ORDERS3 = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


def chromium_brands(major: int, brand: str | None, brand_version: str | None = None) -> tuple:
    """sec-ch-ua's (brand, version) list of a Chromium `major` build by `brand` (None: plain Chromium)."""
    grease = (f"Not{_GREASE_CHARS[major % 11]}A{_GREASE_CHARS[(major + 1) % 11]}Brand", _GREASE_VERSIONS[major % 3])
    chromium = ("Chromium", str(major))
    if brand is None:
        return (grease, chromium) if major % 2 == 0 else (chromium, grease)
    items = (grease, chromium, (brand, brand_version or str(major)))
    order = _ORDERS3[major % 6]  # order[i]: where item i goes
    out = [None, None, None]
    for item, at in zip(items, order):
        out[at] = item
    return tuple(out)


def _major(ua: str, token: str) -> int | None:
    m = re.search(re.escape(token) + r"/(\d+)(?:\.(\d+))?", ua)
    return int(m.group(1)) if m else None


def _platform(ua: str) -> str:
    if "Android" in ua:
        return "Android"
    if "Windows" in ua:
        return "Windows"
    if "Macintosh" in ua or "Mac OS X" in ua:
        return "macOS"
    if "CrOS" in ua:
        return "Chrome OS"
    if "Linux" in ua or "X11" in ua:
        return "Linux"
    return "Unknown"


@lru_cache(maxsize=4096)
def browser_of(ua: str | None) -> Browser:
    """The browser behind a User-Agent string (None or unknown: a plain client, no extras)."""
    ua = ua or ""
    mobile = " Mobile" in ua or "Mobile/" in ua
    chrome = _major(ua, "Chrome") or _major(ua, "HeadlessChrome")
    ios = "iPhone" in ua or "iPad" in ua
    if chrome is not None and not ios:
        brand, brand_version = "Google Chrome", None
        if (edge := _major(ua, "Edg") or _major(ua, "EdgA")) is not None:
            brand, brand_version = "Microsoft Edge", str(edge)
        elif (m := re.search(r"SamsungBrowser/(\d+)\.(\d+)", ua)) is not None:
            brand, brand_version = "Samsung Internet", f"{m.group(1)}.{m.group(2)}"
        elif "HeadlessChrome" in ua or any(tv in ua for tv in ("SMART-TV", "Web0S", "BRAVIA", "CrKey")):
            brand = None  # a plain Chromium build: GREASE and "Chromium" only
        brands = chromium_brands(chrome, brand, brand_version) if chrome >= 89 else ()
        return Browser(
            "chromium",
            chrome,
            brands,
            _platform(ua),
            mobile,
            chrome >= 76,
            chrome >= 85,
            7200.0,
            "en-US,en;q=0.9",
            chrome >= 123,
        )
    if (firefox := _major(ua, "Firefox")) is not None and not ios:
        return Browser(
            "firefox",
            firefox,
            (),
            _platform(ua),
            mobile,
            firefox >= 90,
            firefox >= 87,
            86400.0,
            "en-US,en;q=0.5",
            firefox >= 126,
        )
    if "AppleWebKit" in ua and ("Safari" in ua or ios):
        m = re.search(r"(?:Version|OS) (\d+)[._](\d+)|Version/(\d+)\.(\d+)", ua)
        major, minor = (16, 0)
        if m:
            major, minor = (int(m.group(1)), int(m.group(2))) if m.group(1) else (int(m.group(3)), int(m.group(4)))
        return Browser(
            "webkit",
            major,
            (),
            _platform(ua),
            mobile,
            (major, minor) >= (16, 4),
            major >= 14,
            600.0,
            "en-US,en;q=0.9",
            False,
        )
    return Browser("other", 0, (), _platform(ua), mobile, False, False, 7200.0, "", False)


# --- origins ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 14)
def page_origin(page_url: str | None) -> str | None:
    """`scheme://host[:port]` of a page URL (default ports left out), None when it has none."""
    if not page_url:
        return None
    try:
        parts = urlsplit(page_url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def target_host(target: str) -> str:
    """The `host[:port]` a beacon URL or a bare host names."""
    if "//" not in target:
        target = "//" + target
    parts = urlsplit(target)
    return (parts.netloc or target.strip("/")).lower()


_TWO_LABEL_SUFFIXES = frozenset(
    {
        "co.uk",
        "ac.uk",
        "gov.uk",
        "org.uk",
        "com.au",
        "edu.au",
        "co.jp",
        "ac.jp",
        "com.br",
        "co.il",
        "ac.il",
        "co.in",
        "com.mx",
        "co.nz",
        "co.za",
    }
)


def _site(host: str) -> str:
    """The registrable domain of a host, near enough (an IP or single label is its own site)."""
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    labels = host.split(".")
    if len(labels) <= 2 or host.replace(".", "").isdigit():
        return host
    keep = 3 if ".".join(labels[-2:]) in _TWO_LABEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def fetch_site(origin: str, scheme: str, host: str) -> str:
    """Sec-Fetch-Site of a request from a page at `origin` to `scheme://host`."""
    target = f"{scheme}://{host}"
    if page_origin(target) == origin:
        return "same-origin"
    page_scheme, _, page_host = origin.partition("://")
    return "same-site" if page_scheme == scheme and _site(page_host) == _site(host) else "cross-site"


# --- the headers of one request --------------------------------------------------------------------


def _get(headers: dict[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for key, v in headers.items():
            if key.lower() == lname:
                return v
    return value


def is_simple(method: str, content_type: str | None) -> bool:
    """A CORS-safelisted request: no preflight (the beacons add no other author header)."""
    if method not in SIMPLE_METHODS:
        return False
    return content_type is None or content_type.split(";", 1)[0].strip().lower() in SIMPLE_TYPES


def sent_headers(
    headers: dict[str, str], method: str, transport: int, target: str
) -> tuple[dict[str, str], dict[str, str] | None]:
    """(the request's headers as the browser sends them, the preflight's headers or None).

    `headers`: the codec's (User-Agent, Referer = the page, Cookie, Content-Type,
    X-Forwarded-For); `transport` XHR, FLASH or OFF (returned as they are); `target` the
    beacon host (`host[:port]` or a URL). Header order is the browser's.
    """
    if transport == OFF:
        return headers, None
    ua = _get(headers, "User-Agent")
    page = _get(headers, "Referer")
    cookie = _get(headers, "Cookie")
    ctype = _get(headers, "Content-Type")
    forwarded = _get(headers, "X-Forwarded-For")
    agent = browser_of(ua)
    origin = page_origin(page)
    scheme = origin.partition("://")[0] if origin else "https"
    host = target_host(target)
    cross = origin is None or page_origin(f"{scheme}://{host}") != origin
    secure = scheme == "https" or host.split(":")[0] in ("localhost", "127.0.0.1", "[::1]")
    if page is None:
        referer = None
    elif cross and agent.trims_referrer:
        referer = origin + "/"
    else:
        referer = page
    if transport == FLASH:
        out = {}
        if ua is not None:
            out["User-Agent"] = ua
        out["Accept"] = "*/*"
        if agent.accept_language:
            out["Accept-Language"] = agent.accept_language
        if referer is not None:
            out["Referer"] = referer
        if ctype is not None:
            out["Content-Type"] = ctype
        if cookie is not None:
            out["Cookie"] = cookie
        if forwarded is not None:
            out["X-Forwarded-For"] = forwarded
        return out, None
    send_origin = origin is not None and (cross or method != "GET")
    site = fetch_site(origin, scheme, host) if origin else "cross-site"
    out = _xhr_headers(agent, ua, ctype, origin if send_origin else None, site, referer, secure)
    if cookie is not None and not cross:
        out["Cookie"] = cookie  # same-origin XHR sends cookies; cross-origin without credentials not
    if forwarded is not None:
        out["X-Forwarded-For"] = forwarded
    preflight = None
    if cross and origin is not None and not is_simple(method, ctype):
        preflight = _preflight_headers(agent, ua, method, ctype, origin, site, referer, secure)
        if forwarded is not None:
            preflight["X-Forwarded-For"] = forwarded
    return out, preflight


# Each engine's header order on an HTTP/1.1 request (Host, Connection for Chromium's preflight aside, and
# Content-Length are written by the HTTP client); a header whose value is None is not sent.
_XHR_ORDER = {
    "chromium": (
        "Connection", "sec-ch-ua-platform", "User-Agent", "sec-ch-ua", "Content-Type", "sec-ch-ua-mobile",
        "Accept", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Referer", "Accept-Encoding",
        "Accept-Language",
    ),
    "firefox": (
        "User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Content-Type", "Origin", "Connection",
        "Referer", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
    ),
    "webkit": (
        "Accept", "Content-Type", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "User-Agent",
        "Referer", "Accept-Language", "Accept-Encoding", "Connection",
    ),
}  # fmt: skip
_PREFLIGHT_ORDER = {
    "chromium": (
        "Connection", "Accept", "Access-Control-Request-Method", "Access-Control-Request-Headers", "Origin",
        "User-Agent", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Referer", "Accept-Encoding",
        "Accept-Language",
    ),
    "firefox": (
        "User-Agent", "Accept", "Accept-Language", "Accept-Encoding", "Access-Control-Request-Method",
        "Access-Control-Request-Headers", "Referer", "Origin", "Connection", "Sec-Fetch-Dest", "Sec-Fetch-Mode",
        "Sec-Fetch-Site",
    ),
    "webkit": (
        "Accept", "Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers", "Sec-Fetch-Site",
        "Sec-Fetch-Dest", "Sec-Fetch-Mode", "User-Agent", "Referer", "Accept-Language", "Accept-Encoding",
        "Connection",
    ),
}  # fmt: skip


def _in_order(order: tuple[str, ...], values: dict[str, str | None]) -> dict[str, str]:
    return {name: values[name] for name in order if values[name] is not None}


def _browser_values(agent: Browser, ua, ctype, origin, site, referer, secure) -> dict[str, str | None]:
    """The values of the headers a browser adds to a beacon request or its preflight."""
    client_hints = bool(agent.brands)
    fetch_site, fetch_mode, fetch_dest = (site, "cors", "empty") if agent.fetch_metadata else (None, None, None)
    return {
        "Connection": "keep-alive",
        "sec-ch-ua-platform": f'"{agent.platform}"' if client_hints else None,
        "User-Agent": ua,
        "sec-ch-ua": agent.sec_ch_ua if client_hints else None,
        "Content-Type": ctype,
        "sec-ch-ua-mobile": ("?1" if agent.mobile else "?0") if client_hints else None,
        "Accept": "*/*",
        "Origin": origin,
        "Sec-Fetch-Site": fetch_site,
        "Sec-Fetch-Mode": fetch_mode,
        "Sec-Fetch-Dest": fetch_dest,
        "Referer": referer,
        "Accept-Encoding": agent.accept_encoding(secure),
        "Accept-Language": agent.accept_language or None,
    }


def _xhr_headers(agent: Browser, ua, ctype, origin, site, referer, secure) -> dict[str, str]:
    order = _XHR_ORDER.get(agent.engine, _XHR_ORDER["webkit"])  # anything else: Safari's set
    return _in_order(order, _browser_values(agent, ua, ctype, origin, site, referer, secure))


def _preflight_headers(agent: Browser, ua, method, ctype, origin, site, referer, secure) -> dict[str, str]:
    values = _browser_values(agent, ua, ctype, origin, site, referer, secure)
    values["Access-Control-Request-Method"] = method
    values["Access-Control-Request-Headers"] = "content-type" if ctype is not None else None
    order = _PREFLIGHT_ORDER.get(agent.engine, _PREFLIGHT_ORDER["webkit"])
    return _in_order(order, values)


def max_age(answer: str | None, agent: Browser) -> float:
    """How long a preflight answer with `Access-Control-Max-Age: answer` is kept (seconds)."""
    if answer is None:
        return min(DEFAULT_MAX_AGE_S, agent.preflight_cap_s)
    try:
        value = float(answer.strip())
    except ValueError:
        return min(DEFAULT_MAX_AGE_S, agent.preflight_cap_s)
    return max(min(value, agent.preflight_cap_s), 0.0)


class Headers:
    """`sent_headers` for many requests that share header dicts (the codecs give rows with the
    same headers one dict): computed once per (dict, method, transport)."""

    def __init__(self, target: str):
        self.target = target
        self.done: dict = {}
        self.keep: list = []  # the codec dicts, so their ids stay theirs while cached

    def __call__(self, headers: dict[str, str], method: str, transport: int):
        key = (id(headers), method, transport)
        found = self.done.get(key)
        if found is None:
            found = self.done[key] = sent_headers(headers, method, transport, self.target)
            self.keep.append(headers)
        return found


class PreflightCache:
    """The preflight results of one page view (a session): per URL, until when (viewer's clock)."""

    __slots__ = ("until",)

    def __init__(self):
        self.until: dict[str, float] = {}

    def fresh(self, url: str, now: float) -> bool:
        until = self.until.get(url)
        return until is not None and now < until

    def store(self, url: str, now: float, seconds: float) -> None:
        if seconds > 0:
            self.until[url] = now + seconds
        else:
            self.until.pop(url, None)


# --- per session and per row ----------------------------------------------------------------------


def scenario_transport(scenario, protocol: str) -> int:
    """How the scenario's player sends `protocol` beacons: OFF (no browser semantics), XHR, or
    FLASH (KDP's stats plugin: the Flash player's URLLoader)."""
    if not scenario.player.browser.enabled:
        return OFF
    if protocol == "legacy" and scenario.player.legacy_flavor == "kdp":
        return FLASH
    return XHR


def session_transports(chunk, protocol: str):
    """`scenario_transport` of every session of a SessionChunk (int8)."""
    import numpy as np

    table = np.array([scenario_transport(sc, protocol) for sc in chunk.scenarios], np.int8)
    scenario = chunk.sessions["scenario"]
    return table[scenario.astype(np.intp)] if len(scenario) else np.zeros(0, np.int8)


def scenario_max_age(scenario) -> str | None:
    """The Access-Control-Max-Age the scenario says its beacon server answers with (request files)."""
    value = scenario.player.browser.preflight_max_age_s
    return None if value is None else format(value, "g")


def with_preflights(ts, requests: list, sessions, transport, max_age_answer: list, target: str):
    """Request-file rows as the browser sends them: `requests` (in send order, times `ts`,
    sessions `sessions`, transports `transport`, each row's server Max-Age answer) get the
    browser's headers in place, and a preflight goes before each request whose URL has no
    fresh preflight result in its session. Returns (positions of the requests among the
    rows, the preflight WireRequests, the positions of the preflights)."""
    from sim.protocols.beacons import WireRequest

    sent_headers = Headers(target)
    caches: dict[int, PreflightCache] = {}
    position, preflights, preflight_at = [], [], []
    at = 0
    ts_list, session_list, transport_list = ts.tolist(), sessions.tolist(), transport.tolist()
    for i, req in enumerate(requests):
        headers, preflight = sent_headers(req.headers, req.method, transport_list[i])
        req.headers = headers
        if preflight is not None:
            cache = caches.get(session_list[i])
            if cache is None:
                cache = caches[session_list[i]] = PreflightCache()
            now = ts_list[i]
            if not cache.fresh(req.url, now):
                cache.store(req.url, now, max_age(max_age_answer[i], browser_of(headers.get("User-Agent"))))
                preflights.append(WireRequest("OPTIONS", req.url, preflight, None))
                preflight_at.append(at)
                at += 1
        position.append(at)
        at += 1
    return position, preflights, preflight_at
