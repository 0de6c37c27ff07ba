"""Who watches what: the catalog of entries and the identity pools of viewers.

Built once per run from a scenario and a seed. Faker fills the identity pools here and
nowhere else; sessions refer to pool rows by index, so nothing on the per-session path
creates strings.

Usage::

    population = build_population(components, seed=7)
    population.catalog.entry_ids[3]          # "1_k3v9q0zt"
    population.components[0].entries         # slice of the catalog owned by component 0

For a mix, every component's catalog, pools and viewers are concatenated (indices are
global) and `Population.components[c]` holds component c's slices into them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from sim.geo import geo_table
from sim.scenario.loader import as_components
from sim.scenario.sampling import draw_many

# Stream keys for the SeedSequence of a run: the population draws from (seed, POPULATION_KEY, c).
POPULATION_KEY = 1


@dataclass
class Catalog:
    entry_ids: np.ndarray  # object[str], e.g. "1_a2b3c4d5"
    durations: np.ndarray  # float64 seconds
    live: np.ndarray  # bool
    popularity: np.ndarray  # float64, sums to 1 (Zipf over entries)


@dataclass
class IdentityPools:
    user_agents: np.ndarray  # object[str]
    ua_device: np.ndarray  # int8 Device of each user agent
    ua_os: np.ndarray  # int8 index into os_names
    ua_browser: np.ndarray  # int8 index into browser_names
    ips: np.ndarray  # object[str] dotted quads
    ip_country: np.ndarray  # int16 index into country_codes
    user_ids: np.ndarray  # object[str]
    referrers: np.ndarray  # object[str] page URLs
    os_names: list[str]
    browser_names: list[str]
    country_codes: list[str]
    caption_languages: list[str]


@dataclass
class Viewers:
    """One row per viewer (global numbering); a viewer keeps its device, IP and user id all run."""

    user_agent: np.ndarray  # int32 row in IdentityPools.user_agents
    ip: np.ndarray  # int32 row in IdentityPools.ips
    user_id: np.ndarray  # int32 row in IdentityPools.user_ids, -1 = anonymous
    tz_offset_min: np.ndarray  # int16 UTC offset of the viewer, minutes

    def __len__(self) -> int:
        return len(self.user_agent)


@dataclass
class ComponentSlice:
    """Where one scenario component lives in the concatenated population (half-open ranges)."""

    name: str
    entries: range
    viewers: range
    referrers: range
    entry_cdf: np.ndarray  # cumulative popularity within the component's entries
    tz_offsets_min: np.ndarray  # int16 offset of each time-zone group
    tz_weights: np.ndarray  # float64 share of sessions per time-zone group, sums to 1
    tz_viewers: list[range]  # global viewer range of each time-zone group
    tz_activity_cdf: list[np.ndarray]  # cumulative activity weights of the viewers in each group
    caption_languages: np.ndarray  # int16 indices into IdentityPools.caption_languages


@dataclass
class Population:
    catalog: Catalog
    pools: IdentityPools
    viewers: Viewers | None = None
    components: list[ComponentSlice] = field(default_factory=list)
    # Per-viewer values a protocol derives once per run (legacy: the uv cookies), by its key.
    derived: dict = field(default_factory=dict, repr=False, compare=False)


class PopulationError(ValueError):
    """A catalog source that cannot be read; the message names the file and line."""


# --- user agents ------------------------------------------------------------------------------

DEVICE_CODES = {"desktop": 0, "mobile": 1, "tablet": 2, "ctv": 3}
BASE_OS = ["windows", "macos", "linux", "android", "ios", "tizen", "webos"]
BASE_BROWSERS = ["chrome", "safari", "edge", "firefox", "samsung", "other"]
APPLE_OS = {"macos", "ios"}

# How each (os, device) platform writes itself into a user agent.
_PLATFORM = {
    ("windows", "desktop"): "Windows NT 10.0; Win64; x64",
    ("macos", "desktop"): "Macintosh; Intel Mac OS X 10_15_7",
    ("linux", "desktop"): "X11; Linux x86_64",
    ("android", "mobile"): "Linux; Android {android}; {phone}",
    ("android", "tablet"): "Linux; Android {android}; {tablet}",
    ("ios", "mobile"): "iPhone; CPU iPhone OS {ios_} like Mac OS X",
    ("ios", "tablet"): "iPad; CPU OS {ios_} like Mac OS X",
}
_PHONES = ["SM-S918B", "SM-A546B", "Pixel 8", "Pixel 7a", "moto g84 5G", "2201116SG"]
_TABLETS = ["SM-X710", "SM-X200", "Lenovo TB-X606F", "Pixel Tablet"]
_TVS = {
    "tizen": "Mozilla/5.0 (SMART-TV; LINUX; Tizen {tizen}) AppleWebKit/537.36 (KHTML, like Gecko) "
    "{tv_browser}/{tizen} Chrome/{chrome_old} TV Safari/537.36",
    "webos": "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{chrome_old} Safari/537.36 WebAppManager",
    "android": "Mozilla/5.0 (Linux; Android {android}; BRAVIA 4K VH2 Build/QTG3.200305.006.S292) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome_old} Safari/537.36",
}


def _compatible_browser(os_name: str, device: str, browser: str) -> str:
    """The browser a viewer really runs: Safari only on Apple, Samsung Internet only on Android."""
    if device == "ctv":
        return "other"
    if browser == "safari" and os_name not in APPLE_OS:
        return "chrome"
    if browser == "samsung" and os_name != "android":
        return "safari" if os_name in APPLE_OS else "chrome"
    if browser == "edge" and os_name == "linux":
        return "chrome"
    return browser


def _platform_os(os_name: str, device: str) -> str:
    """Operating systems that cannot run on a device class fall back to its usual one."""
    if device == "ctv":
        return os_name if os_name in _TVS else "tizen"
    if device == "desktop":
        return os_name if os_name in ("windows", "macos", "linux") else "windows"
    return os_name if os_name in ("android", "ios") else "android"


def user_agent(device: str, os_name: str, browser: str, rnd) -> str:
    """A user agent string a real `browser` on `os_name` on a `device` sends; `rnd` is a random.Random."""
    chrome = f"{rnd.randint(118, 131)}.0.{rnd.randint(5000, 6800)}.{rnd.randint(50, 200)}"
    v = {
        "chrome": chrome,
        "chrome_major": chrome.split(".")[0],
        "chrome_old": f"{rnd.randint(85, 108)}.0.{rnd.randint(4000, 5300)}.{rnd.randint(50, 200)}",
        "firefox": f"{rnd.randint(115, 133)}.0",
        "edge": f"{rnd.randint(118, 131)}.0.{rnd.randint(2000, 2900)}.{rnd.randint(40, 120)}",
        "safari": f"{rnd.randint(16, 18)}.{rnd.randint(0, 6)}",
        "ios_": f"{rnd.randint(16, 18)}_{rnd.randint(0, 6)}",
        "android": str(rnd.randint(11, 15)),
        "samsung": f"{rnd.randint(23, 27)}.0",
        "phone": rnd.choice(_PHONES),
        "tablet": rnd.choice(_TABLETS),
        "tizen": f"{rnd.randint(5, 8)}.0",
        "tv_browser": "SamsungBrowser",
    }
    if device == "ctv":
        return _TVS[os_name].format(**v)
    platform = _PLATFORM[
        (
            os_name,
            "tablet"
            if device == "tablet" and os_name in ("android", "ios")
            else "mobile"
            if device in ("mobile", "tablet")
            else "desktop",
        )
    ].format(**v)
    webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
    mobile = " Mobile" if device == "mobile" else ""
    if os_name == "ios":
        wk = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
        tail = {
            "chrome": f"CriOS/{v['chrome']}",
            "firefox": f"FxiOS/{v['firefox']}",
            "edge": f"EdgiOS/{v['edge']}",
        }.get(browser, f"Version/{v['safari']}")
        return f"Mozilla/5.0 ({platform}) {wk} {tail} Mobile/15E148 Safari/604.1"
    if browser == "safari":
        return (
            f"Mozilla/5.0 ({platform}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v['safari']} Safari/605.1.15"
        )
    if browser == "firefox":
        gecko = "Mobile; rv" if device != "desktop" else f"{platform}; rv"
        head = f"Android {v['android']}; {gecko}" if os_name == "android" else gecko
        return f"Mozilla/5.0 ({head}:{v['firefox']}) Gecko/20100101 Firefox/{v['firefox']}"
    if browser == "samsung":
        return (
            f"Mozilla/5.0 ({platform}) {webkit} SamsungBrowser/{v['samsung']} "
            f"Chrome/{v['chrome_major']}.0.0.0{mobile} Safari/537.36"
        )
    if browser == "edge":
        edge = "EdgA" if os_name == "android" else "Edg"
        chrome = f"Mozilla/5.0 ({platform}) {webkit} Chrome/{v['chrome_major']}.0.0.0{mobile} Safari/537.36"
        return f"{chrome} {edge}/{v['edge']}"
    return f"Mozilla/5.0 ({platform}) {webkit} Chrome/{v['chrome_major']}.0.0.0{mobile} Safari/537.36"


# --- IP addresses -------------------------------------------------------------------------------


def _check_countries(countries) -> None:
    """Every country of the audience must have networks to draw addresses from."""
    table = geo_table()
    for country in countries:
        if not table.has(country):
            raise PopulationError(
                f"audience.countries: {country!r} has no networks in the geolocation database "
                f"({table.source}); use ISO 3166-1 alpha-2 codes such as US, GB, DE"
            )


def _ips(country: str, n: int, rng: np.random.Generator) -> list[str]:
    """`n` addresses from the real networks of `country`, so a collector geolocates them back to it."""
    return geo_table().draw(country, n, rng)


def _codes(names: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of an array of names (equal names, equal codes), and how many distinct names."""
    encoded = pa.array(names, type=pa.string()).dictionary_encode()
    return encoded.indices.to_numpy().astype(np.int64), len(encoded.dictionary)


