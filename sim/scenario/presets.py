"""The numeric tables behind the named clock curves of a scenario (`clock.hourly`, `.weekday`, `.monthly`).

Values are exactly those of viewing-realism.md section 3.5 ([A]: constructed to match the
published peak hours of section 2.9: Cisco's 9-11 pm busy hour, the Arbor US late peak,
Conviva's PC-midday dominance and Sunday peak). Consumers normalise them; only the shape
matters.

HOURLY[name]: 24 weights, local hour 0..23 (hour h covers h:00-h:59), in percent of a day's
impressions. WEEKDAY[name]: 7 multipliers, Monday first, mean about 1.0. MONTHLY[name]:
12 seasonal multipliers, January first.
"""

from __future__ import annotations

HOURLY: dict[str, list[float]] = {
    # entertainment, long-form, short clips: peak 9 pm, trough 4 am, ratio about 8:1
    "consumer-evening": [
        4.16,
        2.65,
        1.66,
        1.13,
        0.91,
        0.98,
        1.51,
        2.27,
        2.87,
        3.40,
        3.78,
        4.16,
        4.69,
        4.69,
        4.69,
        4.92,
        5.30,
        5.67,
        6.20,
        6.81,
        7.34,
        7.56,
        6.96,
        5.67,
    ],
    # enterprise and education tenants: humps at 11 am and 2 pm, small evening study bump
    "work-edu": [
        0.69,
        0.43,
        0.26,
        0.26,
        0.26,
        0.43,
        1.04,
        2.59,
        5.18,
        7.33,
        8.20,
        8.63,
        7.77,
        8.20,
        8.63,
        8.20,
        6.90,
        5.18,
        3.88,
        3.88,
        4.31,
        3.88,
        2.59,
        1.29,
    ],
    "flat": [100 / 24] * 24,
}

WEEKDAY: dict[str, list[float]] = {
    # Sunday peak (Conviva Q1 2018); its size is [A]
    "consumer": [0.93, 0.92, 0.93, 0.95, 1.00, 1.10, 1.17],
    # weekdays dominant, Sunday-evening pre-class bump [A]
    "work-edu": [1.15, 1.15, 1.10, 1.05, 0.85, 0.45, 0.70],
    "flat": [1.0] * 7,
}

MONTHLY: dict[str, list[float]] = {
    # x0.8 in the summer months, Jun-Aug (Wistia summer dip, section 3.5 [D]); which months
    # count as summer/academic break is our reading [A]
    "work-edu": [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.8, 0.8, 1.0, 1.0, 1.0, 1.0],
    "flat": [1.0] * 12,
}
