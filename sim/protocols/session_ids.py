"""Players' session ids as ASCII bytes: 8-4-4-4-12 hex GUIDs written straight into one byte
pool (no Python string per session), for `AsciiStrings` columns.

    data, offsets = guid_pool(random_bytes, upper, paired)    # random_bytes: (n, 32) uint8
"""

from __future__ import annotations

import numpy as np
from numba import njit

HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)  # ASCII of each nibble
HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
GUID_LENGTH = 36


def random_id_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """32 random bytes per id (two GUIDs' worth of hex digits), for `guid_pool`."""
    return np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)


def guid_pool(random_bytes: np.ndarray, upper: np.ndarray, paired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of one id per row of `random_bytes`: the GUID whose 32 hex digits are
    its first 16 bytes, uppercase where `upper`, and where `paired` followed by ":" and the
    GUID of the next 16 (`<guid>:<guid>`, as v7 players and KAVA send)."""
    n = len(random_bytes)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(paired, 2 * GUID_LENGTH + 1, GUID_LENGTH), out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    _write_ids(
        random_bytes, np.asarray(upper, np.bool_), np.asarray(paired, np.bool_), HEX_UPPER, HEX_LOWER, offsets, data
    )
    return data, offsets


@njit(cache=True)
def _write_guid(random_bytes, i, src, alphabet, data, p):
    """ASCII of the 8-4-4-4-12 GUID of random_bytes[i, src:src + 16] (high digit of a byte
    first) at data[p:]; the end position."""
    digit = 0
    for group in range(5):
        size = 12 if group == 4 else (8 if group == 0 else 4)
        if group:
            data[p] = 45  # "-"
            p += 1
        for _ in range(size):
            b = np.int64(random_bytes[i, src + (digit >> 1)])
            data[p] = alphabet[(b >> 4) if digit & 1 == 0 else (b & 15)]
            digit += 1
            p += 1
    return p


@njit(cache=True)
def _write_ids(random_bytes, upper, paired, upper_hex, lower_hex, offsets, data):
    for i in range(len(random_bytes)):
        alphabet = upper_hex if upper[i] else lower_hex
        p = _write_guid(random_bytes, i, 0, alphabet, data, offsets[i])
        if paired[i]:
            data[p] = 58  # ":"
            _write_guid(random_bytes, i, 16, alphabet, data, p + 1)
