"""Shared fixtures: the bundled snapshot served on 127.0.0.1, and configs that point at it."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from iomfeed.config import LIVE_ORIGIN, Config, load_config
from iomfeed.demo.server import DEFAULT_ROOT, SnapshotServer
from iomfeed.ingest import fetch_all
from iomfeed.models import RunReport, StoredItem
from iomfeed.runtime import open_runtime, open_store
from iomfeed.transport import Transport

# A shell without job control starts a background job with Ctrl-C (SIGINT) ignored, and an
# ignored signal stays ignored in every child: the tests that press Ctrl-C on the demo or a
# server would wait for an exit that never comes. A handler, unlike "ignored", is not
# inherited across exec, so each child starts with Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "config.toml"
DATA = Path(__file__).resolve().parent / "data"

#: A fixed "now" for runs in tests: after every snapshot item was published.
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def fresh_python(
    script: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``script`` run by a fresh interpreter on this checkout's code with no other PYTHON*
    setting than ``env``; it must succeed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    environ.update(PYTHONPATH=str(ROOT / "src"), **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regenerate-golden",
        action="store_true",
        help="rewrite the golden files from what the code produces now, instead of comparing",
    )


@pytest.fixture
def regenerate(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regenerate-golden"))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A private copy of the bundled snapshot that a test may edit."""
    target = tmp_path / "site"
    shutil.copytree(DEFAULT_ROOT, target)
    return target


@pytest.fixture
def server(site: Path) -> Iterator[SnapshotServer]:
    with SnapshotServer(site) as srv:
        yield srv
        assert not srv.errors, srv.errors


def local_config(origin: str, base_dir: Path, **http: object) -> Config:
    """The shipped config.toml with the live address swapped for ``origin``, fast timings."""
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(LIVE_ORIGIN, origin)
    config = load_config(CONFIG_FILE, text=text, base_dir=base_dir)
    settings: dict[str, Any] = {"min_delay": 0.0, "timeout": 2.0, "retries": 2, "backoff": 0.01}
    settings.update(http)
    return dataclasses.replace(config, http=dataclasses.replace(config.http, **settings))


@pytest.fixture
def make_config(server: SnapshotServer, tmp_path: Path) -> Callable[..., Config]:
    def make(**http: object) -> Config:
        return local_config(server.origin, tmp_path / "run", **http)

    return make


def fetch(
    config: Config,
    now: datetime = NOW,
    only: tuple[str, ...] = (),
    transport: Transport | None = None,
) -> RunReport:
    """One `iomfeed fetch` run, in process, with a fixed clock (and, given a ``transport``
    such as a :class:`~iomfeed.transport.MockTransport`, no real network)."""
    with open_runtime(config, clock=lambda: now, transport=transport) as rt:
        return fetch_all(config, store=rt.store, http=rt.http, now=rt.clock, only=only)


def stored(config: Config) -> list[StoredItem]:
    with open_store(config) as store:
        return store.items()


@pytest.fixture(autouse=True)
def _no_proxy_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to 127.0.0.1 directly, whatever proxy the machine running them has; the
    proxy tests set their own."""
    for name in ("http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI installs a stderr handler (entry points own logging); undo it after a test."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
