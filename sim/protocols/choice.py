"""The protocol choice of a run (`--protocol` everywhere) and its default; light enough for option parsers.

The protocols' modules are in `sim.protocols.registry`, which holds one entry per name here.
"""

from __future__ import annotations

NAMES = ("legacy", "kava")  # the analytics protocols, legacy first (the order runs send them in)
BOTH = "both"  # one player running both plugins (sim.protocols.pairing)
CHOICES = (*NAMES, BOTH)
# The protocol a run speaks unless told otherwise: KAVA, the analytics of Kaltura's current (v7) player;
# the legacy stats plugin belongs to the KDP and mwEmbed players that came before it.
DEFAULT_CHOICE = "kava"


class UnknownProtocol(ValueError):
    """A protocol name no run knows; the message lists the known ones."""


def check_choice(choice: str) -> str:
    """`choice` if it is a `--protocol` choice; UnknownProtocol naming the choices otherwise."""
    if choice not in CHOICES:
        raise UnknownProtocol(f"unknown protocol {choice!r} (choose from {', '.join(CHOICES)})")
    return choice


def check_name(name: str) -> str:
    """`name` if it is one protocol (not `both`); UnknownProtocol naming the protocols otherwise."""
    if name not in NAMES:
        raise UnknownProtocol(f"unknown protocol {name!r} (known: {', '.join(NAMES)})")
    return name


def sent(choice: str) -> tuple[str, ...]:
    """The protocols a run of `choice` sends, legacy first."""
    return NAMES if check_choice(choice) == BOTH else (choice,)
