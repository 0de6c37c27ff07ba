"""Reading a YAML file into plain data with the file, line and column of every key and value.

    tree = parse_located(Path("scenarios/typical-vod.yaml"), problems, kind="scenario file")
    data, locs = located_plain(tree, "scenarios/typical-vod.yaml")
    locs[("behaviour", "seek")]          # Loc(file, line, column, key_line, key_column)

Shared by the scenario loader and the load-shape loader, so both report a missing file, a
syntax error, a tab or a duplicate key in the same words and at the same place.

A hostile file is refused before it is built into objects: only regular files of at most
MAX_FILE_BYTES, nesting at most MAX_DEPTH deep, aliases expanding to at most MAX_EXPANDED_VALUES
values (no "billion laughs"), and only YAML's plain tags (no `!!python/...`). Messages never quote
what a file holds beyond the value at fault, so a path such as /etc/shadow leaks nothing.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, NodeEvent, ScalarEvent
from ruamel.yaml.nodes import MappingNode, SequenceNode

from sim.scenario.errors import DataPath, Loc, Problem, field_name

__all__ = ["Unreadable", "parse_located", "located_plain", "read_bounded", "kind_of", "FileRefused", "MAX_FILE_BYTES"]

# A scenario or shape is a page or two of YAML; the bundled ones are under 10 KiB.
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_EXPANDED_VALUES = 100_000
# The tags a scenario may write (`!!float 1`, `!!str 5`); anything else (`!!python/object`...) is refused.
PLAIN_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
}


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
        text = read_bounded(file, kind)
    except FileNotFoundError:
        raise fail(Problem(name, 0, 0, "", not_found or f"{kind} not found")) from None
    except IsADirectoryError:
        raise fail(Problem(name, 0, 0, "", f"is a directory, expected a {kind}")) from None
    except UnicodeDecodeError as exc:
        raise fail(Problem(name, 0, 0, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")) from None
    except FileRefused as exc:
        raise fail(Problem(name, 0, 0, "", str(exc))) from None
    except OSError as exc:
        raise fail(Problem(name, 0, 0, "", f"cannot read: {exc.strerror or exc}")) from None
    try:
        refused = _refuse_hostile(text, name)
    except MarkedYAMLError as exc:
        raise fail(_syntax_problem(exc, text, name, kind)) from None
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise fail(Problem(name, 1, 1, "", f"YAML error: {exc}")) from None
    if refused:
        raise fail(refused)
    try:
        return YAML(typ="rt").load(text)
    except DuplicateKeyError:
        raise fail(_duplicate_keys(text, name)) from None
    except MarkedYAMLError as exc:
        raise fail(_syntax_problem(exc, text, name, kind)) from None
    except (
        YAMLError,
        ValueError,
        TypeError,
        OverflowError,
    ) as exc:  # ValueError...: a tag ruamel cannot construct (!!float abc)
        line, column = _unconstructable(text) or (1, 1)
        raise fail(Problem(name, line, column, "", f"YAML error: {exc}")) from None
    except RecursionError:  # not reached after _refuse_hostile's depth limit; kept so it can never be a traceback
        raise fail(Problem(name, 1, 1, "", f"nested too deeply (at most {MAX_DEPTH} levels)")) from None


class FileRefused(OSError):
    """The path is not a file this program reads: a device, a pipe, or too large; the text says which."""


def read_bounded(file: Path, kind: str, limit: int = MAX_FILE_BYTES, encoding: str = "utf-8") -> str:
    """The text of `file` if it is a regular file of at most `limit` bytes holding no NUL byte.

    Raises FileNotFoundError, IsADirectoryError, UnicodeDecodeError or FileRefused (an OSError).
    Reads at most limit + 1 bytes, so /dev/zero, a FIFO or a /proc file cannot exhaust memory.
    """
    # Opened before it is checked, so what is checked is what is read; O_NONBLOCK: a FIFO must not hang us.
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(file)
        if not stat.S_ISREG(mode):
            raise FileRefused(f"not a regular file (a device, pipe or socket); expected a {kind}")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"larger than {limit // 1024} KiB; a {kind} is at most that")
    if b"\0" in data:
        raise FileRefused(f"holds NUL bytes: a binary file, not a {kind}")
    return data.decode(encoding)


def _refuse_hostile(text: str, file: str) -> list[Problem]:
    """Problems of a YAML text that would be dangerous to build: nesting deeper than MAX_DEPTH,
    aliases expanding past MAX_EXPANDED_VALUES values, tags other than YAML's plain ones.

    Walks the parser's events (no recursion, no objects built); raises MarkedYAMLError on bad syntax.
    """
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> values its node expands to
    open_nodes: list[list] = [[None, 0]]  # [anchor, values so far] of each open collection
    for event in YAML(typ="rt").parse(text):
        mark = event.start_mark
        at = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        tag = getattr(event, "tag", None)
        tag = getattr(tag, "value", tag)
        if isinstance(event, NodeEvent) and tag is not None and not isinstance(event, AliasEvent):
            if str(tag) not in PLAIN_TAGS and not (isinstance(event, ScalarEvent) and str(tag) == "!"):
                shown = str(tag).replace("tag:yaml.org,2002:", "!!")
                return [
                    Problem(
                        file,
                        *at,
                        "",
                        f"tag '{shown}' is not allowed; a scenario holds plain values "
                        "(text, numbers, lists, mappings) and nothing is ever run",
                    )
                ]
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return [
                    Problem(
                        file, *at, "", f"nested more than {MAX_DEPTH} levels deep; a scenario needs only a few levels"
                    )
                ]
            open_nodes.append([event.anchor, 1])
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
            anchor, size = open_nodes.pop()
            open_nodes[-1][1] += size
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(event, ScalarEvent):
            open_nodes[-1][1] += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            open_nodes[-1][1] += sizes.get(event.anchor, 1)
        if sum(size for _, size in open_nodes) > MAX_EXPANDED_VALUES:
            return [
                Problem(
                    file,
                    *at,
                    "",
                    f"aliases expand this file to more than {MAX_EXPANDED_VALUES:,} values; "
                    "refusing to build it (an alias of an alias of ... multiplies)",
                )
            ]
    return []


def kind_of(value: Any) -> str:
    """What a top-level value is, without quoting it (it may be the first line of /etc/passwd)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a line of text (is this a YAML file?)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return "a single value"


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
        return datetime(
            node.year, node.month, node.day, node.hour, node.minute, node.second, node.microsecond, tzinfo=node.tzinfo
        )
    if isinstance(node, date):
        return datetime(node.year, node.month, node.day, tzinfo=UTC)
    return node


