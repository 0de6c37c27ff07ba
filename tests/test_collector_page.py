"""The live page at `/` in a real headless browser: after beacons arrive, its DOM shows their
counts (by protocol and type, and the headline loads/plays/play rate) from /stats.json."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import requests

from headless_chromium import CHROMIUM, SKIP_REASON, dump_dom
from helpers.collector import KAVA_BEACON_URL, LEGACY_BEACON_URL, wait_for_figures

LEGACY, KAVA = LEGACY_BEACON_URL, KAVA_BEACON_URL


class _Tables(HTMLParser):
    """Rows of every table in a DOM dump, by table id, as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, str] = {}
        self._table = None
        self._row = None
        self._cell = None
        self._id = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self._id = attrs["id"]
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._id is not None and data.strip():
            self.ids[self._id] = data.strip()
            self._id = None


@pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)
def test_the_live_page_shows_the_counts_of_events_sent(collector, tmp_path):
    sent = [(LEGACY, 2)] * 4 + [(LEGACY, 3)] * 3 + [(KAVA, 1)] * 2 + [(KAVA, 99)] * 5
    for i, (template, event_type) in enumerate(sent):
        assert requests.get(collector.url + template.format(t=event_type, i=i), timeout=10).ok
    wait_for_figures(  # the store's batches and the figures' 1 s cache have caught up
        collector.url,
        lambda s: s["funnel"]["legacy"][0]["count"] == 4 and s["funnel"]["kava"][0]["count"] == 2,
    )
    dom = dump_dom(collector.url + "/", tmp_path)
    collector.stop()
    page = _Tables()
    page.feed(dom)
    types = {(r[0], r[1]): int(r[3]) for r in page.tables["types"][1:]}
    assert types == {("legacy", "2"): 4, ("legacy", "3"): 3, ("kava", "1"): 2, ("kava", "99"): 5}
    headline = {r[0]: r[1:] for r in page.tables["headline"][1:]}
    assert headline["legacy"][:3] == ["4", "3", "75.0 %"]
    assert headline["kava"][:2] == ["2", "0"]
    assert page.ids["accepted"] == "14"
    assert re.search(r"14 requests stored", dom)
