"""From a YAML file on disk to validated scenarios: reading, `extends`, `mix`, catalog CSVs.

    >>> from sim.scenario.loader import load
    >>> [(c.name, c.weight) for c in load("scenarios/default-mix.yaml")]
    [('typical-vod', 0.6), ('short-clip', 0.25), ('long-form-ads', 0.15)]

`load(path)` returns one `Component` for a scenario file and one per scenario for a mix file,
or raises `ScenarioError` listing every problem found, each located at the file, line and
column where the offending value was written (which may be a base file reached by `extends`).

Composition rules:

- `extends: base.yaml` or `extends: [a.yaml, b.yaml]` (paths relative to the file): the
  bases are merged left to right, then the file itself on top. Mappings merge key by key
  (the later file wins); lists and scalars are replaced whole. `name`, `description` and
  `extends` are never inherited. A modifier such as `poor-network.yaml` is a partial file:
  apply it to any scenario with `extends: [typical-vod.yaml, poor-network.yaml]`, in a
  small file of its own or as the first lines of a derived scenario.
- `mix:` lists scenario files with weights; each becomes a Component whose weight is its
  share of the sessions (weights are normalised to sum to 1). A mix file may set only
  `name`, `description`, `mix` and `clock.start` / `clock.days` / `clock.sessions_per_day`;
  those clock values are copied into every component (each keeps its own curves).
  A component may itself be a mix: it is flattened, the weights multiply, and the outer
  mix's clock values win.
- `catalog.csv` is read relative to the file that wrote it and becomes `catalog.entries`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from sim.scenario.distributions import dist_mean
from sim.scenario.errors import (
    DataPath,
    Loc,
    Problem,
    ScenarioError,
    describe,
    did_you_mean,
    explain_validation,
    problem_at,
)
from sim.scenario.model import Scenario
from sim.scenario.script import ScriptError, script_actions
from sim.scenario.yamlfile import FileRefused, Unreadable, kind_of, located_plain, parse_located, read_bounded

__all__ = ["Component", "as_components", "load", "ScenarioError", "Problem"]

MIX_KEYS = ("name", "description", "clock", "mix")
MIX_CLOCK_KEYS = ("start", "days", "sessions_per_day")
NOT_INHERITED = ("name", "description", "extends")
MAX_CSV_BYTES = 64 * 1024 * 1024  # about a million catalog rows


@dataclass
class Component:
    """A scenario in a run and its share of the sessions: what `load` returns, what a run is made of."""

    name: str  # scenario name (its `name:` or the file stem)
    scenario: Scenario  # fully resolved (extends applied), validated
    weight: float = 1.0  # share of sessions in a mix (1.0 for a single scenario)
    path: Path | None = None  # the file it was loaded from (None: built in code)


def as_components(components) -> list[Component]:
    """Normalise a Scenario, a list of Scenarios or a list of Components to Components."""
    if isinstance(components, Scenario):
        components = [components]
    out = []
    for i, c in enumerate(components):
        if isinstance(c, Scenario):
            c = Component(name=c.name or f"scenario-{i}", scenario=c)
        if c.scenario.mix is not None:
            raise ValueError(
                f"{c.name}: a mix scenario must be loaded with sim.scenario.loader.load, "
                "which resolves its component files"
            )
        out.append(c)
    if not out:
        raise ValueError("no scenario components given")
    return out


def load(path: str | Path) -> list[Component]:
    """A scenario file -> [Component]; a mix file -> its components. Raises ScenarioError."""
    problems: list[Problem] = []
    file = Path(path)
    components = _load_file(file, (), problems)
    if problems:
        raise ScenarioError(problems)
    return components


# --- reading one YAML file ------------------------------------------------------------------


class _Fatal(Exception):
    """This file cannot be used at all; its problems are already recorded."""


def _read(file: Path, problems: list[Problem]) -> tuple[dict, dict[DataPath, Loc]]:
    """Parse `file` into plain data and the location of every key and value."""
    name = str(file)
    try:
        tree = parse_located(file, problems, kind="scenario file", not_found="file not found")
    except Unreadable:
        raise _Fatal from None
    if tree is None:
        problems.append(
            Problem(
                name, 1, 1, "", "file is empty; expected a mapping of scenario keys such as 'name:' and 'behaviour:'"
            )
        )
        raise _Fatal
    if not isinstance(tree, CommentedMap):
        problems.append(
            Problem(
                name,
                tree.lc.line + 1 if hasattr(tree, "lc") else 1,
                1,
                "",
                "expected a mapping of scenario keys at the top of the file, got " + kind_of(tree),
            )
        )
        raise _Fatal
    return located_plain(tree, name)


# --- extends --------------------------------------------------------------------------------


def _replaces(base: Any, over: Any) -> bool:
    """Whether `over` replaces `base` whole rather than merging into it: a distribution of another
    kind (a derived `{dist: fixed, value: 2}` over a base lognormal keeps none of its median and sigma)."""
    return not (isinstance(base, dict) and isinstance(over, dict)) or (
        "dist" in over and over.get("dist") != base.get("dist")
    )


def _merge(base: Any, over: Any) -> Any:
    if not _replaces(base, over):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return over


def _overridden(path: DataPath, base: dict, over: dict) -> bool:
    """Whether `over` rewrites the value at `path` (or replaces a list, scalar or distribution above it)."""
    node: Any = over
    below: Any = base
    for part in path:
        if _replaces(below, node):
            return True
        if part not in node:
            return False
        node, below = node[part], below.get(part)
    return True


def _merge_located(base: dict, base_locs: dict, over: dict, over_locs: dict) -> tuple[dict, dict]:
    locs = {p: loc for p, loc in base_locs.items() if p == () or not _overridden(p, base, over)}
    locs.update({p: loc for p, loc in over_locs.items() if p != ()})
    locs.setdefault((), over_locs.get(()))
    return _merge(base, over), locs


def _chain(stack: tuple[Path, ...], file: Path) -> str:
    return " -> ".join(p.name for p in stack + (file,))


def _referenced(
    path: DataPath, value: Any, file: Path, locs: dict, stack: tuple[Path, ...], problems: list[Problem], what: str
) -> Path | None:
    """Resolve a file reference written at `path`; record a problem if it is unusable."""
    name = str(file)
    if not isinstance(value, str) or not value.strip():
        problems.append(problem_at(path, locs, name, f"expected the path of a scenario file, got {value!r}"))
        return None
    target = Path(os.path.normpath(file.parent / value))  # as the author would write it, for messages
    if target.resolve() in stack or target.resolve() == file.resolve():
        problems.append(problem_at(path, locs, name, f"circular {what}: {_chain(stack, target)}"))
        return None
    if not target.is_file():
        state = "is a directory" if target.exists() else "not found"
        problems.append(problem_at(path, locs, name, f"{what} file '{value}' {state} (looked for {target})"))
        return None
    if target.suffix.lower() not in (".yaml", ".yml"):
        # never opened: `extends: /etc/shadow` must not even be read, let alone quoted
        problems.append(
            problem_at(
                path,
                locs,
                name,
                f"{what} file '{value}' is not a scenario file (a scenario file's name ends in .yaml or .yml)",
            )
        )
        return None
    return target


def _resolve(
    file: Path, stack: tuple[Path, ...], problems: list[Problem], read: tuple[dict, dict] | None = None
) -> tuple[dict, dict]:
    """The file's data with its `extends` chain merged in (raises _Fatal if unusable)."""
    data, locs = read or _read(file, problems)
    stack = stack + (file.resolve(),)
    bases = data.get("extends")
    if bases is None:
        return data, locs
    if isinstance(bases, str):
        refs = [(("extends",), bases)]
    elif isinstance(bases, list) and bases:
        refs = [(("extends", i), b) for i, b in enumerate(bases)]
    else:
        problems.append(problem_at(("extends",), locs, str(file), "expected a file path or a list of file paths"))
        raise _Fatal
    merged: dict = {}
    merged_locs: dict = {(): locs[()]}
    ok = True
    for path, value in refs:
        target = _referenced(path, value, file, locs, stack, problems, "extends")
        if target is None:
            ok = False
            continue
        try:
            base, base_locs = _resolve(target, stack, problems)
        except _Fatal:
            ok = False
            continue
        if "mix" in base:
            problems.append(
                problem_at(path, locs, str(file), f"cannot extend '{value}': it is a mix; list it in a mix instead")
            )
            ok = False
            continue
        base = {k: v for k, v in base.items() if k not in NOT_INHERITED}
        base_locs = {p: loc for p, loc in base_locs.items() if not (p and p[0] in NOT_INHERITED)}
        merged, merged_locs = _merge_located(merged, merged_locs, base, base_locs)
    if not ok:
        raise _Fatal
    own = {k: v for k, v in data.items() if k != "extends"}
    own_locs = {p: loc for p, loc in locs.items() if not (p and p[0] == "extends")}
    return _merge_located(merged, merged_locs, own, own_locs)


