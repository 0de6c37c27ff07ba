"""The oracle's recordings: what the real player sent, read back as beacons in arrival order.

A recording (`recordings/<session>-<transport>.json`, written by `harness.mjs`) holds the script the
harness ran, the actions with their times and playhead positions, and every request the beacon
endpoint received (OPTIONS preflights included) with its raw headers and body. `Request.params` is
what the beacon carries, whichever transport: the query of a GET, the query and JSON body of a POST,
values kept as sent (strings from a query, JSON types from a body).

    rec = load("seek-back-get")
    [r.event for r in rec.beacons]    # ['1', '2', '3', '99', ...]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sim.protocols.event_types import KAVA_EVENT_NAMES

HERE = Path(__file__).resolve().parent
RECORDINGS = HERE / "recordings"
# The event types KAVA 0.15.1 sends (kava-event-model.js)
KAVA_015_TYPES = frozenset({1, 2, 3, 4, 11, 12, 13, 14, 33, 34, 35, 38, 39, 41, 42, 43, 45, 46, 98, 99})


def event_name(event_type) -> str:
    return KAVA_EVENT_NAMES.get(int(event_type), str(event_type))


@dataclass
class Request:
    """One request as the endpoint received it."""

    n: int
    t: float
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: str | None
    answer: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    @property
    def event(self) -> str | None:
        value = self.params.get("eventType", self.query.get("eventType"))
        return None if value is None else str(value)

    @property
    def index(self) -> int | None:
        value = self.params.get("eventIndex")
        return None if value in (None, "") else int(value)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def header_names(self) -> list[str]:
        return [k.lower() for k, _ in self.headers]


@dataclass
class Recording:
    name: str  # "<session>-<transport>"
    data: dict
    requests: list[Request]

    @property
    def session(self) -> str:
        return self.data["session"]

    @property
    def transport(self) -> str:
        return self.data["transport"]

    @property
    def beacons(self) -> list[Request]:
        """The beacons (not the preflights), in arrival order."""
        return [r for r in self.requests if r.method != "OPTIONS"]

    @property
    def preflights(self) -> list[Request]:
        return [r for r in self.requests if r.method == "OPTIONS"]

    @property
    def actions(self) -> list[dict]:
        return self.data["actions"]

    @property
    def player_events(self) -> list[dict]:
        return self.data["player_events"]


def parse_request(raw: dict) -> Request:
    req = Request(
        raw["n"],
        raw["t"],
        raw["method"],
        raw["url"],
        [tuple(h) for h in raw["headers"]],
        raw["body"],
        raw.get("answer"),
    )
    if req.method != "OPTIONS":
        params = {k: v for k, v in req.query.items() if k not in ("service", "action")}
        if req.body:
            params.update(json.loads(req.body))
        req.params = params
    return req


def load_file(path: Path) -> Recording:
    data = json.loads(path.read_text())
    return Recording(path.stem, data, [parse_request(r) for r in data["requests"]])


def load(name: str, folder: Path = RECORDINGS) -> Recording:
    return load_file(folder / f"{name}.json")


def load_all(folder: Path = RECORDINGS) -> dict[str, Recording]:
    return {p.stem: load_file(p) for p in sorted(folder.glob("*.json"))}
