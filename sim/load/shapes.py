"""Load shapes: a YAML list of stages that sets the live load's level over wall time, and the
arrival processes that follow it.

    # shapes/ramp-steady-spike.yaml
    stages:
      - ramp:   {to: 50, over: 2m}     # linear from the level before (0 at the start)
      - steady: {for: 5m}              # hold it (or {level: 20, for: 5m}: jump to 20, hold)
      - spike:  {to: 200, for: 30s}    # jump, hold, then back to the level before the spike
      - daily:  {peak: 80, over: 10m}  # the scenarios' own day, busiest quarter hour at 80
      - {duration: 1m, target: 0}      # k6's form of a ramp
    graceful_stop: 30s                 # sessions still playing at the end get this long
    mix: weights                       # default; `daily`: daily stages follow each scenario's own day

The level is sessions starting per second (open model) or concurrent viewers (closed model).
The scenarios start in the mix's configured weights throughout, unless `mix: daily` asks a
daily stage to give each scenario its own hourly curve's share (open model): then the
arrivals run faster by the largest ratio of a scenario's share to its weight and each session
is kept with the probability that thins its scenario to its share (Poisson thinning, exact).

    shape = load_shape("shapes/ramp-steady-spike.yaml")      # ScenarioError names file:line:column
    profile = shape.profile(components)                      # Profile: level(t), cumulative(t) ...
    arrivals = ShapedOpenArrivals(profile, rng, t0, share=1 / workers)

`ShapedOpenArrivals` is a non-homogeneous Poisson process (unit-rate arrivals mapped through the
inverse of the cumulative level, so arrivals follow the piecewise level exactly);
`ShapedClosedArrivals` gives viewer slot g its sessions while the level is above g. Both have
the `horizon` / `assign(lengths_wall)` interface of `OpenArrivals` / `ClosedArrivals`; sessions
a chunk holds beyond the shape's end are parked far past it (never due), and `done_at` says
when this process's load is over.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from sim.scenario.errors import DataPath, Loc, Problem, ScenarioError, closest, describe, did_you_mean, problem_at
from sim.scenario.yamlfile import Unreadable, kind_of, located_plain, parse_located

__all__ = [
    "Stage",
    "Shape",
    "Profile",
    "load_shape",
    "parse_duration",
    "daily_levels",
    "ShapedOpenArrivals",
    "ShapedClosedArrivals",
    "DEFAULT_GRACEFUL_STOP",
]

DEFAULT_GRACEFUL_STOP = 30.0  # seconds, as k6's gracefulStop
PARKED_AFTER = 1e6  # wall seconds past the shape's end where left-over sessions wait
DAY_S = 86400.0
QUARTER_S = 900.0  # the scenario clock's grain: every UTC offset is whole quarters

# stage kind -> {key: (what it holds, required)}
STAGE_KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "ramp": {"to": ("level", True), "over": ("duration0", True)},
    "steady": {"for": ("duration", True), "level": ("level", False)},
    "spike": {"to": ("level", True), "for": ("duration", True)},
    "daily": {"peak": ("level", True), "over": ("duration", True)},
}
K6_KEYS = {"duration": ("duration0", True), "target": ("level", True)}
TOP_KEYS = ("stages", "graceful_stop", "mix", "name", "description")
MIXES = ("weights", "daily")  # what the scenarios' shares follow: their configured weights, or their day
DURATION_HINT = "a duration such as 90, 90s, 2m, 1m30s or 1h"
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|h|m|s)")


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90.5`, `"90"`, `"90s"`, `"2m"`, `"1m30s"`, `"1h"`, `"250ms"`.
    Raises ValueError (with the expected forms) for anything else or a negative number."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected {DURATION_HINT}, got {describe(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(f"expected {DURATION_HINT}, got {describe(value)}") from None
            seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text))
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected {DURATION_HINT}, got {describe(value)}")
    return seconds


# --- the parsed file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    kind: str  # ramp, steady, spike or daily
    seconds: float  # wall seconds the stage lasts
    level: float | None  # ramp/spike: `to`; steady: `level` (None: hold); daily: `peak`


@dataclass(frozen=True)
class Shape:
    stages: tuple[Stage, ...]
    graceful_stop: float = DEFAULT_GRACEFUL_STOP
    file: str = ""
    mix: str = "weights"

    @property
    def duration(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def peak(self) -> float:
        """The highest level any stage reaches (a daily stage's `peak` is its highest)."""
        return max([0.0] + [s.level for s in self.stages if s.level is not None])

    def profile(self, components=None) -> Profile:
        """The level over seconds since the start; `daily` stages take the components' clocks.
        With `mix: daily` the profile also holds each scenario's share of every segment."""
        edges, starts, ends, shares = [0.0], [], [], []
        level = 0.0
        weights = None
        if self.mix == "daily" and components is not None:
            weights = np.array([c.weight for c in components], float)
            weights = weights / weights.sum()

        def hold(seconds: float, a: float, b: float, share=None) -> None:
            edges.append(edges[-1] + seconds)
            starts.append(a)
            ends.append(b)
            shares.append(weights if share is None else share)

        for stage in self.stages:
            if stage.kind == "ramp":
                if stage.seconds > 0:
                    hold(stage.seconds, level, stage.level)
                level = stage.level
            elif stage.kind == "steady":
                level = level if stage.level is None else stage.level
                hold(stage.seconds, level, level)
            elif stage.kind == "spike":
                hold(stage.seconds, stage.level, stage.level)
            else:
                if components is None:
                    raise ValueError("a daily stage needs the scenarios whose day it plays")
                lengths, by_component = daily_levels_by_component(components)
                levels = by_component.sum(axis=0)
                by_component = by_component * (stage.level / levels.max())
                levels = levels * (stage.level / levels.max())
                for q, seconds in enumerate((lengths * (stage.seconds / DAY_S)).tolist()):
                    share = by_component[:, q] / levels[q] if weights is not None and levels[q] > 0 else None
                    hold(seconds, float(levels[q]), float(levels[q]), share)
                level = float(levels[-1])
        return Profile(
            np.array(edges),
            np.array(starts, float),
            np.array(ends, float),
            None if weights is None else np.array(shares, float),
            weights,
        )

    def stage_at(self, t: float) -> int | None:
        """The index of the stage running `t` seconds after the start; None before it or once
        every stage is over."""
        if t < 0:
            return None
        end = 0.0
        for i, stage in enumerate(self.stages):
            end += stage.seconds
            if t < end:
                return i
        return None

    def describe_stage(self, i: int, profile: Profile | None = None) -> str:
        """Stage `i` in words, with the level it starts from: 'ramp from 0 to 50 over 2m'
        (a daily stage leaves its last quarter hour's level, read from `profile`)."""
        level, end = 0.0, 0.0
        for stage in self.stages[:i]:
            end += stage.seconds
            if stage.kind == "ramp" or (stage.kind == "steady" and stage.level is not None):
                level = stage.level
            elif stage.kind == "daily" and profile is not None:
                level = profile.level(end - 1e-6)
        stage = self.stages[i]
        over = format_duration(stage.seconds)
        if stage.kind == "ramp":
            return f"ramp from {level:g} to {stage.level:g} over {over}"
        if stage.kind == "steady":
            return f"steady at {level if stage.level is None else stage.level:g} for {over}"
        if stage.kind == "spike":
            return f"spike to {stage.level:g} for {over}, then back to {level:g}"
        return f"daily: the scenarios' day in {over}, peak {stage.level:g}" + (
            ", each scenario on its own curve" if self.mix == "daily" else ", the mix in its configured weights"
        )


def format_duration(seconds: float) -> str:
    """90 -> '1m30s', 120 -> '2m', 0.25 -> '250ms': the shape file's own forms."""
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:g}ms"
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((h, "h"), (m, "m"), (sec, "s")) if n)
    return text or "0s"


