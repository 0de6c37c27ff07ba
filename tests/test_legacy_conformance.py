"""Conformance of our legacy beacons with the official Python client (PyPI KalturaApiClient).

Every server field a player sends is a KalturaStatsEvent property of a compatible type, and
our `json` encoding is the request `client.stats.collect(event)` sends for the same event,
captured on a throw-away HTTP server on 127.0.0.1.

Where the two differ, by design: our body keeps the player's request params (KDP's
`ignoreNull` and top-level `partnerId`, mwEmbed's `expiry`, `ignoreNull` and `hasKanalony`)
and its non-server event keys (`historyEvents`, v7's `uiConfId` and `hasKanalony`), which
the client cannot express. The client always sends `format` 2 (XML, the only format it
parses), where mwEmbed and v7 send 1 and KDP none, and always adds `objectType` (v7 does
not send it). `clientTag` and `apiVersion` are the player's in our body; the test
configures the client with the same values.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.Plugins.Core import KalturaStatsEvent, KalturaStatsEventType

from legacy_timelines import FLAVORS, generated
from sim.protocols.beacons import Beacon
from sim.protocols.legacy.codec import beacon_at, encode
from sim.protocols.legacy.policy import beacons

# Keys players send in `event:` that the server's KalturaStatsEvent does not have (sheet a.4).
NOT_SERVER_FIELDS = {"historyEvents", "uid", "playlistId", "hasKanalony", "uiConfId"}
# Request params of each player that the Python client has no way to send.
PLAYER_ONLY_PARAMS = {
    "kdp": {"ignoreNull", "partnerId"},
    "mwembed": {"expiry", "ignoreNull", "hasKanalony"},
    "v7": set(),
}
# Keys only the client sends: objectType on every event, format (always 2) on every request.
CLIENT_ONLY_EVENT_KEYS = {"kdp": set(), "mwembed": set(), "v7": {"objectType"}}

PROPERTY_KINDS = dict(
    (name, kind)
    for kind, name in re.findall(r'add(\w+?)IfDefined\("(\w+)"', inspect.getsource(KalturaStatsEvent.toParams))
)
# int properties a player fills with float seconds (the API casts them to int, sheet a.4)
FLOAT_INTO_INT = {("mwembed", "duration"), ("v7", "duration"), ("v7", "currentPoint")}
EVENT_TYPES = {v for k, v in vars(KalturaStatsEventType).items() if k.isupper()}


def compatible(kind: str, name: str, value, flavor: str) -> bool:
    if kind == "String":
        return isinstance(value, str)
    if kind == "Bool":
        return isinstance(value, bool)
    if kind == "Float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "Int" and (flavor, name) in FLOAT_INTO_INT:
        return isinstance(value, float)
    return isinstance(value, int) and not isinstance(value, bool)


@pytest.fixture(scope="module", params=FLAVORS)
def sample(request):
    """One beacon of every event type this flavor sends, from player-model sessions."""
    flavor = request.param
    b = beacons(generated(flavor), with_kava=True)
    types = b.columns["eventType"]
    firsts = [int((types == t).argmax()) for t in sorted(set(types.tolist()))]
    return flavor, [beacon_at(b, i) for i in firsts]


def test_every_server_field_we_send_is_a_stats_event_property_of_a_compatible_type(sample):
    flavor, sent = sample
    for beacon in sent:
        for name, value in beacon.fields.items():
            if name in NOT_SERVER_FIELDS:
                continue
            if name == "objectType":
                assert value == "KalturaStatsEvent"
                continue
            assert name in PROPERTY_KINDS, f"{flavor}: {name} is not a KalturaStatsEvent property"
            assert compatible(PROPERTY_KINDS[name], name, value, flavor), (flavor, name, value)


def test_every_event_type_we_send_is_a_kaltura_stats_event_type(sample):
    _, sent = sample
    assert {b.fields["eventType"] for b in sent} <= EVENT_TYPES


class Capture(BaseHTTPRequestHandler):
    """Answers like the API (XML, result true) and keeps the last request."""

    captured: dict = {}

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Capture.captured = {"path": self.path, "headers": dict(self.headers), "body": body}
        reply = (
            b'<?xml version="1.0" encoding="utf-8"?><xml><result>1</result><executionTime>0.001</executionTime></xml>'
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def client_request(base_url: str, beacon: Beacon) -> dict:
    """What the official client sends for this beacon's event, configured like the player."""
    config = KalturaConfiguration()
    config.serviceUrl = base_url
    client = KalturaClient(config)
    client.setClientTag(beacon.params["clientTag"])
    client.setApiVersion(beacon.params["apiVersion"])
    if "ks" in beacon.params:
        client.setKs(beacon.params["ks"])
    event = KalturaStatsEvent()
    for name, value in beacon.fields.items():
        if name in PROPERTY_KINDS:
            setattr(event, name, value)
    assert client.stats.collect(event) is True
    return Capture.captured


def test_our_json_matches_the_clients_request_field_for_field(api_server, sample):
    flavor, sent = sample
    for beacon in sent:
        theirs = client_request(api_server, beacon)
        ours = encode(beacon, "json")
        assert ours.url == theirs["path"]
        assert ours.headers["Content-Type"] == theirs["headers"]["Content-Type"]
        their_body, our_body = json.loads(theirs["body"]), json.loads(ours.body)
        our_event = {k: v for k, v in our_body["event"].items() if k not in NOT_SERVER_FIELDS}
        their_event = their_body["event"]
        assert set(their_event) - set(our_event) == CLIENT_ONLY_EVENT_KEYS[flavor]
        assert {k: v for k, v in their_event.items() if k in our_event} == our_event
        assert their_body["format"] == "2"
        shared = (set(their_body) & set(our_body)) - {"event", "kalsig", "format"}
        assert shared >= {"clientTag", "apiVersion"}
        assert {k: their_body[k] for k in shared} == {k: our_body[k] for k in shared}
        assert set(our_body) - set(their_body) == PLAYER_ONLY_PARAMS[flavor]
        assert set(their_body) - set(our_body) <= {"format"}


def test_for_the_same_content_our_json_body_is_byte_for_byte_the_clients(api_server, sample):
    flavor, sent = sample
    beacon = sent[0]
    server_fields = {k: v for k, v in beacon.fields.items() if k not in NOT_SERVER_FIELDS}
    server_fields["objectType"] = "KalturaStatsEvent"
    params = {
        "clientTag": beacon.params["clientTag"],
        "apiVersion": beacon.params["apiVersion"],
        "format": 2,
        "ks": "djJ8MjUwNDIwMXw=",
    }
    plain = Beacon("legacy", server_fields, params)
    assert encode(plain, "json").body == client_request(api_server, plain)["body"]
