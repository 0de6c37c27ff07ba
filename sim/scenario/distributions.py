"""Distribution specs of the scenario language: `3`, or `{dist: lognormal, median: 1.2, sigma: 0.6}`.

Every behavioural quantity in a scenario is a distribution. A bare number means `fixed`.
`min`/`max` clip any distribution (the value is clamped, not redrawn). Distributions are
compiled to rows of numbers (`compile_dist`) so the player model can draw from them in
compiled code without Python objects on the per-session path.

Every quantity of a scenario (seconds, counts, rates, fractions) is 0 or more: `Quantity` refuses
a distribution that could draw a negative value without saying `min: 0`, rather than the model
clamping it silently. Parameters are finite and bounded where an extreme value would hang a
sampler (a weibull shape of 1e-300) or overflow one (a lognormal sigma of 1000).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)
    min: float | None = Field(None, description="clip draws below this value up to it")
    max: float | None = Field(None, description="clip draws above this value down to it")

    @model_validator(mode="after")
    def _clip_order(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


# No quantity of a scenario is larger: about 115 days in seconds. Larger values overflow the clocks.
LARGEST = 1e7


class Fixed(_Dist):
    dist: Literal["fixed"]
    value: Annotated[float, Field(le=LARGEST)]


class Uniform(_Dist):
    dist: Literal["uniform"]
    low: float
    high: Annotated[float, Field(le=LARGEST)]

    @model_validator(mode="after")
    def _order(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        return self


class Normal(_Dist):
    dist: Literal["normal"]
    mean: Annotated[float, Field(le=LARGEST)]
    sd: Annotated[float, Field(gt=0, le=LARGEST)]


class Lognormal(_Dist):
    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0, le=LARGEST, description="exp(mu): half of the draws are below it")]
    sigma: Annotated[float, Field(gt=0, le=10, description="standard deviation of the log")]


class Exponential(_Dist):
    dist: Literal["exponential"]
    mean: Annotated[float, Field(gt=0, le=LARGEST)]


class Beta(_Dist):
    dist: Literal["beta"]
    a: Annotated[float, Field(ge=0.001, le=1e6)]
    b: Annotated[float, Field(ge=0.001, le=1e6)]


class Weibull(_Dist):
    dist: Literal["weibull"]
    shape: Annotated[float, Field(ge=0.05, le=100, description="below 0.05 the draws span hundreds of decades")]
    scale: Annotated[float, Field(gt=0, le=LARGEST)]


class Poisson(_Dist):
    dist: Literal["poisson"]
    mean: Annotated[float, Field(ge=0, le=10_000)]


class Table(_Dist):
    dist: Literal["table"]
    values: list[Annotated[float, Field(le=LARGEST)]] = Field(min_length=1, max_length=10_000)
    weights: list[Annotated[float, Field(ge=0)]] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _weights(self):
        if len(self.values) != len(self.weights):
            raise ValueError(f"values has {len(self.values)} items but weights has {len(self.weights)}")
        if sum(self.weights) <= 0:
            raise ValueError("weights sum to 0")
        return self


DistSpec = Annotated[
    Union[Fixed, Uniform, Normal, Lognormal, Exponential, Beta, Weibull, Poisson, Table],
    Field(discriminator="dist"),
]
# A distribution, or a bare number for a fixed value.
Dist = Union[float, DistSpec]


def _lowest(d) -> float | None:
    """The lowest value `d` can draw after clipping (None: unbounded below)."""
    if isinstance(d, (int, float)):
        return float(d)
    if d.min is not None:
        return d.min
    match d:
        case Fixed():
            return d.value
        case Uniform():
            return d.low
        case Table():
            return min(d.values)
        case Normal():
            return None
    return 0.0  # lognormal, exponential, beta, weibull, poisson draw no negative value


def _not_negative(d):
    if isinstance(d, (int, float)) and d > LARGEST:
        raise ValueError(f"must be at most {LARGEST:g}, got {d:g}")
    low = _lowest(d)
    if low is None:
        raise ValueError("a normal distribution draws negative values here; add min: 0 (or more)")
    if low < 0:
        raise ValueError(
            f"cannot be negative, got {low:g}" + ("" if isinstance(d, (int, float)) else " (the lowest value it draws)")
        )
    return d


def _highest(d) -> float | None:
    """The highest value `d` can draw after clipping (None: unbounded above)."""
    if isinstance(d, (int, float)):
        return float(d)
    if d.max is not None:
        return d.max
    match d:
        case Fixed():
            return d.value
        case Uniform():
            return d.high
        case Table():
            return max(d.values)
        case Beta():
            return 1.0
    return None


def at_most(limit: float, what: str):
    """A validator: the distribution draws no value above `limit` (a count that sizes arrays)."""

    def check(d):
        high = _highest(d)
        if high is not None and high > limit:
            raise ValueError(f"at most {limit:g} {what}, got {high:g}")
        if high is None and dist_mean(d) > limit:  # unbounded (poisson, lognormal): its mean must fit
            raise ValueError(f"at most {limit:g} {what} on average, got {dist_mean(d):g}")
        return d

    return check


# A quantity of a scenario: seconds, a count, a rate or a fraction, never below 0.
Quantity = Annotated[Dist, AfterValidator(_not_negative)]

DIST_NAMES = ("fixed", "uniform", "normal", "lognormal", "exponential", "beta", "weibull", "poisson", "table")

# Layout of a compiled distribution row (float64[DIST_ROW]): kind, p0, p1, lo, hi, table start, table length.
DIST_ROW = 7
KIND = {name: i for i, name in enumerate(DIST_NAMES)}


def compile_dist(d: Dist, tables: list[float]) -> np.ndarray:
    """One float64 row describing `d`; table values/cumulative weights are appended to `tables`.

    `tables` receives, for a table distribution, its values followed by its cumulative
    normalised weights; the row stores where they start and how many values there are.
    """
    row = np.zeros(DIST_ROW)
    row[3], row[4] = -np.inf, np.inf
    if isinstance(d, (int, float)):
        row[0], row[1] = KIND["fixed"], float(d)
        return row
    row[0] = KIND[d.dist]
    match d:
        case Fixed():
            row[1] = d.value
        case Uniform():
            row[1], row[2] = d.low, d.high
        case Normal():
            row[1], row[2] = d.mean, d.sd
        case Lognormal():
            row[1], row[2] = np.log(d.median), d.sigma
        case Exponential():
            row[1] = d.mean
        case Beta():
            row[1], row[2] = d.a, d.b
        case Weibull():
            row[1], row[2] = d.shape, d.scale
        case Poisson():
            row[1] = d.mean
        case Table():
            w = np.asarray(d.weights, float)
            row[5], row[6] = len(tables), len(d.values)
            tables.extend(d.values)
            tables.extend(np.cumsum(w / w.sum()).tolist())
    if d.min is not None:
        row[3] = d.min
    if d.max is not None:
        row[4] = d.max
    return row


def dist_mean(d: Dist) -> float:
    """Mean of a distribution before clipping (for summaries and sanity checks)."""
    if isinstance(d, (int, float)):
        return float(d)
    match d:
        case Fixed():
            return d.value
        case Uniform():
            return (d.low + d.high) / 2
        case Normal():
            return d.mean
        case Lognormal():
            return d.median * float(np.exp(d.sigma**2 / 2))
        case Exponential() | Poisson():
            return d.mean
        case Beta():
            return d.a / (d.a + d.b)
        case Weibull():
            from math import gamma

            return d.scale * gamma(1 + 1 / d.shape)
        case Table():
            w = np.asarray(d.weights, float)
            return float(np.dot(d.values, w / w.sum()))
    raise TypeError(d)