def load_shape(path: str | Path) -> Shape:
    """Read and check a shape file; raises ScenarioError listing every problem, located."""
    name = str(path)
    problems: list[Problem] = []
    data, locs = _read(Path(path), problems)
    shape = None if problems else _check(data, locs, name, problems)
    if problems or shape is None:
        raise ScenarioError(problems)
    return shape


def is_shape_file(path: str | Path) -> bool:
    """Whether a YAML file reads as a shape (a `stages:` key at the top), not a scenario."""
    try:
        head = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except Exception:  # unreadable or broken YAML: the scenario loader reports it
        return False
    return isinstance(head, dict) and "stages" in head


def _read(file: Path, problems: list[Problem]) -> tuple[Any, dict[DataPath, Loc]]:
    name = str(file)
    try:
        tree = parse_located(file, problems, kind="shape file", not_found="shape file not found (--shape)")
    except Unreadable:
        return None, {}
    if not isinstance(tree, CommentedMap):
        what = "an empty file" if tree is None else kind_of(tree)
        problems.append(Problem(name, 1, 1, "", f"expected a mapping with a 'stages:' list at the top, got {what}"))
        return None, {}
    return located_plain(tree, name)


def _check(data: dict, locs: dict, file: str, problems: list[Problem]) -> Shape | None:
    def bad(path: DataPath, message: str, at_key: bool = False) -> None:
        problems.append(problem_at(path, locs, file, message, at_key=at_key))

    for key in data:
        if key not in TOP_KEYS:
            bad(
                (key,),
                f"unknown key '{key}'{did_you_mean(key, TOP_KEYS)}; a shape file sets {', '.join(TOP_KEYS)}",
                at_key=True,
            )
    graceful_stop = DEFAULT_GRACEFUL_STOP
    if "graceful_stop" in data:
        try:
            graceful_stop = parse_duration(data["graceful_stop"])
        except ValueError as exc:
            bad(("graceful_stop",), str(exc))
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            bad((key,), f"expected text, got {describe(data[key])}")
    mix = data.get("mix", "weights")
    if mix not in MIXES:
        bad(
            ("mix",),
            f"expected 'weights' (the scenarios' configured weights, the default) or 'daily' (daily "
            f"stages give each scenario its own day's share), got {describe(mix)}",
        )
    stages_data = data.get("stages")
    if "stages" not in data:
        bad(("stages",), "missing required key 'stages' (a list such as - ramp: {to: 50, over: 2m})", at_key=True)
        return None
    if not isinstance(stages_data, list) or not stages_data:
        got = "an empty list" if stages_data == [] else describe(stages_data)
        bad(("stages",), f"expected a list of at least one stage, got {got}")
        return None
    stages = []
    for i, item in enumerate(stages_data):
        stage = _check_stage(item, ("stages", i), bad)
        if stage is not None:
            stages.append(stage)
    if problems:
        return None
    shape = Shape(tuple(stages), graceful_stop, file, mix)
    if shape.duration <= 0:
        bad(("stages",), "the stages last 0 seconds; give a stage a duration")
        return None
    return shape


