"""Reading a YAML file into plain data with the file, line and column of every key and value.

    tree = parse_located(Path("scenarios/typical-vod.yaml"), problems, kind="scenario file")
    data, locs = located_plain(tree, "scenarios/typical-vod.yaml")
    locs[("behaviour", "seek")]          # Loc(file, line, column, key_line, key_column)

Shared by the scenario loader and the load-shape loader, so both report a missing file, a
syntax error, a tab or a duplicate key in the same words and at the same place.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode

from .errors import DataPath, Loc, Problem, field_name

__all__ = ["Unreadable", "parse_located", "located_plain"]


class Unreadable(Exception):
    """The file cannot be read or parsed at all; its problems are already recorded."""


def parse_located(file: Path, problems: list[Problem], *, kind: str, not_found: str | None = None) -> Any:
    """`file` as ruamel round-trip objects (None for an empty file). Raises Unreadable after
    recording why in `problems`: not found, not text, a YAML syntax error or duplicate keys.
    `kind` names the file in messages ("scenario file"); `not_found` replaces "<kind> not found"."""
    name = str(file)

    def fail(problem: Problem | list[Problem]) -> Unreadable:
        problems.extend(problem if isinstance(problem, list) else [problem])
        return Unreadable()

    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail(Problem(name, 0, 0, "", not_found or f"{kind} not found")) from None
    except IsADirectoryError:
        raise fail(Problem(name, 0, 0, "", f"is a directory, expected a {kind}")) from None
    except UnicodeDecodeError as exc:
        raise fail(Problem(name, 0, 0, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")) from None
    except OSError as exc:
        raise fail(Problem(name, 0, 0, "", f"cannot read: {exc.strerror or exc}")) from None
    try:
        return YAML(typ="rt").load(text)
    except DuplicateKeyError:
        raise fail(_duplicate_keys(text, name)) from None
    except MarkedYAMLError as exc:
        raise fail(_syntax_problem(exc, text, name, kind)) from None
    except (YAMLError, ValueError, TypeError, OverflowError) as exc:   # ValueError...: a tag ruamel cannot construct (!!float abc)
        raise fail(Problem(name, 1, 1, "", f"YAML error: {exc}")) from None


def located_plain(tree: CommentedMap, file: str) -> tuple[dict, dict[DataPath, Loc]]:
    """The top mapping as plain data, and the location of every key and value in it."""
    locs: dict[DataPath, Loc] = {(): Loc(file, tree.lc.line + 1, tree.lc.col + 1, tree.lc.line + 1, tree.lc.col + 1)}
    return _plain(tree, file, (), locs), locs


def _plain(node: Any, file: str, path: DataPath, locs: dict[DataPath, Loc]) -> Any:
    """ruamel's round-trip objects -> dict/list/str/float/int/bool/datetime, recording locations."""
    if isinstance(node, CommentedMap):
        out = {}
        for key in node:
            (kl, kc), (vl, vc) = _positions(node, key)
            child = path + (key,)
            locs[child] = Loc(file, vl + 1, vc + 1, kl + 1, kc + 1)
            out[key] = _plain(node[key], file, child, locs)
        return out
    if isinstance(node, CommentedSeq):
        out_list = []
        for i, item in enumerate(node):
            line, col = node.lc.item(i)
            locs[path + (i,)] = Loc(file, line + 1, col + 1, line + 1, col + 1)
            out_list.append(_plain(item, file, path + (i,), locs))
        return out_list
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime):
        return datetime(node.year, node.month, node.day, node.hour, node.minute, node.second,
                        node.microsecond, tzinfo=node.tzinfo)
    if isinstance(node, date):
        return datetime(node.year, node.month, node.day, tzinfo=timezone.utc)
    return node


def _positions(node: CommentedMap, key: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """0-based (line, column) of a key and its value; keys merged in with `<<: *anchor` sit in the anchor."""
    if key in (node.lc.data or {}):
        return node.lc.key(key), node.lc.value(key)
    for source in getattr(node, "merge", None) or []:
        source = source[1] if isinstance(source, tuple) else source   # (position, map) in older ruamel
        if isinstance(source, CommentedMap) and key in source:
            return _positions(source, key)
    return (node.lc.line, node.lc.col), (node.lc.line, node.lc.col)


def _syntax_problem(exc: MarkedYAMLError, text: str, file: str, kind: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or str(exc)).strip()
    if "'\\t'" in problem or "\t" in problem:
        return Problem(file, line, col, "", "tab character in indentation; YAML indents with spaces only")
    lines = text.splitlines()
    if mark and mark.line < len(lines) and "\t" in lines[mark.line][: max(mark.column, 1)]:
        return Problem(file, line, col, "", "tab character in indentation; YAML indents with spaces only")
    if "another document" in problem:
        return Problem(file, line, col, "", f"a {kind} holds a single YAML document; remove the second '---'")
    context = ""
    if exc.context:
        started = exc.context_mark
        at = f" started at line {started.line + 1}, column {started.column + 1}" if started and started.line != mark.line else ""
        context = f" ({exc.context}{at})"
    return Problem(file, line, col, "", f"YAML syntax error: {problem}{context}")


def _duplicate_keys(text: str, file: str) -> list[Problem]:
    """Every duplicate key of the file, each with the line where the key was first written."""
    node = YAML(typ="rt").compose(text)
    found: list[Problem] = []

    def walk(n: Any, path: DataPath) -> None:
        if isinstance(n, MappingNode):
            first: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = key_node.value
                if key in first:
                    m = key_node.start_mark
                    found.append(Problem(file, m.line + 1, m.column + 1, field_name(path + (key,)),
                                         f"duplicate key '{key}' (first written at line {first[key].line + 1}); "
                                         "a key may appear only once in a mapping"))
                else:
                    first[key] = key_node.start_mark
                walk(value_node, path + (key,))
        elif isinstance(n, SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (i,))

    walk(node, ())
    return found or [Problem(file, 1, 1, "", "duplicate key")]
