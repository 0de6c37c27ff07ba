"""What differs between two plays of one scripted session, aspect by aspect.

Each aspect takes two sides (a recording of the real player, a fresh recording, or player-sim's
requests: anything with `requests`, `beacons` and `preflights` lists of `Request`) and returns the
differences as sentences, empty when the aspect holds. The first side is the reference (the real
player); rule checks (preflights, headers, sessionStartTime) are applied to the second side the way
the real player shows them.

Timing is not the player's behaviour: the tolerances here absorb only what a different clock, a busy
machine or network races explain, and each says so where it applies.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from oracle_recordings import Request, event_name

# Beacons sent within this many seconds of each other are one burst: which of them goes (or arrives)
# first is a race (timeupdate vs seeking, concurrent preflights), not behaviour.
BURST_S = 0.5
# KAVA's timer ticks once a second: a VIEW is due on a tick, so a clock that runs a little differently
# moves it by up to one tick. The extra half second is the page's own latency: the timer is a setInterval
# on a page that also decodes video, and on a busy machine its ticks come late (seen: up to 0.97 s).
TICK_S = 1.0
VIEW_SLACK_S = TICK_S + 0.5
VIEW, RESUME, REPLAY, SEEK, BUFFER_START, BUFFER_END = "99", "4", "34", "35", "45", "46"
QUARTILES = {"11", "12", "13", "14", "15"}
# Headers that describe the connection or the harness, not the browser's request
CONNECTION_HEADERS = {"host", "connection", "content-length"}
# player-sim's X-Forwarded-For is the simulated viewer's address (a real client's is its socket address)
SIMULATED_CLIENT_HEADERS = {"x-forwarded-for"}
CLIENT_HINTS = {"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform"}
CHROMIUM_ONLY_PARAMS = {"networkConnectionType"}


# --- helpers ------------------------------------------------------------------------------------------------


def bursts(beacons: list[Request]) -> list[list[Request]]:
    """Beacons in send order, grouped into bursts (gaps of at most BURST_S)."""
    ordered = sorted(beacons, key=lambda r: (r.t, r.n))
    out: list[list[Request]] = []
    for r in ordered:
        if out and r.t - out[-1][-1].t <= BURST_S:
            out[-1].append(r)
        else:
            out.append([r])
    return out


def _behaviour(burst: list[Request]) -> list[Request]:
    """A burst without what only timing decides."""
    types = {r.event for r in burst}
    kept = []
    for r in burst:
        if r.event == VIEW:
            continue  # VIEWs follow the clock: compared in view_cadence
        if r.event == RESUME and REPLAY in types:
            # after a replay the media element may fire a second `playing` (a RESUME) or not: a race between
            # the seek to 0 completing and play(), recorded both ways on the same machine
            continue
        if r.event in (BUFFER_START, BUFFER_END) and REPLAY not in types:
            # a stall of local media after a seek or resume happens only when the machine is busy
            continue
        kept.append(r)
    return kept


def _canonical(beacons: list[Request]) -> list[str]:
    """Event names in send order: bursts by time, eventIndex order inside a burst, without what only
    timing decides."""
    names = []
    for burst in bursts(beacons):
        kept = sorted(_behaviour(burst), key=lambda r: r.index or 0)
        if any(r.event == SEEK for r in kept):
            # a forward seek's SEEK and the quartiles it passes race (`seeking` vs `timeupdate`): their
            # relative order is not behaviour, so they take a fixed order among their own places
            racing = [k for k, r in enumerate(kept) if r.event == SEEK or r.event in QUARTILES]
            ordered = sorted((kept[k] for k in racing), key=lambda r: int(r.event))
            for k, r in zip(racing, ordered):
                kept[k] = r
        names += _names(kept)
    return names


def _names(requests) -> list[str]:
    return [event_name(r.event) for r in requests]


def _sequence_diff(label: str, ref: list[str], other: list[str]) -> list[str]:
    if ref == other:
        return []
    return [f"{label}: real {' '.join(ref) or '-'}; sim {' '.join(other) or '-'}"]


# --- aspects ------------------------------------------------------------------------------------------------


def event_sequence(real, sim) -> list[str]:
    """The events sent, in send order (VIEWs: see view_cadence)."""
    return _sequence_diff("events", _canonical(real.beacons), _canonical(sim.beacons))


def param_sets(real, sim) -> list[str]:
    """For every event type both send: the parameter names (sessionStartTime: see session_start_time)."""

    def keys(side) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in side.beacons:
            out.setdefault(r.event, set()).update(k for k in r.params if k != "sessionStartTime")
        return out

    ref, other = keys(real), keys(sim)
    diffs = []
    for event in sorted(set(ref) & set(other), key=int):
        expected = set(ref[event])
        sample = next(r for r in sim.beacons if r.event == event)
        if not _chromium(sample):
            # navigator.connection is Chromium's alone: under another browser's user agent the plugin has no
            # networkConnectionType to send (GET: `key=`, a JSON body leaves it out)
            expected -= CHROMIUM_ONLY_PARAMS
        missing, extra = sorted(expected - other[event]), sorted(other[event] - ref[event])
        if missing or extra:
            diffs.append(
                f"{event_name(event)}: sim lacks {', '.join(missing) or '-'}; sim adds {', '.join(extra) or '-'}"
            )
    return diffs


def _index_runs(side) -> tuple[list[list[Request]], list[str]]:
    """Beacons by eventIndex, split where the index starts again at 1; and what is wrong with the runs."""
    runs: list[list[Request]] = []
    for r in sorted(side.beacons, key=lambda r: (r.t, r.n)):
        if r.index == 1 or not runs:
            runs.append([])
        runs[-1].append(r)
    problems = []
    for k, run in enumerate(runs):
        got = sorted(r.index for r in run)
        if got != list(range(1, len(run) + 1)):
            problems.append(f"run {k + 1} has eventIndex {got}, not 1..{len(run)}")
    return [sorted(run, key=lambda r: r.index) for run in runs], problems


def event_index(real, sim) -> list[str]:
    """eventIndex: 1, 2, ... per beacon in send order, starting again at 1 after the reset, same events."""
    diffs = []
    ref_runs, ref_problems = _index_runs(real)
    sim_runs, sim_problems = _index_runs(sim)
    diffs += [f"real {p}" for p in ref_problems] + [f"sim {p}" for p in sim_problems]

    if len(ref_runs) != len(sim_runs):
        diffs.append(f"real has {len(ref_runs)} eventIndex runs, sim {len(sim_runs)}")
    for k, (a, b) in enumerate(zip(ref_runs, sim_runs)):
        diffs += _sequence_diff(f"run {k + 1} in eventIndex order", _canonical(a), _canonical(b))
    return diffs


def view_cadence(real, sim, played_s: float) -> list[str]:
    """VIEWs: one with PLAY, then on the timer; playTimeSum of each within a tick of the real one, a raw
    double as the player reads it."""

    def views(side) -> list[float]:
        return [float(r.params.get("playTimeSum") or 0) for r in side.beacons if r.event == VIEW]

    ref, other = views(real), views(sim)
    diffs = []
    for k, (a, b) in enumerate(zip(ref, other)):
        if abs(a - b) > VIEW_SLACK_S:
            diffs.append(f"VIEW {k + 1}: playTimeSum real {a:.3f}, sim {b:.3f}")
    ticking = ref[1:]
    if ticking and all(v != int(v) for v in ticking) and other[1:] and all(v == int(v) for v in other[1:]):
        diffs.append(
            f"real playTimeSum is the playhead's raw double with the timer's jitter ({ticking[0]}), "
            f"sim's whole seconds ({other[1]:g})"
        )
    longer, side = (ref, "real") if len(ref) > len(other) else (other, "sim")
    for k, pts in enumerate(longer[min(len(ref), len(other)) :], start=min(len(ref), len(other))):
        # a VIEW due within a tick of the session's end may go out or not, depending on the clock
        if played_s - pts > VIEW_SLACK_S:
            diffs.append(
                f"VIEW {k + 1} (playTimeSum {pts:.3f}) sent by {side} only, "
                f"{played_s - pts:.1f} s before the end of {played_s:.1f} s played"
            )
    return diffs


def _sst_pattern(side) -> tuple[list[str], list[str], list[float]]:
    """Per beacon in send order (timing-only events left out): 'event:-' without sessionStartTime,
    'event:new' where a value not seen before starts, 'event:=' carrying the current one; and the values."""
    pattern, firsts, values = [], [], []
    seen = set()
    for burst in bursts(side.beacons):
        keep = {id(r) for r in _behaviour(burst)}
        for r in sorted(burst, key=lambda r: r.index or 0):
            value = r.params.get("sessionStartTime")
            if value in (None, ""):
                mark = "-"
            else:
                values.append(float(value))
                mark = "=" if value in seen else "new"
                seen.add(value)
            if id(r) in keep:
                pattern.append(f"{event_name(r.event)}:{mark}")
                if mark == "new":
                    firsts.append(event_name(r.event))
    return pattern, firsts, values


def _first_answer_in_time(ref: list[str], sim: list[str]) -> list[str]:
    """`sim` with its first value moved one beacon earlier or later to where `ref` has it, when only
    timing tells them apart: the first answer came back just before the next beacon left on one
    side and just after on the other (one side `X:-` then `Y:new`, the other `X:new` then `Y:=`)."""

    def first_new(pattern):
        return next((k for k, p in enumerate(pattern) if p.endswith(":new")), None)

    r, s = first_new(ref), first_new(sim)
    if r is None or s is None or abs(r - s) != 1 or len(ref) != len(sim):
        return sim
    early, late = min(r, s), max(r, s)
    name = [p.rsplit(":", 1)[0] for p in sim]
    marks = [p.rsplit(":", 1)[1] for p in sim]
    if r < s and marks[early] == "-" and marks[late] == "new":  # sim's answer came later
        marks[early], marks[late] = "new", "="
    elif r > s and marks[early] == "new" and marks[late] == "=":  # sim's answer came sooner
        marks[early], marks[late] = "-", "new"
    return [f"{n}:{m}" for n, m in zip(name, marks)]


def session_start_time(real, sim) -> list[str]:
    """sessionStartTime: absent on IMPRESSION, the server's time (a float) after, cleared by an answer
    received while paused or ended, a new value from the next answer received while playing.
    Timing alone decides whether the first answer is back before the next beacon: a first value
    one beacon apart is tolerated (`_first_answer_in_time`)."""
    diffs = []
    ref_pattern, ref_firsts, ref_values = _sst_pattern(real)
    sim_pattern, sim_firsts, sim_values = _sst_pattern(sim)
    sim_pattern = _first_answer_in_time(ref_pattern, sim_pattern)
    if [p.endswith(":-") for p in ref_pattern] != [p.endswith(":-") for p in sim_pattern] or len(ref_pattern) != len(
        sim_pattern
    ):
        diffs.append(f"carried by: real {' '.join(ref_pattern)}; sim {' '.join(sim_pattern)}")
    if len(ref_firsts) != len(sim_firsts):
        diffs.append(
            f"distinct values: real {len(ref_firsts)} (first on {', '.join(ref_firsts)}); "
            f"sim {len(sim_firsts)} (first on {', '.join(sim_firsts)})"
        )
    if any(v != int(v) for v in ref_values) and sim_values and all(v == int(v) for v in sim_values):
        diffs.append(
            f"real sends the server's float time (e.g. {ref_values[0]}), sim whole seconds (e.g. {sim_values[0]:.0f})"
        )
    return diffs


def request_method(real, sim) -> list[str]:
    """The HTTP method, where the params go (URL or JSON body) and the Content-Type."""

    def shape(r: Request) -> tuple:
        query = sorted(k for k in r.query)
        body = r.body is not None and r.body != ""
        return r.method, tuple(query) if r.method == "POST" else "query", body, r.header("content-type")

    ref = Counter(shape(r) for r in real.beacons)
    other = Counter(shape(r) for r in sim.beacons)
    if set(ref) == set(other):
        return []
    return [f"real {sorted(set(ref), key=str)}; sim {sorted(set(other), key=str)}"]


def _page_origin(r: Request) -> str | None:
    url = r.params.get("referrer")
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _header_names(r: Request, chromium: bool) -> set[str]:
    names = set(r.header_names) - CONNECTION_HEADERS - SIMULATED_CLIENT_HEADERS
    return names if chromium else names - CLIENT_HINTS


def _chromium(r: Request) -> bool:
    agent = r.header("user-agent") or ""
    return "Chrome/" in agent or "Chromium/" in agent


def headers(real, sim) -> list[str]:
    """The browser's request headers: which are sent (client hints only from a Chromium UA), Origin on
    every beacon, Referer as the default referrer policy gives it cross-origin (the page's origin only)."""
    diffs = []
    ref_names = set().union(*(_header_names(r, True) for r in real.beacons))
    by_difference: dict[tuple, list[str]] = {}
    for r in sim.beacons:
        expected = {h for h in ref_names if _chromium(r) or h not in CLIENT_HINTS}
        if r.method != "POST":
            expected.discard("content-type")
        got = _header_names(r, _chromium(r))
        key = (r.method, tuple(sorted(expected - got)), tuple(sorted(got - expected)))
        if key[1] or key[2]:
            by_difference.setdefault(key, []).append(event_name(r.event))
    for (method, missing, extra), events in by_difference.items():
        which = "every beacon" if len(events) == len(sim.beacons) else ", ".join(sorted(set(events)))
        diffs.append(f"{method} {which}: sim lacks {', '.join(missing) or '-'}; sim adds {', '.join(extra) or '-'}")
    for r in sim.beacons:
        origin = _page_origin(r)
        if origin and r.header("origin") != origin:
            diffs.append(
                f"{event_name(r.event)}#{r.index}: Origin {r.header('origin')!r}, the page's origin is {origin!r}"
            )
            break
    for r in sim.beacons:
        origin = _page_origin(r)
        if origin and r.header("referer") != origin + "/":
            diffs.append(
                f"{event_name(r.event)}#{r.index}: Referer {r.header('referer')!r}, cross-origin the "
                f"browser sends the page's origin {origin + '/'!r}"
            )
            break
    if any(r.header("cookie") for r in sim.beacons):
        diffs.append("sim sends Cookie on credential-less XHR beacons")
    return diffs


def preflights(real, sim) -> list[str]:
    """One OPTIONS preflight before the first cross-origin JSON POST to each URL (then cached for the
    session), none for GET; the preflight's own headers."""
    diffs = []

    def check(side, label: str) -> list[str]:
        out = []
        posts = [r for r in side.requests if r.method == "POST"]
        urls = []
        for r in posts:
            if r.url not in urls:
                urls.append(r.url)
        options = side.preflights
        if not posts and options:
            out.append(f"{label} sends {len(options)} preflights without a POST")
        if posts and len(options) != len(urls):
            out.append(f"{label} sends {len(options)} preflights for {len(urls)} distinct POST URLs")
        for url in urls:
            first_post = next(r for r in side.requests if r.method == "POST" and r.url == url)
            if not any(o.url == url and (o.t, o.n) <= (first_post.t, first_post.n) for o in options):
                out.append(f"{label}: no preflight before the first POST to {urlsplit(url).query[:60]}...")
                break
        return out

    diffs += check(real, "real")
    diffs += check(sim, "sim")
    if real.preflights and sim.preflights:
        ref = set().union(*(_header_names(o, True) for o in real.preflights))
        got = _header_names(sim.preflights[0], True)
        missing, extra = sorted(ref - got), sorted(got - ref)
        if missing or extra:
            diffs.append(
                f"preflight headers: sim lacks {', '.join(missing) or '-'}; sim adds {', '.join(extra) or '-'}"
            )
        method = {o.header("access-control-request-method") for o in sim.preflights}
        if method != {"POST"}:
            diffs.append(f"preflight Access-Control-Request-Method {sorted(map(str, method))}, want POST")
    return diffs


ASPECTS = {
    "event_sequence": event_sequence,
    "param_sets": param_sets,
    "event_index": event_index,
    "view_cadence": view_cadence,
    "session_start_time": session_start_time,
    "request_method": request_method,
    "headers": headers,
    "preflights": preflights,
}


def compare(aspect: str, real, sim, played_s: float, labels: tuple[str, str] = ("real", "sim")) -> list[str]:
    """The differences `aspect` finds, worded with `labels` for the two sides."""
    fn = ASPECTS[aspect]
    diffs = fn(real, sim, played_s) if aspect == "view_cadence" else fn(real, sim)
    if labels != ("real", "sim"):
        names = {"real": labels[0], "sim": labels[1]}
        diffs = [re.sub(r"\b(real|sim)\b", lambda m: names[m.group(1)], d) for d in diffs]
    return diffs