def _check_stage(item: Any, path: DataPath, bad) -> Stage | None:
    kinds = list(STAGE_KEYS)
    example = "- ramp: {to: 50, over: 2m}"
    if not isinstance(item, dict) or not item:
        bad(path, f"expected a stage such as '{example}' ({', '.join(kinds)}), got {describe(item)}")
        return None
    if set(item) & set(K6_KEYS) and not set(item) & set(STAGE_KEYS):
        values = _check_keys(item, path, K6_KEYS, "a k6 stage", bad)
        return None if values is None else Stage("ramp", values["duration"], values["target"])
    if len(item) != 1:
        named = [k for k in item if k in STAGE_KEYS]
        extra = [k for k in item if k not in STAGE_KEYS]
        if len(named) > 1:
            bad(
                path + (named[1],),
                f"one stage per list item: '{named[0]}' and '{named[1]}' are in the same "
                f"item; start each stage with its own '-'",
                at_key=True,
            )
        elif named:
            bad(
                path + (extra[0],),
                f"'{extra[0]}' beside '{named[0]}': a stage's settings go inside it, "
                f"as in '- {named[0]}: {{{', '.join(STAGE_KEYS[named[0]])}}}'",
                at_key=True,
            )
        else:
            bad(
                path + (extra[0],),
                f"unknown stage '{extra[0]}'{did_you_mean(extra[0], kinds)}; expected one "
                f"of {', '.join(kinds)} or k6's {{duration, target}}",
                at_key=True,
            )
        return None
    kind, body = next(iter(item.items()))
    if kind not in STAGE_KEYS:
        hint = closest(kind, [*kinds, *K6_KEYS])
        suggestion = f" (did you mean '{hint}'?)" if hint else ""
        bad(
            path + (kind,),
            f"unknown stage '{kind}'{suggestion}; expected one of {', '.join(kinds)} or k6's {{duration, target}}",
            at_key=True,
        )
        return None
    if not isinstance(body, dict):
        keys = ", ".join(STAGE_KEYS[kind])
        bad(path + (kind,), f"expected a mapping of {keys}, got {describe(body)}")
        return None
    values = _check_keys(body, path + (kind,), STAGE_KEYS[kind], f"a {kind} stage", bad)
    if values is None:
        return None
    seconds = values.get("over", values.get("for"))
    return Stage(kind, seconds, values.get("to", values.get("level", values.get("peak"))))


