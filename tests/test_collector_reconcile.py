"""A beacon the collector rejects is reconciled as sent and rejected, not as lost."""

import json
import urllib.request

from helpers.collector import running_collector
from sim.metrics.reconcile import reconcile
from sim.protocols.beacons import Beacon
from sim.protocols.legacy import codec as legacy


def _beacon(event_type: int, session: str) -> Beacon:
    return Beacon(
        "legacy",
        {
            "eventType": event_type,
            "sessionId": session,
            "partnerId": 2504201,
            "entryId": "1_abcd1234",
            "eventTimestamp": 1793577717428,
            "currentPoint": 0,
            "duration": 300,
            "clientVer": "3.17.0",
        },
        params={"clientTag": "kwidget:v3.17.0", "format": 1, "apiVersion": "3.1"},
    )


def test_a_rejected_event_type_is_counted_as_rejected_not_lost(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    with running_collector(tmp_path / "store.duckdb") as collector, ledger.open("w") as out:
        for beacon in (_beacon(3, "s-good"), _beacon(41, "s-bad")):  # 41 is outside 1-40
            request = legacy.encode(beacon, "get")
            with urllib.request.urlopen(urllib.request.Request(collector.url + request.url)) as answer:
                assert answer.status == 200
            out.write(
                json.dumps(
                    {
                        "ts": 0,
                        "method": "GET",
                        "url": request.url,
                        "headers": {},
                        "body": None,
                        "protocol": "legacy",
                        "key": legacy.ledger_key(beacon),
                    }
                )
                + "\n"
            )
        collector.stop()
    totals = reconcile(str(ledger), str(collector.store)).totals
    assert totals["sent"] == 2 and totals["lost"] == 0 and totals["unexpected"] == 0
    assert totals["rejected"] == 1
