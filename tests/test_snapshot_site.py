"""The snapshot the package ships is exactly what the generator in ``dev/`` makes of
``dev/content.toml``: edit the content, regenerate, commit both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dev.sitegen import DEFAULT_SITE, build_site, load_content
from iomfeed.demo.server import DEFAULT_ROOT

from .conftest import ROOT


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_generator_writes_where_the_package_reads() -> None:
    assert DEFAULT_SITE.resolve() == DEFAULT_ROOT


def test_the_shipped_snapshot_is_the_generated_one(tmp_path: Path) -> None:
    build_site(load_content(), tmp_path / "site")
    built, shipped = files_of(tmp_path / "site"), files_of(DEFAULT_ROOT)
    assert sorted(built) == sorted(shipped)  # no file missing, none left over
    differ = [name for name in built if built[name] != shipped[name]]
    assert not differ, f"regenerate with `python -m dev.sitegen`: {differ[:10]}"


def test_the_documented_command_regenerates_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "stale.html").parent.mkdir()
    (out / "stale.html").write_text("left over")
    result = subprocess.run(
        [sys.executable, "-m", "dev.sitegen", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "for 48 items" in result.stdout
    assert files_of(out) == files_of(DEFAULT_ROOT)  # the stale file is gone