def _check_keys(body: dict, path: DataPath, spec: dict[str, tuple[str, bool]], what: str, bad) -> dict | None:
    ok = True
    values: dict[str, float] = {}
    for key in body:
        if key not in spec:
            hint = did_you_mean(key, spec)
            listing = "" if hint else f"; valid keys here: {', '.join(spec)}"
            bad(path + (key,), f"unknown key '{key}' in {what}{hint}{listing}", at_key=True)
            ok = False
    for key, (kind, required) in spec.items():
        if key not in body:
            if required and not any(closest(k, [key]) for k in body if k not in spec):
                bad(path + (key,), f"missing required key '{key}' in {what}", at_key=True)
                ok = False
            elif required:
                ok = False
            continue
        value = body[key]
        try:
            values[key] = _level(value) if kind == "level" else parse_duration(value)
        except ValueError as exc:
            bad(path + (key,), str(exc))
            ok = False
            continue
        if kind == "duration" and values[key] <= 0:
            bad(path + (key,), f"must be a positive duration, got {describe(value)}")
            ok = False
    return values if ok else None


def _level(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number (sessions/s or viewers), got {describe(value)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a number >= 0, got {describe(value)}")
    return float(value)


# --- the scenarios' own day ---------------------------------------------------------------------


def daily_levels(components) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, relative level) of each quarter hour of the scenarios' 24-hour curve, from the
    first component's `clock.start` (UTC) on: every component's `clock.hourly` weights (preset
    or list) in each of its time zones, weighted by mix weight and zone share, as the clock
    spreads a day's sessions (the weekday and seasonal multipliers are left out: they change
    days, not the shape of one)."""
    lengths, by_component = daily_levels_by_component(components)
    return lengths, by_component.sum(axis=0)


def daily_levels_by_component(components) -> tuple[np.ndarray, np.ndarray]:
    """`daily_levels` split by component: (seconds of each quarter hour, levels [component, quarter])."""
    from sim.player.clock import hourly_weights

    start = components[0].scenario.clock.start.timestamp()
    grid = np.arange(np.floor(start / QUARTER_S) * QUARTER_S + QUARTER_S, start + DAY_S, QUARTER_S)
    edges = np.concatenate([[start], grid, [start + DAY_S]])
    middle, lengths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    weights = np.array([c.weight for c in components], float)
    levels = np.zeros((len(components), len(middle)))
    for k, (weight, component) in enumerate(zip(weights / weights.sum(), components)):
        clock = component.scenario.clock
        hourly = hourly_weights(clock.hourly)
        zone_w = np.array([z.weight for z in clock.timezones], float)
        for zone, share in zip(clock.timezones, zone_w / zone_w.sum()):
            local_hour = ((middle + zone.offset_minutes * 60.0) // 3600.0 % 24).astype(int)
            levels[k] += weight * share * hourly[local_hour]
    return lengths, levels


# --- the level over time ------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A piecewise-linear level over seconds since the shape's start: segment i runs from
    `edges[i]` to `edges[i + 1]`, level `start[i]` rising or falling linearly to `end[i]`.
    The level is right-continuous at the edges (a spike is at its height at its first instant)
    and 0 outside [0, duration). `shares` [segment, scenario], when given (`mix: daily`), is
    each scenario's share of the level in each segment; `weights` their configured weights."""

    edges: np.ndarray
    start: np.ndarray
    end: np.ndarray
    shares: np.ndarray | None = None
    weights: np.ndarray | None = None

    def __post_init__(self):
        lengths = np.diff(self.edges)
        object.__setattr__(self, "lengths", lengths)
        amounts = (self.start + self.end) / 2 * lengths
        object.__setattr__(self, "cum", np.concatenate([[0.0], np.cumsum(amounts)]))
        if self.shares is not None:
            object.__setattr__(
                self,
                "cum_by",
                np.vstack([np.zeros(self.shares.shape[1]), np.cumsum(amounts[:, None] * self.shares, axis=0)]),
            )

    @property
    def duration(self) -> float:
        return float(self.edges[-1])

    @property
    def total(self) -> float:
        """The level integrated over the whole shape (sessions, for a rate)."""
        return float(self.cum[-1])

    @property
    def peak(self) -> float:
        return float(max(self.start.max(initial=0.0), self.end.max(initial=0.0)))

    def _segment(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, t, side="right") - 1

    def level(self, t):
        """The level at `t` seconds (scalar or array)."""
        t = np.asarray(t, float)
        i = np.clip(self._segment(t), 0, len(self.lengths) - 1)
        inside = (t >= 0) & (t < self.duration)
        frac = (t - self.edges[i]) / self.lengths[i]
        out = np.where(inside, self.start[i] + (self.end[i] - self.start[i]) * frac, 0.0)
        return float(out) if out.ndim == 0 else out

    def cumulative(self, t):
        """The level integrated from 0 to `t` seconds (scalar or array)."""
        t = np.clip(np.asarray(t, float), 0.0, self.duration)
        i = np.clip(self._segment(t), 0, len(self.lengths) - 1)
        u = t - self.edges[i]
        slope = (self.end[i] - self.start[i]) / self.lengths[i]
        out = self.cum[i] + self.start[i] * u + slope / 2 * u * u
        return float(out) if out.ndim == 0 else out

    def cumulative_by_scenario(self, t: float) -> np.ndarray | None:
        """Per scenario, its share of the level integrated from 0 to `t` (None without shares)."""
        if self.shares is None:
            return None
        t = min(max(float(t), 0.0), self.duration)
        i = int(np.clip(self._segment(np.asarray(t)), 0, len(self.lengths) - 1))
        return self.cum_by[i] + (self.cumulative(t) - self.cum[i]) * self.shares[i]

    def thinned(self) -> tuple[Profile, np.ndarray]:
        """For arrivals drawn in the configured weights: the faster profile to draw them from
        and, per [segment, scenario], the chance to keep a session so that each scenario gets
        its share. A segment runs faster by the largest share/weight ratio of its scenarios."""
        ratio = self.shares / self.weights[None, :]
        faster = ratio.max(axis=1)
        return Profile(self.edges, self.start * faster, self.end * faster), ratio / faster[:, None]

    def inverse_cumulative(self, x: np.ndarray) -> np.ndarray:
        """The times at which the cumulative level reaches `x` (> 0); inf beyond the total."""
        x = np.asarray(x, float)
        i = np.clip(np.searchsorted(self.cum, x, side="left") - 1, 0, len(self.lengths) - 1)
        y = x - self.cum[i]
        a, length = self.start[i], self.lengths[i]
        slope = (self.end[i] - a) / length
        # a*u + slope/2*u^2 = y, in the form that stays exact when slope is 0 or a is 0
        u = 2 * y / (a + np.sqrt(np.maximum(a * a + 2 * slope * y, 0.0)))
        t = self.edges[i] + np.clip(np.nan_to_num(u, nan=0.0), 0.0, length)
        return np.where(x > self.total, np.inf, t)

    def next_above(self, g: float, t: float) -> float:
        """The earliest time >= `t` at which the level is above `g`; inf if it never is again."""
        n = len(self.lengths)
        for j in range(max(int(np.searchsorted(self.edges, t, side="right")) - 1, 0), n):
            lo, hi = max(t, float(self.edges[j])), float(self.edges[j + 1])
            if lo >= hi:
                continue
            a, b = float(self.start[j]), float(self.end[j])
            at_lo = a + (b - a) * (lo - self.edges[j]) / self.lengths[j]
            if at_lo > g:
                return lo
            if b > g:  # rising through g inside the segment
                return float(self.edges[j] + (g - a) / (b - a) * self.lengths[j])
        return math.inf


