"""Running `harness.mjs` from Python: what it needs, and one run into a folder.

reason = missing()          # None when chromium, node, ffmpeg and the npm modules are all there
run(out_dir)                # the recordings of every scripted session, written to out_dir
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "harness.mjs"
NODE_MODULES = HERE / "node_modules"
NPM_PACKAGES = ("@playkit-js/kaltura-player-js", "@playkit-js/playkit-js-kava", "playwright-core")
# Sessions run four at a time; the longest (a 36 s pause) takes about a minute, the whole run about two.
TIMEOUT_S = 900


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why the live oracle cannot run here (a tool or the npm modules), or None."""
    needs = [
        name
        for name, found in (
            ("chromium", chromium()),
            ("node", shutil.which("node")),
            ("ffmpeg", shutil.which("ffmpeg")),
        )
        if not found
    ]
    if needs:
        return f"{', '.join(needs)} not on PATH (.ci/run installs them)"
    absent = [p for p in NPM_PACKAGES if not (NODE_MODULES / p / "package.json").exists()]
    if absent:
        return f"npm modules missing in {NODE_MODULES} ({', '.join(absent)}): run `npm ci` in tests/oracle"
    return None


def run(out_dir: Path, *, only: list[str] | None = None, cache: Path | None = None) -> str:
    """Run the harness into `out_dir`; returns its summary output. Raises RuntimeError when it fails."""
    cmd = [shutil.which("node"), str(HARNESS), "--out", str(out_dir), "--chromium", chromium()]
    if only:
        cmd += ["--only", ",".join(only)]
    if cache:
        cmd += ["--cache", str(cache)]
    # its own process group, so a timeout stops the browser it started too
    proc = subprocess.Popen(
        cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise RuntimeError(f"harness did not finish in {TIMEOUT_S} s:\n{out}\n{err}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"harness failed (exit {proc.returncode}):\n{out}\n{err}")
    return out
