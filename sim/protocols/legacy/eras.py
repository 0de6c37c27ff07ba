"""The era each legacy player lived in: its viewers' browsers, the player versions sites ran, and
the viewers' device clocks.

    pool = era_user_agents(population, "kdp")        # aligned with population.pools.user_agents
    versions = ERA_VERSIONS["mwembed"]               # what sites embedded, oldest first
    offsets = clock_offsets_ms(population, seed, viewers)

* KDP3 (Flash, 2010-2016) ran in desktop browsers with the Flash plugin: Chrome 20-53,
  Firefox 10-50, Internet Explorer 9-11 (the viewers a modern mix calls Edge), Safari 6-9.
  Its mobile viewers stand for the HTML5 fallback of the time (Android 4-6, iOS 7-9).
* mwEmbed 2.x (HTML5 v2, 2014-2020): Chrome 38-87, Firefox 33-84, EdgeHTML 12-18 and IE 11,
  Safari 8-13, Android 5-10, iOS 8-13, Samsung Internet 4-12.
* v7 kanalytics keeps the population's (current) browsers.

A viewer keeps its device, OS and browser family; only the release is of the era. A pool row
is drawn from a generator seeded by the row and the flavor, so a population gets the same
era pools in every run and process.

Clocks: a device clock is off by a per-viewer amount: 70 % within a second (NTP-synced),
25 % by seconds to a minute or two (Laplace, scale 20 s), 4 % by up to ten minutes, 1 % by
whole hours (a wrong time zone under a correct local time). Believable, not measured. A hash of
the run's seed and the viewer number gives each viewer its offset, the same in every chunk.
KDP adds its own bug on top: `time + tzOffset - tzOffset*60` (sheet a.4) with Flash's
timezoneOffset in minutes, i.e. 59 ms per minute of the viewer's UTC offset.
"""

from __future__ import annotations

import random
import zlib

import numpy as np

from sim.population import BASE_BROWSERS, BASE_OS, DEVICE_CODES, Population

# Releases sites embedded, oldest first (KDP3 v3.4 2010 .. v3.9.9 2015; mwEmbed v2.21 2014 .. v2.90 2020).
ERA_VERSIONS = {
    "kdp": ("3.4.10.3", "3.5.7.1", "3.5.43", "3.6.9", "3.7.1", "3.8.9", "3.9.2", "3.9.7", "3.9.9"),
    "mwembed": (
        "2.21",
        "2.25.1",
        "2.31",
        "2.35",
        "2.40",
        "2.48.2",
        "2.52",
        "2.57",
        "2.61",
        "2.66",
        "2.71.1",
        "2.75",
        "2.80",
        "2.84",
        "2.90",
    ),
}
_DEVICES = {code: name for name, code in DEVICE_CODES.items()}


