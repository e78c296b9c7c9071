"""The code stays ruff- and mypy-clean: part of the one test command, not a separate ritual."""

from __future__ import annotations

import re
import subprocess
import sys

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
        if info.name.endswith(".__main__"):
            continue  # runs the command line when imported; defines no class
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
