"""Fixtures for every test file; the helpers they use are the `helpers` package beside this file."""

from __future__ import annotations

import pytest

from helpers.collector import running_collector


@pytest.fixture
def collector(tmp_path):
    """A real collector on 127.0.0.1:<ephemeral port> with a fresh store (`collector.store`), stopped after
    the test if the test did not stop it (`collector.stop()`, then `collector.rows(sql)` reads the store)."""
    with running_collector(tmp_path / "collector.duckdb") as running:
        yield running


@pytest.fixture(scope="session")
def compiled_policies():
    """The player model and the protocols' policies compiled once, before a test starts Locust."""
    from helpers.load import compile_policies

    compile_policies()
