"""The live page's charts: /stats.json carries requests over time by outcome and the play funnel,
and the page draws them in a real headless browser."""

from __future__ import annotations

import re

import pytest
import requests

from headless_chromium import CHROMIUM, SKIP_REASON, dump_dom
from helpers.collector import KAVA_BEACON_URL, LEGACY_BEACON_URL, wait_for_figures

LEGACY, KAVA = LEGACY_BEACON_URL, KAVA_BEACON_URL
SENT = [(LEGACY, 2)] * 4 + [(LEGACY, 3)] * 3 + [(LEGACY, 4)] * 2 + [(KAVA, 1)] * 2 + [(KAVA, 3)] * 1


def _send(collector) -> None:
    for i, (template, event_type) in enumerate(SENT):
        assert requests.get(collector.url + template.format(t=event_type, i=i), timeout=10).ok
    # one the collector stores but flags (no eventType), one it rejects (no such service)
    requests.get(collector.url + "/api_v3/index.php?service=stats&action=collect&event:partnerId=1", timeout=10)
    requests.get(collector.url + "/api_v3/index.php?service=nosuch&action=collect", timeout=10)
    wait_for_figures(  # the store's batches and the figures' 1 s cache have caught up
        collector.url, lambda s: s["accepted"] == len(SENT) + 1 and s["rejected"] == 1 and _funnel_of_sent(s)
    )


def _funnel_of_sent(stats: dict) -> bool:
    return stats["funnel"]["legacy"][0]["count"] == 4 and stats["funnel"]["kava"][0]["count"] == 2


def test_stats_carry_requests_over_time_and_the_play_funnel(collector):
    _send(collector)
    stats = requests.get(collector.url + "/stats.json", timeout=10).json()
    collector.stop()
    series = stats["series"]
    assert series["columns"] == ["time", "accepted", "rejected", "flagged"] and series["bucket_s"] == 5
    times = [p[0] for p in series["points"]]
    assert times == sorted(times) and len(times) == 60 and times[-1] <= stats["time"]
    assert sum(p[1] for p in series["points"]) == stats["accepted"] == len(SENT) + 1
    assert sum(p[2] for p in series["points"]) == stats["rejected"] == 1
    assert sum(p[3] for p in series["points"]) == stats["flagged"] >= 1
    legacy = {f["step"]: f["count"] for f in stats["funnel"]["legacy"]}
    assert legacy == {"loads": 4, "plays": 3, "25 %": 2, "50 %": 0, "75 %": 0, "100 %": 0}
    assert [f["count"] for f in stats["funnel"]["kava"]][:3] == [2, 0, 1]


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_the_live_page_draws_its_charts(collector, tmp_path):
    _send(collector)
    dom = dump_dom(collector.url + "/", tmp_path)
    collector.stop()
    assert re.search(r'<body[^>]*data-charts="3"', dom)
    funnel = dom[dom.index('id="chart_funnel"') :]
    for text in ("Play funnel (accepted beacons)", "loads", "plays", ">4<", ">3<", ">2<"):
        assert text in funnel
    assert "Events per second (last 5 minutes)" in dom and "Requests per 5 s by outcome" in dom
