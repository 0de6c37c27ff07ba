"""`--protocol both` as one player: the legacy stats plugin and the KAVA line that shipped beside it.

    legacy = legacy_policy.beacons(chunk, with_kava=True)     # v7 rows carry KAVA's session ids
    kava = kava_beside_legacy(chunk, kava_policy.beacons(chunk))

* v7: kanalytics and kava both report the player's session id (`<guid>:<guid>`,
  kaltura-player-js session-id-generator), so the legacy beacons carry KAVA's.
* mwEmbed 2.x: beside its statistics plugin ran kAnalony, whose sessionId is the page's GUID
  (the one the statistics plugin sends) + "-" + the entry's play counter (mwEmbed
  mw.kAnalony.js `getEntrySessionId`): `<guid>-1` for a session's one entry. Its beacons carry
  the same era browser as the legacy ones. (kAnalony's own request form, through kWidget.api
  with `apiVersion=3.1` and `kalsig`, is not built: they go out as the KAVA codec encodes.)
* KDP: no KAVA line shipped beside the Flash player (the reference sheet knows kAnalony in
  mwEmbed and kava in v7 only; kanalony dates from 2015, KDP's last releases from 2015), so its
  sessions send legacy beacons only, without `hasKanalony`.
"""

from __future__ import annotations

import numpy as np

from sim.player.timeline import SessionChunk
from sim.protocols.beacons import AsciiStrings, BeaconChunk, take_rows

KDP, MWEMBED, V7 = 0, 1, 2  # as the legacy policy numbers its flavors


def flavors(chunk: SessionChunk) -> np.ndarray:
    """Each session's legacy flavor (KDP, MWEMBED, V7)."""
    from sim.protocols.legacy.policy import FLAVORS

    table = np.array([FLAVORS.index(sc.player.legacy_flavor) for sc in chunk.scenarios], np.int8)
    scenario = chunk.sessions["scenario"].astype(np.intp)
    return table[scenario] if len(scenario) else np.zeros(0, np.int8)


def kava_session_ids(chunk: SessionChunk) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of the KAVA session id of every session: the KAVA policy's own first draw."""
    from sim.protocols.kava.policy import session_ids

    return session_ids(chunk.rng("kava"), chunk.n_sessions)


def _strings(texts: list[str], codes: np.ndarray) -> AsciiStrings:
    raw = [t.encode("ascii") for t in texts]
    offsets = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    return AsciiStrings(codes, np.frombuffer(b"".join(raw), np.uint8), offsets)


def kava_beside_legacy(chunk: SessionChunk, kava: BeaconChunk) -> BeaconChunk:
    """The KAVA beacons of `chunk` as the KAVA line beside each session's legacy plugin sends
    them (see the module docstring); v7 sessions' as they are."""
    import dataclasses

    from sim.protocols.legacy.policy import legacy_session_ids, user_agents

    flavor = flavors(chunk)
    if not len(flavor) or (flavor == V7).all():
        return kava
    rows_flavor = flavor[kava.session]
    if (rows_flavor == KDP).any():
        kava = take_rows(kava, np.flatnonzero(rows_flavor != KDP))
        rows_flavor = flavor[kava.session]
    mw = flavor == MWEMBED
    if not mw.any():
        return kava
    legacy_ids = legacy_session_ids(chunk, flavor)
    kava_texts, legacy_texts = kava.columns["sessionId"].pool, legacy_ids.pool  # entry s: session s
    texts = [f"{legacy_texts[s]}-1" if m else kava_texts[s] for s, m in enumerate(mw.tolist())]
    ids = _strings(texts, kava.session.astype(np.int32))
    columns = dict(kava.columns)
    columns["sessionId"] = ids
    columns["user_agent"] = user_agents(chunk, flavor, kava.session)
    return dataclasses.replace(kava, columns=columns, ledger_session=ids)
