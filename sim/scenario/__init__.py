"""Scenario files: YAML loading with located errors, the scenario model and its validation, presets."""
