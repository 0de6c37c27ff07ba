"""Injected faults of the collector's test-double mode: failures, resets and slow answers.

    plan = FaultPlan(fail_rate=0.1, reset_rate=0.01, delay=parse_delay("lognormal:50:1.0"))
    plan.draw()   # -> ("fail" | "reset" | None, delay in seconds)

Delay specs (milliseconds): `50` (fixed), `fixed:50`, `uniform:LOW:HIGH`,
`exponential:MEAN`, `lognormal:MEDIAN:SIGMA`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


class FaultSpecError(ValueError):
    """A fault option that cannot be used; the message names the option and the problem."""


_DELAY_FORMS = "50, fixed:50, uniform:10:200, exponential:50 or lognormal:50:1.0"
_ARITY = {"fixed": 1, "uniform": 2, "exponential": 1, "lognormal": 2}


@dataclass(frozen=True)
class Delay:
    """A delay distribution in milliseconds."""

    kind: str = "fixed"
    a: float = 0.0
    b: float = 0.0

    def draw_ms(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        return rng.lognormvariate(math.log(self.a), self.b)

    @property
    def is_zero(self) -> bool:
        return self.kind == "fixed" and self.a == 0


def parse_delay(spec: str, option: str = "--slow-ms") -> Delay:
    """A delay distribution from its command-line spelling; FaultSpecError names what is wrong."""
    text = spec.strip()
    parts = text.split(":")
    if len(parts) == 1:
        parts = ["fixed", parts[0]]
    kind = parts[0].lower()
    if kind not in _ARITY:
        raise FaultSpecError(f"{option} {spec!r}: unknown distribution {parts[0]!r}; use {_DELAY_FORMS}")
    if len(parts) - 1 != _ARITY[kind]:
        raise FaultSpecError(
            f"{option} {spec!r}: {kind} takes {_ARITY[kind]} number(s) after the name; use {_DELAY_FORMS}"
        )
    try:
        numbers = [float(p) for p in parts[1:]]
    except ValueError:
        raise FaultSpecError(f"{option} {spec!r}: {':'.join(parts[1:])!r} is not a number") from None
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        raise FaultSpecError(f"{option} {spec!r}: milliseconds must be finite and >= 0")
    if kind == "uniform" and numbers[0] > numbers[1]:
        raise FaultSpecError(f"{option} {spec!r}: low ({numbers[0]:g}) is above high ({numbers[1]:g})")
    if kind == "lognormal" and numbers[0] <= 0:
        raise FaultSpecError(f"{option} {spec!r}: the median must be above 0")
    return Delay(kind, *numbers)


def check_rate(value: float, option: str) -> float:
    if not (0.0 <= value <= 1.0):
        raise FaultSpecError(f"{option} {value:g}: a share between 0 and 1")
    return value


@dataclass
class FaultPlan:
    """Which requests fail (503), reset (no answer) or wait, drawn independently per request."""

    fail_rate: float = 0.0
    reset_rate: float = 0.0
    delay: Delay = field(default_factory=Delay)
    seed: int | None = None

    def __post_init__(self):
        check_rate(self.fail_rate, "--fail-rate")
        check_rate(self.reset_rate, "--reset-rate")
        if self.fail_rate + self.reset_rate > 1.0:
            raise FaultSpecError("--fail-rate plus --reset-rate is above 1")
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return self.fail_rate > 0 or self.reset_rate > 0 or not self.delay.is_zero

    def draw(self) -> tuple[str | None, float]:
        """(fault or None, delay in seconds) for one request."""
        u = self._rng.random()
        fault = "reset" if u < self.reset_rate else "fail" if u < self.reset_rate + self.fail_rate else None
        delay = 0.0 if self.delay.is_zero else self.delay.draw_ms(self._rng) / 1000.0
        return fault, delay
