"""`player-sim preview FILE`: a readable timeline of a few sessions of a scenario, and a summary of the sample.

    player-sim preview scenarios/typical-vod.yaml --sessions 5 --seed 7

Each action shows its wall offset from the load, the playhead, and what matters about it
(stall seconds, seek target, ad position and length...). With `--protocol legacy|kava|both`
the beacons the player's analytics plugin sends are listed beside the actions, at their
send offsets (`-> kava 99 VIEW  #7 pos 0:40 playTimeSum 30`). Colour on a terminal, plain
text when piped. Scenario problems print one `file:line:column: field: message` line each and
exit with status 2.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from sim.cli import app, fail, fail_problems
from sim.protocols.beacons import Strings
from sim.protocols.choice import CHOICES
from sim.protocols.event_types import EVENT_NAMES

DEVICE_NAMES = ("desktop", "mobile", "tablet", "ctv")
AD_POSITIONS = {1: "pre-roll", 2: "mid-roll", 3: "post-roll", 4: "overlay"}
STYLE = {
    "LOAD": "dim",
    "PLAY_REQUEST": "cyan",
    "PLAYING": "bold green",
    "ENDED": "bold green",
    "REPLAY": "green",
    "STALL_START": "bold red",
    "STALL_END": "red",
    "ERROR": "bold red",
    "QUIT": "bold",
    "PAUSE": "yellow",
    "RESUME": "yellow",
    "SEEK": "magenta",
}


def clock_text(seconds: float) -> str:
    """Playhead as m:ss or h:mm:ss."""
    seconds = max(float(seconds), 0.0)
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def action_detail(chunk, kind: str, value: float, pos: float, ad_pos: int, ad_index: int) -> str:
    """What matters about one action, in words."""
    pools = chunk.population.pools
    where = AD_POSITIONS.get(int(ad_pos), "")
    if kind == "PLAYING":
        return f"startup {value:.2f} s"
    if kind == "STALL_END":
        return f"stalled {value:.1f} s"
    if kind == "SEEK":
        jump = value - pos
        return f"to {clock_text(value)} ({'forward' if jump >= 0 else 'back'} {abs(jump):.0f} s)"
    if kind in ("FLAVOR_SWITCH", "SOURCE_SELECTED"):
        return f"{value:.0f} kbps"
    if kind == "SPEED":
        return f"x{value:g}"
    if kind == "CAPTIONS":
        langs = pools.caption_languages
        return langs[int(value)] if 0 <= int(value) < len(langs) else ""
    if kind == "SOUND":
        return "unmuted" if value == 2 else "muted"
    if kind == "ERROR":
        return f"code {value:.0f}"
    if kind == "AD_BREAK_START":
        return f"{where} pod of {value:.0f}"
    if kind == "AD_START":
        return f"{where} ad {ad_index + 1}, {value:.0f} s"
    if kind == "BUMPER_START":
        return f"{where} bumper {value:.0f} s"
    if kind.startswith("AD_") or kind.startswith("OVERLAY") or kind.startswith("BUMPER"):
        return f"{where} ad {ad_index + 1}" if kind.startswith("AD_") and kind != "AD_BREAK_END" else where
    return ""


def playing_seconds(actions: dict) -> float:
    """Wall seconds of content playback in a set of actions (the interval-based minutes viewed)."""
    from sim.player.timeline import Action as A

    kind = actions["kind"]
    if len(kind) == 0:
        return 0.0
    starts = np.isin(kind, [A.PLAYING, A.RESUME, A.STALL_END, A.AD_BREAK_END, A.REPLAY])
    stops = np.isin(kind, [A.LOAD, A.PAUSE, A.STALL_START, A.AD_BREAK_START, A.ENDED, A.ERROR, A.QUIT])
    last_setter = np.maximum.accumulate(np.where(starts | stops, np.arange(len(kind)), 0))
    same_session = np.append(actions["session"][1:] == actions["session"][:-1], False)
    dt = np.diff(actions["t"], append=actions["t"][-1])
    return float(np.sum(dt[starts[last_setter] & same_session]))


def sample_summary(chunks) -> dict[str, float]:
    """Headline figures of a sample of sessions (the same definitions as viewing-realism.md section 1)."""
    from sim.player.timeline import Action as A, AdPosition, Outcome

    counts = np.zeros(64, np.int64)
    outcomes = np.zeros(16, np.int64)
    loads = sessions_with_stall = sessions_ended = pre_started = pre_complete = 0
    play_s = 0.0
    for c in chunks:
        kind = c.actions["kind"]
        counts += np.bincount(kind, minlength=64)
        outcomes += np.bincount(c.sessions["outcome"], minlength=16)
        loads += c.n_sessions
        sessions_with_stall += len(np.unique(c.actions["session"][kind == A.STALL_START]))
        sessions_ended += len(np.unique(c.actions["session"][kind == A.ENDED]))
        pre = c.actions["ad_pos"] == AdPosition.PREROLL
        pre_started += int(np.sum(pre & (kind == A.AD_START)))
        pre_complete += int(np.sum(pre & (kind == A.AD_COMPLETE)))
        play_s += playing_seconds(c.actions)
    plays = counts[A.PLAYING]
    requests = counts[A.PLAY_REQUEST]

    def ratio(a, b):
        return float(a) / b if b else float("nan")

    return {
        "sessions": loads,
        "play_rate": ratio(plays, loads),
        "play_requests": int(requests),
        "start_failures": ratio(outcomes[Outcome.START_FAILURE], requests),
        "ebvs": ratio(requests - plays - outcomes[Outcome.START_FAILURE], requests),
        "completion": ratio(sessions_ended, plays),
        "rebuffers_per_play": ratio(counts[A.STALL_START], plays),
        "plays_with_rebuffer": ratio(sessions_with_stall, plays),
        "minutes_per_play": ratio(play_s / 60, plays),
        "seeks_per_play": ratio(counts[A.SEEK], plays),
        "ad_impressions": int(counts[A.AD_IMPRESSION]),
        "ad_starts": int(counts[A.AD_START]),
        "ad_start_rate": ratio(counts[A.AD_START], counts[A.AD_IMPRESSION]),
        "preroll_completion": ratio(pre_complete, pre_started),
    }


def _session_header(chunk, i: int, seq_width: int) -> str:
    from datetime import datetime

    from sim.player.timeline import Outcome

    s, pop = chunk.sessions, chunk.population
    pools = pop.pools
    start = datetime.fromtimestamp(float(s["start"][i]), tz=UTC)
    tz = int(s["tz_offset_min"][i])
    user = pools.user_ids[s["user_id"][i]] if s["user_id"][i] >= 0 else "anonymous"
    entry = pop.catalog.entry_ids[s["entry"][i]]
    kind = "live, DVR " if s["live"][i] else ""
    script = f" script {s['scripted'][i]}" if s["scripted"][i] >= 0 else ""
    return (
        f"#{s['session_seq'][i]:<{seq_width}} {chunk.scenario_names[s['scenario'][i]]}{script}  "
        f"{start:%Y-%m-%d %H:%M:%S} UTC (local {'+' if tz >= 0 else '-'}{abs(tz) // 60:02d}:{abs(tz) % 60:02d})  "
        f"{DEVICE_NAMES[s['device'][i]]} {pools.os_names[s['os'][i]]} {pools.browser_names[s['browser'][i]]}  "
        f"{pools.country_codes[s['country'][i]]}  {user}  entry {entry} ({kind}{clock_text(s['duration'][i])})"
        f"  -> {Outcome(s['outcome'][i]).name}"
    )


def _number(col, k: int) -> float | None:
    """A numeric beacon field, None where the plugin did not send it (NaN or -1)."""
    if col is None or isinstance(col, Strings):
        return None
    v = float(col[k])
    return None if v != v or v == -1 else v


def beacon_detail(bc, k: int) -> str:
    """The fields of beacon row k that tell it apart: index, playhead, play time."""
    c = bc.columns
    parts = []
    index = _number(c.get("eventIndex"), k)
    if index is not None:
        parts.append(f"#{index:.0f}")
    if bc.protocol == "kava":
        position = _number(c.get("position"), k)
        if position is not None:
            parts.append(f"pos {clock_text(position)}")
        for name in ("playTimeSum", "bufferTime", "joinTime", "targetPosition"):
            v = _number(c.get(name), k)
            if v:
                parts.append(f"{name} {v:g}")
    else:
        point = _number(c.get("currentPoint"), k)
        if point is not None:
            flavor = c.get("legacy_flavor")
            in_ms = flavor is None or (flavor.get(k) if isinstance(flavor, Strings) else None) != "v7"
            parts.append(f"currentPoint {point:g}{' ms' if in_ms else ' s'}")
    return "  ".join(parts)


def beacon_lines(beacon_chunks, chunk, i: int) -> list[tuple[float, str, str]]:
    """(offset from the load, label, detail) of every beacon session row i sends."""
    start = float(chunk.sessions["start"][i])
    out = []
    for bc in beacon_chunks:
        event_type = bc.columns["eventType"]
        for k in np.flatnonzero(bc.session == i):
            code = int(event_type[k])
            label = f"{bc.protocol} {code} {EVENT_NAMES[bc.protocol].get(code, '?')}"
            # Clamped at 0: millisecond timestamps can put a send a hair before the load.
            out.append((max(float(bc.send_t[k]) - start, 0.0), label, beacon_detail(bc, k)))
    out.sort(key=lambda line: line[0])  # stable: legacy before kava at the same moment
    return out


def render(console, chunks, limit: int | None, protocol: str | None = None) -> None:
    """Print each session's timeline (up to `limit` sessions) to a rich console; with a
    `protocol`, each action is followed by the beacons sent by then."""
    from rich.text import Text

    from sim.generate import beacon_chunks
    from sim.player.timeline import Action

    shown = 0
    for chunk in chunks:
        width = len(str(int(chunk.sessions["session_seq"].max()))) if chunk.n_sessions else 1
        beacons = beacon_chunks(chunk, protocol) if protocol else []
        for i in range(chunk.n_sessions):
            if limit is not None and shown >= limit:
                return
            shown += 1
            console.print(Text(_session_header(chunk, i, width), style="bold"))
            a = chunk.actions_of(i)
            pending = beacon_lines(beacons, chunk, i)
            b = 0
            for j in range(len(a["kind"])):
                name = Action(int(a["kind"][j])).name
                detail = action_detail(
                    chunk, name, float(a["value"][j]), float(a["pos"][j]), int(a["ad_pos"][j]), int(a["ad_index"][j])
                )
                offset = f"+{a['t'][j]:.1f}s"
                line = Text(f"  {offset:>10}  [{clock_text(a['pos'][j]):>8}]  ")
                style = STYLE.get(name, "blue" if name.startswith(("AD_", "OVERLAY", "BUMPER")) else "")
                line.append(f"{name:<18}", style=style)
                line.append(detail)
                console.print(line)
                # Beacons go out when their action happens (VIEWs between actions): print those
                # sent before the next action.
                next_t = float(a["t"][j + 1]) if j + 1 < len(a["kind"]) else float("inf")
                while b < len(pending) and pending[b][0] < next_t - 0.001:
                    t, label, extra = pending[b]
                    beacon = Text(f"  {f'+{t:.1f}s':>10}  {'':>10}    -> ", style="dim")
                    beacon.append(f"{label:<32}  ", style="green")
                    beacon.append(extra, style="dim")
                    console.print(beacon)
                    b += 1
            console.print()


def _print_summary(console, summary: dict[str, float]) -> None:
    def pct(x):
        return "n/a" if x != x else f"{100 * x:.1f} %"

    def num(x, unit=""):
        return "n/a" if x != x else f"{x:.2f}{unit}"

    console.print(f"[bold]Sample of {summary['sessions']} sessions[/bold]")
    rows = [
        ("play rate (plays / loads)", pct(summary["play_rate"])),
        ("start failures (of play requests)", pct(summary["start_failures"])),
        ("exits before start (of play requests)", pct(summary["ebvs"])),
        ("completion (ended / plays)", pct(summary["completion"])),
        ("rebuffers per play", num(summary["rebuffers_per_play"])),
        ("plays with a rebuffer", pct(summary["plays_with_rebuffer"])),
        ("minutes viewed per play", num(summary["minutes_per_play"], " min")),
        ("seeks per play", num(summary["seeks_per_play"])),
        (
            "ad impressions / starts",
            f"{summary['ad_impressions']} / {summary['ad_starts']} ({pct(summary['ad_start_rate'])})",
        ),
        ("pre-roll completion (of started)", pct(summary["preroll_completion"])),
    ]
    for label, value in rows:
        console.print(f"  {label:<40} {value}")


@app.command(short_help="Print the timelines of a few simulated sessions and a summary of them")
def preview(
    file: Path = typer.Argument(..., metavar="FILE", help="Scenario or mix file (YAML)."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed shows the same sessions."),
    sessions: Optional[int] = typer.Option(
        None,
        "--sessions",
        min=1,
        help="Sessions to simulate (default 5; a scripted scenario: each script once per repeat).",
    ),
    show: Optional[int] = typer.Option(
        None, "--show", min=0, help="Print only the first N timelines (the summary covers all)."
    ),
    protocol: Optional[str] = typer.Option(
        None,
        "--protocol",
        metavar="legacy|kava|both",
        help="Also list the beacons each session sends, beside its actions.",
    ),
) -> None:
    """Print the timelines of a few simulated sessions and a summary of them.

    Each action shows its offset from the load and the playhead; with --protocol, the beacons the
    player sends are listed beside the actions. Exit status 2 for a bad scenario."""
    from rich.console import Console

    from sim.player.model import generate_sessions
    from sim.population import PopulationError
    from sim.scenario.loader import ScenarioError, load
    from sim.scenario.script import ScriptError

    try:
        components = load(file)
    except ScenarioError as exc:
        fail_problems(exc.problems)
    if protocol not in (None, *CHOICES):
        fail("preview", f"--protocol: expected {', '.join(CHOICES[:-1])} or {CHOICES[-1]}, got {protocol!r}")
    if sessions is None and not all(c.scenario.script for c in components):
        sessions = 5
    try:
        chunks = list(generate_sessions(components, seed, sessions=sessions))
    except (ScriptError, PopulationError) as exc:
        fail("preview", f"{file}: {exc}")
    console = Console(highlight=False, soft_wrap=True)
    render(console, chunks, show, protocol)
    _print_summary(console, sample_summary(chunks))
