"""Builds small SessionChunks and BeaconChunks by hand, for the sink and send-order tests."""

from __future__ import annotations

import numpy as np

from sim.player.timeline import ACTION_COLUMNS, SESSION_COLUMNS, SessionChunk
from sim.population import Catalog, IdentityPools, Population
from sim.protocols.beacons import BeaconChunk, Strings

T0 = 1_793_577_600.0  # 2026-11-02 00:00:00 UTC


def population() -> Population:
    catalog = Catalog(
        entry_ids=np.array(["1_aaaa", "1_bbbb"], dtype=object),
        durations=np.array([300.0, 45.0]),
        live=np.array([False, False]),
        popularity=np.array([0.7, 0.3]),
    )
    pools = IdentityPools(
        user_agents=np.array(
            ["Mozilla/5.0 (Windows NT 10.0) Chrome/120", "Mozilla/5.0 (iPhone) Safari/17"], dtype=object
        ),
        ua_device=np.array([0, 1], dtype=np.int8),
        ua_os=np.array([0, 1], dtype=np.int8),
        ua_browser=np.array([0, 1], dtype=np.int8),
        ips=np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3"], dtype=object),
        ip_country=np.array([0, 1, 0], dtype=np.int16),
        user_ids=np.array(["alice@example.com", "bob"], dtype=object),
        referrers=np.array(
            ["https://learn.example.edu/course/1/lecture", 'https://x.example/"quoted"\\path\tTab'], dtype=object
        ),
        os_names=["windows", "ios"],
        browser_names=["chrome", "safari"],
        country_codes=["US", "GB"],
        caption_languages=["en"],
    )
    return Population(catalog, pools)


def sessions(starts, *, seq0: int = 0, viewers=None, pop: Population | None = None) -> SessionChunk:
    """A chunk of len(starts) sessions with no actions; viewer v uses identity rows v % pool size."""
    n = len(starts)
    viewers = np.arange(n) if viewers is None else np.asarray(viewers)
    cols = {name: np.zeros(n, dtype=dtype) for name, dtype in SESSION_COLUMNS.items()}
    cols["session_seq"][:] = np.arange(seq0, seq0 + n)
    cols["viewer"][:] = viewers
    cols["start"][:] = starts
    cols["entry"][:] = viewers % 2
    cols["duration"][:] = np.where(viewers % 2 == 0, 300.0, 45.0)
    cols["device"][:] = viewers % 2
    cols["os"][:] = viewers % 2
    cols["browser"][:] = viewers % 2
    cols["country"][:] = viewers % 2
    cols["user_agent"][:] = viewers % 2
    cols["ip"][:] = viewers % 3
    cols["user_id"][:] = np.where(viewers % 3 == 2, -1, viewers % 2)
    cols["referrer"][:] = viewers % 2
    cols["intended_fraction"][:] = 0.5
    cols["outcome"][:] = 5
    cols["scripted"][:] = -1
    acts = {name: np.zeros(0, dtype=dtype) for name, dtype in ACTION_COLUMNS.items()}
    chunk = SessionChunk(
        cols,
        acts,
        scenarios=[None],
        scenario_names=["typical-vod"],
        population=pop or population(),
        seed=np.random.SeedSequence(1),
    )
    chunk.check_columns()
    return chunk


def legacy(chunk: SessionChunk, per_session: int = 3, gap: float = 10.0) -> BeaconChunk:
    """`per_session` legacy beacons per session, `gap` seconds apart from its start."""
    n = chunk.n_sessions
    session = np.repeat(np.arange(n, dtype=np.int32), per_session)
    k = np.tile(np.arange(per_session), n)
    send_t = chunk.sessions["start"][session] + gap * k
    pool = np.array([f"sess-{s}" for s in chunk.sessions["session_seq"]], dtype=object)
    codes = session.astype(np.int32)
    current = (gap * k * 1000).astype(np.float64)
    current[k == 0] = np.nan  # not sent on the first beacon
    uid = chunk.sessions["user_id"][session]
    return BeaconChunk(
        protocol="legacy",
        columns={
            "eventType": np.array([2, 3, 4, 5, 6, 7][:per_session] * n, dtype=np.int32),
            "sessionId": Strings(codes, pool),
            "partnerId": np.full(len(session), 2504201, dtype=np.int32),
            "entryId": Strings(chunk.sessions["entry"][session].astype(np.int32), chunk.population.catalog.entry_ids),
            "uiConfId": np.full(len(session), 47313123, dtype=np.int32),
            "userId": Strings(uid.astype(np.int32), chunk.population.pools.user_ids),
            "currentPoint": current,
            "duration": chunk.sessions["duration"][session],
            "seek": k >= 2,
            "referrer": Strings(chunk.sessions["referrer"][session].astype(np.int32), chunk.population.pools.referrers),
            "clientVer": Strings(np.zeros(len(session), np.int32), np.array(["3.0:v2.101"], dtype=object)),
            "ks": Strings(
                np.where(session % 2 == 0, 0, -1).astype(np.int32), np.array(["djJ8MjUwNDIwMXw="], dtype=object)
            ),
            "hasKanalony": np.zeros(len(session), dtype=bool),
        },
        session=session,
        send_t=send_t,
        ledger_session=Strings(codes, pool),
        ledger_index=(k + 1).astype(np.int64),
    )


def kava(chunk: SessionChunk, per_session: int = 2, gap: float = 10.0, offset: float = 0.5) -> BeaconChunk:
    n = chunk.n_sessions
    session = np.repeat(np.arange(n, dtype=np.int32), per_session)
    k = np.tile(np.arange(per_session), n)
    send_t = chunk.sessions["start"][session] + offset + gap * k
    pool = np.array([f"{s:08x}-0000-4000-8000-000000000000:aa" for s in chunk.sessions["session_seq"]], dtype=object)
    codes = session.astype(np.int32)
    play = gap * k.astype(np.float64)
    play[k == 0] = np.nan
    return BeaconChunk(
        protocol="kava",
        columns={
            "eventType": np.where(k == 0, 1, 99).astype(np.int32),
            "sessionId": Strings(codes, pool),
            "partnerId": np.full(len(session), 2504201, dtype=np.int32),
            "eventIndex": (k + 1).astype(np.int32),
            "position": gap * k.astype(np.float64),
            "playTimeSum": play,
            "soundMode": np.where(k == 0, -1, 2).astype(np.int8),
            "deliveryType": Strings(np.zeros(len(session), np.int32), np.array(["hls"], dtype=object)),
        },
        session=session,
        send_t=send_t,
        ledger_session=Strings(codes, pool),
        ledger_index=(k + 1).astype(np.int64),
    )
