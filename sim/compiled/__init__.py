"""Compiled copies of the collector's request path (Cython), used only while they match their source.

    python -m sim.compiled build     # (re)compile what changed; `make` runs it before `run` and `test`
    python -m sim.compiled status    # which modules would load compiled, and why not

Every beacon the collector answers runs the same few modules (the codecs, the request dispatch, the
row's columns, the worker's glue). Compiled by Cython from their unchanged source they ran
`Collector.handle` in 15 us instead of 21; nothing else in player-sim is compiled this way (the
player model and beacon policies are numba kernels already).

The compiled files live in the interpreter's prefix (the venv), beside a manifest of the SHA-256 of
the source each was built from. `install()`, called when `sim` is imported, puts an import hook
first on `sys.meta_path` that loads a compiled module only when the `.py` that would otherwise be
imported has that digest: an edited source is imported as Python at once, never a stale build.
`PLAYER_SIM_PURE_PYTHON=1` turns the hook off (a profiler that reads Python frames, a comparison).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

# The modules every beacon request runs through, in the order a request meets them
MODULES = (
    "sim.collector.http1",
    "sim.collector.app",
    "sim.protocols.dispatch",
    "sim.protocols.urlencoding",
    "sim.protocols.beacons",
    "sim.protocols.legacy.codec",
    "sim.protocols.kava.codec",
    "sim.collector.kaltura_api",
    "sim.collector.store",
    "sim.collector.link",
    "sim.collector.metrics",
)
PURE_ENV = "PLAYER_SIM_PURE_PYTHON"
DIR_ENV = "PLAYER_SIM_COMPILED_DIR"  # where the compiled files are (default: in the interpreter's prefix)
MANIFEST = "manifest.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder holding `sim/`


def compiled_dir() -> Path:
    """This interpreter's folder of compiled modules (a build is for one interpreter and its ABI)."""
    configured = os.environ.get(DIR_ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "player-sim-compiled" / sys.implementation.cache_tag


def source_digest(path: str | os.PathLike) -> str:
    """What a build is matched on: the SHA-256 of the module's source file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest(folder: Path) -> dict[str, dict]:
    """{module: {"file": compiled file name, "source_sha256": ...}}; empty when there is no build."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds a compiled module in place of its source when the source is the one it was built from."""

    def __init__(self, folder: Path, manifest: dict[str, dict]):
        self.folder = folder
        self.manifest = manifest

    def find_spec(self, fullname, path, target=None):
        entry = self.manifest.get(fullname)
        if entry is None:
            return None
        source = importlib.machinery.PathFinder.find_spec(fullname, path)
        if source is None or not source.origin or not source.origin.endswith(".py"):
            return None
        compiled = self.folder / entry.get("file", "")
        try:
            if source_digest(source.origin) != entry.get("source_sha256") or not compiled.is_file():
                return None  # edited since the build (or the build is gone): the source, as Python
        except OSError:
            return None
        return importlib.util.spec_from_file_location(fullname, compiled)


def turned_off() -> bool:
    """Whether PLAYER_SIM_PURE_PYTHON asks for the request path as Python."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def install() -> CompiledFinder | None:
    """Put the hook first on the import path, unless turned off or nothing is built."""
    if turned_off():
        return None
    folder = compiled_dir()
    manifest = read_manifest(folder)
    if not manifest:
        return None
    for finder in sys.meta_path:
        if isinstance(finder, CompiledFinder):
            return finder
    finder = CompiledFinder(folder, manifest)
    sys.meta_path.insert(0, finder)
    return finder


def source_path(module: str) -> Path:
    return PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def stale_modules(folder: Path) -> list[str]:
    """The modules whose build is missing or was made from another source."""
    manifest = read_manifest(folder)
    out = []
    for name in MODULES:
        entry = manifest.get(name, {})
        fresh = (folder / entry.get("file", "-")).is_file() and entry.get("source_sha256") == source_digest(
            source_path(name)
        )
        if not fresh:
            out.append(name)
    return out


def build(folder: Path | None = None) -> list[str]:
    """Compile every module of MODULES whose build is missing or stale; the names compiled."""
    folder = folder or compiled_dir()
    todo = stale_modules(folder)
    if not todo:
        return []
    import shutil
    import tempfile

    from Cython.Build import cythonize  # the `compiled` extra
    from setuptools import Distribution

    from sim.atomic import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    digests = {name: source_digest(source_path(name)) for name in todo}
    with tempfile.TemporaryDirectory(prefix="player-sim-cython-") as scratch:
        # the C files go to the scratch folder, not beside the sources; module names come from
        # the package folders (`sim/.../__init__.py`), so each is compiled under its full name
        extensions = cythonize(
            [str(source_path(name)) for name in todo],
            build_dir=os.path.join(scratch, "c"),
            compiler_directives={"language_level": 3},
            quiet=True,
        )
        for extension in extensions:  # the C is Cython's: its warnings say nothing about player-sim
            extension.extra_compile_args.append("-w")
        dist = Distribution({"ext_modules": extensions, "script_name": "sim.compiled"})
        command = dist.get_command_obj("build_ext")
        command.build_lib = os.path.join(scratch, "lib")
        command.build_temp = os.path.join(scratch, "tmp")
        command.parallel = os.cpu_count() or 1
        dist.verbose = 0
        command.ensure_finalized()
        command.run()
        manifest = read_manifest(folder)
        for name in todo:
            built = Path(command.get_ext_fullpath(name))
            target = folder / (name + built.name[built.name.index(".") :])  # two modules are named codec
            shutil.copyfile(built, f"{target}.tmp")
            os.replace(f"{target}.tmp", target)  # a running process keeps the file it mapped
            manifest[name] = {"file": target.name, "source_sha256": digests[name]}
        write_atomic(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode(), shared=True)
    print(f"player-sim: compiled {len(todo)} module(s) into {folder}")
    return todo
