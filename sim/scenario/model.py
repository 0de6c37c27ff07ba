"""The scenario language: one YAML file describes an audience (who watches what, when, how).

The pydantic models below *are* the language: the loader validates YAML against them,
`player-sim schema` prints their JSON Schema, and the player model compiles them into
arrays. Field names in YAML are the attribute names here. Probabilities are in [0, 1];
durations are seconds unless the name says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveFloat, field_validator, model_validator

from sim.scenario.distributions import Quantity, at_most

Probability = Annotated[float, Field(ge=0, le=1, description="a probability in [0, 1]")]
Weight = Annotated[float, Field(ge=0)]
DeviceName = Literal["desktop", "mobile", "tablet", "ctv"]


# Bounds on what would otherwise exhaust memory or time before a single beacon is written; each
# far above any real use (a real catalog, a real audience, a real script).
MAX_VIEWERS = 10_000_000
MAX_ENTRIES = 1_000_000
MAX_DAYS = 3660  # ten years
MAX_SESSIONS_PER_DAY = 100_000_000
MAX_REPEAT = 100_000
MAX_ENTRY_S = 7 * 86400  # a week-long entry (a live channel's DVR window)
KALTURA_INT = 2**31 - 1  # Kaltura ids are 32-bit signed integers
EARLIEST, LATEST = datetime(1990, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


# Events per minute of playback: above one a second, no viewer and no player does it.
PerMinute = Annotated[float, Field(ge=0, le=60)]


class Strict(BaseModel):
    # allow_inf_nan: `.nan` and `.inf` are YAML numbers, but no quantity of a scenario is one.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


def _positive_sum(weights: dict | list, what: str) -> None:
    values = weights.values() if isinstance(weights, dict) else weights
    if values is not None and len(values) and sum(values) <= 0:
        raise ValueError(f"{what} weights sum to 0")


# --- partner and player -----------------------------------------------------------------


class Partner(Strict):
    """Whose account the player reports to."""

    partner_id: Annotated[int, Field(gt=0, le=KALTURA_INT)] = 2504201
    uiconf_id: Annotated[int, Field(ge=0, le=KALTURA_INT)] = 47313123
    widget_id: str | None = Field(None, description="default: '_' + partner_id")
    ks: str | None = Field(None, description="Kaltura session sent with each beacon (never logged)")


KAVA_VERSIONS = ("0.15", "current")


class KavaSettings(Strict):
    version: Literal["0.15", "current"] = Field(
        "current",
        description="the kava plugin line: '0.15' (playkit-js-kava 0.15.1, the npm package: GET, its "
        "parameter set) or 'current' (the plugin's current source: POST, QoE fields)",
    )
    request_method: Literal["post", "get"] | None = Field(
        None, description="how beacons go out; default: the version's own (0.15: get, current: post)"
    )
    view_interval_s: Annotated[float, Field(ge=1, le=3600)] = 10
    reset_after_pause_s: Annotated[float, Field(ge=1, le=86400)] = 30
    ad_events: bool = Field(False, description="also send the legacy-era KAVA ad events 8999-9009")

    @field_validator("version", mode="before")
    @classmethod
    def _version_number(cls, value):
        # `version: 0.15` unquoted is a YAML float; it names the same line
        if isinstance(value, float) and not isinstance(value, bool) and str(value) in KAVA_VERSIONS:
            return str(value)
        return value

    @property
    def method(self) -> str:
        """The request method in force: the one given, else the version's default."""
        # 0.15.1 only had GET; kaltura/playkit-js-kava 3bc8615 (v1.5.5, 2023-05) made POST the default
        return self.request_method or ("get" if self.version == "0.15" else "post")


class BrowserSettings(Strict):
    """How the viewer's browser sends the beacons: a player in a web page, not a bare HTTP client."""

    enabled: bool = Field(
        True,
        description="send beacons as the viewer's browser does: a CORS preflight before a cross-origin "
        "non-simple request (the KAVA JSON POST), Origin, Referer per the default referrer policy, "
        "the browser's own request headers, no cookies on credential-less XHR",
    )
    preflight_max_age_s: Annotated[float, Field(ge=0)] | None = Field(
        None,
        description="request files: the Access-Control-Max-Age the beacon server answers a preflight with "
        "(none: it sends none, as Kaltura's API server; the browser then keeps a preflight 5 s). "
        "Live load reads the target's own answer",
    )


