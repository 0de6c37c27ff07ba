"""The load options' help: sentence case like the rest of the CLI, and the README's table says
what `--help` and the web UI say."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sim.load.plan import add_arguments

ROOT = Path(__file__).resolve().parents[1]


def load_options() -> dict[str, str]:
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return {a.option_strings[0]: a.help for a in parser._actions}


def test_every_load_option_help_is_a_sentence():
    for option, text in load_options().items():
        assert text[0].isupper() and text.endswith("."), (option, text)


def test_the_readme_table_says_what_the_help_says():
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\| `(--[a-z-]+)[^`]*` \| [^|]* \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    assert {option: rows.get(option) for option in load_options()} == load_options()