# --- arrival processes that follow a profile ---------------------------------------------------


class _Shaped:
    """What both shaped processes share: the profile placed at wall time `t0`, the sessions
    parked past the end, and when this process's load is over."""

    def __init__(self, profile: Profile, rng: np.random.Generator, t0: float, graceful_stop: float):
        self.profile, self.rng, self.t0, self.graceful_stop = profile, rng, t0, graceful_stop
        self.ends_at = t0 + profile.duration
        self.parked_at = self.ends_at + PARKED_AFTER
        self.finished = False  # every session this process will start has its start
        self.last_end = t0  # wall time the last started session ends
        self.shape: Shape | None = None  # the stages, to name the one running (set by the run)

    def stage_now(self, wall: float) -> dict | None:
        """The stage running at `wall`: its number (from 1), kind and words, how far into it;
        after the last stage, `number` None and what the run waits for. None without `shape`."""
        shape = self.shape
        if shape is None:
            return None
        elapsed = wall - self.t0
        i = shape.stage_at(max(elapsed, 0.0))
        if i is None:
            return {
                "number": None,
                "of": len(shape.stages),
                "kind": None,
                "text": f"all stages done; sessions still playing get up to {format_duration(shape.graceful_stop)}",
                "level": 0.0,
                "into_s": None,
                "seconds": None,
            }
        begins = sum(stage.seconds for stage in shape.stages[:i])
        return {
            "number": i + 1,
            "of": len(shape.stages),
            "kind": shape.stages[i].kind,
            "text": shape.describe_stage(i, self.profile),
            "level": round(self.profile.level(elapsed), 3),
            "into_s": round(elapsed - begins, 3),
            "seconds": shape.stages[i].seconds,
        }

    @property
    def done_at(self) -> float | None:
        """Wall time this process's load is over: the shape's end, or later while sessions
        started before it still play (at most `graceful_stop` more); None while sessions are
        still being assigned."""
        if not self.finished:
            return None
        return min(max(self.last_end, self.ends_at), self.ends_at + self.graceful_stop)

    def _ended(self, starts: np.ndarray, lengths_wall: np.ndarray) -> None:
        real = starts < self.ends_at
        if real.any():
            self.last_end = max(self.last_end, float((starts[real] + lengths_wall[real]).max()))


