"""The package's shape: no import cycle among ecgnb modules, imports inside functions included."""
from __future__ import annotations

import ast

from ecgnb import paths

PACKAGE = paths.ROOT / "ecgnb"


def module_imports(path) -> set[str]:
    """ecgnb modules that the module at ``path`` imports anywhere (top level or in functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.module or "").startswith("ecgnb"):
                base = (node.module or "").removeprefix("ecgnb").lstrip(".")
                if base:
                    found.add(base.split(".")[0])
                else:   # from . import a, b
                    found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("ecgnb.") and a.name.count(".") >= 1)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: module_imports(p) & modules - {p.stem} for p in PACKAGE.glob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first = last), or None."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_ecgnb():
    graph = import_graph()
    assert graph["cli"] >= {"digitizers"} and "digitize" in graph["panels"], graph  # graph is read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_command_line_is_not_in_the_classical_digitizer():
    assert "argparse" not in (PACKAGE / "digitize.py").read_text()
