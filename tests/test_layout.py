"""The package's layout: no import cycle between modules, nor between its parts (a subpackage
counts as one node), and the edge runtime imports nothing outside fer_edge.edge but the error,
default and option-table modules. The graph is built from the source, imports inside functions
included, so a cycle hidden in a lazy import is found too."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# installed name -> folder (converters/, calibration/ and models/ install under fer_edge)
ROOTS = {"fer_edge": REPO / "fer_edge", "fer_edge.converters": REPO / "converters",
         "fer_edge.calibration": REPO / "calibration", "fer_edge.models": REPO / "models"}
PARTS = ("edge", "training", "export", "evaluate", "converters", "calibration", "models")
EDGE_MAY_IMPORT = {"fer_edge.errors", "fer_edge.defaults", "fer_edge.options"}


def modules() -> dict[str, tuple[Path, bool]]:
    """module name -> (its file, whether it is a package's __init__)."""
    found = {}
    for name, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            is_pkg = rel[-1] == "__init__"
            parts = rel[:-1] if is_pkg else rel
            found[".".join((name, *parts))] = (path, is_pkg)
    return found


def imports_of(module: str, path: Path, is_pkg: bool, known: set[str]) -> set[str]:
    """The fer_edge modules `module` imports, anywhere in its source."""
    out = set()
    package = module if is_pkg else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from . import x`: x may be a module
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:   # fer_edge.x.y -> its module
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {m: imports_of(m, p, pkg, known) for m, (p, pkg) in found.items()}


def part(module: str) -> str:
    """The node a module belongs to when subpackages count as one."""
    pieces = module.split(".")
    return ".".join(pieces[:2]) if len(pieces) > 1 and pieces[1] in PARTS else module


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(edges):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def collapsed(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        node = out.setdefault(part(a), set())
        node |= {part(b) for b in targets if part(b) != part(a)}
    return out


def test_the_graph_sees_lazy_imports():
    edges = graph()
    # training/engine.py imports the multi-machine adapter inside a function
    assert "fer_edge.training.multiworker" in edges["fer_edge.training.engine"]
    assert "fer_edge.training" in collapsed(edges)["fer_edge.commands"]


def test_no_import_cycle_between_modules():
    assert cycle(graph()) is None


def test_no_import_cycle_between_parts():
    assert cycle(collapsed(graph())) is None


def test_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_edge_runtime_imports_only_itself_errors_defaults_and_options():
    edges = graph()
    outside = {(m, t) for m, targets in edges.items() if m.startswith("fer_edge.edge")
               for t in targets if not t.startswith("fer_edge.edge") and t not in EDGE_MAY_IMPORT}
    assert outside == set()
    for m in EDGE_MAY_IMPORT:   # and what they import stays among them
        assert edges[m] <= EDGE_MAY_IMPORT, m
