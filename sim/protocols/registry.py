"""The analytics protocols by name: each one's beacon policy and wire codec, and the protocol choice of a run.

    >>> spec = protocol("kava")
    >>> spec.codec.ledger_key(spec.codec.beacon_at(spec.policy.beacons(chunk), 0))
    >>> [name for name, _ in choice_policies("both")]
    ['legacy', 'kava']

Every path that needs a protocol (generate, live load, the collector's decoding, preview)
looks it up here, so adding a protocol is one entry in `PROTOCOLS`. A run's `--protocol`
is a choice among `sim.protocols.choice.CHOICES`: one protocol, or `both` (one player running both plugins: the
legacy plugin then reports `hasKanalony=true`, and each legacy flavor is paired with the KAVA
line that shipped beside it, `sim.protocols.pairing`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from sim.player.timeline import SessionChunk
from sim.protocols.beacons import Beacon, BeaconChunk, WireRequest
from sim.protocols.choice import BOTH, NAMES, check_name, sent
from sim.protocols.kava import codec as kava_codec, policy as kava_policy
from sim.protocols.legacy import codec as legacy_codec, policy as legacy_policy
from sim.protocols.pairing import kava_beside_legacy


@runtime_checkable
class Codec(Protocol):
    """A protocol's wire codec (a module): Beacon <-> WireRequest, and the identity a ledger keeps."""

    def encode(self, beacon: Beacon, encoding: str = ...) -> WireRequest: ...
    def decode(self, request: WireRequest) -> Beacon: ...
    def decode_pairs(self, request: WireRequest, query: list[tuple[str, str]]) -> Beacon: ...
    def beacon_at(self, chunk: BeaconChunk, i: int) -> Beacon: ...
    def encode_rows(self, chunk: BeaconChunk, rows: np.ndarray) -> tuple[list[WireRequest], list[str]]: ...
    def ledger_key(self, beacon: Beacon) -> str: ...


@runtime_checkable
class Policy(Protocol):
    """A protocol's beacon policy (a module): the beacons a player's plugin sends for a chunk of sessions."""

    def beacons(self, chunk: SessionChunk, *, in_send_order: bool = False) -> BeaconChunk: ...


@dataclass(frozen=True)
class ProtocolSpec:
    """One analytics protocol: what it is called, who it is on the wire, and its two modules."""

    name: str
    service_action: tuple[str, str]  # lower-cased, as the request dispatcher compares them
    codec: Codec
    policy: Policy
    encodings: tuple[str, ...]  # wire encodings for request files; the first is the default


PROTOCOLS: dict[str, ProtocolSpec] = {
    "legacy": ProtocolSpec("legacy", ("stats", "collect"), legacy_codec, legacy_policy, ("get", "form", "json")),
    "kava": ProtocolSpec("kava", ("analytics", "trackevent"), kava_codec, kava_policy, ("post", "get")),
}
assert tuple(PROTOCOLS) == NAMES, "sim.protocols.choice.NAMES lists the registered protocols"


def protocol(name: str) -> ProtocolSpec:
    """The registered protocol `name`; UnknownProtocol (a ValueError) naming the known ones otherwise."""
    return PROTOCOLS[check_name(name)]


PolicyFn = Callable[[SessionChunk], BeaconChunk]


def choice_policies(choice: str, in_send_order: bool = False) -> list[tuple[str, PolicyFn]]:
    """(protocol, chunk -> BeaconChunk) for every protocol a run of `choice` sends, legacy first.

    `in_send_order`: the policies give their rows in one send order across sessions (see
    BeaconChunk); KAVA's beside legacy (`both`) stay grouped by session.
    """
    out: list[tuple[str, PolicyFn]] = []
    names = sent(choice)
    if "legacy" in names:
        with_kava = choice == BOTH

        def legacy(chunk: SessionChunk) -> BeaconChunk:
            return legacy_policy.beacons(chunk, with_kava=with_kava, in_send_order=in_send_order)

        out.append(("legacy", legacy))
    if "kava" in names:
        if choice == BOTH:  # one player: the KAVA line beside each legacy plugin

            def kava(chunk: SessionChunk) -> BeaconChunk:
                return kava_beside_legacy(chunk, kava_policy.beacons(chunk))

            out.append(("kava", kava))
        else:

            def kava(chunk: SessionChunk) -> BeaconChunk:
                return kava_policy.beacons(chunk, in_send_order=in_send_order)

            out.append(("kava", kava))
    return out
