"""Every answer set keeps the rooms its README states, and builds nothing at import time.

No package imports one that imports it back, no arrow goes where the Layout forbids, and no
collector, engine or settings object is made when a module is imported.
"""

import ast
from pathlib import Path

import pytest

from tests.tools import package_of

pytestmark = pytest.mark.render

# Packages that may not depend on these, directly or through another package.
NEVER_IMPORTS = {
    "db": {"api"},
    "auth": {"api"},
    "jobs": {"api"},
    "core": {"api", "db"},
}
# Packages only these modules import: observability watches from outside, through hooks.
ONLY_IMPORTED_BY = {
    "observability": {"main", "cli"},
    "devtools": {"cli"},
}
# The README's Layout states the same rules in this sentence.
LAYOUT_RULE = (
    "No package imports one that imports it back; `db`, `auth` and `jobs` never import `api`; "
    "`core` imports neither `api` nor `db`; only `main.py` and `cli.py` import `observability`, "
    "and only `cli.py` imports `devtools` (a test checks these)."
)
# Calls that build something with state: none may run when a module is imported.
BUILDERS = {
    "Counter",
    "Gauge",
    "Histogram",
    "Summary",
    "create_engine",
    "create_async_engine",
    "async_sessionmaker",
    "get_settings",
    "Settings",
}


def imported_packages(path: Path, source: Path, package: str) -> set[str]:
    """The top-level packages and modules of `package` that the module at `path` imports."""
    found: set[str] = set()
    parent = path.relative_to(source).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = [package, *parent[: len(parent) - node.level + 1]] if node.level else []
            module = [*base, *(node.module or "").split(".")] if node.module else base
            modules = [[*module, alias.name] for alias in node.names]
        else:
            continue
        found.update(parts[1] for parts in modules if parts[0] == package and len(parts) > 1)
    return found


def package_graph(project: Path) -> dict[str, set[str]]:
    """Each top-level package or module of the project's package, and those it imports."""
    package = package_of(project)
    source = project / "src" / package
    graph: dict[str, set[str]] = {}
    for path in source.rglob("*.py"):
        room = path.relative_to(source).parts[0].removesuffix(".py")
        if room != "__init__":
            imported = imported_packages(path, source, package)
            graph.setdefault(room, set()).update(imported - {room})
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every package `start` imports, directly or through others."""
    seen: set[str] = set()
    waiting = list(graph.get(start, ()))
    while waiting:
        room = waiting.pop()
        if room not in seen:
            seen.add(room)
            waiting.extend(graph.get(room, ()))
    return seen


def test_layers_no_package_imports_one_that_imports_it_back(project: Path) -> None:
    graph = package_graph(project)

    cycles = sorted(
        f"{room} -> {other}"
        for room in graph
        for other in graph[room]
        if room in reachable(graph, other)
    )

    assert {"api", "core", "db", "migrations", "observability", "devtools"} <= set(graph)
    assert not cycles, f"imported back: {cycles}"


def test_layers_keep_the_rules_the_readme_states(project: Path) -> None:
    graph = package_graph(project)

    broken = [
        f"{room} imports {other}"
        for room, forbidden in NEVER_IMPORTS.items()
        for other in sorted(reachable(graph, room) & forbidden)
    ]
    broken += [
        f"{room} imports {watched}"
        for watched, importers in ONLY_IMPORTED_BY.items()
        for room in sorted(graph)
        if watched in graph[room] and room not in importers
    ]

    assert not broken
    readme = " ".join((project / "README.md").read_text(encoding="utf-8").split())
    assert LAYOUT_RULE in readme


def test_layers_build_nothing_at_import(project: Path) -> None:
    source = project / "src" / package_of(project)
    built = []
    for path in sorted(source.rglob("*.py")):
        for statement in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    name = ast.unparse(node.func).rsplit(".", 1)[-1]
                    if name in BUILDERS:
                        built.append(f"{path.relative_to(source)}:{node.lineno} {name}()")

    assert not built, f"built at import: {built}"
