"""The population: Kaltura-like catalogs, device-consistent user agents, per-country IPs, user ids."""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import pytest

from sim.geo import geo_table
from sim.player.timeline import Device
from sim.population import PopulationError, build_population, device_mix, person_names
from sim.scenario.loader import Component
from sim.scenario.model import Scenario


@pytest.fixture(scope="module")
def population():
    return build_population([Scenario()], seed=7)


def test_the_same_seed_gives_the_same_pools_and_catalog():
    a, b = build_population([Scenario()], seed=3), build_population([Scenario()], seed=3)
    for name in ("user_agents", "ips", "user_ids", "referrers"):
        assert list(getattr(a.pools, name)) == list(getattr(b.pools, name))
    assert list(a.catalog.entry_ids) == list(b.catalog.entry_ids)
    np.testing.assert_array_equal(a.catalog.durations, b.catalog.durations)
    np.testing.assert_array_equal(a.viewers.user_agent, b.viewers.user_agent)


@pytest.mark.parametrize("seed", [0, 7])
def test_person_names_are_what_fakers_own_calls_give(seed):
    from faker import Faker

    one_by_one, at_once = Faker("en_US"), Faker("en_US")
    one_by_one.seed_instance(seed)
    at_once.seed_instance(seed)
    firsts = [one_by_one.first_name() for _ in range(40)]
    lasts = [one_by_one.last_name() for _ in range(60)]
    assert person_names(at_once, 40, 60) == (firsts, lasts)
    assert one_by_one.random.random() == at_once.random.random()  # and the stream goes on alike


def test_another_seed_gives_other_identities():
    a, b = build_population([Scenario()], seed=3), build_population([Scenario()], seed=4)
    assert list(a.pools.user_ids[:50]) != list(b.pools.user_ids[:50])
    assert list(a.catalog.entry_ids) != list(b.catalog.entry_ids)


def test_generated_entry_ids_look_like_kalturas_and_are_unique(population):
    ids = list(population.catalog.entry_ids)
    assert len(ids) == 200 and len(set(ids)) == 200
    assert all(re.fullmatch(r"1_[0-9a-z]{8}", i) for i in ids)


def test_catalog_durations_follow_the_clipped_distribution(population):
    d = population.catalog.durations
    assert d.min() >= 30 and d.max() <= 3600
    assert 200 < np.median(d) < 450  # lognormal median 300 s, 200 draws


def test_popularity_is_zipf_over_entries(population):
    pop = population.catalog.popularity
    assert pop.sum() == pytest.approx(1.0)
    assert pop[0] / pop[9] == pytest.approx(10.0)  # Zipf exponent 1: rank 1 vs rank 10


def test_live_share_marks_that_share_of_entries_live():
    pop = build_population([Scenario.model_validate({"catalog": {"count": 4000, "live_share": 0.25}})], seed=2)
    assert abs(pop.catalog.live.mean() - 0.25) < 0.03


def test_explicit_entries_are_used_as_given():
    sc = Scenario.model_validate(
        {"catalog": {"entries": [{"id": "0_abc", "duration": 61.5, "live": True}, {"id": "0_def", "duration": 10}]}}
    )
    pop = build_population([sc], seed=1)
    assert list(pop.catalog.entry_ids) == ["0_abc", "0_def"]
    assert pop.catalog.durations.tolist() == [61.5, 10.0]
    assert pop.catalog.live.tolist() == [True, False]


def _ua_rows(pop, device, os_name, browser):
    p = pop.pools
    return [
        ua
        for ua, d, o, b in zip(p.user_agents, p.ua_device, p.ua_os, p.ua_browser)
        if d == device and p.os_names[o] == os_name and p.browser_names[b] == browser
    ]


def test_desktop_chrome_on_windows_looks_like_one(population):
    rows = _ua_rows(population, Device.DESKTOP, "windows", "chrome")
    assert rows
    for ua in rows:
        assert "Windows NT 10.0" in ua and re.search(r"Chrome/\d+", ua) and "Mobile" not in ua and "Edg/" not in ua


def test_iphone_safari_looks_like_one(population):
    rows = _ua_rows(population, Device.MOBILE, "ios", "safari")
    assert rows
    for ua in rows:
        assert "iPhone; CPU iPhone OS" in ua and "Version/" in ua and "Mobile/" in ua and "Safari/" in ua


