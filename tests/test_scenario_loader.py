"""Loading scenarios: the bundled files, `extends` layering, mixes and catalog CSVs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sim.scenario import presets
from sim.scenario.distributions import Lognormal
from sim.scenario.loader import Component, load
from sim.scenario.model import Clock, Scenario

ROOT = Path(__file__).parent.parent
BUNDLED = ROOT / "scenarios"
GOOD = Path(__file__).parent / "fixtures" / "scenarios"


def one(path: Path) -> Scenario:
    (component,) = load(path)
    return component.scenario


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*.yaml")), ids=lambda p: p.name)
def test_every_bundled_scenario_loads_without_problems(path):
    components = load(path)
    assert components and all(isinstance(c.scenario, Scenario) for c in components)


def test_a_single_scenario_is_one_component_named_by_its_name_key_with_weight_1():
    (component,) = load(BUNDLED / "typical-vod.yaml")
    assert (component.name, component.weight, component.path) == ("typical-vod", 1.0, BUNDLED / "typical-vod.yaml")


def test_a_file_without_a_name_is_named_after_its_file():
    (component,) = load(GOOD / "derived.yaml")
    assert component.name == "derived" and component.scenario.name == "derived"


def test_extends_overrides_only_the_keys_the_derived_file_writes():
    startup = one(GOOD / "derived.yaml").behaviour.startup
    assert startup.grace_s == 3.0  # written in derived.yaml
    assert startup.time_s == Lognormal(dist="lognormal", median=1.2, sigma=0.6)  # kept from base.yaml


def test_extends_merges_weight_tables_key_by_key():
    assert one(GOOD / "derived.yaml").audience.devices == {"desktop": 0.7, "mobile": 0.5}


def test_extends_replaces_lists_whole():
    buckets = one(GOOD / "derived.yaml").behaviour.watched_fraction.complete
    assert [(b.max_duration_s, b.share) for b in buckets] == [(None, 0.30)]


def test_later_bases_win_over_earlier_ones_and_the_file_wins_over_all():
    behaviour = one(GOOD / "layered.yaml").behaviour
    assert behaviour.play_rate == 0.5  # modifier.yaml over base.yaml
    assert behaviour.start_failure == 0.02  # layered.yaml over both


def test_name_and_description_are_not_inherited():
    scenario = one(BUNDLED / "typical-vod-poor-network.yaml")
    assert scenario.name == "typical-vod-poor-network"
    assert "poor-network modifier" in scenario.description
    assert one(GOOD / "derived.yaml").description is None


def test_the_poor_network_modifier_on_typical_vod_changes_only_what_3_4_lists():
    vod = one(BUNDLED / "typical-vod.yaml")
    poor = one(BUNDLED / "typical-vod-poor-network.yaml")
    b = poor.behaviour
    assert b.start_failure == 0.04
    assert b.startup.time_s == Lognormal(dist="lognormal", median=3.5, sigma=0.8)
    assert b.startup.abandon_per_s.desktop == b.startup.abandon_per_s.mobile == 0.06
    assert (b.rebuffering.impaired_share, b.rebuffering.clean_per_min, b.rebuffering.impaired_per_min) == (
        0.70,
        0.05,
        0.8,
    )
    assert b.rebuffering.quit_after_stall == 0.10
    assert b.error_mid_stream == 0.01
    assert poor.player.bitrate_scale == 0.5 and poor.audience.device_shift == {"mobile": 0.20}
    # everything else is typical VOD's
    assert b.play_rate == vod.behaviour.play_rate == 0.35
    assert b.watched_fraction == vod.behaviour.watched_fraction
    assert b.seeks == vod.behaviour.seeks and b.pauses == vod.behaviour.pauses
    assert poor.catalog == vod.catalog and poor.clock == vod.clock
    assert poor.audience.devices == vod.audience.devices


def test_the_poor_network_modifier_applies_to_other_scenarios_too(tmp_path):
    (tmp_path / "clip-poor.yaml").write_text(
        f"extends: [{BUNDLED / 'short-clip.yaml'}, {BUNDLED / 'poor-network.yaml'}]\n"
    )
    scenario = one(tmp_path / "clip-poor.yaml")
    assert scenario.behaviour.start_failure == 0.04
    assert scenario.catalog.duration == one(BUNDLED / "short-clip.yaml").catalog.duration


def test_short_clip_and_long_form_inherit_what_3_2_and_3_3_call_as_a():
    vod = one(BUNDLED / "typical-vod.yaml")
    clip = one(BUNDLED / "short-clip.yaml")
    long_form = one(BUNDLED / "long-form-ads.yaml")
    assert clip.behaviour.rebuffering.impaired_per_min == vod.behaviour.rebuffering.impaired_per_min == 0.5
    assert clip.behaviour.startup.abandon_per_s.desktop == 0.12
    assert long_form.behaviour.rebuffering == vod.behaviour.rebuffering
    assert long_form.audience.devices == {"desktop": 0.20, "mobile": 0.35, "tablet": 0.0, "ctv": 0.45}


def test_a_mix_gives_one_component_per_scenario_with_normalised_weights():
    components = load(BUNDLED / "default-mix.yaml")
    assert [c.name for c in components] == ["typical-vod", "short-clip", "long-form-ads"]
    assert [c.weight for c in components] == pytest.approx([0.60, 0.25, 0.15])


def test_a_mix_copies_its_clock_range_and_volume_into_every_component_but_not_curves():
    for c in load(GOOD / "outer-mix.yaml"):
        clock = c.scenario.clock
        assert (clock.start, clock.days, clock.sessions_per_day) == (datetime(2026, 12, 1, tzinfo=UTC), 3, 5000)
        assert clock.hourly == Clock().hourly


def test_nested_mixes_are_flattened_and_their_weights_multiply():
    components = load(GOOD / "outer-mix.yaml")
    assert [(c.name, c.weight) for c in components] == [
        ("base", pytest.approx(0.125)),
        ("derived", pytest.approx(0.375)),
        ("layered", pytest.approx(0.5)),
    ]


def test_a_catalog_csv_becomes_entries_read_relative_to_the_scenario():
    catalog = one(GOOD / "with-csv.yaml").catalog
    assert catalog.csv is None and catalog.count is None
    assert [(e.id, e.duration, e.live, e.name) for e in catalog.entries] == [
        ("1_aaa", 120.0, False, "Intro"),
        ("1_bbb", 3600.5, True, "Town hall, live"),
    ]


def test_a_catalog_csv_inherited_through_extends_is_read_relative_to_the_file_that_names_it():
    assert len(one(GOOD / "sub" / "extends-csv.yaml").catalog.entries) == 2


def test_load_accepts_a_string_path():
    assert isinstance(load(str(GOOD / "base.yaml"))[0], Component)


def test_scripted_regression_holds_the_reference_session_step_by_step():
    script = one(BUNDLED / "scripted-regression.yaml").script
    steps = script[0].steps
    assert steps[:3] == ["load", "play", steps[2]] and steps[2].wait == 30
    assert steps[3].seek == "80%" and steps[4].buffer == 2 and steps[5].pause == 40 and steps[-1] == "quit"


def test_long_form_ads_expresses_the_3_3_ad_rules():
    ads = one(BUNDLED / "long-form-ads.yaml").ads
    assert [(b.max_length_s, b.share) for b in ads.preroll.abandon_by_ad_length] == [(15, 0.12), (None, 0.22)]
    assert (ads.midroll.every_s, ads.midroll.every_s_from_duration_s, ads.midroll.completion) == (720, 3600, 0.96)
    assert (ads.midroll.quartiles.first, ads.postroll.completion, ads.start_rate) == (0.99, 0.45, 0.65)


def test_clock_presets_hold_the_3_5_tables_for_every_preset_name():
    assert set(presets.HOURLY) == {"consumer-evening", "work-edu", "flat"}
    assert set(presets.WEEKDAY) == {"consumer", "work-edu", "flat"}
    assert all(len(v) == 24 for v in presets.HOURLY.values())
    assert presets.HOURLY["consumer-evening"][21] == 7.56 and presets.HOURLY["work-edu"][11] == 8.63
    assert presets.WEEKDAY["consumer"][6] == 1.17 and presets.WEEKDAY["work-edu"][5] == 0.45