class ShapedOpenArrivals(_Shaped):
    """Sessions start as a Poisson process whose rate is `share` x the profile's level
    (sessions/s), from wall time `t0` to the shape's end. With per-scenario shares in the
    profile (`mix: daily`), `assign` needs each session's scenario and parks the sessions
    thinned away."""

    def __init__(
        self,
        profile: Profile,
        rng: np.random.Generator,
        t0: float,
        *,
        share: float = 1.0,
        graceful_stop: float = DEFAULT_GRACEFUL_STOP,
    ):
        super().__init__(profile, rng, t0, graceful_stop)
        if not share > 0:
            raise ValueError(f"share must be > 0 (got {share})")
        self.share = share
        self.unit_time = 0.0  # the unit-rate process's clock: arrivals so far in expectation
        self.last = t0
        self.thins = profile.shares is not None
        self.drawn_from, self.keep_chance = profile.thinned() if self.thins else (profile, None)

    @property
    def horizon(self) -> float:
        """Wall time up to which sessions have been assigned (inf once the shape is over)."""
        return math.inf if self.finished else self.last

    def assign(self, lengths_wall: np.ndarray, scenario: np.ndarray | None = None) -> np.ndarray:
        unit = self.unit_time + np.cumsum(self.rng.exponential(1.0, len(lengths_wall)))
        if len(unit):
            self.unit_time = float(unit[-1])
        starts = self.t0 + self.drawn_from.inverse_cumulative(unit / self.share)
        over = ~(starts < self.ends_at)
        if over.any():
            self.finished = True
            starts[over] = self.parked_at
        if (~over).any():
            self.last = float(starts[~over][-1])
        if self.thins:
            if scenario is None:
                raise ValueError("arrivals that follow each scenario's day need the sessions' scenarios")
            segment = np.clip(self.profile._segment(starts - self.t0), 0, len(self.profile.lengths) - 1)
            dropped = self.rng.random(len(starts)) >= self.keep_chance[segment, np.asarray(scenario, np.int64)]
            starts[dropped & ~over] = self.parked_at
        self._ended(starts, lengths_wall)
        return starts

    def target_at(self, wall: float) -> float:
        """This process's target start rate averaged from `t0` to `wall` (the Viewers tab's
        rates are averages since the start)."""
        elapsed = wall - self.t0
        return self.share * self.profile.cumulative(elapsed) / elapsed if elapsed > 0 else 0.0

    def targets_by_scenario(self, wall: float) -> np.ndarray | None:
        """Per scenario, this process's target start rate averaged from `t0` to `wall`, when the
        shares follow the scenarios' day (None: the configured weights split `target_at`)."""
        elapsed = wall - self.t0
        by = self.profile.cumulative_by_scenario(elapsed)
        if by is None:
            return None
        return self.share * by / elapsed if elapsed > 0 else by * 0.0


