"""The shape of the code, checked: which module may import what, and how big things get.

These are the rules the README's "How the code is organised" states; a change that breaks
one should change the rule here and there, on purpose."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from .conftest import ROOT

PACKAGE = ROOT / "src" / "iomfeed"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module) -> set[str]:
    """Every module name imported, absolute (``from ..store import Store`` -> ``store``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.add(base if node.level == 0 else f".{base}")
            names.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return names


def test_only_the_store_imports_sqlite3() -> None:
    offenders = [
        name
        for name, tree in _modules()
        if not name.startswith("store/")
        and any(i == "sqlite3" or i.startswith("sqlite3.") for i in _imports(tree))
    ]
    assert offenders == []
