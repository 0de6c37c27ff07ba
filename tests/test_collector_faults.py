"""The collector's test-double mode: injected failures, resets, delays and viewEventsEnabled:false,
each recorded as what it was; and the parsing of the delay spec."""

from __future__ import annotations

import time

import pytest
import requests

from helpers.collector import running_collector
from sim.collector.faults import FaultPlan, FaultSpecError, parse_delay

BEACON = (
    "/api_v3/index.php?service=stats&action=collect&format=1&event:eventType=3&event:partnerId=1"
    "&event:entryId=0_x&event:sessionId=s{i}"
)
KAVA = "/api_v3/index.php?service=analytics&action=trackEvent&eventType=1&partnerId=1&entryId=1_x&sessionId=a:b"


def test_fail_rate_1_answers_503_and_records_the_requests_as_faulted(tmp_path):
    with running_collector(tmp_path / "s.duckdb", "--fail-rate", "1") as collector:
        answers = [requests.get(collector.url + BEACON.format(i=i), timeout=10) for i in range(3)]
        assert collector.stop() == 0
        rows = collector.rows()
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert [(r["accepted"], r["fault"], r["status"]) for r in rows] == [(False, "fail", 503)] * 3
    assert sorted(r["sessionId"] for r in rows) == ["s0", "s1", "s2"]  # still decoded, for reconciliation


def test_reset_rate_1_closes_the_connection_without_an_answer(tmp_path):
    with running_collector(tmp_path / "s.duckdb", "--reset-rate", "1") as collector:
        with pytest.raises(requests.exceptions.RequestException):
            requests.get(collector.url + BEACON.format(i=0), timeout=10)
        assert collector.stop() == 0
        rows = collector.rows()
    assert [(r["accepted"], r["fault"], r["error_code"]) for r in rows] == [(False, "reset", "SIMULATED_RESET")]


def test_slow_ms_delays_the_answer_and_view_events_enabled_false_reaches_kava(tmp_path):
    with running_collector(tmp_path / "s.duckdb", "--slow-ms", "300", "--view-events-enabled", "false") as collector:
        started = time.perf_counter()
        answer = requests.get(collector.url + KAVA, timeout=10)
        waited = time.perf_counter() - started
        collector.stop()
    assert answer.json()["viewEventsEnabled"] is False
    assert waited >= 0.3


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("50", ("fixed", 50.0, 0.0)),
        ("uniform:10:200", ("uniform", 10.0, 200.0)),
        ("exponential:50", ("exponential", 50.0, 0.0)),
        ("lognormal:50:1.0", ("lognormal", 50.0, 1.0)),
    ],
)
def test_delay_specs_parse(spec, expected):
    delay = parse_delay(spec)
    assert (delay.kind, delay.a, delay.b) == expected


@pytest.mark.parametrize(
    "spec, complaint",
    [
        ("lognormal:50", "lognormal takes 2 number(s)"),
        ("gamma:1:2", "unknown distribution 'gamma'"),
        ("uniform:200:10", "low (200) is above high (10)"),
        ("-5", "finite and >= 0"),
        ("fast", "is not a number"),
    ],
)
def test_bad_delay_specs_say_what_is_wrong(spec, complaint):
    with pytest.raises(FaultSpecError, match="--slow-ms") as raised:
        parse_delay(spec)
    assert complaint in str(raised.value)


def test_a_lognormal_delay_has_the_median_it_was_given():
    plan = FaultPlan(delay=parse_delay("lognormal:50:1.0"), seed=7)
    draws = sorted(plan.draw()[1] for _ in range(2001))
    assert 0.045 < draws[1000] < 0.055


def test_fail_and_reset_shares_follow_their_rates():
    plan = FaultPlan(fail_rate=0.2, reset_rate=0.1, seed=3)
    faults = [plan.draw()[0] for _ in range(10_000)]
    assert 0.18 < faults.count("fail") / 10_000 < 0.22
    assert 0.08 < faults.count("reset") / 10_000 < 0.12
