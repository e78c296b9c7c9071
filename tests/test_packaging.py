"""The wheel carries every package, the snapshot, the templates and the documented
configuration (which ``iomfeed init`` writes out and ``iomfeed demo`` runs on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT


def test_every_package_is_listed_for_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "src").parts)
        for p in (ROOT / "src").rglob("__init__.py")
    }
    assert found | {"iomfeed.templates"} == listed


def test_templates_are_found_as_a_package() -> None:
    import importlib.resources

    folder = importlib.resources.files("iomfeed.templates")
    assert (folder / "site" / "index.html.j2").is_file()


def test_the_documented_config_is_packaged_and_kept_once() -> None:
    import importlib.resources

    packaged = importlib.resources.files("iomfeed") / "config.toml"
    assert packaged.is_file()
    assert packaged.read_bytes() == (ROOT / "config.toml").read_bytes()
    # One copy: the package's file is a link to the top-level one, which the wheel copies.
    link = ROOT / "src" / "iomfeed" / "config.toml"
    assert link.is_symlink() and link.resolve() == (ROOT / "config.toml").resolve()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "config.toml" in config["tool"]["setuptools"]["package-data"]["iomfeed"]


def test_init_writes_the_packaged_config_and_keeps_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from iomfeed.cli import main

    shipped = (ROOT / "config.toml").read_bytes()
    monkeypatch.chdir(tmp_path)  # no config.toml here: init needs none
    assert main(["init"]) == 0
    assert (tmp_path / "config.toml").read_bytes() == shipped
    assert "config.toml: written" in capsys.readouterr().out
    (tmp_path / "config.toml").write_text("# my edits\n")
    assert main(["init"]) == 1
    assert "config.toml: already exists; not overwriting it" in capsys.readouterr().err
    assert (tmp_path / "config.toml").read_text() == "# my edits\n"
    assert main(["init", "--force"]) == 0
    assert (tmp_path / "config.toml").read_bytes() == shipped
    (tmp_path / "etc").mkdir()
    assert main(["init", "etc"]) == 0  # a folder: config.toml inside it
    assert main(["--config", "etc/config.toml", "check"]) == 0
    capsys.readouterr()
    (tmp_path / "a-file").write_text("")  # a path that cannot be made (read-only alike)
    assert main(["init", "a-file/sub/config.toml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("iomfeed: a-file/sub/config.toml: could not be written (")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-4000:]


def read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float) -> bytes:
    """What the process printed on stdout up to and including the line with ``marker``."""
    import select

    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out or not out.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, out.decode()
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, out.decode()
            out += chunk
    return out


@pytest.mark.slow
@pytest.mark.network
def test_the_wheel_runs_init_and_demo_from_another_folder_and_the_demo_serves_on_a_tty(
    tmp_path: Path,
) -> None:
    """README set-up command 1 as a newcomer meets it: an installed wheel, another folder,
    a terminal. What the demo leaves behind works: pictures and links answer."""
    import pty
    import re
    import shutil
    import urllib.request

    tree = tmp_path / "tree"  # a copy, so that builds in parallel test runs do not meet
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "config.toml", "src", "templates"):
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                tree / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
            )
        else:
            shutil.copy2(ROOT / name, tree / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(tree),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("iomfeed-*.whl")
    # The snapshot ships; its generator and the generator's input (dev/) do not.
    names = zipfile.ZipFile(wheel).namelist()
    assert "iomfeed/demo/site/news/index.html" in names
    assert {"iomfeed/languages/en.toml", "iomfeed/languages/sq.toml"} <= set(names), names
    assert not [n for n in names if "sitegen" in n or n.endswith("content.toml")], names
    site = tmp_path / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("IOMFEED_CONFIG", None)

    def python(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            cwd=elsewhere,
            env=env,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
            **kw,
        )

    where = python("-c", "import iomfeed; print(iomfeed.__file__)")
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr  # the wheel's copy
    init = python("-m", "iomfeed", "init", stdin=subprocess.DEVNULL)
    assert init.returncode == 0, init.stderr
    assert (elsewhere / "config.toml").read_bytes() == (ROOT / "config.toml").read_bytes()
    (elsewhere / "config.toml").unlink()  # the demo needs none: it uses the packaged one

    controller, terminal = pty.openpty()
    errors = (tmp_path / "demo-stderr.txt").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "demo", "--port", "0"],
        cwd=elsewhere,
        env=env,
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=errors,
    )
    os.close(terminal)
    try:
        try:
            out = read_until(demo, b"Serving until Ctrl-C", timeout=240).decode()
        except AssertionError as e:  # say why the demo stopped or stalled
            raise AssertionError(f"{e}\nstderr: {_text(tmp_path / 'demo-stderr.txt')}") from None
        assert "48 items stored in" in out and "Digest: 5 item(s) sent to 2" in out
        feeds_url = re.search(r"the feeds at (http://127\.0\.0\.1:\d+/)", out)
        assert feeds_url, out
        root = feeds_url.group(1)
        demo_dir = elsewhere / "demo"

        def get(url: str) -> tuple[int, str, bytes]:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.headers.get_content_type(), resp.read()

        index = get(root)[2].decode()
        assert index == (demo_dir / "feeds" / "index.html").read_text(encoding="utf-8")
        for page in (
            index,
            *(p.read_text(encoding="utf-8") for p in demo_dir.glob("digest-*.html")),
        ):
            assert "feeds.example.org" not in page
            images = re.findall(r'<img[^>]+src="([^"]+)"', page)
            assert images
            for src in sorted(set(images))[:5]:
                status, kind, _ = get(src.replace("&amp;", "&"))
                assert status == 200 and kind.startswith("image/"), src
            links = set(re.findall(r'href="(http://127\.0\.0\.1:\d+/[^"]*)"', page))
            # (A preview's unsubscribe and preferences links carry a sample token, refused
            # on purpose.)
            feeds = [
                u
                for u in links
                if u.startswith(root) and "/unsubscribe" not in u and "/preferences" not in u
            ]
            assert feeds, links
            for url in sorted(feeds)[:6]:
                assert get(url.replace("&amp;", "&"))[0] == 200, url
        # A sent message's unsubscribe link opens the confirmation page.
        message = next((demo_dir / "outbox").glob("*.eml")).read_text(encoding="utf-8")
        unsubscribe = re.search(r"<(http://127\.0\.0\.1:\d+/unsubscribe\?t=[^>]+)>", message)
        assert unsubscribe and unsubscribe.group(1).startswith(root), message[:2000]
        assert get(unsubscribe.group(1))[0] == 200
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            assert demo.wait(timeout=60) == 0, _text(tmp_path / "demo-stderr.txt")
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"no exit 60 s after Ctrl-C; stderr: {_text(tmp_path / 'demo-stderr.txt')}"
            ) from None
    finally:
        errors.close()
        os.close(controller)
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        assert demo.stdout is not None
        demo.stdout.close()