# --- entries ------------------------------------------------------------------------------------

_BASE36 = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))


def entry_ids(n: int, rng: np.random.Generator, taken: set[str]) -> list[str]:
    """`n` distinct Kaltura-looking entry ids ("1_" + 8 lowercase base36 characters) not in `taken`."""
    out: list[str] = []
    while len(out) < n:
        digits = rng.integers(0, 36, (n - len(out), 8))
        for row in _BASE36[digits]:
            ident = "1_" + "".join(row)
            if ident not in taken:
                taken.add(ident)
                out.append(ident)
    return out


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Zipf popularity over ranks 1..n, normalised to sum to 1 (exponent 0 = uniform)."""
    w = np.arange(1, n + 1, dtype=float) ** -float(exponent)
    return w / w.sum()


def _csv_entries(path: Path) -> tuple[list[str], list[float], list[bool]]:
    """Entries from a CSV with columns id,duration[,live,name]; errors name file:line."""
    ids, durations, live = [], [], []
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise PopulationError(f"{path}: cannot read the catalog CSV ({exc.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = {"id", "duration"} - set(reader.fieldnames or [])
        if missing:
            raise PopulationError(f"{path}:1: catalog CSV lacks column(s) {', '.join(sorted(missing))}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row["id"]:
                raise PopulationError(f"{where}: empty entry id")
            try:
                duration = float(row["duration"])
            except (TypeError, ValueError):
                raise PopulationError(f"{where}: duration {row['duration']!r} is not a number") from None
            if not duration > 0:
                raise PopulationError(f"{where}: duration must be positive, got {duration}")
            flag = (row.get("live") or "false").strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no", ""):
                raise PopulationError(f"{where}: live {row['live']!r} is not true/false")
            ids.append(row["id"])
            durations.append(duration)
            live.append(flag in ("true", "1", "yes"))
    if not ids:
        raise PopulationError(f"{path}: the catalog CSV has no entries")
    return ids, durations, live


def _catalog_of(scenario, base_dir: Path | None, rng: np.random.Generator, taken: set[str]):
    cat = scenario.catalog
    if cat.entries is not None:
        return (
            [e.id for e in cat.entries],
            np.array([e.duration for e in cat.entries], float),
            np.array([e.live for e in cat.entries], bool),
        )
    if cat.csv is not None:
        path = Path(cat.csv)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        ids, durations, live = _csv_entries(path)
        return ids, np.array(durations, float), np.array(live, bool)
    n = int(cat.count)
    durations = np.maximum(draw_many(cat.duration, n, rng), 1.0)
    live = rng.random(n) < cat.live_share
    return entry_ids(n, rng, taken), durations, live


# --- viewers and identities ----------------------------------------------------------------------


def _pick(mix: dict[str, float], n: int, rng: np.random.Generator) -> np.ndarray:
    names = list(mix)
    w = np.asarray([mix[k] for k in names], float)
    return np.asarray(names, dtype=object)[rng.choice(len(names), n, p=w / w.sum())]


def device_mix(audience) -> dict[str, float]:
    """`audience.devices` normalised, then each `device_shift` applied: +x points to that device,
    the other devices giving up x in proportion to their shares."""
    total = sum(audience.devices.values())
    mix = {d: w / total for d, w in audience.devices.items()}
    for dev, shift in audience.device_shift.items():
        others = {d: w for d, w in mix.items() if d != dev}
        rest = sum(others.values())
        new = min(max(mix.get(dev, 0.0) + shift, 0.0), 1.0)
        change = new - mix.get(dev, 0.0)
        for d, w in others.items():
            mix[d] = max(w - change * (w / rest if rest > 0 else 0.0), 0.0)
        mix[dev] = new
    return mix


def _is_lms(referrers: list[str]) -> bool:
    lms_words = ("learn", "lms", "moodle", "canvas", "blackboard", "course", ".edu")
    return any(word in r.lower() for r in referrers for word in lms_words)


def person_names(fake, firsts: int, lasts: int) -> tuple[list[str], list[str]]:
    """What `firsts` calls of fake.first_name() and then `lasts` of fake.last_name() return.
    Each call is a weighted random_element() over the person provider's name table; one
    random_elements() call per table draws the same names a hundred times faster."""
    person = fake.provider("faker.providers.person")
    return (
        list(fake.random_elements(person.first_names, length=firsts, use_weighting=True)),
        list(fake.random_elements(person.last_names, length=lasts, use_weighting=True)),
    )


@dataclass
class _PoolsBuilder:
    """The identity pools and name tables of a run as they grow, component after component."""

    os_names: list[str] = field(default_factory=lambda: list(BASE_OS))
    browser_names: list[str] = field(default_factory=lambda: list(BASE_BROWSERS))
    countries: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    ua_strings: list[str] = field(default_factory=list)
    ua_device: list[int] = field(default_factory=list)
    ua_os: list[int] = field(default_factory=list)
    ua_browser: list[int] = field(default_factory=list)
    ua_key: dict = field(default_factory=dict)  # (device, os, browser, variant) -> user agent row
    ip_strings: list[str] = field(default_factory=list)
    ip_country: list[int] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)
    namesakes: dict[str, int] = field(default_factory=dict)  # email address -> viewers given it

    @staticmethod
    def index_of(names: list[str], name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    def pools(self) -> IdentityPools:
        return IdentityPools(
            user_agents=np.array(self.ua_strings, dtype=object),
            ua_device=np.array(self.ua_device, np.int8),
            ua_os=np.array(self.ua_os, np.int8),
            ua_browser=np.array(self.ua_browser, np.int8),
            ips=np.array(self.ip_strings, dtype=object),
            ip_country=np.array(self.ip_country, np.int16),
            user_ids=np.array(self.user_ids, dtype=object),
            referrers=np.array(self.referrers, dtype=object),
            os_names=self.os_names,
            browser_names=self.browser_names,
            country_codes=self.countries,
            caption_languages=self.languages,
        )


def _user_agent_rows(b: _PoolsBuilder, aud, n_viewers: int, rng: np.random.Generator, rnd) -> np.ndarray:
    """Each viewer's device, OS and browser drawn from the audience mixes; returns its user agent row."""
    device = _pick(device_mix(aud), n_viewers, rng)
    os_of = np.empty(n_viewers, dtype=object)
    browser_of = np.empty(n_viewers, dtype=object)
    for dev in sorted(set(device.tolist())):
        rows = np.flatnonzero(device == dev)
        os_mix = aud.os.get(dev) or {"other": 1.0}
        br_mix = aud.browsers.get(dev) or {"other": 1.0}
        os_of[rows] = _pick(os_mix, len(rows), rng)
        browser_of[rows] = _pick(br_mix, len(rows), rng)
    # A few versions of each platform: real audiences run a spread of browser releases.
    variant = rng.integers(0, 6, n_viewers)
    # Viewers share a few hundred (device, os, browser, version) identities: resolve each
    # distinct one once, in order of first appearance (user agents draw from `rnd`).
    combo = variant.astype(np.int64)
    for names in (device, os_of, browser_of):
        codes, count = _codes(names)
        combo = combo * count + codes
    _, firsts, of_raw = np.unique(combo, return_index=True, return_inverse=True)
    raw_rows = np.empty(len(firsts), np.int32)
    for r in np.argsort(firsts, kind="stable").tolist():
        i = int(firsts[r])
        dev = device[i]
        os_name = _platform_os(os_of[i], dev)
        br = _compatible_browser(os_name, dev, browser_of[i])
        key = (dev, os_name, br, int(variant[i]))
        row = b.ua_key.get(key)
        if row is None:
            row = b.ua_key[key] = len(b.ua_strings)
            b.ua_strings.append(user_agent(dev, os_name, br, rnd))
            b.ua_device.append(DEVICE_CODES[dev])
            b.ua_os.append(b.index_of(b.os_names, os_name))
            b.ua_browser.append(b.index_of(b.browser_names, br))
        raw_rows[r] = row
    return raw_rows[of_raw]


