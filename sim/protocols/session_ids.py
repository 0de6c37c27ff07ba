"""Players' session ids as ASCII bytes: 8-4-4-4-12 hex GUIDs written straight into one byte
pool (no Python string per session), for `AsciiStrings` columns.

    data, offsets = guid_pool(nibbles, upper, paired)    # nibbles: (n, 64) values 0..15
"""
from __future__ import annotations

import numpy as np
from numba import njit

_HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
GUID_LENGTH = 36


def guid_pool(nibbles: np.ndarray, upper: np.ndarray, paired: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of one id per row of `nibbles`: the GUID of its first 32 nibbles,
    uppercase where `upper`, and where `paired` followed by ":" and the GUID of the next 32
    (`<guid>:<guid>`, as v7 players and KAVA send)."""
    n = len(nibbles)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.where(paired, 2 * GUID_LENGTH + 1, GUID_LENGTH), out=offsets[1:])
    data = np.empty(int(offsets[-1]), np.uint8)
    _write_ids(nibbles, np.asarray(upper, np.bool_), np.asarray(paired, np.bool_), _HEX_UPPER, _HEX_LOWER,
               offsets, data)
    return data, offsets


@njit(cache=True)
def _write_guid(nibbles, i, src, alphabet, data, p):
    """ASCII of the 8-4-4-4-12 GUID of nibbles[i, src:src + 32] at data[p:]; the end position."""
    for group in range(5):
        size = 12 if group == 4 else (8 if group == 0 else 4)
        if group:
            data[p] = 45                        # "-"
            p += 1
        for _ in range(size):
            data[p] = alphabet[nibbles[i, src]]
            src += 1
            p += 1
    return p


@njit(cache=True)
def _write_ids(nibbles, upper, paired, upper_hex, lower_hex, offsets, data):
    for i in range(len(nibbles)):
        alphabet = upper_hex if upper[i] else lower_hex
        p = _write_guid(nibbles, i, 0, alphabet, data, offsets[i])
        if paired[i]:
            data[p] = 58                        # ":"
            _write_guid(nibbles, i, 32, alphabet, data, p + 1)
