"""A recorded session played again by player-sim: the recording's actions as a `script:`, and its requests.

`script_steps(rec)` turns what the harness did (with the playhead positions and times it measured)
into player-sim script steps, so the simulated player does what the real one did: a `to P` step
(play until the playhead reaches P) becomes the playing time it took, a pause followed by play becomes
`{pause: seconds}`, the wait after the end an idle `wait`. A step player-sim's scripts cannot express
would be left out and listed in `Translation.unexpressed`.

`simulate(rec)` writes the one-session scenario and runs player-sim's own generation (the in-process
form of `player-sim generate --protocol kava --format requests`), returning its requests in send order.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from oracle_recordings import Recording, Request, parse_request

EPS = 0.0005  # playhead movement below this is the driver's own latency, not playing time


@dataclass
class Translation:
    steps: list
    startup_s: float
    unexpressed: list[str] = field(default_factory=list)
    played_s: float = 0.0  # seconds of content played, all told


def _startup(rec: Recording) -> float:
    """Seconds from the play request to the first frame, as the player reported them."""
    events = rec.player_events
    first_play = next(e["t"] for e in events if e["event"] == "firstplay")
    playing = next(e["t"] for e in events if e["event"] == "playing" and e["t"] >= first_play)
    return max(round(playing - first_play, 3), 0.001)


def script_steps(rec: Recording) -> Translation:
    """The recording's actions as player-sim script steps (see the module docstring)."""
    steps: list = []
    unexpressed: list[str] = []
    playing = paused = ended = False
    last_pos = played = 0.0  # the playhead accounted for so far; content seconds played
    paused_at = None

    def wait(seconds: float) -> None:
        if seconds <= EPS:
            return
        if steps and isinstance(steps[-1], dict) and "wait" in steps[-1]:
            steps[-1]["wait"] = round(steps[-1]["wait"] + seconds, 3)
        else:
            steps.append({"wait": round(seconds, 3)})

    def flush(position) -> None:
        """The playing time up to `position` as a wait step."""
        nonlocal last_pos, played
        if playing and position is not None and position - last_pos > EPS:
            wait(position - last_pos)
            played += position - last_pos
            last_pos = position

    previous = None
    for action in rec.actions:
        name, value = action["step"], action["value"]
        flush(action.get("position"))
        if name == "load":
            steps.append("load")
        elif name == "play" and paused:
            steps.append({"pause": round(action["t"] - paused_at, 3)})
            paused, playing = False, True
            last_pos = action["position"]
        elif name == "play":
            # the page loaded (IMPRESSION sent), the viewer not yet playing
            shown = rec.beacons[0].t if rec.beacons else previous["t_done"]
            wait(action["t"] - shown)
            steps.append("play")
            playing, last_pos = True, 0.0
        elif name == "pause":
            paused, playing, paused_at = True, False, action["t"]
        elif name in ("to", "wait") and not playing:
            if ended:
                wait(action["t_done"] - action["t"])
            # while paused the wait is part of the pause step
        elif name in ("to", "wait"):
            pass  # the playing time is flushed at the next step
        elif name == "until_ended":
            steps.append("end")
            played += rec.data["media"]["duration"] - last_pos
            playing, ended = False, True
            last_pos = rec.data["media"]["duration"]
        elif name == "replay":
            steps.append("replay")
            playing, ended, last_pos = True, False, 0.0
        elif name == "seek":
            steps.append({"seek": float(value)})
            last_pos = float(value)
        elif name == "fullscreen":
            steps.append({"fullscreen": bool(value)})
        elif name == "mute":
            steps.append("mute" if value else "unmute")
        elif name == "quit":
            steps.append("quit")
        else:
            raise ValueError(f"{rec.name}: no script step for action {name!r}")
        previous = action
    return Translation(steps, _startup(rec), unexpressed, round(played, 3))


def kava_version_setting() -> bool:
    """Whether this tree's scenarios take `player.kava.version` (being added with the KAVA 0.15 line)."""
    from sim.scenario.model import KavaSettings

    return "version" in KavaSettings.model_fields


def preflight_max_age_setting() -> bool:
    """Whether this tree's scenarios take `player.browser.preflight_max_age_s` (browser request semantics)."""
    from sim.scenario import model

    return hasattr(model, "BrowserSettings") and "preflight_max_age_s" in model.BrowserSettings.model_fields


def scenario(rec: Recording) -> dict:
    """The one-session scenario that replays `rec` in player-sim."""
    tr = script_steps(rec)
    media = rec.data["media"]
    start = dt.datetime.fromtimestamp(rec.actions[0]["t"], dt.UTC).replace(minute=0, second=0, microsecond=0)
    kava = {"request_method": rec.transport}
    if kava_version_setting():
        kava["version"] = "0.15"
    player = {
        "version": rec.data["versions"]["kaltura-player-js"],
        "delivery": "url",
        "bitrate_ladder_kbps": [364],
        "kava": kava,
    }
    if preflight_max_age_setting():
        # request files: the Access-Control-Max-Age the harness's beacon endpoint answered with
        player["browser"] = {"preflight_max_age_s": float(rec.data["endpoint"]["access_control_max_age"])}
    return {
        "name": f"oracle-{rec.name}",
        "description": f"The oracle's {rec.name} session, as player-sim plays it",
        "catalog": {"entries": [{"id": media["entryId"], "duration": media["duration"]}]},
        "partner": {"partner_id": media["partnerId"], "uiconf_id": media["uiConfId"]},
        "player": player,
        "clock": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "days": 1, "hourly": "flat", "weekday": "flat"},
        "script": [
            {
                "name": rec.session,
                "entry": media["entryId"],
                "device": "desktop",
                "authenticated": False,
                "startup_s": tr.startup_s,
                "steps": tr.steps,
            }
        ],
    }


@dataclass
class Simulated:
    """player-sim's requests for one recorded session, with the script that made them."""

    requests: list[Request]
    scenario: dict
    unexpressed: list[str]

    @property
    def beacons(self) -> list[Request]:
        return [r for r in self.requests if r.method != "OPTIONS"]

    @property
    def preflights(self) -> list[Request]:
        return [r for r in self.requests if r.method == "OPTIONS"]


def simulate(rec: Recording, seed: int = 1) -> Simulated:
    from sim.generate import generate
    from sim.scenario.loader import load

    spec = scenario(rec)
    with tempfile.TemporaryDirectory(prefix="oracle-sim-") as tmp:
        path = Path(tmp) / f"{rec.name}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        out = Path(tmp) / "requests.jsonl"
        generate(load(path), seed=seed, sessions=1, protocol="kava", fmt="requests", out=out)
        lines = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    requests = []
    for n, line in enumerate(lines):
        headers = line.get("headers") or {}
        raw = {
            "n": n,
            "t": line["ts"],
            "method": line["method"],
            "url": line["url"],
            "headers": list(headers.items()) if isinstance(headers, dict) else headers,
            "body": line.get("body"),
        }
        if line.get("preflight"):
            raw["method"] = "OPTIONS"
        requests.append(parse_request(raw))
    return Simulated(requests, spec, script_steps(rec).unexpressed)