def _positions(node: CommentedMap, key: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """0-based (line, column) of a key and its value; keys merged in with `<<: *anchor` sit in the anchor."""
    if key in (node.lc.data or {}):
        return node.lc.key(key), node.lc.value(key)
    for source in getattr(node, "merge", None) or []:
        source = source[1] if isinstance(source, tuple) else source  # (position, map) in older ruamel
        if isinstance(source, CommentedMap) and key in source:
            return _positions(source, key)
    return (node.lc.line, node.lc.col), (node.lc.line, node.lc.col)


def _unconstructable(text: str) -> tuple[int, int] | None:
    """Where the first value that cannot be built is (a date such as 2026-13-45), if it can be found."""
    from ruamel.yaml.nodes import ScalarNode

    stack = [YAML(typ="rt").compose(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, ScalarNode):
            tag = str(getattr(node.tag, "value", node.tag))
            if tag.endswith(":timestamp"):
                try:
                    datetime.fromisoformat(node.value.replace(" ", "T", 1) if "T" not in node.value else node.value)
                except ValueError:
                    return node.start_mark.line + 1, node.start_mark.column + 1
        elif isinstance(node, MappingNode):
            stack.extend(v for pair in reversed(node.value) for v in reversed(pair))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
    return None


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
        at = (
            f" started at line {started.line + 1}, column {started.column + 1}"
            if started and started.line != mark.line
            else ""
        )
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
                    found.append(
                        Problem(
                            file,
                            m.line + 1,
                            m.column + 1,
                            field_name(path + (key,)),
                            f"duplicate key '{key}' (first written at line {first[key].line + 1}); "
                            "a key may appear only once in a mapping",
                        )
                    )
                else:
                    first[key] = key_node.start_mark
                walk(value_node, path + (key,))
        elif isinstance(n, SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, path + (i,))

    walk(node, ())
    return found or [Problem(file, 1, 1, "", "duplicate key")]
