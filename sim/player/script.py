"""Scripted sessions: a scenario's `script` steps turned into the same action columns as the model.

A script is deterministic: the same steps always give the same timeline; only the
identity (viewer, IP, user agent of the script's device) is drawn from the population.
Each script compiles once into a template of action rows that the kernel copies into
every session that plays it.

Steps (see `sim.scenario.model.Step`): load, play (PLAY_REQUEST; PLAYING follows after
`startup_s` unless the next step is an error, a start failure, or quit, leaving before the
first frame; after a pause, play is RESUME), wait N (playing: the playhead moves; otherwise idle),
seek '80%' / '120s' / N, buffer N (a stall), pause N (PAUSE, N s, RESUME), fullscreen
true/false, mute / unmute (the sound mode later beacons report), speed R, error CODE (fatal: QUIT follows), replay, share, download, report,
related, info, captions, end (play to the end of the content), quit. A script that does not
quit ends with QUIT where its last step leaves the player.

    rows, outcome = script_actions(session, duration=300.0, ladder=[400, 1500])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scenario.model import (BufferStep, ErrorStep, FullscreenStep, PauseStep, ScriptedSession, SeekStep,
                              SpeedStep, WaitStep)
from .timeline import ACTION_COLUMNS, Action, Outcome

ACTION_NAMES = list(ACTION_COLUMNS)
_COL = {name: j for j, name in enumerate(ACTION_NAMES)}
NEEDS_PLAY = {"pause", "buffer", "speed", "captions", "end", "replay"}


class ScriptError(ValueError):
    """A script that cannot be played; the message names the scenario, script and step."""


def _step_name(step) -> str:
    if isinstance(step, str):
        return step
    return next(iter(step.model_dump()))


def _seek_target(spec, duration: float) -> float:
    if isinstance(spec, (int, float)):
        target = float(spec)
    elif spec.endswith("%"):
        target = float(spec[:-1]) / 100 * duration
    else:
        target = float(spec.rstrip("s"))
    return min(max(target, 0.0), duration)


def script_actions(session: ScriptedSession, duration: float, ladder, *, live: bool = False,
                   where: str = "script") -> tuple[np.ndarray, Outcome]:
    """The action rows (float64 [n, ACTION_COLUMNS], session column 0) of one scripted session and its outcome."""
    rows: list[list[float]] = []
    state = {"bitrate": float(max(ladder)), "screen": 1.0, "sound": 2.0, "tab": 2.0, "speed": 1.0}
    t, pos = 0.0, (duration if live else 0.0)
    requested = playing = paused = ended = errored = False
    starting = False   # PLAY_REQUEST sent, first frame not shown yet
    outcome = None

    def emit(kind: Action, value: float = 0.0) -> None:
        row = [0.0] * len(ACTION_NAMES)
        row[_COL["kind"]], row[_COL["t"]], row[_COL["pos"]], row[_COL["value"]] = int(kind), t, pos, value
        for name in ("bitrate", "screen", "sound", "tab", "speed"):
            row[_COL[name]] = state[name]
        rows.append(row)

    def play_for(seconds: float) -> None:
        """Advance playing time; reaching the end of VOD content emits ENDED and stops the playhead."""
        nonlocal t, pos, playing, ended
        if live:
            t += seconds
            return
        left = (duration - pos) / state["speed"]
        if seconds < left:
            t += seconds
            pos += seconds * state["speed"]
            return
        t += left
        pos = duration
        emit(Action.ENDED)
        playing, ended = False, True
        t += seconds - left

    steps = list(session.steps)
    offset = 0   # step numbers in messages follow the file, not the implicit leading 'load'
    if _step_name(steps[0]) != "load":
        steps.insert(0, "load")
        offset = 1
    for n, step in enumerate(steps):
        name = _step_name(step)
        here = f"{where}.steps[{n - offset}] ({name})"
        if starting and not isinstance(step, ErrorStep) and name != "quit":
            # the next step happens with content on screen: the first frame came after startup_s
            t += session.startup_s
            emit(Action.PLAYING, session.startup_s)
            starting, playing = False, True
        if name in NEEDS_PLAY and not requested:
            raise ScriptError(f"{here}: needs a 'play' step before it")
        if name == "end" and live:
            raise ScriptError(f"{here}: a live entry has no end")
        if name == "load":
            if n > 0:
                raise ScriptError(f"{here}: 'load' can only be the first step")
            emit(Action.LOAD)
        elif name == "play":
            if not requested:
                requested = starting = True
                emit(Action.PLAY_REQUEST)
            elif paused:
                paused, playing = False, True
                emit(Action.RESUME)
            elif ended:
                raise ScriptError(f"{here}: the content has ended; use 'replay'")
        elif isinstance(step, WaitStep):
            if playing:
                play_for(step.wait)
            else:
                t += step.wait
        elif isinstance(step, SeekStep):
            target = _seek_target(step.seek, duration)
            emit(Action.SEEK, target)
            pos = target
            if playing and not live and pos >= duration:
                emit(Action.ENDED)
                playing, ended = False, True
        elif isinstance(step, BufferStep):
            emit(Action.STALL_START)
            t += step.buffer
            emit(Action.STALL_END, step.buffer)
        elif isinstance(step, PauseStep):
            if not playing:
                raise ScriptError(f"{here}: nothing is playing to pause")
            emit(Action.PAUSE)
            t += step.pause
            if live:
                pos = max(pos - step.pause, 0.0)
            emit(Action.RESUME)
        elif isinstance(step, FullscreenStep):
            want = 2.0 if step.fullscreen else 1.0
            if state["screen"] != want:
                state["screen"] = want
                emit(Action.ENTER_FULLSCREEN if step.fullscreen else Action.EXIT_FULLSCREEN)
        elif name in ("mute", "unmute"):
            want = 1.0 if name == "mute" else 2.0      # KAVA soundMode: 1 muted, 2 sound on
            if state["sound"] != want:
                state["sound"] = want
                emit(Action.SOUND, want)
        elif isinstance(step, SpeedStep):
            state["speed"] = float(step.speed)
            emit(Action.SPEED, step.speed)
        elif isinstance(step, ErrorStep):
            if starting:   # the start failed: the error comes when the first frame would have
                t += session.startup_s
            emit(Action.ERROR, step.error)
            emit(Action.QUIT)
            errored = True
            outcome = Outcome.START_FAILURE if starting or not requested else Outcome.PLAYBACK_ERROR
            break
        elif name == "replay":
            if not ended:
                raise ScriptError(f"{here}: replay needs the content to have ended ('end' or a wait past it)")
            pos = 0.0
            emit(Action.REPLAY)
            playing, ended = True, False
        elif name == "end":
            if playing:
                play_for((duration - pos) / state["speed"])
        elif name in ("share", "download", "report", "info", "captions", "related"):
            kind = {"share": Action.SHARE, "download": Action.DOWNLOAD, "report": Action.REPORT,
                    "info": Action.INFO, "captions": Action.CAPTIONS, "related": Action.RELATED_OPEN}[name]
            emit(kind)
        elif name == "quit":
            break
        else:   # pragma: no cover - the scenario model admits no other step
            raise ScriptError(f"{here}: unknown step")
    if not errored:
        emit(Action.QUIT)
        if not requested:
            outcome = Outcome.NO_PLAY
        elif starting:   # left before the first frame
            outcome = Outcome.ABANDONED_STARTUP
        elif any(r[_COL["kind"]] == Action.ENDED for r in rows):
            outcome = Outcome.COMPLETED
        else:
            outcome = Outcome.PARTIAL
    return np.array(rows, float).reshape(-1, len(ACTION_NAMES)), outcome


@dataclass
class ScriptTemplates:
    """Every component's scripts compiled to action rows, and how sessions are matched to them."""
    rows: np.ndarray            # float64 [all template rows, ACTION_COLUMNS]
    start: np.ndarray           # int64 first row of each template
    length: np.ndarray          # int64 rows of each template
    outcome: np.ndarray         # int64 Outcome of each template
    entry: np.ndarray           # int64 catalog entry of each template
    device: np.ndarray          # int64 Device of each template
    authenticated: np.ndarray   # bool
    script_index: np.ndarray    # int16 index in its scenario's `script` list
    cycles: list[np.ndarray]    # per component: template ids in play order (each repeated `repeat` times); empty = modelled

    @property
    def sessions_per_cycle(self) -> int:
        return int(sum(len(c) for c in self.cycles))

    def assign(self, plan, p, cells, comp, rng, population, entry, ua, user, scripted, tmpl_rows) -> None:
        """Give the scripted components' sessions of partition p their script, entry and identity (in place)."""
        for c, cycle in enumerate(self.cycles):
            if len(cycle) == 0:
                continue
            rows = np.flatnonzero(comp == c)
            if len(rows) == 0:
                continue
            cells_of_c = np.flatnonzero(plan.cell_component == c)
            before = int(plan.part_counts[:p, cells_of_c].sum())
            templ = cycle[(before + np.arange(len(rows))) % len(cycle)]
            tmpl_rows[rows] = templ
            scripted[rows] = self.script_index[templ]
            entry[rows] = self.entry[templ]
            pools = population.pools
            for dev in np.unique(self.device[templ]).tolist():
                sel = rows[self.device[templ] == dev]
                candidates = np.flatnonzero(pools.ua_device == dev)
                if len(candidates):
                    ua[sel] = candidates[rng.integers(0, len(candidates), len(sel))]
            anon = rows[~self.authenticated[templ]]
            user[anon] = -1
            need = rows[self.authenticated[templ] & (user[rows] < 0)]
            if len(need) and len(pools.user_ids):
                user[need] = rng.integers(0, len(pools.user_ids), len(need))


