"""Drawing from compiled distributions: the sampler the population and the player model share.

`compile_dist` (sim.scenario.distributions) turns a spec into a row of numbers; `draw` reads
such a row inside numba kernels, `draw_many` draws from a spec in Python::

    durations = draw_many({"dist": "lognormal", "median": 300, "sigma": 1.0}, 1000, rng)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.scenario.distributions import KIND, compile_dist

K_FIXED, K_UNIFORM, K_NORMAL, K_LOGNORMAL, K_EXPONENTIAL, K_BETA, K_WEIBULL, K_POISSON, K_TABLE = (
    KIND[n] for n in ("fixed", "uniform", "normal", "lognormal", "exponential", "beta", "weibull", "poisson", "table")
)


@njit(cache=True, inline="always")
def draw(rng, dists, k, tables):
    """One draw from row k of the compiled distributions `dists` (see sim.scenario.distributions),
    clipped. The row is read in place, not through a row view, which numba reference-counts."""
    kind = int(dists[k, 0])
    if kind == K_FIXED:
        x = dists[k, 1]
    elif kind == K_UNIFORM:
        x = dists[k, 1] + (dists[k, 2] - dists[k, 1]) * rng.random()
    elif kind == K_NORMAL:
        x = rng.normal(dists[k, 1], dists[k, 2])
    elif kind == K_LOGNORMAL:
        x = np.exp(dists[k, 1] + dists[k, 2] * rng.standard_normal())
    elif kind == K_EXPONENTIAL:
        x = rng.exponential(dists[k, 1])
    elif kind == K_BETA:
        x = rng.beta(dists[k, 1], dists[k, 2])
    elif kind == K_WEIBULL:
        x = dists[k, 2] * rng.weibull(dists[k, 1])
    elif kind == K_POISSON:
        x = float(rng.poisson(dists[k, 1]))
    else:
        start, n = int(dists[k, 5]), int(dists[k, 6])
        u = rng.random()
        j = 0
        while j < n - 1 and tables[start + n + j] < u:
            j += 1
        x = tables[start + j]
    return min(max(x, dists[k, 3]), dists[k, 4])


@njit(cache=True)
def _draw_n(rng, dists, tables, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = draw(rng, dists, 0, tables)
    return out


def draw_many(dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` draws of a scenario distribution spec (a number or a Dist model)."""
    tables: list[float] = []
    row = compile_dist(dist, tables)
    return _draw_n(rng, np.asarray(row, float).reshape(1, -1), np.asarray(tables + [0.0], float), n)
