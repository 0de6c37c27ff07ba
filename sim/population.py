"""Who watches what: the catalog of entries and the identity pools of viewers.

Built once per run from a scenario and a seed. Faker fills the identity pools here and
nowhere else; sessions refer to pool rows by index, so nothing on the per-session path
creates strings.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Catalog:
    entry_ids: np.ndarray      # object[str], e.g. "1_a2b3c4d5"
    durations: np.ndarray      # float64 seconds
    live: np.ndarray           # bool
    popularity: np.ndarray     # float64, sums to 1 (Zipf over entries)


@dataclass
class IdentityPools:
    user_agents: np.ndarray    # object[str]
    ua_device: np.ndarray      # int8 Device of each user agent
    ua_os: np.ndarray          # int8 index into os_names
    ua_browser: np.ndarray     # int8 index into browser_names
    ips: np.ndarray            # object[str] dotted quads
    ip_country: np.ndarray     # int16 index into country_codes
    user_ids: np.ndarray       # object[str]
    referrers: np.ndarray      # object[str] page URLs
    os_names: list[str]
    browser_names: list[str]
    country_codes: list[str]
    caption_languages: list[str]


@dataclass
class Population:
    catalog: Catalog
    pools: IdentityPools
