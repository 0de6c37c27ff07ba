"""Scenario problems: where a bad value was written and what was expected, in an author's words.

`Problem` is one located complaint (`file:line:column: field: message`); `ScenarioError`
carries all problems of a load. `explain_validation` turns pydantic's errors into problems:
it maps each error's `loc` onto the YAML node the value came from, drops the noise of union
branches that could never have matched, and rewrites the wording for scenario authors
(unknown keys and names get a difflib suggestion).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.scenario.distributions import DIST_NAMES


@dataclass
class Problem:
    file: str
    line: int  # 1-based; 0 when the problem concerns the whole file (e.g. it does not exist)
    column: int  # 1-based; 0 as above
    field: str  # dotted path such as "behaviour.play_rate" or "script[0].steps[2]"; "" for the file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario (or mix) could not be loaded; `.problems` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Loc:
    """Where a value (and the key naming it) was written; lines and columns are 1-based."""

    file: str
    line: int
    column: int
    key_line: int
    key_column: int


DataPath = tuple  # a path into the data: keys (str) and list indices (int)


def field_name(path: DataPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def closest(word: object, choices: typing.Iterable[str]) -> str | None:
    found = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(word: object, choices: typing.Iterable[str]) -> str:
    best = closest(word, choices)
    return f" (did you mean '{best}'?)" if best else ""


def locate(path: DataPath, locs: dict[DataPath, Loc], root_file: str, *, at_key: bool = False) -> Loc:
    """The location of `path`, or of its nearest written ancestor (for keys that are missing)."""
    for cut in range(len(path), -1, -1):
        loc = locs.get(path[:cut])
        if loc is not None:
            if at_key or cut < len(path):
                return Loc(loc.file, loc.key_line, loc.key_column, loc.key_line, loc.key_column)
            return loc
    return Loc(root_file, 1, 1, 1, 1)


# --- pydantic errors -> problems ------------------------------------------------------------

# Errors that only say "this union branch wants another kind of value".
_KIND_ERRORS = {
    "float_type",
    "float_parsing",
    "int_type",
    "int_parsing",
    "int_from_float",
    "string_type",
    "bool_type",
    "bool_parsing",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "datetime_type",
    "datetime_parsing",
    "datetime_from_date_parsing",
    "is_instance_of",
    "literal_error",
    "none_required",
}

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "datetime_type": "a date and time such as 2026-11-02T00:00:00Z",
    "datetime_parsing": "a date and time such as 2026-11-02T00:00:00Z",
    "datetime_from_date_parsing": "a date and time such as 2026-11-02T00:00:00Z",
    "none_required": "nothing",
}

_DIST_EXAMPLE = "a distribution such as {dist: lognormal, median: 300, sigma: 0.9}"


def describe(value: Any) -> str:
    """A value as an error message shows what was written: text quoted, a mapping or a list by kind."""
    if isinstance(value, str):
        # long text is cut: a message quotes the mistake, never a file's contents
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))  # YAML reads 1e9 as a float; say 1000000000
    return str(value)


def _literal_choices(err: dict) -> list[str]:
    return re.findall(r"'([^']*)'", (err.get("ctx") or {}).get("expected", ""))


def _is_dist_tag(tag: object) -> bool:
    return isinstance(tag, str) and tag.startswith("tagged-union[")


@dataclass
class _Err:
    raw: dict
    path: DataPath  # the part of loc that names written data
    branch: tuple  # union tags met on the way, with the path length where each appeared
    missing: str | None  # name of a missing required key
    on_key: bool  # the error is about a mapping key, not its value


def _split(err: dict, data: Any) -> _Err:
    node, path, branch, missing, on_key = data, [], [], None, False
    loc = err["loc"]
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif part == "[key]":
            on_key = True
        elif err["type"] == "missing" and i == len(loc) - 1:
            missing = str(part)
        else:
            branch.append((len(path), part))
    return _Err(err, tuple(path), tuple(branch), missing, on_key)


def _value_at(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _is_kind_only(errs: list[_Err], depth: int) -> bool:
    """True if this branch failed only because the value is of another kind than it accepts."""
    for e in errs:
        if len(e.path) != depth or e.missing or e.raw["type"] not in _KIND_ERRORS:
            return False
        if e.raw["type"] == "literal_error" and isinstance(e.raw.get("input"), str):
            return False  # right kind (text), wrong word: a real mistake worth reporting
    return True


def _prune_unions(errs: list[_Err], data: Any) -> list[_Err | tuple[DataPath, list[_Err]]]:
    """Keep, for each union, only the branch the author evidently meant (recursively).

    Returns plain errors, and (path, errors) pairs for values no branch accepts by kind.
    """
    out: list = [e for e in errs if not e.branch]
    unions: dict[DataPath, dict[object, list[_Err]]] = {}
    for e in errs:
        if e.branch:
            depth, tag = e.branch[0]
            unions.setdefault(e.path[:depth], {}).setdefault(tag, []).append(e)
    for upath, branches in unions.items():
        meant = {t: es for t, es in branches.items() if not _is_kind_only(es, len(upath))}
        if not meant:
            out.append((upath, [es[0] for es in branches.values()]))
            continue
        if len(meant) > 1:
            # several shapes still fit (e.g. script steps): the one with the fewest unknown keys
            def fit(item):
                _, es = item
                return (sum(1 for e in es if e.raw["type"] == "extra_forbidden"), len(es))

            tag, chosen = min(meant.items(), key=fit)
            meant = {tag: chosen}
        for es in meant.values():
            inner = [_Err(e.raw, e.path, e.branch[1:], e.missing, e.on_key) for e in es]
            out.extend(_prune_unions(inner, data))
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation allows (Optional, Union, Annotated flattened)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _field_info(root: type[BaseModel], data: Any, path: DataPath) -> tuple[list[type[BaseModel]], FieldInfo | None]:
    """The models that may describe the mapping at `path`, and the FieldInfo of its last key."""
    candidates: list[Any] = [root]
    info: FieldInfo | None = None
    node = data
    for part in path:
        nxt: list[Any] = []
        info = None
        for typ in candidates:
            if isinstance(typ, type) and issubclass(typ, BaseModel) and isinstance(part, str):
                f = typ.model_fields.get(part)
                if f is not None:
                    info = info or f
                    nxt.extend(_unwrap(f.annotation))
            origin = typing.get_origin(typ)
            if origin is list and isinstance(part, int):
                nxt.extend(_unwrap(typing.get_args(typ)[0]))
            elif origin is dict and isinstance(part, str):
                nxt.extend(_unwrap(typing.get_args(typ)[1]))
        node = node[part] if isinstance(node, (dict, list)) else None
        candidates = nxt
    models = [t for t in candidates if isinstance(t, type) and issubclass(t, BaseModel)]
    if isinstance(node, dict) and isinstance(node.get("dist"), str):
        named = [
            m
            for m in models
            if "dist" in m.model_fields and node["dist"] in _literal_values(m.model_fields["dist"].annotation)
        ]
        models = named or models
    return models, info


def _literal_values(annotation: Any) -> tuple:
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _constraints(info: FieldInfo | None) -> list[Any]:
    """The constraint objects of a field, including those inside `Annotated` union members."""
    if info is None:
        return []
    found = list(info.metadata)
    stack = [info.annotation]
    while stack:
        t = stack.pop()
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            args = typing.get_args(t)
            found.extend(m for a in args[1:] for m in (getattr(a, "metadata", None) or [a]))
            stack.append(args[0])
        elif origin in (typing.Union, types.UnionType):
            stack.extend(typing.get_args(t))
    return found


def _is_probability(info: FieldInfo | None) -> bool:
    marks = _constraints(info)
    return any(getattr(m, "ge", None) == 0 for m in marks) and any(getattr(m, "le", None) == 1 for m in marks)


def _message(e: _Err, root: type[BaseModel], data: Any) -> tuple[DataPath, bool, str]:
    """(path to point at, point at the key?, message) for one error."""
    err, typ = e.raw, e.raw["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    last = e.path[-1] if e.path else None
    if typ == "missing":
        return e.path, True, f"missing required key '{e.missing}'"
    if typ == "extra_forbidden":
        models, _ = _field_info(root, data, e.path[:-1])
        keys = sorted({k for m in models for k in m.model_fields})
        hint = did_you_mean(last, keys)
        listing = f"; valid keys here: {', '.join(keys)}" if not hint and keys else ""
        return e.path, True, f"unknown key '{last}'{hint}{listing}"
    if typ == "invalid_key":
        return e.path, True, f"keys must be text, got {describe(last)}"
    if typ == "union_tag_invalid":
        tag = ctx.get("tag")
        return (
            e.path + ("dist",),
            False,
            (f"unknown distribution '{tag}'{did_you_mean(tag, DIST_NAMES)}; expected one of {', '.join(DIST_NAMES)}"),
        )
    if typ == "union_tag_not_found":
        return e.path, True, f"a distribution mapping needs a 'dist' key, one of {', '.join(DIST_NAMES)}"
    if typ == "literal_error":
        choices = _literal_choices(err)
        where = "key" if e.on_key else "value"
        return (
            e.path,
            e.on_key,
            (f"unknown {where} {describe(value)}{did_you_mean(value, choices)}; expected one of {', '.join(choices)}"),
        )
    _, info = _field_info(root, data, e.path)
    if typ in ("less_than_equal", "greater_than_equal", "greater_than", "less_than"):
        if _is_probability(info) and typ in ("less_than_equal", "greater_than_equal"):
            return e.path, False, f"must be a probability in [0, 1], got {describe(value)}"
        bound = {
            "less_than_equal": ("at most", "le"),
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("greater than", "gt"),
            "less_than": ("less than", "lt"),
        }[typ]
        limit = ctx.get(bound[1])
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        seconds = isinstance(last, str) and (last.endswith("_s") or last in ("duration", "wait", "buffer", "pause"))
        if seconds and typ == "greater_than" and limit == 0:
            return e.path, False, f"must be a positive number of seconds, got {describe(value)}"
        return e.path, False, f"must be {bound[0]} {limit}, got {describe(value)}"
    if typ in ("too_short", "too_long"):
        marks = _constraints(info)
        lo_n = next((m.min_length for m in marks if getattr(m, "min_length", None) is not None), None)
        hi_n = next((m.max_length for m in marks if getattr(m, "max_length", None) is not None), None)
        got = ctx.get("actual_length")
        if lo_n is not None and lo_n == hi_n:
            return e.path, False, f"expected exactly {lo_n} values, got {got}"
        if typ == "too_short":
            return e.path, False, f"expected at least {ctx.get('min_length')} item(s), got {got}"
        return e.path, False, f"expected at most {ctx.get('max_length')} item(s), got {got}"
    if typ == "string_pattern_mismatch":
        desc = f" ({info.description})" if info is not None and info.description else ""
        return e.path, False, f"{describe(value)} is not in the expected form{desc}"
    if typ in ("value_error", "assertion_error"):
        text = str(ctx.get("error", err["msg"]))
        target = _weights_field(text, e.path, data)
        return target, target != e.path, text
    if typ == "finite_number":
        return e.path, False, f"expected a finite number, got {describe(value)}"
    if typ in _EXPECTED:
        return e.path, False, f"expected {_EXPECTED[typ]}, got {describe(value)}"
    return e.path, False, err["msg"]


def _weights_field(text: str, path: DataPath, data: Any) -> DataPath:
    """Point 'devices weights sum to 0' at `...devices`, not at the mapping holding it."""
    m = re.match(r"^([\w.]+) weights sum to 0", text)
    if not m:
        return path
    target = path + tuple(m.group(1).split("."))
    try:
        _value_at(data, target)
    except (KeyError, IndexError, TypeError):
        return path
    return target


def _kind_message(path: DataPath, errs: list[_Err], data: Any) -> str:
    wanted = []
    for e in errs:
        tag = e.branch[0][1]
        if _is_dist_tag(tag):
            phrase = _DIST_EXAMPLE
        elif e.raw["type"] == "literal_error":
            phrase = "one of " + ", ".join(_literal_choices(e.raw))
        else:
            phrase = _EXPECTED.get(e.raw["type"], str(tag))
        if phrase not in wanted:
            wanted.append(phrase)
    value = _value_at(data, path)
    hint = ""
    if isinstance(value, str):
        choices = [c for e in errs if e.raw["type"] == "literal_error" for c in _literal_choices(e.raw)]
        hint = did_you_mean(value, choices)
    return f"expected {' or '.join(wanted)}, got {describe(value)}{hint}"


def explain_validation(
    errors: list[dict], data: Any, locs: dict[DataPath, Loc], root_file: str, root: type[BaseModel]
) -> list[Problem]:
    """Problems for pydantic `errors` raised while validating `data` (written where `locs` say)."""
    found: list[tuple[DataPath, bool, str, str | None]] = []
    for item in _prune_unions([_split(err, data) for err in errors], data):
        if isinstance(item, tuple):
            path, errs = item
            found.append((path, False, _kind_message(path, errs, data), None))
        elif item.raw["type"] == "missing":
            found.append((item.path + (item.missing,), True, _message(item, root, data)[2], item.missing))
        else:
            target, at_key, text = _message(item, root, data)
            found.append((target, at_key, text, None))
    # "unknown key 'wiat' (did you mean 'wait'?)" already says what "missing key 'wait'" would
    suggested = {(t[:-1], m) for t, _, text, _ in found for m in re.findall(r"did you mean '([^']+)'", text)}
    problems: list[Problem] = []
    seen: set[tuple] = set()
    for target, at_key, text, missing in found:
        if missing is not None and (target[:-1], missing) in suggested:
            continue
        loc = locate(target, locs, root_file, at_key=at_key)
        key = (loc.file, loc.line, loc.column, text)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(loc.file, loc.line, loc.column, field_name(target), text))
    return sorted(problems, key=lambda p: (p.file != root_file, p.file, p.line, p.column))


def problem_at(
    path: DataPath, locs: dict[DataPath, Loc], root_file: str, message: str, *, at_key: bool = False
) -> Problem:
    loc = locate(path, locs, root_file, at_key=at_key)
    return Problem(loc.file, loc.line, loc.column, field_name(path), message)


__all__ = [
    "Problem",
    "ScenarioError",
    "Loc",
    "explain_validation",
    "problem_at",
    "did_you_mean",
    "closest",
    "field_name",
    "locate",
]