class ShapedClosedArrivals(_Shaped):
    """Concurrent viewers following the profile's level. Viewer slot g (g = 0, 1, ...) watches
    while the level is above g: it starts as the level rises past it, starts its next session
    an idle gap (exponential, mean `idle_gap` s) after the last one ends if the level is still
    above it, and otherwise waits until the level rises past it again. So when the level falls,
    viewers finish their session and do not start another. Worker `worker` of `workers` holds
    the slots g with g % workers == worker (its share of `--viewers` today). `max_rate` caps
    session starts per second."""

    def __init__(
        self,
        profile: Profile,
        rng: np.random.Generator,
        t0: float,
        *,
        worker: int = 0,
        workers: int = 1,
        idle_gap: float = 5.0,
        max_rate: float | None = None,
        graceful_stop: float = DEFAULT_GRACEFUL_STOP,
    ):
        super().__init__(profile, rng, t0, graceful_stop)
        self.worker, self.workers, self.idle_gap = worker, workers, idle_gap
        self.min_spacing = 1.0 / max_rate if max_rate else 0.0
        self.last_start = -math.inf
        slots = range(worker, math.ceil(profile.peak), workers)
        self.ready: list[tuple[float, int]] = []  # (wall time of the slot's next start, slot)
        for g in slots:
            t = self._next_start(g, t0)
            if t < math.inf:
                self.ready.append((t, g))
        heapq.heapify(self.ready)
        self.finished = not self.ready

    @property
    def slots(self) -> int:
        return len(range(self.worker, math.ceil(self.profile.peak), self.workers))

    def _next_start(self, g: int, wall: float) -> float:
        t = self.profile.next_above(g, wall - self.t0)
        return self.t0 + t if t < self.profile.duration else math.inf

    @property
    def horizon(self) -> float:
        """Wall time before which every viewer slot already has its session (inf once over)."""
        return self.ready[0][0] if self.ready else math.inf

    def assign(self, lengths_wall: np.ndarray) -> np.ndarray:
        n = len(lengths_wall)
        starts = np.full(n, self.parked_at)
        gaps = self.rng.exponential(self.idle_gap, n) if self.idle_gap > 0 else np.zeros(n)
        for i in range(n):
            if not self.ready:
                break
            start, g = heapq.heappop(self.ready)
            start = max(start, self.last_start + self.min_spacing)
            if start >= self.ends_at:
                continue
            self.last_start = starts[i] = start
            after = self._next_start(g, start + float(lengths_wall[i]) + float(gaps[i]))
            if after < math.inf:
                heapq.heappush(self.ready, (after, g))
        self.finished = not self.ready
        self._ended(starts, lengths_wall)
        return starts

    def target_at(self, wall: float) -> int:
        """This process's viewer slots the level asks for at `wall`."""
        level = self.profile.level(wall - self.t0)
        return len(range(self.worker, math.ceil(level), self.workers))
