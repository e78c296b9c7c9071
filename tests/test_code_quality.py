"""The code stays ruff- and mypy-clean: part of the one test command, not a separate ritual."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

CHECKED = ["src", "tests", "benchmarks", "dev"]
RUFF = [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize(
    "command",
    [
        [*RUFF, "check", "--quiet", *CHECKED],
        [*RUFF, "format", "--check", "--quiet", *CHECKED],
        [sys.executable, "-m", "mypy", "--no-error-summary"],
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_static_checks_pass(command: list[str]) -> None:
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _error_tree() -> dict[str, str]:
    """{class name: parent name} as drawn in errors.py's docstring."""
    import iomfeed.errors

    doc = iomfeed.errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.split("::", 1)[1].splitlines():
        match = re.match(r"^(\s*)IomfeedError\b", line) or re.search(r"[├└]── (\w+)", line)
        if match is None:
            continue
        if match.group(0).strip() == "IomfeedError":
            stack = [(-1, "IomfeedError")]
            continue
        column = match.start()
        while stack and stack[-1][0] >= column:
            stack.pop()
        parents[match.group(1)] = stack[-1][1]
        stack.append((column, match.group(1)))
    return parents


def test_every_exception_class_descends_from_the_root_and_is_in_the_tree() -> None:
    import importlib
    import inspect
    import pkgutil

    import iomfeed
    from iomfeed.errors import IomfeedError

    tree = _error_tree()
    assert tree["BadToken"] == "InputError" and tree["RobotsUnreachable"] == "FetchError"
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(iomfeed.__path__, "iomfeed."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                found[f"{info.name}.{cls.__qualname__}"] = cls
    assert "iomfeed.digest.unsubscribe.BadToken" in found  # the walk reaches subpackages
    problems = []
    for where, cls in sorted(found.items()):
        if cls is IomfeedError:
            continue
        if not issubclass(cls, IomfeedError):
            problems.append(f"{where} does not descend from IomfeedError")
        elif cls.__name__ not in tree:
            problems.append(f"{where} is not in the tree in errors.py's docstring")
        elif tree[cls.__name__] != cls.__bases__[0].__name__:
            problems.append(
                f"{where}: the tree says its parent is {tree[cls.__name__]},"
                f" the code says {cls.__bases__[0].__name__}"
            )
    assert not problems, "\n".join(problems)
    assert set(tree) <= {cls.__name__ for cls in found.values()}, (
        "the tree names a class that does not exist"
    )


SRC = ROOT / "src" / "iomfeed"

#: What builds the runtime's parts, and the only modules allowed to call it: the runtime
#: (which wires them for every entry point) and the modules that define them.
_BUILT_BY_THE_RUNTIME = {
    "Store": {"runtime.py", "store/"},
    "HttpClient": {"runtime.py", "http.py", "transport/"},
    "make_mailer": {"runtime.py", "delivery/mailers.py"},
    "OutboxMailer": {"runtime.py", "delivery/mailers.py"},
    "SmtpMailer": {"runtime.py", "delivery/mailers.py"},
    "RunLock": {"runtime.py", "lock.py"},
    "ServiceLock": {"runtime.py", "lock.py"},
}
#: A stage's own short-lived client with settings of its own (no retries, a short timeout),
#: not an entry point's wiring: the WebSub ping after a publish.
_OWN_CLIENT = {("publish/websub.py", "HttpClient")}


def _calls(path: Path) -> Iterator[tuple[str, int]]:
    """(name, line) of every call of a plain or dotted name in a module."""
    import ast

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            yield name, node.lineno


def test_only_the_runtime_builds_stores_clients_mailers_and_locks() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        where = path.relative_to(SRC).as_posix()
        for name, line in _calls(path):
            allowed = _BUILT_BY_THE_RUNTIME.get(name)
            if allowed is None or (where, name) in _OWN_CLIENT:
                continue
            if not any(where == a or (a.endswith("/") and where.startswith(a)) for a in allowed):
                found.append(f"{where}:{line}: {name}(...): use iomfeed.runtime.open_runtime")
    assert not found, "\n".join(found)
    assert any(n == "Store" for n, _ in _calls(SRC / "runtime.py"))  # the check sees calls


def test_no_file_over_500_lines_and_no_function_over_60() -> None:
    """Short files and functions a newcomer can read at a glance, everywhere in the package
    (issue 10); generated data (the snapshot site) holds no Python."""
    import ast

    paths = sorted(SRC.rglob("*.py"))
    assert len(paths) > 50  # the package's modules were found
    long = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC).as_posix()
        if len(text.splitlines()) > 500:
            long.append(f"{where}: {len(text.splitlines())} lines (at most 500)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 60:
                    long.append(f"{where}:{node.lineno}: {node.name} is {size} lines (at most 60)")
    assert not long, "\n".join(long)
