"""The layout's two rules, read from the source: `service/` imports no domain and not the root; no import cycle.

Imports are read with `ast`, so an import inside a function (lazy) or under `if TYPE_CHECKING:` counts as much as
one at the top of a module: each is a dependency someone will one day move to the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = "service"
# Domains present and announced (issue 12), and the composition root: none of them may be imported by `service/`.
NAMED = {"privacy", "consent", "dsar", "retention", "holds", "portal", "console", "incidents", "governance"}


def project_packages() -> set[str]:
    """The top-level packages of the project (the test suite aside)."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}


def modules(packages: set[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `packages` (a package is named by its `__init__.py`)."""
    found = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module name `path` imports anywhere in its body (absolute, relative resolved), with its line."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from a import b` imports module a.b when b is one, else the name b of module a: the graph trims
            # a name to the longest module it starts with.
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.append((str(node.args[0].value), node.lineno))
    return out


def test_service_imports_no_domain_and_not_the_root() -> None:
    forbidden = (project_packages() | NAMED) - {SHARED}
    found = set()
    for name, path in sorted(modules({SHARED}).items()):
        for target, line in imported(name, path):
            if target.split(".")[0] in forbidden:
                found.add(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not found, "the shared layer reaches up:\n" + "\n".join(sorted(found))


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports. Importing a.b.c runs a/__init__.py and a/b/__init__.py first, but
    those edges are not counted: a package's `__init__` importing its own submodules is not a cycle to untangle."""
    found = modules(project_packages())
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        deps = set()
        for target, _ in imported(name, path):
            while target and target not in found:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each a cycle or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert {"service", "service.db", "privacy"} <= set(graph)  # the walk found the project
    found = cycles(graph)
    shown = [" <-> ".join(c) + "\n    " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
             for c in found]
    assert not found, "import cycles:\n" + "\n".join(shown)


def test_the_checks_see_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The walk reads imports in functions and under TYPE_CHECKING, and the cycle finder finds a two-module cycle."""
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from consent.x import Y\n"
                      "def f():\n    from . import sibling\n    import importlib\n"
                      "    importlib.import_module('dsar.jobs')\n")
    targets = {t for t, _ in imported("service.pkg.m", source)}
    assert {"consent.x.Y", "service.pkg.sibling", "dsar.jobs"} <= targets
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
