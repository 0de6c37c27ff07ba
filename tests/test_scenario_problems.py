"""A bad scenario file is reported at the file, line and column where the mistake was written,
with the field path and words a scenario author understands (fixtures in fixtures/bad/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.scenario.loader import Problem, ScenarioError, load

BAD = Path(__file__).parent / "fixtures" / "bad"


def problems_of(name: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as caught:
        load(BAD / name)
    return caught.value.problems


def only_problem(name: str) -> Problem:
    problems = problems_of(name)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def where(problem: Problem) -> tuple[str, int, int, str]:
    return Path(problem.file).name, problem.line, problem.column, problem.field


def test_a_yaml_syntax_error_points_at_the_token_the_parser_choked_on():
    p = only_problem("syntax.yaml")
    assert where(p) == ("syntax.yaml", 4, 16, "")
    assert "YAML syntax error" in p.message and "flow sequence started at line 3" in p.message


def test_a_tab_in_indentation_is_named_as_such():
    p = only_problem("tab-indent.yaml")
    assert where(p) == ("tab-indent.yaml", 3, 1, "")
    assert "tab character in indentation" in p.message


def test_a_duplicate_key_points_at_the_repeat_and_names_the_first_line():
    p = only_problem("duplicate-key.yaml")
    assert where(p) == ("duplicate-key.yaml", 5, 3, "behaviour.play_rate")
    assert "duplicate key 'play_rate'" in p.message and "first written at line 3" in p.message


def test_wrong_types_say_what_was_expected_and_what_was_found():
    problems = problems_of("wrong-type.yaml")
    assert [(where(p), p.message) for p in problems] == [
        (("wrong-type.yaml", 3, 12, "audience.viewers"), "expected a whole number, got 'many'"),
        (("wrong-type.yaml", 5, 13, "behaviour.autoplay"), "expected a number, got 'sometimes'"),
        (("wrong-type.yaml", 7, 24, "player.bitrate_ladder_kbps"), "expected a list, got 3000"),
    ]


def test_an_unknown_key_points_at_the_key_and_suggests_the_closest_valid_one():
    first, second = problems_of("unknown-key.yaml")
    assert where(first) == ("unknown-key.yaml", 3, 3, "behaviour.play_rat")
    assert first.message == "unknown key 'play_rat' (did you mean 'play_rate'?)"
    assert where(second) == ("unknown-key.yaml", 5, 5, "behaviour.startup.grace")
    assert "did you mean 'grace_s'?" in second.message


def test_probabilities_outside_0_1_are_named_probabilities():
    above, below = problems_of("probability.yaml")
    assert where(above) == ("probability.yaml", 3, 14, "behaviour.play_rate")
    assert above.message == "must be a probability in [0, 1], got 1.4"
    assert where(below) == ("probability.yaml", 5, 23, "behaviour.rebuffering.quit_after_stall")
    assert below.message == "must be a probability in [0, 1], got -0.1"


def test_weights_summing_to_zero_point_at_the_weight_table():
    p = only_problem("zero-weights.yaml")
    assert where(p) == ("zero-weights.yaml", 3, 3, "audience.devices")
    assert "weights sum to 0" in p.message


def test_zero_and_negative_durations_ask_for_a_positive_number_of_seconds():
    problems = problems_of("durations.yaml")
    assert [where(p) for p in problems] == [
        ("durations.yaml", 4, 27, "catalog.entries[0].duration"),
        ("durations.yaml", 5, 27, "catalog.entries[1].duration"),
        ("durations.yaml", 8, 32, "script[0].steps[2].wait"),
    ]
    assert all("must be a positive number of seconds" in p.message for p in problems)


def test_min_greater_than_max_is_reported_on_the_distribution():
    p = only_problem("min-max.yaml")
    assert where(p) == ("min-max.yaml", 3, 13, "catalog.duration")
    assert p.message == "min (3600.0) is greater than max (30.0)"


def test_an_unknown_distribution_name_suggests_the_closest_and_lists_all():
    p = only_problem("unknown-dist.yaml")
    assert where(p) == ("unknown-dist.yaml", 4, 20, "behaviour.startup.time_s.dist")
    assert "unknown distribution 'lognorm' (did you mean 'lognormal'?)" in p.message
    assert "expected one of fixed, uniform, normal, lognormal" in p.message


def test_extends_naming_a_missing_file_points_at_the_reference():
    p = only_problem("missing-base.yaml")
    assert where(p) == ("missing-base.yaml", 2, 11, "extends[0]")
    assert "extends file 'no-such-base.yaml' not found" in p.message


def test_a_mix_item_naming_a_missing_file_points_at_the_reference():
    p = only_problem("mix-missing.yaml")
    assert where(p) == ("mix-missing.yaml", 4, 16, "mix[1].scenario")
    assert "mix file 'no-such-scenario.yaml' not found" in p.message


def test_circular_extends_shows_the_whole_chain():
    p = only_problem("circular-a.yaml")
    assert where(p) == ("circular-b.yaml", 2, 10, "extends")
    assert p.message == "circular extends: circular-a.yaml -> circular-b.yaml -> circular-a.yaml"


def test_a_mix_listing_itself_is_circular():
    p = only_problem("mix-circular.yaml")
    assert where(p) == ("mix-circular.yaml", 3, 16, "mix[0].scenario")
    assert p.message.startswith("circular mix:")


def test_an_empty_file_asks_for_a_mapping():
    p = only_problem("empty.yaml")
    assert where(p) == ("empty.yaml", 1, 1, "")
    assert "file is empty" in p.message


def test_a_missing_file_is_reported_without_a_line():
    with pytest.raises(ScenarioError) as caught:
        load(BAD / "no-such-file.yaml")
    (p,) = caught.value.problems
    assert (p.line, p.column, p.message) == (0, 0, "file not found")
    assert str(p) == f"{BAD / 'no-such-file.yaml'}: file not found"


def test_a_missing_catalog_csv_points_at_the_csv_key():
    p = only_problem("csv-missing.yaml")
    assert where(p) == ("csv-missing.yaml", 3, 8, "catalog.csv")
    assert "catalog file 'no-such-catalog.csv' not found" in p.message


def test_a_malformed_catalog_csv_names_the_row_and_column_of_each_bad_cell():
    bad_duration, bad_live = problems_of("csv-malformed.yaml")
    assert where(bad_duration) == ("catalog-malformed.csv", 3, 7, "catalog.csv")
    assert bad_duration.message == "row 3, column 'duration': expected a positive number of seconds, got 'twelve'"
    assert where(bad_live) == ("catalog-malformed.csv", 4, 11, "catalog.csv")
    assert "row 4, column 'live': expected true or false, got 'maybe'" == bad_live.message


def test_a_missing_required_key_points_at_the_mapping_that_lacks_it():
    p = only_problem("missing-required.yaml")
    assert where(p) == ("missing-required.yaml", 3, 5, "script[0].name")
    assert p.message == "missing required key 'name'"


def test_every_problem_of_a_file_is_reported_not_just_the_first():
    problems = problems_of("many-problems.yaml")
    assert [p.field for p in problems] == [
        "behaviour.play_rate",
        "behaviour.pauses.per_minute",
        "clock.hourly",
        "script[0].name",
    ]
    assert "did you mean 'consumer-evening'?" in problems[2].message


def test_a_mistake_in_a_base_file_is_located_in_the_base_file():
    p = only_problem("derived-of-bad-base.yaml")
    assert where(p) == ("base-with-error.yaml", 4, 18, "behaviour.start_failure")


def test_a_mix_file_refuses_scenario_keys_and_curve_settings():
    extra_key, curve = problems_of("mix-extra-key.yaml")
    assert where(extra_key) == ("mix-extra-key.yaml", 4, 1, "behaviour")
    assert "not allowed in a mix file" in extra_key.message
    assert where(curve) == ("mix-extra-key.yaml", 8, 3, "clock.hourly")
    assert "belongs in the component scenarios" in curve.message


def test_mix_weights_summing_to_zero_are_refused():
    p = only_problem("mix-zero-weights.yaml")
    assert where(p) == ("mix-zero-weights.yaml", 2, 1, "mix")
    assert "weights sum to 0" in p.message


def test_extending_a_mix_is_refused():
    p = only_problem("extends-mix.yaml")
    assert where(p) == ("extends-mix.yaml", 2, 10, "extends")
    assert "it is a mix" in p.message


def test_a_problem_prints_as_file_line_column_field_message():
    p = Problem("scenarios/x.yaml", 12, 5, "behaviour.play_rate", "must be a probability in [0, 1], got 1.4")
    assert str(p) == "scenarios/x.yaml:12:5: behaviour.play_rate: must be a probability in [0, 1], got 1.4"


def test_scenario_error_prints_one_line_per_problem():
    error = ScenarioError([Problem("a.yaml", 1, 2, "name", "x"), Problem("a.yaml", 3, 4, "", "y")])
    assert str(error).splitlines() == ["a.yaml:1:2: name: x", "a.yaml:3:4: y"]


def test_a_key_merged_in_with_an_anchor_is_located_where_the_anchor_wrote_it():
    problems = problems_of("merge-key.yaml")
    assert [where(p) for p in problems] == [
        ("merge-key.yaml", 4, 5, "behaviour.pauses.grace_s"),
        ("merge-key.yaml", 4, 14, "behaviour.startup.grace_s"),
    ]