# --- catalog CSV ----------------------------------------------------------------------------

_TRUE = {"true", "yes", "1", "live"}
_FALSE = {"false", "no", "0", "", "vod"}


def _load_catalog_csv(data: dict, locs: dict, root_file: str, problems: list[Problem]) -> None:
    """Replace `catalog.csv` by `catalog.entries` read from the file (relative to where csv: was written)."""
    catalog = data.get("catalog")
    if not isinstance(catalog, dict) or not isinstance(catalog.get("csv"), str):
        return
    if catalog.get("entries") is not None or catalog.get("count") is not None:
        return  # the model reports "give one of count, entries, csv"
    where = locs.get(("catalog", "csv"))
    written_in = Path(where.file if where else root_file)
    csv_path = written_in.parent / catalog["csv"]
    try:
        text = read_bounded(csv_path, "catalog CSV", limit=MAX_CSV_BYTES, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            reason = "not found"
        elif isinstance(exc, FileRefused):
            reason = f"refused: {exc}"
        elif isinstance(exc, IsADirectoryError):
            reason = "is a directory"
        elif isinstance(exc, UnicodeDecodeError):
            reason = f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
        else:
            reason = f"cannot be read ({exc.strerror or type(exc).__name__})"
        problems.append(
            problem_at(
                ("catalog", "csv"),
                locs,
                root_file,
                f"catalog file '{catalog['csv']}' {reason} (looked for {csv_path.resolve()})",
            )
        )
        return
    entries, found = _parse_catalog(text, str(csv_path))
    if found:
        problems.extend(found)
        return
    catalog = dict(catalog, entries=entries)
    del catalog["csv"]
    data["catalog"] = catalog


def _parse_catalog(text: str, file: str) -> tuple[list[dict], list[Problem]]:
    problems: list[Problem] = []
    lines = text.splitlines()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        return [], [Problem(file, 1, 1, "catalog.csv", "empty CSV; expected a header line id,duration[,live,name]")]
    header = [h.strip().lower() for h in rows[0]]
    known = ("id", "duration", "live", "name")
    for col, name in enumerate(header):
        if name not in known:
            # a header cell is quoted only when it looks like a column name: never a line of some other file
            shown = f" '{name}'" if len(name) <= 32 and name.replace("_", "").replace(" ", "").isalnum() else ""
            problems.append(
                Problem(
                    file,
                    1,
                    _column_offset(lines[0], col),
                    "catalog.csv",
                    f"unknown column{shown}{did_you_mean(name, known)}; expected id,duration[,live,name]",
                )
            )
    for required in ("id", "duration"):
        if required not in header:
            problems.append(Problem(file, 1, 1, "catalog.csv", f"missing column '{required}' in the header"))
    if problems:
        return [], problems
    entries: list[dict] = []
    seen_ids: dict[str, int] = {}
    for row_index, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        raw = lines[row_index - 1] if row_index - 1 < len(lines) else ""
        if len(row) != len(header):
            problems.append(
                Problem(
                    file,
                    row_index,
                    1,
                    "catalog.csv",
                    f"row {row_index} has {len(row)} fields, expected {len(header)} ({','.join(header)})",
                )
            )
            continue
        cells = dict(zip(header, (c.strip() for c in row)))

        def bad(column: str, message: str, row_index: int = row_index, raw: str = raw) -> None:
            problems.append(
                Problem(
                    file,
                    row_index,
                    _column_offset(raw, header.index(column)),
                    "catalog.csv",
                    f"row {row_index}, column '{column}': {message}",
                )
            )

        entry: dict[str, Any] = {"id": cells["id"]}
        if not cells["id"]:
            bad("id", "empty entry id")
        elif cells["id"] in seen_ids:
            bad("id", f"entry id '{cells['id']}' repeats row {seen_ids[cells['id']]}")
        seen_ids.setdefault(cells["id"], row_index)
        try:
            duration = float(cells["duration"])
            if not duration > 0:
                raise ValueError
            entry["duration"] = duration
        except ValueError:
            bad("duration", f"expected a positive number of seconds, got '{cells['duration']}'")
        if "live" in cells:
            flag = cells["live"].lower()
            if flag in _TRUE | _FALSE:
                entry["live"] = flag in _TRUE
            else:
                bad("live", f"expected true or false, got '{cells['live']}'")
        if cells.get("name"):
            entry["name"] = cells["name"]
        entries.append(entry)
    if not entries and not problems:
        problems.append(Problem(file, 1, 1, "catalog.csv", "no entries after the header line"))
    return entries, problems


def _column_offset(line: str, field: int) -> int:
    """1-based character column where CSV field number `field` starts on `line`."""
    quoted, count = False, 0
    for pos, ch in enumerate(line):
        if count == field:
            return pos + 1
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            count += 1
    return len(line) + 1 if count == field else 1


# --- scenarios and mixes --------------------------------------------------------------------


def _validate(data: dict, locs: dict, root_file: str, problems: list[Problem]) -> Scenario | None:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems.extend(explain_validation(exc.errors(), data, locs, root_file, Scenario))
        return None


def _load_file(file: Path, stack: tuple[Path, ...], problems: list[Problem]) -> list[Component]:
    name = str(file)
    try:
        head, head_locs = _read(file, problems)
        if "mix" in head:
            return _load_mix(file, head, head_locs, stack, problems)
        data, locs = _resolve(file, stack, problems, (head, head_locs))
    except _Fatal:
        return []
    before = len(problems)
    _load_catalog_csv(data, locs, name, problems)
    if len(problems) > before:
        return []
    data.setdefault("name", file.stem)
    scenario = _validate(data, locs, name, problems)
    if scenario is None:
        return []
    _check_scripts(scenario, locs, name, problems)
    if len(problems) > before:
        return []
    return [Component(scenario.name or file.stem, scenario, 1.0, file)]


def _check_scripts(scenario: Scenario, locs: dict, root_file: str, problems: list[Problem]) -> None:
    """Play each scripted session as `generate` will, so a script that cannot be played (a pause
    before play, an entry not in the catalog) is reported here, at its step, not by generate later."""
    if not scenario.script:
        return
    catalog = scenario.catalog
    listed = {e.id: (e.duration, e.live) for e in catalog.entries or []}
    for j, session in enumerate(scenario.script):
        if session.entry is not None and session.entry not in listed:
            hint = "" if listed else " (a generated catalog has random ids: list the entry under catalog.entries)"
            problems.append(
                problem_at(
                    ("script", j, "entry"),
                    locs,
                    root_file,
                    f"entry {describe(session.entry)} is not in the catalog{hint}",
                )
            )
            continue
        if session.entry is not None:
            duration, live = listed[session.entry]
        elif catalog.entries:
            duration, live = catalog.entries[0].duration, catalog.entries[0].live
        else:  # the first generated entry: its length is drawn; the mean stands for it
            duration, live = max(dist_mean(catalog.duration), 1.0), False
        try:
            script_actions(session, duration, scenario.player.bitrate_ladder_kbps, live=live, where="script")
        except ScriptError as exc:
            step = re.match(r"script\.steps\[(\d+)\] \([^)]*\): (.*)", str(exc))
            path = ("script", j, "steps", int(step[1])) if step else ("script", j)
            problems.append(problem_at(path, locs, root_file, step[2] if step else str(exc)))


def _load_mix(file: Path, data: dict, locs: dict, stack: tuple[Path, ...], problems: list[Problem]) -> list[Component]:
    name = str(file)
    before = len(problems)
    for key in data:
        if key not in MIX_KEYS:
            problems.append(
                problem_at(
                    (key,),
                    locs,
                    name,
                    (
                        f"'{key}' is not allowed in a mix file{did_you_mean(key, MIX_KEYS)}; a mix sets only "
                        f"name, description, clock ({', '.join(MIX_CLOCK_KEYS)}) and mix; "
                        f"put '{key}' in the component scenarios"
                    ),
                    at_key=True,
                )
            )
    clock = data.get("clock")
    if isinstance(clock, dict):
        for key in clock:
            if key not in MIX_CLOCK_KEYS:
                problems.append(
                    problem_at(
                        ("clock", key),
                        locs,
                        name,
                        f"a mix sets only clock.{', clock.'.join(MIX_CLOCK_KEYS)}; "
                        f"'{key}' belongs in the component scenarios",
                        at_key=True,
                    )
                )
    if len(problems) > before:
        return []
    mix_model = _validate(data, locs, name, problems)
    if mix_model is None:
        return []
    clock_values = {k: getattr(mix_model.clock, k) for k in (clock or {})}
    total = sum(item.weight for item in mix_model.mix)
    stack = stack + (file.resolve(),)
    components: list[Component] = []
    for i, item in enumerate(mix_model.mix):
        path = ("mix", i, "scenario")
        target = _referenced(path, item.scenario, file, locs, stack, problems, "mix")
        if target is None:
            continue
        for part in _load_file(target, stack, problems):
            part.weight *= item.weight / total
            if clock_values:
                part.scenario = part.scenario.model_copy(
                    update={"clock": part.scenario.clock.model_copy(update=clock_values)}
                )
            components.append(part)
    if len(problems) > before:
        return []
    return components