def compile_scripts(components, population) -> ScriptTemplates:
    """Compile the `script` of every component (components without one are modelled)."""
    from .timeline import Device

    blocks, start, length, outcome, entry, device, auth, index, cycles = [], [], [], [], [], [], [], [], []
    n_rows = 0
    for c, comp in enumerate(components):
        sc = comp.scenario
        if not sc.script:
            cycles.append(np.empty(0, np.int64))
            continue
        sl = population.components[c]
        ids = population.catalog.entry_ids[sl.entries.start:sl.entries.stop].tolist()
        cycle = []
        for j, session in enumerate(sc.script):
            where = f"{comp.name}: script[{j}] '{session.name}'"
            if session.entry is None:
                e = sl.entries.start
            elif session.entry in ids:
                e = sl.entries.start + ids.index(session.entry)
            else:
                raise ScriptError(f"{where}.entry: {session.entry!r} is not in the catalog")
            rows, out = script_actions(session, float(population.catalog.durations[e]), sc.player.bitrate_ladder_kbps,
                                       live=bool(population.catalog.live[e]), where=where)
            tid = len(start)
            blocks.append(rows)
            start.append(n_rows)
            length.append(len(rows))
            n_rows += len(rows)
            outcome.append(int(out))
            entry.append(e)
            device.append(int(Device[session.device.upper()]))
            auth.append(session.authenticated)
            index.append(j)
            cycle.extend([tid] * session.repeat)
        cycles.append(np.array(cycle, np.int64))
    width = len(ACTION_NAMES)
    return ScriptTemplates(rows=np.concatenate(blocks) if blocks else np.zeros((0, width)),
                           start=np.array(start, np.int64), length=np.array(length, np.int64),
                           outcome=np.array(outcome, np.int64), entry=np.array(entry, np.int64),
                           device=np.array(device, np.int64), authenticated=np.array(auth, bool),
                           script_index=np.array(index, np.int16), cycles=cycles)
