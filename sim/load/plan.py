"""The options of a live-load run and the schedule they describe for one process.

Kept free of Locust imports (Locust monkey-patches the process on import) so the checks can
run anywhere: `check_options` refuses bad values and unsafe targets with a message naming
the option (or the `--shape` file's line and column); `build_schedule` gives a worker its
share of the load, constant or following the shape, and its own random stream.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

from sim.load.schedule import ClosedArrivals, OpenArrivals, Schedule, Timebase, protocol_adapters, session_stream
from sim.protocols.choice import CHOICES, DEFAULT_CHOICE

DEFAULT_HOST = "http://127.0.0.1:8080"
DEFAULT_SCENARIO = "scenarios/default-mix.yaml"
KALTURA_DEFAULT_MAX_RATE = 5.0


class OptionError(ValueError):
    """A bad option or an unsafe target; the message names the option."""


# --- options --------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """player-sim's options on Locust's parser (each also shows in the web UI form; Locust
    shows only options added on the parser itself, not in an argument group)."""
    g = parser
    g.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="PATH[:WEIGHT]",
        help=f"Scenario or mix file; repeat to mix with weights (default {DEFAULT_SCENARIO}).",
    )
    g.add_argument(
        "--protocol", choices=list(CHOICES), default=DEFAULT_CHOICE, help="Which analytics protocol the players speak."
    )
    g.add_argument(
        "--workload",
        choices=["open", "closed"],
        default="open",
        help="Open: sessions arrive at --session-rate; closed: --viewers watch back to back.",
    )
    g.add_argument(
        "--session-rate",
        type=float,
        default=5.0,
        help="Open model: sessions starting per second (wall clock), the scenarios in their mix weights.",
    )
    g.add_argument("--viewers", type=int, default=100, help="Closed model: concurrent viewers.")
    g.add_argument(
        "--shape",
        default="",
        metavar="PATH",
        help="Load shape file (YAML stages: ramp, steady, spike, daily); its levels replace "
        "--session-rate / --viewers and the run stops when it ends.",
    )
    g.add_argument(
        "--idle-gap", type=float, default=5.0, help="Closed model: mean idle seconds between a viewer's sessions."
    )
    g.add_argument(
        "--ramp-up", type=float, default=10.0, help="Closed model: first sessions start spread over this many seconds."
    )
    g.add_argument("--time-scale", type=float, default=1.0, help="Play this many times faster than real time.")
    g.add_argument("--seed", type=int, default=1, help="Random seed (each worker draws its own stream from it).")
    g.add_argument(
        "--ledger",
        default="",
        help="Write every send as JSON lines here (workers write .w<N> parts; "
        "the master merges the ones on its machine).",
    )
    g.add_argument(
        "--run-id",
        default="",
        help="Name this run in its ledger and on its requests (header "
        "X-Player-Sim-Run), so one store keeps runs apart; default: a new id.",
    )
    g.add_argument("--summary-json", default="", help="Write the run's lateness/failure figures here at the end.")
    g.add_argument("--partner-id", type=int, default=0, help="Override the scenarios' partner id.")
    g.add_argument("--entry-id", default="", help="Send every session for this entry id.")
    g.add_argument("--entry-duration", type=float, default=300.0, help="Duration (s) of --entry-id.")
    g.add_argument("--retries", type=int, default=0, help="Resend a failed beacon up to N times (players do not).")
    g.add_argument(
        "--concurrency", type=int, default=64, help="Requests in flight per sender user (keep-alive connections)."
    )
    g.add_argument("--request-timeout", type=float, default=10.0, help="Seconds before a send counts as timed out.")
    g.add_argument("--late-threshold", type=float, default=0.25, help="A send later than this (s) counts as late.")
    g.add_argument(
        "--drop-after",
        type=float,
        default=5.0,
        help="Open model: a session whose first beacon would go out later than this (s) is dropped.",
    )
    g.add_argument(
        "--max-rate",
        type=float,
        default=0.0,
        help=f"Sessions/s cap against Kaltura's hosts (default {KALTURA_DEFAULT_MAX_RATE:g}).",
    )
    g.add_argument(
        "--i-mean-kaltura",
        action="store_true",
        default=False,
        help="Allow sending to *.kaltura.com (needs --partner-id; capped by --max-rate).",
    )


def default_scenario() -> str:
    """The bundled mix: from the working folder if it has one, else from the project's own
    folder, so `locust -f /path/to/locustfile.py` works from anywhere."""
    if Path(DEFAULT_SCENARIO).exists():
        return DEFAULT_SCENARIO
    bundled = Path(__file__).resolve().parents[2] / DEFAULT_SCENARIO
    return str(bundled) if bundled.exists() else DEFAULT_SCENARIO


def scenario_specs(values: list[str] | None) -> list[tuple[str, float]]:
    """`PATH` or `PATH:WEIGHT` items -> (path, weight)."""
    specs = []
    for item in values or [default_scenario()]:
        path, sep, weight = item.rpartition(":")
        if sep and path:
            try:
                w = float(weight)
            except ValueError:
                specs.append((item, 1.0))
                continue
            if not w > 0:
                raise OptionError(f"--scenario {item}: weight must be > 0")
            specs.append((path, w))
        else:
            specs.append((item, 1.0))
    return specs


def host_name(host: str) -> str:
    """The host name of a --host URL as a resolver sees it: IDNA/UTS-46-like normalisation (NFKC folds
    fullwidth letters and dots, invisible format characters such as a soft hyphen or a zero-width
    space vanish, ideographic dots separate labels, percent-escapes are decoded), lower case,
    without a trailing dot. So `ｋａｌｔｕｒａ．com` or `kal\u00adtura.com` compare as kaltura.com."""
    text = unicodedata.normalize("NFKC", unquote(host))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")
    try:
        name = urlsplit(text if "://" in text else f"//{text}").hostname or ""
    except ValueError:  # not a URL at all; compare what was written
        name = text
    try:
        name = name.encode("idna").decode("ascii")  # punycode labels compare as written on the wire
    except UnicodeError:
        pass
    return name.lower().rstrip(".")


def is_kaltura_host(host: str) -> bool:
    name = host_name(host)
    return name == "kaltura.com" or name.endswith(".kaltura.com")


_RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def run_id(options) -> str:
    """The run's id: `--run-id`, else a new one (UTC start time and a random suffix)."""
    given = getattr(options, "run_id", "")
    if given:
        return given
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def check_options(options, host: str) -> None:
    """Refuse bad values and unsafe targets with a message naming the option."""
    if options.time_scale <= 0:
        raise OptionError(f"--time-scale must be > 0 (got {options.time_scale:g})")
    if getattr(options, "run_id", "") and not _RUN_ID.fullmatch(options.run_id):
        raise OptionError(f"--run-id {options.run_id!r}: 1 to 64 letters, digits, '.', '_' or '-'")
    shape = load_shape_option(options)
    if shape is None and options.workload == "open" and not options.session_rate > 0:
        raise OptionError(f"--session-rate must be > 0 (got {options.session_rate:g})")
    if shape is not None and shape.mix == "daily" and options.workload == "closed":
        raise OptionError(
            f"--shape {options.shape}: 'mix: daily' thins session arrivals, which only the open "
            f"model has; use --workload open or leave 'mix' out (the configured weights)"
        )
    if shape is None and options.workload == "closed" and options.viewers < 1:
        raise OptionError(f"--viewers must be >= 1 (got {options.viewers})")
    for name in ("retries", "concurrency"):
        if getattr(options, name) < (1 if name == "concurrency" else 0):
            raise OptionError(f"--{name} is out of range (got {getattr(options, name)})")
    if options.request_timeout <= 0:
        raise OptionError(f"--request-timeout must be > 0 (got {options.request_timeout:g})")
    scenario_specs(options.scenario)
    if not is_kaltura_host(host):
        return
    if not options.i_mean_kaltura:
        raise OptionError(
            f"--host {host} is Kaltura's own service: add --i-mean-kaltura and --partner-id "
            f"if you really mean to send simulated beacons there"
        )
    if not options.partner_id:
        raise OptionError(f"--host {host}: sending to Kaltura needs --partner-id (your own account)")
    if options.time_scale != 1:
        raise OptionError(f"--host {host}: --time-scale must be 1 against Kaltura (real players do not play faster)")
    cap = options.max_rate or KALTURA_DEFAULT_MAX_RATE
    if options.workload == "open" and shape is not None and shape.peak > cap:
        raise OptionError(
            f"--shape {options.shape} peaks at {shape.peak:g} sessions/s, above the {cap:g} allowed "
            f"against Kaltura; raise --max-rate if you mean it"
        )
    if options.workload == "open" and shape is None and options.session_rate > cap:
        raise OptionError(
            f"--session-rate {options.session_rate:g} is above the {cap:g} sessions/s allowed against "
            f"Kaltura; raise --max-rate if you mean it"
        )


