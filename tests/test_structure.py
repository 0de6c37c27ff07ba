"""The code's shape: imports flow one way along the pipeline, and no function in sim/ is too long to read.

Every module under sim/ is parsed with `ast` (nothing is imported). Imports anywhere in a
module count, at module level and inside functions, except those under `if TYPE_CHECKING:`
(they never run). The pipeline of DESIGN.md ranks each part of the package; a part may import
its own rank or earlier ones, never a later one, and the parts' import graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

MAX_FUNCTION_LINES = 150
EXPECTED_LONG: set[str] = set()  # "path:function" of a function allowed over the limit, with the reason

# The pipeline of DESIGN.md, earliest first: a part imports only parts of its own rank or earlier ones.
PIPELINE = [
    # shared foundations: the atomic-write helper, the events-table and ledger schemas, reused chunk arrays,
    # and the import hook that loads the compiled request path (it names later modules, never imports them)
    {"atomic", "tables", "recycled", "compiled"},
    {"scenario"},
    {"geo", "population"},
    {"player"},
    {"protocols"},
    {"sinks", "generate", "load", "collector"},
    {"metrics"},
    {"cli"},
]
RANK = {part: rank for rank, parts in enumerate(PIPELINE) for part in parts}
# Top-level modules that belong to a part of another name. The file-generation path (player + protocols ->
# sinks) is three modules: sim.generate runs its parts through sim.parts and sim.workers, which reuse its row
# helpers, so the three import each other; they count as one part until they share a package.
PART_OF_MODULE = {"parts": "generate", "workers": "generate"}


def module_name(path: Path, root: Path = SIM) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = SIM) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement that can run: at module level, in functions and classes, not under TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _type_checking_only(node):
            children = node.orelse
        stack.extend(children)


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The sim modules that module `name` imports (a package import counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # `from pkg import mod` imports pkg.mod when it is a module, else a name from pkg
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in known else base_name for a in node.names]
        for target in targets:
            while target and target not in known:  # `import sim.x.y` of a name inside sim.x
                target = target.rpartition(".")[0]
            if target.startswith("sim.") and target != name:
                found.add(target)
    return found


def import_graph(root: Path = SIM) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def part_of(module: str) -> str | None:
    """The pipeline part a module belongs to: sim.player.model -> player (None for the package root)."""
    pieces = module.split(".")
    return PART_OF_MODULE.get(pieces[1], pieces[1]) if len(pieces) > 1 else None


def part_graph(graph: dict[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """part -> imported part -> the module imports that make the edge (for the failure message)."""
    edges: dict[str, dict[str, list[str]]] = {}
    for module, targets in graph.items():
        src = part_of(module)
        for target in targets:
            dst = part_of(target)
            if src and dst and src != dst:
                edges.setdefault(src, {}).setdefault(dst, []).append(f"{module} -> {target}")
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as a list of nodes (first = last), or None."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def long_functions(root: Path = SIM) -> dict[str, int]:
    """'path:qualname' -> lines of every function under `root` longer than MAX_FUNCTION_LINES."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

        def walk(node, prefix, path=path):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    qual = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                        lines = child.end_lineno - first + 1
                        if lines > MAX_FUNCTION_LINES:
                            out[f"{path.relative_to(root.parent)}:{qual}"] = lines
                    walk(child, qual + ".", path)
                else:
                    walk(child, prefix, path)

        walk(tree, "")
    return out


# --- the checks ----------------------------------------------------------------------------------


def test_every_part_of_sim_has_a_place_in_the_pipeline():
    parts = {part_of(m) for m in modules()} - {None}
    assert parts <= set(RANK), f"add {sorted(parts - set(RANK))} to PIPELINE in {Path(__file__).name}"


def test_no_part_imports_a_later_part_of_the_pipeline():
    upward = [
        f"{imp}  ({src} is rank {RANK[src]}, {dst} is rank {RANK[dst]})"
        for src, targets in part_graph(import_graph()).items()
        for dst, imps in targets.items()
        if RANK[dst] > RANK[src]
        for imp in imps
    ]
    assert not upward, "imports against the pipeline order:\n" + "\n".join(sorted(upward))


def test_the_parts_import_graph_has_no_cycle():
    edges = part_graph(import_graph())
    cycle = find_cycle({src: set(targets) for src, targets in edges.items()})
    assert cycle is None, (
        "import circle between parts: "
        + " -> ".join(cycle)
        + "\n"
        + "\n".join(imp for a, b in zip(cycle, cycle[1:]) for imp in edges[a][b])
    )


def test_no_function_in_sim_is_longer_than_the_limit():
    found = long_functions()
    unexpected = {name: n for name, n in found.items() if name not in EXPECTED_LONG}
    assert not unexpected, f"functions over {MAX_FUNCTION_LINES} lines (split them into named helpers):\n" + "\n".join(
        f"  {name}: {n} lines" for name, n in sorted(unexpected.items())
    )
    fixed = EXPECTED_LONG - set(found)
    assert not fixed, f"now under {MAX_FUNCTION_LINES} lines, remove from EXPECTED_LONG: {sorted(fixed)}"


# --- the checker itself: it would see a circle or a long function come back ----------------------------


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    pkg = tmp_path / "sim"
    (pkg / "player").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "population.py").write_text("def f():\n    from .player.model import draw\n")
    (pkg / "player" / "__init__.py").write_text("")
    (pkg / "player" / "model.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..population import f\nif TYPE_CHECKING:\n    from .. import geo\n"
    )
    graph = import_graph(pkg)
    assert graph["sim.population"] == {"sim.player.model"}
    assert graph["sim.player.model"] == {"sim.population"}  # the TYPE_CHECKING import does not count
    edges = {}
    for module, targets in graph.items():
        for target in targets:
            if part_of(module) != part_of(target):
                edges.setdefault(part_of(module), set()).add(part_of(target))
    assert find_cycle(edges) in (["player", "population", "player"], ["population", "player", "population"])


@pytest.mark.parametrize("body_lines, too_long", [(MAX_FUNCTION_LINES - 2, False), (MAX_FUNCTION_LINES - 1, True)])
def test_the_checker_counts_a_function_from_its_decorator_to_its_last_line(tmp_path, body_lines, too_long):
    pkg = tmp_path / "sim"
    pkg.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    (pkg / "m.py").write_text(f"@decorator\ndef f():\n{body}")  # decorator + def + body lines
    assert ("sim/m.py:f" in long_functions(pkg)) is too_long
