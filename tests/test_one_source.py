"""Each fact of player-sim in one place: the protocol registry and the --protocol choice, event ids and
names, the warehouse-dropped types, atomic writes, the ledger line, the live page's files, the declared
dependencies."""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from helpers import ROOT
from sim.protocols import registry
from sim.protocols.choice import CHOICES, DEFAULT_CHOICE, NAMES, UnknownProtocol, check_choice, sent
from sim.protocols.event_types import EVENT_IDS, EVENT_NAMES, LEGACY_DWH_DROPPED, event_label

SIM = ROOT / "sim"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _sources():
    return sorted(SIM.rglob("*.py"))


# -- the protocol registry -----------------------------------------------------------------------------


def test_every_registered_protocol_has_a_codec_and_a_policy_of_the_declared_interfaces():
    assert tuple(registry.PROTOCOLS) == NAMES
    for name, spec in registry.PROTOCOLS.items():
        assert spec.name == name
        assert isinstance(spec.codec, registry.Codec), name
        assert isinstance(spec.policy, registry.Policy), name
        assert spec.encodings and all(isinstance(e, str) for e in spec.encodings)


def test_an_unknown_protocol_is_refused_with_the_known_ones_named():
    with pytest.raises(UnknownProtocol, match=r"unknown protocol 'kafka' \(known: legacy, kava\)"):
        registry.protocol("kafka")
    with pytest.raises(ValueError, match=r"unknown protocol 'both ' \(choose from legacy, kava, both\)"):
        check_choice("both ")
    assert sent("both") == ("legacy", "kava") and sent("kava") == ("kava",)


def test_both_sends_legacy_then_kava_and_one_protocol_sends_itself():
    assert [name for name, _ in registry.choice_policies("both")] == ["legacy", "kava"]
    assert [name for name, _ in registry.choice_policies("legacy")] == ["legacy"]


# The CLI imports the module of the command being run, by its name from a fixed tuple (start-up time);
# no protocol is looked up there.
COMMAND_LOADER = {Path("sim/cli/__init__.py")}


def test_no_module_looks_a_protocol_up_by_a_string_import_or_checks_a_codec_with_hasattr():
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if ("import_module(" in line or "__import__(" in line or re.search(r"hasattr\(codec", line))
        and p.relative_to(ROOT) not in COMMAND_LOADER
    ]
    assert found == []


def test_every_protocol_option_offers_the_same_choices_and_defaults_to_the_one_default():
    from sim.cli import demo, generate
    from sim.load.plan import add_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    load = next(a for a in parser._actions if "--protocol" in a.option_strings)
    assert (tuple(load.choices), load.default) == (CHOICES, DEFAULT_CHOICE)
    for module, enum in ((generate, generate.ProtocolChoice), (demo, demo.DemoProtocol)):
        assert tuple(c.value for c in enum) == CHOICES
        assert module.DEFAULT_PROTOCOL.value == DEFAULT_CHOICE


def test_the_readme_says_the_default_protocol():
    readme = (ROOT / "README.md").read_text()
    assert f"The default is `{DEFAULT_CHOICE}` everywhere" in readme
    assert f"| `--protocol legacy\\|kava\\|both` | {DEFAULT_CHOICE} |" in readme


# -- event ids and names -------------------------------------------------------------------------------


def test_ids_by_name_invert_the_names_and_labels_put_the_name_beside_the_id():
    for protocol, names in EVENT_NAMES.items():
        assert {code: name for name, code in EVENT_IDS[protocol].items()} == names
    assert event_label("legacy", 3) == "3 PLAY" and event_label("kava", "99") == "99 VIEW"
    assert event_label("kava", 77) == "77" and event_label(None, None) == "?"


def test_the_collector_flags_exactly_the_types_the_warehouse_drops():
    from sim.collector.kaltura_api import legacy_flags

    flagged = {
        t
        for t in EVENT_NAMES["legacy"]
        if "event_type_dropped_by_dwh" in legacy_flags({"eventType": t, "partnerId": 1, "entryId": "0_x"})
    }
    assert (
        flagged
        == set(LEGACY_DWH_DROPPED)
        == {EVENT_IDS["legacy"][n] for n in ("WIDGET_LOADED", "BUFFER_START", "BUFFER_END")}
    )


def test_the_metrics_count_the_events_the_fact_sheet_names():
    from sim.metrics.compute import KAVA, LEGACY, LEGACY_AD_STARTS

    assert (KAVA["view"], KAVA["ad_click"], LEGACY["load"], LEGACY["q100"]) == (99, 9009, 2, 7)
    assert LEGACY_AD_STARTS == (24, 25, 26, 27)


# -- atomic writes ---------------------------------------------------------------------------------------


def test_an_atomic_file_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    from sim.atomic import atomic_file, write_atomic

    target = tmp_path / "out.txt"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as fh:
        fh.write(b"half")
        raise RuntimeError("stopped")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.txt"]


def test_a_shared_atomic_file_is_readable_as_the_umask_allows(tmp_path):
    from sim.atomic import atomic_file

    with atomic_file(tmp_path / "r.html", "w", shared=True) as fh:
        fh.write("page")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_finished_folder_replaces_the_old_one(tmp_path):
    from sim.atomic import replace_path

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_bytes(b"old")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "part-0.parquet").write_bytes(b"new")
    replace_path(tmp_path / "new", tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(tmp_path / "out") == ["part-0.parquet"]


# -- the ledger line -------------------------------------------------------------------------------------


def test_request_files_and_live_ledgers_write_the_same_line():
    from sim.sinks import REQUESTS_SCHEMA
    from sim.tables.ledger import LINE_FIELDS, OPTIONAL_FIELDS, ledger_line

    assert tuple(REQUESTS_SCHEMA.names) == (*LINE_FIELDS, "preflight")
    line = ledger_line(1.5, "GET", "/u", {}, None, "kava", "k", run="r", seq=4, attempts=2, error="timeout")
    assert tuple(line)[: len(LINE_FIELDS)] == LINE_FIELDS
    assert set(line) - set(LINE_FIELDS) <= set(OPTIONAL_FIELDS) and line["failed"] is True
    assert tuple(ledger_line(1.5, "GET", "/u", {}, None, "kava", "k")) == LINE_FIELDS


# -- the live page as package data -----------------------------------------------------------------------


def test_the_live_page_files_are_package_data_and_make_one_page():
    from sim.collector.live import PAGE_HTML

    page_dir = SIM / "collector" / "page"
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["sim.collector"]
    shipped = {p.name for g in globs for p in (SIM / "collector").glob(g)}
    assert shipped == {p.name for p in page_dir.iterdir() if p.is_file()} == {"live.html", "live.js"}
    assert (page_dir / "live.js").read_bytes() in PAGE_HTML
    assert b"/*LIVE*/" not in PAGE_HTML and b"/*PLOTLY*/" not in PAGE_HTML


# -- declared dependencies -------------------------------------------------------------------------------


def test_every_third_party_module_sim_imports_is_a_declared_dependency():
    declared = {
        re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower().replace("_", "-")
        for d in PYPROJECT["project"]["dependencies"]
    }
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        declared |= {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in extra}
    dists = packages_distributions()
    missing = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "sim":
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not owners & declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert missing == set()
