"""Debian's chromium, headless: the rendered DOM of a page, for the tests that check what a person sees.

    dom = dump_dom(collector.url + "/", tmp_path)

`CHROMIUM` is None on a machine without chromium; its tests skip with `SKIP_REASON`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Only a browser that is really there: on a machine without chromium the tests skip.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SKIP_REASON = "chromium not found (apt-get install -y chromium); CI installs it"


def dump_dom(url: str, profile: Path, *, budget_ms: int = 5000, timeout_s: float = 120) -> str:
    """The page's DOM after `budget_ms` of virtual time (its scripts have run), with a fresh profile
    under `profile` and no traffic of chromium's own."""
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile / 'chromium'}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    ).stdout