def unreachable_hint(summary: dict, host: str) -> str | None:
    """What to do when (almost) every send failed because nothing answered at --host."""
    sent, failed = summary.get("sent", 0), summary.get("failed", 0)
    unreachable = sum(
        n
        for reason, n in summary.get("failures", {}).items()
        if any(w in reason.lower() for w in ("refused", "unreachable", "name", "resolve", "timed out"))
    )
    if not sent or failed < 0.9 * sent or unreachable < 0.5 * failed:
        return None
    return (
        f"{failed} of {sent} sends failed: nothing answered at {host}. Is the collector running? Start one "
        f"with `player-sim collector` (it prints its URL) and give that URL as --host."
    )


def load_shape_option(options):
    """The `--shape` file checked (None without one); its problems, each at file:line:column,
    become an OptionError."""
    path = getattr(options, "shape", "")
    if not path:
        return None
    from sim.load.shapes import load_shape
    from sim.scenario.errors import ScenarioError

    try:
        return load_shape(path)
    except ScenarioError as exc:
        raise OptionError(str(exc)) from None


def session_rate_cap(options, host: str) -> float | None:
    if is_kaltura_host(host):
        return options.max_rate or KALTURA_DEFAULT_MAX_RATE
    return options.max_rate or None


# --- building a process's schedule ----------------------------------------------------------