def test_smart_tvs_look_like_smart_tvs():
    sc = Scenario.model_validate({"audience": {"devices": {"ctv": 1.0}}})
    pop = build_population([sc], seed=2)
    assert set(pop.pools.ua_device.tolist()) == {int(Device.CTV)}
    for ua in pop.pools.user_agents:
        assert any(mark in ua for mark in ("SMART-TV", "Web0S", "BRAVIA")), ua


def test_no_user_agent_claims_safari_off_apple_platforms(population):
    p = population.pools
    for o, b in zip(p.ua_os, p.ua_browser):
        if p.browser_names[b] == "safari":
            assert p.os_names[o] in ("ios", "macos")


def test_ips_are_public_and_geolocate_to_their_viewers_country(population):
    p = population.pools
    assert len(p.ips) == 20_000  # one per viewer
    for ip in p.ips[:3000]:
        assert ipaddress.ip_address(ip).is_global, ip
    located = geo_table().countries(list(p.ips)).to_pylist()
    assert located == [p.country_codes[c] for c in p.ip_country]


def test_a_country_the_geolocation_database_lacks_is_a_clear_error():
    sc = Scenario.model_validate({"audience": {"viewers": 10, "countries": {"US": 0.999, "XQ": 0.001}}})
    with pytest.raises(PopulationError, match="audience.countries: 'XQ' has no networks"):
        build_population([sc], seed=1)


def test_country_mix_follows_the_audience(population):
    p = population.pools
    share_us = np.mean(np.array(p.country_codes)[p.ip_country] == "US")
    assert abs(share_us - 0.45) < 0.015


def test_authenticated_share_of_viewers_have_user_ids_and_the_rest_are_anonymous(population):
    v = population.viewers
    assert abs(np.mean(v.user_id >= 0) - 0.85) < 0.01
    ids = population.pools.user_ids[v.user_id[v.user_id >= 0]]
    assert len(set(ids)) == len(ids)


def test_lms_tenants_get_student_numbers_and_sites_get_emails():
    lms = build_population(
        [
            Scenario.model_validate(
                {"audience": {"viewers": 300, "referrers": ["https://canvas.example.edu/courses/{n}"]}}
            )
        ],
        1,
    )
    site = build_population(
        [Scenario.model_validate({"audience": {"viewers": 300, "referrers": ["https://www.example.com/watch/{n}"]}})], 1
    )
    assert sum(bool(re.fullmatch(r"s\d{7}", u)) for u in lms.pools.user_ids) > len(lms.pools.user_ids) / 2
    assert all(re.fullmatch(r"[a-z'\-]+\.[a-z'\-]+\d*@[a-z0-9.\-]+", u) for u in site.pools.user_ids)


def test_referrers_are_the_audience_templates_with_page_numbers():
    sc = Scenario.model_validate({"audience": {"referrers": ["https://a.example/p/{n}"], "pages_per_referrer": 3}})
    assert list(build_population([sc], 1).pools.referrers) == [f"https://a.example/p/{n}" for n in (1, 2, 3)]


def test_device_shift_moves_share_points_to_a_device():
    aud = Scenario.model_validate(
        {"audience": {"devices": {"desktop": 0.7, "mobile": 0.3}, "device_shift": {"mobile": 0.2}}}
    ).audience
    assert device_mix(aud) == pytest.approx({"desktop": 0.5, "mobile": 0.5})


def test_viewers_are_split_across_time_zones_by_weight():
    sc = Scenario.model_validate(
        {"clock": {"timezones": [{"utc_offset": "-08:00", "weight": 1}, {"utc_offset": "+01:00", "weight": 3}]}}
    )
    pop = build_population([sc], 1)
    assert abs(np.mean(pop.viewers.tz_offset_min == 60) - 0.75) < 0.001


def test_a_mix_concatenates_components_with_global_indices():
    vod = Component("vod", Scenario.model_validate({"catalog": {"count": 10}, "audience": {"viewers": 100}}), 0.6)
    clips = Component("clips", Scenario.model_validate({"catalog": {"count": 5}, "audience": {"viewers": 50}}), 0.4)
    pop = build_population([vod, clips], seed=1)
    assert len(pop.catalog.entry_ids) == 15 and len(set(pop.catalog.entry_ids)) == 15
    assert pop.components[1].entries == range(10, 15)
    assert pop.components[1].viewers == range(100, 150)
    assert pop.catalog.popularity[:10].sum() == pytest.approx(0.6)
    assert pop.catalog.popularity.sum() == pytest.approx(1.0)