def _ip_rows(b: _PoolsBuilder, aud, n_viewers: int, rng: np.random.Generator) -> np.ndarray:
    """Each viewer's country drawn from the audience mix and an address in it; returns its IP row."""
    _check_countries(aud.countries)
    country = _pick(aud.countries, n_viewers, rng)
    ip_rows = np.empty(n_viewers, np.int32)
    for code in sorted(set(country.tolist())):
        rows = np.flatnonzero(country == code)
        ip_rows[rows] = np.arange(len(b.ip_strings), len(b.ip_strings) + len(rows))
        b.ip_strings.extend(_ips(code, len(rows), rng))
        b.ip_country.extend([b.index_of(b.countries, code)] * len(rows))
    return ip_rows


def _user_id_rows(
    b: _PoolsBuilder, aud, n_viewers: int, rng: np.random.Generator, fake, first_lower: list[str], last_lower: list[str]
) -> np.ndarray:
    """Which viewers sign in and their user ids; returns each viewer's user id row (-1 = anonymous)."""
    authenticated = rng.random(n_viewers) < aud.authenticated
    user_rows = np.full(n_viewers, -1, np.int32)
    n_auth = int(authenticated.sum())
    user_rows[authenticated] = np.arange(len(b.user_ids), len(b.user_ids) + n_auth)
    domains = [fake.domain_name() for _ in range(3)]
    lms = _is_lms(list(aud.referrers))
    fi = rng.integers(0, len(first_lower), n_auth).tolist()
    la = rng.integers(0, len(last_lower), n_auth).tolist()
    for k in range(n_auth):
        if lms and k % 3 != 0:  # LMS tenants mostly see student numbers, some staff emails
            b.user_ids.append(f"s{1000000 + len(b.user_ids):07d}")
        else:
            # namesakes get a number, as mail systems do: base@, base1@, base2@ ...
            address = f"{first_lower[fi[k]]}.{last_lower[la[k]]}@{domains[k % 3]}"
            seen = b.namesakes.get(address, 0)
            b.namesakes[address] = seen + 1
            b.user_ids.append(address if not seen else address.replace("@", f"{seen}@", 1))
    return user_rows