def load_components(options) -> list:
    """The scenario components with mix weights and the partner/entry overrides applied."""
    from sim.scenario.loader import load
    from sim.scenario.model import CatalogEntry

    components = []
    for path, weight in scenario_specs(options.scenario):
        for c in load(path):
            scenario = c.scenario
            if options.partner_id:
                scenario = scenario.model_copy(
                    update={
                        "partner": scenario.partner.model_copy(
                            update={"partner_id": options.partner_id, "widget_id": None}
                        )
                    }
                )
            if options.entry_id:
                catalog = scenario.catalog.model_copy(
                    update={
                        "entries": [CatalogEntry(id=options.entry_id, duration=options.entry_duration)],
                        "count": None,
                        "csv": None,
                    }
                )
                scenario = scenario.model_copy(update={"catalog": catalog})
            c.scenario, c.weight = scenario, c.weight * weight
            components.append(c)
    return components


@dataclass
class Inputs:
    """What every schedule of a run starts from: the components, their population, the
    protocol adapters (policies compiled)."""

    components: list
    population: object
    adapters: list


_PREPARED: dict[tuple, Inputs] = {}


def prepare_inputs(options) -> Inputs:
    """Load the scenarios, build the population and compile the policies, once per set of
    options (seconds of work: run it when the process starts, in a thread)."""
    key = (
        tuple(options.scenario or ()),
        options.partner_id,
        options.entry_id,
        options.entry_duration,
        options.seed,
        options.protocol,
    )
    inputs = _PREPARED.get(key)
    if inputs is None:
        from sim.player.model import generate_sessions
        from sim.population import build_population
        from sim.scenario.loader import as_components

        components = as_components(load_components(options))
        population = build_population(components, options.seed)
        adapters = protocol_adapters(options.protocol)
        sample = next(
            generate_sessions(components, options.seed, sessions=256, days=1, chunk_size=256, population=population)
        )
        warm_up(sample, adapters)
        inputs = _PREPARED[key] = Inputs(components, population, adapters)
    return inputs


def build_schedule(options, *, worker_index: int, workers: int, host: str, lead: float = 0.25) -> Schedule:
    """This process's share of the load: its own chunk partition, rate or viewers.

    The inputs are prepared (population built, policies compiled) and the first chunk
    generated before the clock starts, so the schedule begins `lead` seconds after this
    returns, not behind it.
    """
    import itertools
    import time

    inputs = prepare_inputs(options)
    rng = np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=(1 << 20, worker_index)))
    cap = session_rate_cap(options, host)
    shape = load_shape_option(options)
    profile = shape.profile(inputs.components) if shape is not None else None
    if options.workload == "open":
        rate = (profile.peak if shape is not None else options.session_rate) / workers
        chunk_size = int(np.clip(rate * 0.5, 16, 4096))
    else:
        total = math.ceil(profile.peak) if shape is not None else options.viewers
        viewers = total // workers + (1 if worker_index < total % workers else 0)
        chunk_size = int(np.clip(viewers / 20, 16, 4096))
    stream = session_stream(
        inputs.components, options.seed, worker=worker_index, chunk_size=chunk_size, population=inputs.population
    )
    first = next(stream)
    t0 = time.time() + lead
    if shape is not None:
        from sim.load.shapes import ShapedClosedArrivals, ShapedOpenArrivals

        if options.workload == "open":
            arrivals = ShapedOpenArrivals(profile, rng, t0, share=1.0 / workers, graceful_stop=shape.graceful_stop)
        else:
            arrivals = ShapedClosedArrivals(
                profile,
                rng,
                t0,
                worker=worker_index,
                workers=workers,
                idle_gap=options.idle_gap,
                max_rate=cap / workers if cap else None,
                graceful_stop=shape.graceful_stop,
            )
        arrivals.shape = shape
        drop_after = options.drop_after if options.workload == "open" else None
    elif options.workload == "open":
        arrivals = OpenArrivals(rate, rng, t0)
        drop_after = options.drop_after
    else:
        arrivals = ClosedArrivals(
            max(viewers, 1),
            rng,
            t0,
            idle_gap=options.idle_gap,
            ramp_up=options.ramp_up,
            max_rate=cap / workers if cap else None,
        )
        drop_after = None
    return Schedule(
        itertools.chain([first], stream),
        arrivals,
        Timebase(t0, options.time_scale),
        inputs.adapters,
        drop_after=drop_after,
        target=host,
    )


def warm_up(chunk, adapters) -> None:
    """Compile the policies and touch the codecs on one chunk."""
    for adapter in adapters:
        beacons = adapter.policy(chunk)
        if len(beacons):
            beacon = adapter.codec.beacon_at(beacons, 0)
            adapter.codec.encode(beacon)
            adapter.codec.ledger_key(beacon)
