"""The shape of the code a newcomer maps: small modules, and imports that go one way (no cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "callqa"
MAX_LINES = 400
# Over the limit for now, each with the change that brings it under; an entry must go once that change lands.
TOO_LONG_FOR_NOW: dict[str, str] = {}
# Import cycles (lazy imports in functions count too), each with the change that breaks it.
CYCLES_FOR_NOW: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in the file except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in modules and c != name}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(frozenset(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_every_module_is_under_the_size_limit():
    sizes = {str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
             for path in _modules().values()}
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert set(too_long) == set(TOO_LONG_FOR_NOW), (
        f"modules over {MAX_LINES} lines: {too_long}; known: {TOO_LONG_FOR_NOW} (split the new ones, drop fixed ones)"
    )


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert set(_cycles(graph)) == set(CYCLES_FOR_NOW)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


def test_imports_are_read_from_the_code():
    modules = _modules()
    cli = _imports("callqa.cli", modules["callqa.cli"], modules)
    assert {"callqa.store", "callqa.errors", "callqa.pipeline"} <= cli  # module level and lazy (in a command)
    assert "callqa.rubric" not in _imports("callqa.store", modules["callqa.store"], modules)  # TYPE_CHECKING only