def site_versions(flavor: str, pages: np.ndarray) -> np.ndarray:
    """The era version index each page (row of the referrer pool) embeds: a site keeps one."""
    versions = ERA_VERSIONS[flavor]
    keyed = (np.asarray(pages, np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    return (keyed % np.uint64(len(versions))).astype(np.int32)


def _win(r: random.Random, early: bool) -> str:
    return r.choice(
        ("Windows NT 6.1; WOW64", "Windows NT 6.1", "Windows NT 6.3; WOW64")
        if early
        else ("Windows NT 6.1; Win64; x64", "Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64")
    )


def _mac(r: random.Random, lo: int, hi: int) -> str:
    return f"Macintosh; Intel Mac OS X 10_{r.randint(lo, hi)}_{r.randint(0, 5)}"


def _chrome(r: random.Random, lo: int, hi: int) -> str:
    return f"{r.randint(lo, hi)}.0.{r.randint(1000, 4300)}.{r.randint(10, 150)}"


def era_user_agent(flavor: str, device: str, os_name: str, browser: str, r: random.Random) -> str:
    """A user agent of `flavor`'s era for a viewer with this device, OS and browser family."""
    kdp = flavor == "kdp"
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    if device in ("mobile", "tablet"):
        if os_name == "ios":
            ios = r.randint(7, 9) if kdp else r.randint(8, 13)
            what = "iPad; CPU OS" if device == "tablet" else "iPhone; CPU iPhone OS"
            return (
                f"Mozilla/5.0 ({what} {ios}_{r.randint(0, 3)} like Mac OS X) AppleWebKit/601.1.46 "
                f"(KHTML, like Gecko) Version/{ios}.0 Mobile/13B143 Safari/601.1"
            )
        android = f"{r.randint(4, 6)}.{r.randint(0, 4)}" if kdp else str(r.randint(5, 10))
        model = "Nexus 5" if device == "mobile" else "Nexus 7"
        if browser == "samsung" and not kdp:
            return (
                f"Mozilla/5.0 (Linux; Android {android}; SAMSUNG SM-G960F) {webkit} "
                f"SamsungBrowser/{r.randint(4, 12)}.0 Chrome/{_chrome(r, 51, 79)} Mobile Safari/537.36"
            )
        mobile = " Mobile" if device == "mobile" else ""
        chrome = _chrome(r, 30, 53) if kdp else _chrome(r, 45, 87)
        return f"Mozilla/5.0 (Linux; Android {android}; {model}) {webkit} Chrome/{chrome}{mobile} Safari/537.36"
    if device == "ctv":
        return (
            "Mozilla/5.0 (SMART-TV; Linux; Tizen 2.3) AppleWebKit/538.1 (KHTML, like Gecko) Version/2.3 TV Safari/538.1"
            if kdp
            else f"Mozilla/5.0 (SMART-TV; Linux; Tizen {r.randint(3, 5)}.0) {webkit} SamsungBrowser/2.1 "
            f"Chrome/{_chrome(r, 56, 76)} TV Safari/537.36"
        )
    if os_name == "macos":
        platform = _mac(r, 8, 11) if kdp else _mac(r, 10, 15)
    elif os_name == "linux":
        platform = "X11; Linux x86_64"
    else:
        platform = _win(r, kdp)
    if browser == "firefox":
        ff = r.randint(10, 50) if kdp else r.randint(33, 84)
        return f"Mozilla/5.0 ({platform}; rv:{ff}.0) Gecko/20100101 Firefox/{ff}.0"
    if browser == "safari" and os_name == "macos":
        safari = r.randint(6, 9) if kdp else r.randint(8, 13)
        return (
            f"Mozilla/5.0 ({platform}) AppleWebKit/600.8.9 (KHTML, like Gecko) Version/{safari}.{r.randint(0, 1)} "
            "Safari/600.8.9"
        )
    if browser == "edge" and os_name == "windows":
        if kdp or r.random() < 0.4:
            ie = r.choice((9, 10, 11)) if kdp else 11
            win = platform.split(";")[0]
            return {
                9: f"Mozilla/5.0 (compatible; MSIE 9.0; {win}; Trident/5.0)",
                10: f"Mozilla/5.0 (compatible; MSIE 10.0; {win}; WOW64; Trident/6.0)",
                11: f"Mozilla/5.0 ({win}; WOW64; Trident/7.0; rv:11.0) like Gecko",
            }[ie]
        edge = r.randint(12, 18)
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {webkit} Chrome/{_chrome(r, 42, 70)} Safari/537.36 "
            f"Edge/{edge}.{r.randint(10240, 19041)}"
        )
    chrome = _chrome(r, 20, 53) if kdp else _chrome(r, 38, 87)
    return f"Mozilla/5.0 ({platform}) {webkit} Chrome/{chrome} Safari/537.36"


def era_user_agents(population: Population, flavor: str) -> np.ndarray:
    """`population.pools.user_agents` as of `flavor`'s era (row for row); kept on the population."""
    pools = population.pools
    key = ("legacy era user agents", flavor, len(pools.user_agents))
    found = population.derived.get(key)
    if found is not None:
        return found
    os_names = list(pools.os_names) if pools.os_names else BASE_OS
    browser_names = list(pools.browser_names) if pools.browser_names else BASE_BROWSERS
    out = np.empty(len(pools.user_agents), dtype=object)
    for i, ua in enumerate(pools.user_agents.tolist()):
        r = random.Random(zlib.crc32(f"{flavor}:{i}:{ua}".encode()))
        device = _DEVICES.get(int(pools.ua_device[i]), "desktop")
        os_name = os_names[int(pools.ua_os[i])] if int(pools.ua_os[i]) < len(os_names) else "windows"
        browser = browser_names[int(pools.ua_browser[i])] if int(pools.ua_browser[i]) < len(browser_names) else "chrome"
        out[i] = era_user_agent(flavor, device, os_name, browser, r)
    population.derived[key] = out
    return out


# --- device clocks ---------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(bits: np.ndarray) -> np.ndarray:
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def clock_offsets_ms(population: Population, seed: np.random.SeedSequence, viewers: np.ndarray) -> np.ndarray:
    """How far each viewer's device clock is off, in ms (index = viewer number); made once per
    run and kept on the population, covering `viewers`."""
    run_key = np.uint64((int(seed.entropy) ^ 0x5EC0CC) & 0xFFFFFFFFFFFFFFFF)
    key = ("legacy clock offsets", int(run_key))
    needed = int(viewers.max()) + 1 if len(viewers) else 0
    found = population.derived.get(key)
    if found is not None and len(found) >= needed:
        return found
    n = max(needed, len(population.viewers) if population.viewers is not None else 0)
    with np.errstate(over="ignore"):
        v = np.arange(n, dtype=np.uint64) ^ run_key
        kind, a, b = (_uniform(_splitmix64(v ^ np.uint64(salt))) for salt in (0x11, 0x2222, 0x333333))
    normal = np.sqrt(-2.0 * np.log(a)) * np.cos(2.0 * np.pi * b)  # Box-Muller
    laplace = np.where(b < 0.5, 1.0, -1.0) * -np.log(a) * 20_000.0
    minutes = (2.0 * a - 1.0) * 600_000.0
    hours = np.where(b < 0.5, 1.0, -1.0) * np.ceil(a * 3.0) * 3_600_000.0 + normal * 2_000.0
    offsets = np.select([kind < 0.70, kind < 0.95, kind < 0.99], [normal * 300.0, laplace, minutes], hours)
    offsets = np.rint(offsets).astype(np.int64)
    population.derived[key] = offsets
    return offsets
