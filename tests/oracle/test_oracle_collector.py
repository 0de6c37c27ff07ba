"""The real player's beacons, replayed into player-sim's own collector: every one accepted, none flagged.

Each recorded request (preflights included) is sent again as recorded: method, path and query, the
browser's headers, the body. A collector that refuses or flags what a real player sends would make
every real-traffic comparison wrong.
"""

from __future__ import annotations

import pytest
import requests
from oracle_recordings import load_all

from helpers.collector import running_collector

RECORDINGS = load_all()
# Set by the HTTP client or the connection, not by the request
NOT_REPLAYED = {"host", "connection", "content-length"}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Per recording: the collector's answers to each request, and the rows it stored for the session."""
    store = tmp_path_factory.mktemp("oracle-collector") / "events.duckdb"
    answers: dict[str, list] = {}
    with running_collector(store) as collector, requests.Session() as http:
        for name, rec in RECORDINGS.items():
            answers[name] = []
            for r in rec.requests:
                headers = {k: v for k, v in r.headers if k.lower() not in NOT_REPLAYED}
                body = r.body.encode() if r.body is not None else None
                answers[name].append(
                    (r, http.request(r.method, collector.url + r.url, headers=headers, data=body, timeout=10))
                )
        assert collector.stop() == 0
        rows = collector.rows()
    by_session: dict[str, list[dict]] = {}
    for row in rows:
        by_session.setdefault(row["sessionId"], []).append(row)
    return answers, by_session


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_every_real_beacon_is_answered_as_kaltura_does(replayed, name):
    answers, _ = replayed
    for r, answer in answers[name]:
        if r.method == "OPTIONS":
            assert answer.status_code == 204
            assert answer.headers["access-control-allow-origin"] == "*"
            assert "content-type" in answer.headers["access-control-allow-headers"].lower()
            assert "POST" in answer.headers["access-control-allow-methods"]
        else:
            assert answer.status_code == 200, (r.event, answer.text)
            assert set(answer.json()) == {"time", "viewEventsEnabled"}, (r.event, answer.text)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_every_real_beacon_is_stored_accepted_without_a_flag(replayed, name):
    _, by_session = replayed
    rec = RECORDINGS[name]
    session_id = rec.beacons[0].params["sessionId"]
    rows = by_session.get(session_id, [])
    assert len(rows) == len(rec.beacons), f"{len(rows)} rows stored for {len(rec.beacons)} beacons"
    bad = [
        (row["eventType"], row["eventIndex"], row["error_code"], row["flags"])
        for row in rows
        if not row["accepted"] or row["flags"]
    ]
    assert not bad, f"{name}: refused or flagged (eventType, eventIndex, error, flags): {bad}"
    stored = sorted((row["eventType"], row["eventIndex"]) for row in rows)
    assert stored == sorted((int(r.event), r.index) for r in rec.beacons)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_the_servers_float_session_start_time_is_stored_exactly(replayed, name):
    _, by_session = replayed
    rec = RECORDINGS[name]
    session = by_session.get(rec.beacons[0].params["sessionId"], [])
    rows = {(row["eventType"], row["eventIndex"]): row for row in session}
    sent = {
        (int(r.event), r.index): float(r.params["sessionStartTime"])
        for r in rec.beacons
        if r.params.get("sessionStartTime") not in (None, "")
    }
    assert sent, "the recording has beacons carrying sessionStartTime"
    stored = {key: rows[key]["sessionStartTime"] if key in rows else "missing" for key in sent}
    assert stored == sent
