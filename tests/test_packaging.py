"""The wheel carries every package, the snapshot and the templates."""

from __future__ import annotations

import tomllib

from .conftest import ROOT


def test_every_package_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts)
             for p in (ROOT / "src").rglob("__init__.py")}
    assert found | {"iomfeed.templates"} == listed


def test_templates_are_found_as_a_package() -> None:
    import importlib.resources

    folder = importlib.resources.files("iomfeed.templates")
    assert (folder / "site" / "index.html.j2").is_file()