def _tz_groups(sc, n_viewers: int, v0: int, rng: np.random.Generator):
    """Viewers split by time-zone group in proportion to the group's share of sessions.

    Returns the time-zone weights, each group's rows into the component's viewers (a viewer may be
    reused when there are more groups than viewers), global viewer ranges and activity CDFs."""
    tz = sc.clock.timezones
    tz_w = np.array([t.weight for t in tz], float)
    tz_w = tz_w / tz_w.sum()
    group_sizes = np.maximum(1, np.floor(tz_w * n_viewers).astype(int))
    group_sizes[-1] = max(1, n_viewers - group_sizes[:-1].sum())
    order = rng.permutation(n_viewers)
    if group_sizes.sum() > n_viewers:  # more groups than viewers: reuse viewers
        order = np.resize(order, group_sizes.sum())
    members, ranges, cdfs, start = [], [], [], v0
    for size in group_sizes.tolist():
        members.append(order[start - v0 : start - v0 + size])
        ranges.append(range(start, start + size))
        cdfs.append(np.cumsum(zipf_weights(size, sc.audience.returning.activity_zipf)))
        start += size
    return tz_w, members, ranges, cdfs


def build_population(components, seed: int) -> Population:
    """The catalog, identity pools and viewers of a run: same components + seed -> same population.

    `components`: Components (name, scenario, weight, path), Scenarios, or one Scenario. Faker is
    seeded with `seed` and fills the pools once.
    """
    from faker import Faker

    components = as_components(components)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rnd = fake.random  # Faker's seeded random.Random, for the version numbers in user agents
    weights = np.array([c.weight for c in components], float)
    weights = weights / weights.sum()

    b = _PoolsBuilder()
    entry_ids_all, durations_all, live_all, popularity_all = [], [], [], []
    v_ua, v_ip, v_user, v_tz = [], [], [], []
    slices: list[ComponentSlice] = []
    n_viewer_rows = 0
    taken: set[str] = set()
    first_names, last_names = person_names(fake, 150, 250)
    first_lower = [name.lower().replace(" ", "") for name in first_names]
    last_lower = [name.lower().replace(" ", "") for name in last_names]

    for ci, comp in enumerate(components):
        sc, aud = comp.scenario, comp.scenario.audience
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, ci)))
        base_dir = Path(comp.path).parent if comp.path else None

        ids, durations, live = _catalog_of(sc, base_dir, rng, taken)
        e0 = len(entry_ids_all)
        entry_ids_all.extend(ids)
        durations_all.append(durations)
        live_all.append(live)
        pop = zipf_weights(len(ids), sc.catalog.zipf)
        popularity_all.append(pop * weights[ci])

        r0 = len(b.referrers)
        for template in aud.referrers:
            for page in range(1, aud.pages_per_referrer + 1):
                b.referrers.append(template.replace("{n}", str(page)))

        n_viewers = int(aud.viewers)
        ua_rows = _user_agent_rows(b, aud, n_viewers, rng, rnd)
        ip_rows = _ip_rows(b, aud, n_viewers, rng)
        user_rows = _user_id_rows(b, aud, n_viewers, rng, fake, first_lower, last_lower)
        v0 = n_viewer_rows
        tz_w, members, tz_ranges, cdfs = _tz_groups(sc, n_viewers, v0, rng)
        for g, rows in enumerate(members):
            v_ua.append(ua_rows[rows])
            v_ip.append(ip_rows[rows])
            v_user.append(user_rows[rows])
            v_tz.append(np.full(len(rows), sc.clock.timezones[g].offset_minutes, np.int16))
        n_viewer_rows = tz_ranges[-1].stop

        lang_idx = np.array([b.index_of(b.languages, lang) for lang in sc.behaviour.captions.languages], np.int16)
        slices.append(
            ComponentSlice(
                name=comp.name,
                entries=range(e0, len(entry_ids_all)),
                viewers=range(v0, n_viewer_rows),
                referrers=range(r0, len(b.referrers)),
                entry_cdf=np.cumsum(pop),
                tz_offsets_min=np.array([t.offset_minutes for t in sc.clock.timezones], np.int16),
                tz_weights=tz_w,
                tz_viewers=tz_ranges,
                tz_activity_cdf=cdfs,
                caption_languages=lang_idx,
            )
        )

    catalog = Catalog(
        entry_ids=np.array(entry_ids_all, dtype=object),
        durations=np.concatenate(durations_all),
        live=np.concatenate(live_all),
        popularity=np.concatenate(popularity_all),
    )
    catalog.popularity = catalog.popularity / catalog.popularity.sum()
    viewers = Viewers(
        user_agent=np.concatenate(v_ua).astype(np.int32),
        ip=np.concatenate(v_ip).astype(np.int32),
        user_id=np.concatenate(v_user).astype(np.int32),
        tz_offset_min=np.concatenate(v_tz),
    )
    return Population(catalog=catalog, pools=b.pools(), viewers=viewers, components=slices)