class Player(Strict):
    """The player build: version strings and analytics plugin behaviour."""

    version: str = "3.17.0"
    legacy_flavor: Literal["kdp", "mwembed", "v7"] = Field(
        "mwembed", description="which legacy stats plugin: KDP (Flash), mwEmbed (HTML5 v2) or v7 kanalytics"
    )
    delivery: Literal["hls", "dash", "url"] = "hls"
    bitrate_ladder_kbps: list[PositiveFloat] = Field(default_factory=lambda: [400, 800, 1500, 3000, 6000], min_length=1)
    bitrate_scale: Annotated[float, Field(gt=0, le=100)] = Field(
        1.0, description="multiplies every rung of bitrate_ladder_kbps (0.5: a poor network's halved ladder)"
    )
    kava: KavaSettings = Field(default_factory=KavaSettings)
    browser: BrowserSettings = Field(default_factory=BrowserSettings)


# --- catalog --------------------------------------------------------------------------------


class CatalogEntry(Strict):
    id: str = Field(min_length=1)
    duration: Annotated[float, Field(gt=0, le=MAX_ENTRY_S)]
    live: bool = False
    name: str | None = None


class Catalog(Strict):
    """Generated entries (count, duration, live_share) or an explicit list (entries / csv)."""

    count: Annotated[int, Field(gt=0, le=MAX_ENTRIES)] | None = Field(None, description="number of generated entries")
    duration: Quantity = Field(
        default_factory=lambda: {"dist": "lognormal", "median": 300, "sigma": 0.9, "min": 30, "max": 3600}
    )
    live_share: Probability = 0.0
    entries: list[CatalogEntry] | None = Field(
        None, max_length=MAX_ENTRIES, description="real entry ids with durations"
    )
    csv: str | None = Field(None, description="CSV with columns id,duration[,live,name], relative to this file")
    zipf: Annotated[float, Field(ge=0)] = Field(1.0, description="popularity skew: Zipf exponent over entries")

    @model_validator(mode="after")
    def _one_source(self):
        given = [k for k in ("count", "entries", "csv") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of count, entries, csv (got {', '.join(given)})")
        if not given:
            self.count = 200
        return self


# --- audience -------------------------------------------------------------------------------


class Returning(Strict):
    """How often viewers come back: activity skew over viewers (Zipf) and the gap between visits."""

    activity_zipf: Annotated[float, Field(ge=0)] = Field(1.0, description="0 = every viewer equally active")
    min_gap_s: Annotated[float, Field(ge=0)] = Field(
        1800,
        description="an earlier session of the viewer makes a session returning only if at least this long "
        "before it (closer sessions are one visit)",
    )


class Audience(Strict):
    viewers: Annotated[int, Field(gt=0, le=MAX_VIEWERS)] = 20000
    authenticated: Probability = 0.85
    returning: Returning = Field(default_factory=Returning)
    devices: dict[DeviceName, Weight] = Field(default_factory=lambda: {"desktop": 0.70, "mobile": 0.25, "tablet": 0.05})
    browsers: dict[DeviceName, dict[str, Weight]] = Field(
        default_factory=lambda: {
            "desktop": {"chrome": 0.64, "safari": 0.14, "edge": 0.11, "firefox": 0.06, "other": 0.05},
            "mobile": {"chrome": 0.66, "safari": 0.25, "samsung": 0.04, "other": 0.05},
            "tablet": {"chrome": 0.50, "safari": 0.45, "other": 0.05},
            "ctv": {"other": 1.0},
        }
    )
    os: dict[DeviceName, dict[str, Weight]] = Field(
        default_factory=lambda: {
            "desktop": {"windows": 0.72, "macos": 0.24, "linux": 0.04},
            "mobile": {"android": 0.55, "ios": 0.45},
            "tablet": {"ios": 0.6, "android": 0.4},
            "ctv": {"tizen": 0.35, "webos": 0.3, "android": 0.35},
        }
    )
    countries: dict[str, Weight] = Field(
        default_factory=lambda: {
            "US": 0.45,
            "GB": 0.12,
            "DE": 0.08,
            "IN": 0.1,
            "BR": 0.07,
            "CA": 0.06,
            "AU": 0.04,
            "FR": 0.08,
        }
    )
    referrers: list[str] = Field(
        default_factory=lambda: ["https://learn.example.edu/course/{n}/lecture", "https://www.example.com/videos/{n}"],
        min_length=1,
        description="page URL templates; {n} becomes a page number",
    )
    pages_per_referrer: Annotated[int, Field(gt=0, le=100_000)] = 50
    clock_skew: bool = Field(
        True,
        description="viewers' device clocks are off by a per-viewer amount (most within a second, some by "
        "minutes, a few by whole hours), seen in the legacy eventTimestamp",
    )
    device_shift: dict[DeviceName, Annotated[float, Field(ge=-1, le=1)]] = Field(
        default_factory=dict,
        description="share points added to a device after normalising `devices` (0.2 = +20 points); the other "
        "devices give up the same total in proportion to their shares. Lets a modifier skew any mix.",
    )

    @model_validator(mode="after")
    def _weights(self):
        _positive_sum(self.devices, "devices")
        _positive_sum(self.countries, "countries")
        for dev, mix in self.browsers.items():
            _positive_sum(mix, f"browsers.{dev}")
        for dev, mix in self.os.items():
            _positive_sum(mix, f"os.{dev}")
        return self


# --- traffic clock --------------------------------------------------------------------------

HourlyPreset = Literal["consumer-evening", "work-edu", "flat"]
WeekdayPreset = Literal["consumer", "work-edu", "flat"]
MonthlyPreset = Literal["work-edu", "flat"]


class TimeZoneShare(Strict):
    utc_offset: Annotated[str, Field(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$", description="like -05:00")]
    weight: Weight

    @property
    def offset_minutes(self) -> int:
        """`utc_offset` in minutes: '-05:30' -> -330 (the pattern guarantees the form)."""
        sign = -1 if self.utc_offset[0] == "-" else 1
        return sign * (int(self.utc_offset[1:3]) * 60 + int(self.utc_offset[4:6]))


class Clock(Strict):
    """When sessions happen: a time range shaped by hourly and weekday weights in viewer local time."""

    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)
    days: Annotated[float, Field(gt=0, le=MAX_DAYS)] = 7
    sessions_per_day: Annotated[float, Field(gt=0, le=MAX_SESSIONS_PER_DAY)] = Field(
        20000, description="player loads per day at the mean of the curves"
    )
    hourly: HourlyPreset | Annotated[list[Weight], Field(min_length=24, max_length=24)] = "work-edu"
    weekday: WeekdayPreset | Annotated[list[Weight], Field(min_length=7, max_length=7)] = "work-edu"
    monthly: MonthlyPreset | Annotated[list[Weight], Field(min_length=12, max_length=12)] = Field(
        "flat", description="seasonal multiplier per calendar month, January first (tables in sim.scenario.presets)"
    )
    timezones: list[TimeZoneShare] = Field(
        default_factory=lambda: [TimeZoneShare(utc_offset="-05:00", weight=1)], min_length=1
    )

    @model_validator(mode="after")
    def _weights(self):
        if isinstance(self.hourly, list):
            _positive_sum(self.hourly, "hourly")
        if isinstance(self.weekday, list):
            _positive_sum(self.weekday, "weekday")
        if isinstance(self.monthly, list):
            _positive_sum(self.monthly, "monthly")
        _positive_sum([t.weight for t in self.timezones], "timezones")
        return self

    @field_validator("start")
    @classmethod
    def _start(cls, start: datetime) -> datetime:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if not EARLIEST <= start < LATEST:  # later, start + days overflows the dates of a run
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, got {start:%Y-%m-%d}")
        return start


# --- viewing behaviour ----------------------------------------------------------------------


class PerDevice(Strict):
    desktop: Probability = 0.0
    mobile: Probability = 0.0
    tablet: Probability = 0.0
    ctv: Probability = 0.0


class PerDeviceRate(Strict):
    desktop: Annotated[float, Field(ge=0)] = 0.0
    mobile: Annotated[float, Field(ge=0)] = 0.0
    tablet: Annotated[float, Field(ge=0)] = 0.0
    ctv: Annotated[float, Field(ge=0)] = 0.0


class Startup(Strict):
    """Time from play request to first frame, and viewers giving up while they wait."""

    time_s: Quantity = Field(default_factory=lambda: {"dist": "lognormal", "median": 1.2, "sigma": 0.6})
    grace_s: Annotated[float, Field(ge=0)] = 2.0
    abandon_per_s: PerDeviceRate = Field(
        default_factory=lambda: PerDeviceRate(desktop=0.09, mobile=0.03, tablet=0.03, ctv=0.03),
        description="hazard of leaving per second of waiting beyond grace_s",
    )


class CompletionBucket(Strict):
    max_duration_s: PositiveFloat | None = Field(
        None, description="bucket applies to entries up to this length; omit for the last"
    )
    share: Probability


class WatchedFraction(Strict):
    """Intended watched fraction F: early bounce, completes, or a Beta-shaped middle."""

    early_bounce: Probability = 0.12
    bounce_fraction: Quantity = Field(default_factory=lambda: {"dist": "uniform", "low": 0.0, "high": 0.05})
    complete: Probability | list[CompletionBucket] = Field(
        default_factory=lambda: [
            CompletionBucket(max_duration_s=60, share=0.66),
            CompletionBucket(max_duration_s=120, share=0.56),
            CompletionBucket(max_duration_s=600, share=0.50),
            CompletionBucket(max_duration_s=1200, share=0.39),
            CompletionBucket(share=0.22),
        ]
    )
    middle: Quantity = Field(
        default_factory=lambda: {"dist": "beta", "a": 1.0, "b": 1.3},
        description="draws in [0, 1], mapped to 0.05 + 0.95 x",
    )

    @model_validator(mode="after")
    def _mixture(self):
        if isinstance(self.complete, float | int) and self.early_bounce + self.complete > 1:
            raise ValueError(f"early_bounce + complete = {self.early_bounce + self.complete} exceeds 1")
        return self


class Rebuffering(Strict):
    impaired_share: Probability = 0.30
    clean_per_min: PerMinute = 0.02
    impaired_per_min: PerMinute = 0.5
    stall_s: Quantity = Field(default_factory=lambda: {"dist": "lognormal", "median": 2.0, "sigma": 1.0})
    quit_after_stall: Probability = 0.03


class Pauses(Strict):
    per_min: PerMinute = 0.15
    length_s: Quantity = Field(default_factory=lambda: {"dist": "lognormal", "median": 8.0, "sigma": 1.2})


class Seeks(Strict):
    per_play: Annotated[Quantity, AfterValidator(at_most(100, "seeks per play"))] = Field(
        default_factory=lambda: {"dist": "poisson", "mean": 0.8}
    )
    backward_share: Probability = 0.55
    backward_s: Quantity = Field(
        default_factory=lambda: {"dist": "uniform", "low": 10, "high": 60},
        description="how far a backward seek jumps, s",
    )
    forward_fraction: Quantity = Field(
        default_factory=lambda: {"dist": "uniform", "low": 0.10, "high": 0.40},
        description="how far a forward seek jumps, as a fraction of the duration",
    )


class Speed(Strict):
    share: Probability = 0.03
    rates: Quantity = Field(
        default_factory=lambda: {"dist": "table", "values": [1.25, 1.5, 2.0], "weights": [0.3, 0.5, 0.2]}
    )


class Captions(Strict):
    share: Probability = 0.08
    languages: list[str] = Field(default_factory=lambda: ["en", "es"], min_length=1)


class Clicks(Strict):
    """Per-play probabilities of UI actions."""

    share: Probability = 0.01
    share_network: Probability = 0.5
    download: Probability = 0.005
    report: Probability = 0.001
    related: Probability = 0.02
    related_selected: Probability = 0.5
    info: Probability = 0.005


class Sound(Strict):
    muted_autoplay_share: Probability = Field(0.7, description="autoplayed sessions that start muted")
    unmute_per_min: PerMinute = 0.3


class Loop(Strict):
    """A looping player (short autoplay clips): at the end the entry starts again by itself."""

    share: Probability = Field(0.0, description="share of plays in a looping player")
    second_loop: Probability = Field(0.2, description="given a loop, the viewer watches the second pass")


class Behaviour(Strict):
    play_rate: Probability = 0.35
    autoplay: Probability = Field(0.0, description="share of loads that autoplay")
    autoplay_play_rate: Probability = 0.95
    start_failure: Probability = 0.01
    startup: Startup = Field(default_factory=Startup)
    watched_fraction: WatchedFraction = Field(default_factory=WatchedFraction)
    rebuffering: Rebuffering = Field(default_factory=Rebuffering)
    pauses: Pauses = Field(default_factory=Pauses)
    seeks: Seeks = Field(default_factory=Seeks)
    fullscreen: PerDevice = Field(default_factory=lambda: PerDevice(desktop=0.15, mobile=0.45, tablet=0.30))
    speed: Speed = Field(default_factory=Speed)
    captions: Captions = Field(default_factory=Captions)
    clicks: Clicks = Field(default_factory=Clicks)
    sound: Sound = Field(default_factory=Sound)
    flavor_switch_per_min: PerMinute = 0.2
    flavor_switch_scale: Annotated[float, Field(gt=0, le=100)] = Field(
        1.0, description="multiplies flavor_switch_per_min (a poor network switches renditions 2-4x as often)"
    )
    manual_source_share: Probability = 0.01
    replay_after_end: Probability = 0.02
    loop: Loop = Field(default_factory=Loop)
    error_mid_stream: Probability = Field(0.0, description="share of plays that hit a fatal error mid-stream")
    tab_hidden_per_min: PerMinute = 0.05


# --- ads ------------------------------------------------------------------------------------


class AdQuartiles(Strict):
    """Given an ad started: the share reaching each quartile (completion comes from the pod)."""

    first: Probability = 0.95
    mid: Probability = 0.89
    third: Probability = 0.84


class Pod(Strict):
    size: Annotated[Quantity, AfterValidator(at_most(20, "ads in a pod"))] = 1
    completion: Probability = 0.8
    quartiles: AdQuartiles | None = Field(None, description="overrides ads.quartiles for this position")


class AdLengthShare(Strict):
    max_length_s: PositiveFloat | None = Field(None, description="applies to ads up to this length; omit for the last")
    share: Probability


class Preroll(Pod):
    share: Probability = Field(1.0, description="share of play requests that get a pre-roll pod")
    abandon_per_ad: PerDeviceRate | Probability = Field(0.15, description="leave during an ad (ends the session)")
    abandon_by_ad_length: list[AdLengthShare] | None = Field(
        None,
        min_length=1,
        description="per-ad abandonment by ad length (first bucket whose max_length_s fits); replaces abandon_per_ad",
    )


class Midroll(Pod):
    at_fractions: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        None, description="cue points as fractions of duration"
    )
    at_s: list[PositiveFloat] | None = Field(None, description="cue points in seconds")
    every_s: PositiveFloat | None = Field(None, description="a break every N s of content (long entries)")
    min_duration_s: Annotated[float, Field(ge=0)] = 0
    every_s_from_duration_s: PositiveFloat | None = Field(
        None,
        description="entries at least this long use every_s, shorter ones at_fractions or at_s "
        "(the one case where every_s combines with another rule)",
    )
    break_exit: Probability = Field(0.08, description="leave at a break without resuming content")

    @model_validator(mode="after")
    def _one_rule(self):
        given = [k for k in ("at_fractions", "at_s", "every_s") if getattr(self, k) is not None]
        if self.every_s_from_duration_s is not None:
            if self.every_s is None:
                raise ValueError("every_s_from_duration_s needs every_s")
            given.remove("every_s")
        if len(given) > 1:
            raise ValueError(f"give one of at_fractions, at_s, every_s (got {', '.join(given)})")
        return self


class Postroll(Pod):
    share: Probability = 1.0


class Overlay(Strict):
    share: Probability = 0.0
    click_rate: Probability = 0.01


class Bumpers(Strict):
    pre: Probability = 0.0
    post: Probability = 0.0
    length_s: Quantity = 5
    click_rate: Probability = 0.005


class Ads(Strict):
    preroll: Preroll | None = None
    midroll: Midroll | None = None
    postroll: Postroll | None = None
    overlay: Overlay = Field(default_factory=Overlay)
    bumpers: Bumpers = Field(default_factory=Bumpers)
    length_s: Quantity = Field(default_factory=lambda: {"dist": "table", "values": [30, 15], "weights": [0.79, 0.21]})
    start_rate: Probability = Field(0.65, description="requested ads that actually start (fill x success)")
    skippable_after_s: PositiveFloat | None = None
    skip_rate: Probability = 0.0
    click_rate: PerDevice = Field(
        default_factory=lambda: PerDevice(desktop=0.003, mobile=0.004, tablet=0.004, ctv=0.0),
        description="clicks per ad impression (only started ads are clicked)",
    )
    quartiles: AdQuartiles = Field(default_factory=AdQuartiles)


# --- scripted sessions ----------------------------------------------------------------------


class WaitStep(Strict):
    wait: PositiveFloat = Field(description="play (or stay paused/idle) this many seconds")


class SeekStep(Strict):
    seek: Annotated[str, Field(pattern=r"^\d+(\.\d+)?(%|s)?$")] | float = Field(description="'80%', '120s' or seconds")


class BufferStep(Strict):
    buffer: PositiveFloat


class PauseStep(Strict):
    pause: PositiveFloat


class FullscreenStep(Strict):
    fullscreen: bool


class SpeedStep(Strict):
    speed: PositiveFloat


class ErrorStep(Strict):
    error: int = Field(description="error code")


ScriptAction = Literal[
    "load",
    "play",
    "quit",
    "replay",
    "share",
    "download",
    "report",
    "related",
    "info",
    "captions",
    "end",
    "mute",
    "unmute",
]
Step = Union[ScriptAction, WaitStep, SeekStep, BufferStep, PauseStep, FullscreenStep, SpeedStep, ErrorStep]


class ScriptedSession(Strict):
    name: str
    entry: str | None = Field(None, description="entry id from the catalog; default the first entry")
    device: DeviceName = "desktop"
    authenticated: bool = True
    startup_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    repeat: Annotated[int, Field(gt=0, le=MAX_REPEAT)] = 1
    steps: list[Step] = Field(min_length=1, max_length=10_000)


# --- the file -------------------------------------------------------------------------------


class MixItem(Strict):
    scenario: str = Field(description="path of a scenario file, relative to this file")
    weight: Weight = 1.0


class Scenario(Strict):
    """A whole audience. `extends` derives from another file; `mix` composes several.

    In a mix file, `clock.start`, `clock.days` and `clock.sessions_per_day` apply to the
    whole mix and the weights split the sessions; each component keeps its own curves,
    catalog, audience and behaviour.
    """

    name: str | None = None
    description: str | None = None
    extends: str | list[str] | None = Field(None, description="base scenario file(s); this file's keys override theirs")
    mix: list[MixItem] | None = Field(None, min_length=1, description="a weighted mix of scenario files")
    partner: Partner = Field(default_factory=Partner)
    player: Player = Field(default_factory=Player)
    catalog: Catalog = Field(default_factory=Catalog)
    audience: Audience = Field(default_factory=Audience)
    clock: Clock = Field(default_factory=Clock)
    behaviour: Behaviour = Field(default_factory=Behaviour)
    ads: Ads = Field(default_factory=Ads)
    script: list[ScriptedSession] | None = Field(None, description="explicit sessions instead of the model")

    @model_validator(mode="after")
    def _mix_weights(self):
        if self.mix is not None:
            _positive_sum([m.weight for m in self.mix], "mix")
        return self
