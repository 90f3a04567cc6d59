"""The code's own imports keep the architecture: packages depend one way, no module cycles,
no private names across packages.

Every import counts: top-level, inside a function, under ``TYPE_CHECKING``. The order is
``rag`` < ``ingest`` < ``eval`` < ``ui`` (docs/ARCHITECTURE.md): a package imports only those
before it. ``ui/main.py`` (the ``kabar`` command) is the one module that imports all four.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["rag", "ingest", "eval", "ui"]  # each may import only those before it


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in ``path``; a ``from package
    import submodule`` counts as importing the submodule."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            subs = [n for n in names if f"{node.module}.{n}" in modules]
            found.extend((f"{node.module}.{n}", []) for n in subs)
            rest = [n for n in names if n not in subs]
            if rest:
                found.append((node.module, rest))
    return found


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: {m for m, _ in imports(path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_packages_depend_one_way() -> None:
    wrong = []
    for name, targets in graph().items():
        rank = PACKAGES.index(name.split(".")[0])
        for target in targets:
            if PACKAGES.index(target.split(".")[0]) > rank:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_no_private_name_from_another_package() -> None:
    modules = all_modules()
    taken = []
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target, names in imports(path, modules):
            owner = target if modules.get(target, Path()).name == "__init__.py" else target.rpartition(".")[0]
            taken += [f"{name} takes {target}.{n}" for n in names if n.startswith("_") and owner != here]
    assert taken == []


def test_the_library_stays_within_the_size_the_style_asks() -> None:
    """At most ~14 modules directly in rag/; no module past ~600 lines."""
    assert len(list((ROOT / "rag").glob("*.py"))) <= 14
    long = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if len(p.read_text(encoding="utf-8").splitlines()) > 650]
    assert long == []


def test_the_scan_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rag.store import ChromaStore\n"
                      "def f():\n    from ingest.pipeline import ingest\n    return ingest\n", encoding="utf-8")
    found = {m for m, _ in imports(source, {"rag.store": Path(), "ingest.pipeline": Path()})}
    assert {"rag.store", "ingest.pipeline"} <= found


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_scanned(package: str) -> None:
    assert any(name.startswith(package) for name in all_modules())
