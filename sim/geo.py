"""Where an IPv4 address is: the GeoLite2 country networks that the geoip2fast package ships.

Kaltura's analytics place a viewer by IP address. Both ends of player-sim use one table for
it: the population draws each viewer's address from the networks of their country, and the
collector geolocates X-Forwarded-For (or the peer address) against the same networks, so the
country a report derives from the wire is the one the generator meant.

    table = geo_table()                        # read once per process (about 0.2 s)
    table.draw("GB", 1000, rng)                # 1000 dotted quads inside GB networks
    table.countries(["81.2.69.142", "10.0.0.1", "not an ip"])   # ["GB", None, None] (Arrow)

The table is geoip2fast's own data file (MaxMind GeoLite2 Country, IPv4), nothing is
downloaded. It is read into sorted numpy arrays, so draws and lookups are vectorised where
geoip2fast's lookup() takes one address at a time. The data file inside the package has
countries only (its region and city files are a separate download), so there is no region
or city here.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import pickle
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATA_FILE = "geoip2fast.dat.gz"
# The data file layouts geoip2fast 1.2 writes and reads (its __DAT_VERSION__).
_DAT_VERSIONS = (120, 121)
# A block's chance of holding a viewer grows with its size up to a /16: uniform over address
# space would give the few legacy /8s (the US DoD, early corporations) a tenth of US viewers.
_MAX_BLOCK_WEIGHT = 1 << 16
# Dotted quad, optionally IPv4-mapped IPv6 (a dual-stack server's peer address).
_QUAD = r"^(?:::ffff:)?(?P<a>\d{1,3})\.(?P<b>\d{1,3})\.(?P<c>\d{1,3})\.(?P<d>\d{1,3})$"


class GeoError(ValueError):
    """The geolocation table cannot be read, or has no networks for a country."""


@dataclass(frozen=True)
class GeoTable:
    starts: np.ndarray  # int64 first address of each network, ascending
    ends: np.ndarray  # int64 one past the last address
    country: np.ndarray  # int16 index into codes; -1 = private, reserved or not in the database
    codes: list[str]  # ISO 3166-1 alpha-2 (and GeoLite2's EU)
    source: str  # e.g. "MAXMIND:GeoLite2-Country-IPv4-en-20240618"

    @functools.cached_property
    def _code_index(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes)}

    @functools.cached_property
    def _blocks_by_country(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per country index: its network rows and the cumulative draw weight over them."""
        order = np.argsort(self.country, kind="stable")
        bounds = np.searchsorted(self.country[order], np.arange(len(self.codes) + 1))
        weight = np.minimum(self.ends - self.starts, _MAX_BLOCK_WEIGHT).astype(np.float64)
        out = {}
        for i in range(len(self.codes)):
            rows = order[bounds[i] : bounds[i + 1]]
            if len(rows):
                out[i] = (rows, np.cumsum(weight[rows]))
        return out

    def has(self, country: str) -> bool:
        """Whether the database has networks for `country` (an ISO code, any case)."""
        i = self._code_index.get(country.upper())
        return i is not None and i in self._blocks_by_country

    def draw(self, country: str, n: int, rng: np.random.Generator) -> list[str]:
        """`n` addresses of `country`'s networks, as dotted quads.

        Networks are picked with numpy by weight (size, capped at a /16), then an offset within
        each; in networks of 256 addresses or more the last octet is 1-254, as hosts have.
        """
        i = self._code_index.get(country.upper())
        if i is None or i not in self._blocks_by_country:
            raise GeoError(f"country {country!r} has no networks in the geolocation database ({self.source})")
        rows, cdf = self._blocks_by_country[i]
        pick = rows[np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(rows) - 1)]
        start, size = self.starts[pick], self.ends[pick] - self.starts[pick]
        u_high, u_low = rng.random(n), rng.random(n)
        wide = size >= 256
        small = (u_high * size).astype(np.int64)
        high = (u_high * (size // 256)).astype(np.int64) * 256
        low = 1 + (u_low * 254).astype(np.int64)
        addr = start + np.where(wide, high + low, small)
        return dotted(addr)

    def lookup(self, addresses: np.ndarray) -> np.ndarray:
        """Country index of each integer address (-1 where the database has none)."""
        row = np.searchsorted(self.starts, addresses, side="right") - 1
        safe = row.clip(0)
        inside = (row >= 0) & (addresses < self.ends[safe])
        return np.where(inside, self.country[safe], -1).astype(np.int16)

    def countries(self, ips) -> pa.Array:
        """Country code of each address (strings, or an Arrow string array); null where the text
        is not an IPv4 address or the database places it nowhere (private, reserved, unlisted)."""
        addresses, valid = parse_ipv4(ips)
        index = self.lookup(addresses)
        index[~valid] = -1
        codes = pa.array(self.codes + [None], pa.string())
        return codes.take(pa.array(np.where(index < 0, len(self.codes), index)))


def parse_ipv4(ips) -> tuple[np.ndarray, np.ndarray]:
    """(int64 address, valid flag) of each dotted quad; anything else is invalid."""
    arr = ips if isinstance(ips, pa.Array | pa.ChunkedArray) else pa.array(ips, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    parts = pc.extract_regex(pc.utf8_trim_whitespace(arr), _QUAD)
    valid = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False)
    address = np.zeros(len(arr), np.int64)
    for k in range(4):
        octet = pc.fill_null(pc.cast(pc.struct_field(parts, [k]), pa.int64()), 0).to_numpy()
        valid &= octet <= 255
        address = (address << 8) | octet
    return address, valid


_DOT = pa.scalar(".")  # made once: Arrow would convert a Python "." on every call


def dotted(addresses: np.ndarray) -> list[str]:
    """Dotted quads of int64 IPv4 addresses."""
    octets = [pa.array((addresses >> shift) & 0xFF).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, _DOT).to_pylist()


@functools.cache
def geo_table() -> GeoTable:
    """The country networks of geoip2fast's data file, read once per process: from a copy as
    numpy arrays in the user's cache folder when one was made from the same data file (reading
    the data file, gzip and pickle, costs about 0.15 CPU s of every run's start)."""
    cached = _cache_file()
    table = _read_cache(cached) if cached else None
    if table is None:
        table = _read_data_file()
        if cached:
            _write_cache(cached, table)
    return table


# Bumped when the cached arrays change meaning.
_CACHE_LAYOUT = 1


def _cache_file():
    """Where this data file's arrays are cached ($XDG_CACHE_HOME or ~/.cache, player-sim/), named
    after the data file's size and modification time; None when it cannot be found."""
    import os
    from pathlib import Path

    try:
        info = os.stat(str(resources.files("geoip2fast").joinpath(DATA_FILE)))
    except (ModuleNotFoundError, OSError, TypeError):
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "player-sim" / f"geo-{_CACHE_LAYOUT}-{info.st_size}-{info.st_mtime_ns}.npz"


def _read_cache(path) -> GeoTable | None:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return GeoTable(
                starts=arrays["starts"],
                ends=arrays["ends"],
                country=arrays["country"],
                codes=arrays["codes"].tolist(),
                source=str(arrays["source"]),
            )
    except (OSError, ValueError, KeyError, EOFError):  # none yet, or unreadable: the data file is read
        return None


def _write_cache(path, table: GeoTable) -> None:
    """Written beside its name, then renamed: a run reading it at the same time sees all or nothing.
    Best effort: a read-only or full cache folder only costs the next run the data file's reading."""
    import os

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(
                f,
                starts=table.starts,
                ends=table.ends,
                country=table.country,
                codes=np.array(table.codes),
                source=np.array(table.source),
            )
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _read_data_file() -> GeoTable:
    try:
        with resources.files("geoip2fast").joinpath(DATA_FILE).open("rb") as raw, gzip.open(raw) as f:
            version, info, _total, database = pickle.load(f)
    except (ModuleNotFoundError, OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise GeoError(f"cannot read geoip2fast's {DATA_FILE} (pip install 'geoip2fast==1.2.2'): {exc}") from None
    if version not in _DAT_VERSIONS or not info.get("country") or info.get("asn") or len(database) != 5:
        raise GeoError(f"geoip2fast's {DATA_FILE} has an unknown layout (version {version}, {info})")
    _index, names, first_ips, country_ids, netlengths = database
    chain = itertools.chain.from_iterable
    n = sum(len(chunk) for chunk in first_ips)
    starts = np.fromiter(chain(first_ips), np.int64, n)
    ends = starts + (np.int64(1) << (32 - np.fromiter(chain(netlengths), np.int64, n)))
    ids = np.fromiter(chain(country_ids), np.int64, n)
    # Names are "CC:Country name"; the reserved and private ranges have numeric codes ("02", "99").
    name_codes = [name.split(":", 1)[0] for name in names]
    codes = sorted({c for c in name_codes if c.isalpha()})
    remap = np.array([codes.index(c) if c.isalpha() else -1 for c in name_codes], np.int16)
    return GeoTable(starts=starts, ends=ends, country=remap[ids], codes=codes, source=str(info.get("info", "")))
