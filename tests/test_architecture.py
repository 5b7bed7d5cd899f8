"""The shape of the code, read from its imports (module-level ones and those inside functions):
the project reaches ``rules`` only through its declared public surface (``rules.PUBLIC_MODULES``),
and the modules of ``rules`` import one another without a cycle."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import rules

ROOT = Path(__file__).resolve().parent.parent


def package_modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name), migrations included."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth. ``from a import b`` names the
    module ``a.b`` when that is one of ``known``, else ``a``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if name in known else base))
    return found


def test_the_declared_public_modules_exist_and_none_is_internal():
    for name in rules.PUBLIC_MODULES:
        importlib.import_module(name)
        assert not name.startswith("rules.internal"), name


@pytest.mark.parametrize("package", ["coaching", "config"])
def test_the_project_imports_only_the_public_surface_of_rules(package):
    known = set(package_modules("rules"))
    allowed = {"rules", *rules.PUBLIC_MODULES}
    outside = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for module, path in package_modules(package).items()
        for line, imported in imports_of(module, path, known)
        if (imported == "rules" or imported.startswith("rules.")) and imported not in allowed
    ]
    assert outside == [], "outside rules.PUBLIC_MODULES:\n" + "\n".join(outside)


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The import cycles among ``modules``, one per group of modules that import one another
    (Tarjan's strongly connected components), each as a path back to where it starts."""
    known = set(modules)
    graph = {
        module: sorted({name for _, name in imports_of(module, path, known) if name in known and name != module})
        for module, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_cycle_in(sorted(group), graph) for group in groups]


def _cycle_in(group: list[str], graph: dict[str, list[str]]) -> list[str]:
    """One path from the group's first module back to it, through the group."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        module = frontier.pop(0)
        for imported in graph[module]:
            if imported == start:
                return [*paths[module], start]
            if imported in members and imported not in paths:
                paths[imported] = [*paths[module], imported]
                frontier.append(imported)
    return group


def test_a_cycle_through_an_import_inside_a_function_is_found_and_named(tmp_path):
    (tmp_path / "pkg").mkdir()
    for name, text in {
        "__init__.py": "",
        "a.py": "from pkg.b import run\n",
        "b.py": "def run():\n    from . import c\n",
        "c.py": "import pkg.a\nimport pkg.d\n",
        "d.py": "",
    }.items():
        (tmp_path / "pkg" / name).write_text(text)
    assert import_cycles(package_modules("pkg", tmp_path)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


@pytest.mark.parametrize("package", ["rules"])
def test_no_import_cycle_among_the_modules_of(package):
    cycles = import_cycles(package_modules(package))
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
