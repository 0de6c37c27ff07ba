"""A scripted session played out: its `script` steps turned into the player model's action rows.

A script is deterministic: the same steps always give the same timeline. The loader plays
every script this way to report a step that cannot be played at its file:line:column;
`sim.player.script` compiles them into the templates a run copies.

Steps (see `sim.scenario.model.Step`): load, play (PLAY_REQUEST; PLAYING follows after `startup_s`
unless the next step is an error, a start failure, or quit, leaving before the first frame; after a
pause, play is RESUME), wait N (playing: the playhead moves; otherwise idle), seek '80%' / '120s' /
N, buffer N (a stall), pause N (PAUSE, N s, RESUME), fullscreen true/false, mute / unmute (the sound
mode later beacons report), speed R, error CODE (fatal: QUIT follows), replay, share, download,
report, related, info, captions, end (play to the end of the content), quit. A script that does not
quit ends with QUIT where its last step leaves the player.

    rows, outcome = script_actions(session, duration=300.0, ladder=[400, 1500])
"""

from __future__ import annotations

import numpy as np

from sim.scenario.actions import ACTION_COLUMNS, Action, Outcome
from sim.scenario.model import (
    BufferStep,
    ErrorStep,
    FullscreenStep,
    PauseStep,
    ScriptedSession,
    SeekStep,
    SpeedStep,
    WaitStep,
)

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


def script_actions(
    session: ScriptedSession, duration: float, ladder, *, live: bool = False, where: str = "script"
) -> tuple[np.ndarray, Outcome]:
    """The action rows (float64 [n, ACTION_COLUMNS], session column 0) of one scripted session and its outcome."""
    rows: list[list[float]] = []
    state = {"bitrate": float(max(ladder)), "screen": 1.0, "sound": 2.0, "tab": 2.0, "speed": 1.0}
    t, pos = 0.0, (duration if live else 0.0)
    requested = playing = paused = ended = errored = False
    starting = False  # PLAY_REQUEST sent, first frame not shown yet
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
    offset = 0  # step numbers in messages follow the file, not the implicit leading 'load'
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
            want = 1.0 if name == "mute" else 2.0  # KAVA soundMode: 1 muted, 2 sound on
            if state["sound"] != want:
                state["sound"] = want
                emit(Action.SOUND, want)
        elif isinstance(step, SpeedStep):
            state["speed"] = float(step.speed)
            emit(Action.SPEED, step.speed)
        elif isinstance(step, ErrorStep):
            if starting:  # the start failed: the error comes when the first frame would have
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
            kind = {
                "share": Action.SHARE,
                "download": Action.DOWNLOAD,
                "report": Action.REPORT,
                "info": Action.INFO,
                "captions": Action.CAPTIONS,
                "related": Action.RELATED_OPEN,
            }[name]
            emit(kind)
        elif name == "quit":
            break
        else:  # pragma: no cover - the scenario model admits no other step
            raise ScriptError(f"{here}: unknown step")
    if not errored:
        emit(Action.QUIT)
        if not requested:
            outcome = Outcome.NO_PLAY
        elif starting:  # left before the first frame
            outcome = Outcome.ABANDONED_STARTUP
        elif any(r[_COL["kind"]] == Action.ENDED for r in rows):
            outcome = Outcome.COMPLETED
        else:
            outcome = Outcome.PARTIAL
    return np.array(rows, float).reshape(-1, len(ACTION_NAMES)), outcome
