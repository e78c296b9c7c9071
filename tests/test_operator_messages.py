"""What an operator is told, as real processes tell it: `status` after a failed run, the true
cause when robots.txt cannot be fetched, one line about publishing after a failed fetch,
`items` refusing what it cannot do and ending quietly in a pipe, odd paths on the web app,
and a database that cannot be opened explained in words."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from iomfeed.demo.server import Fault, SnapshotServer

from .test_cli_snapshot import iomfeed, write_config

pytestmark = pytest.mark.network


def status(config: Path, cwd: Path) -> tuple[int, str, dict[str, object]]:
    table = iomfeed("--config", str(config), "status", cwd=cwd)
    as_json = iomfeed("--config", str(config), "status", "--json", cwd=cwd)
    assert table.returncode == as_json.returncode, (table.stderr, as_json.stderr)
    return table.returncode, table.stdout, json.loads(as_json.stdout)


def source_row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.strip().startswith(name + " "))


# ----------------------------------------------------------------------------- status


def test_status_after_a_failed_run_says_failed_now_and_exits_1(server: SnapshotServer,
                                                               tmp_path: Path) -> None:
    config = write_config(server, tmp_path)
    server.add_fault("/news", Fault(status=503, times=2))
    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 1
    code, table, data = status(config, tmp_path)
    assert code == 1
    assert table.startswith("status: FAILED")
    assert "! source iom-albania failed in its last run: " in table and "HTTP 503" in table
    assert "failed now" in source_row(table, "iom-albania")
    assert data["status"] == "failed" and data["failed_sources"] == ["iom-albania"]
    assert data["failing_sources"] == []  # not yet operator.failures (3) runs in a row
    (src,) = data["sources"]  # type: ignore[misc]
    assert (src["state"], src["outcome"], src["ok"]) == ("failed", "failed now", False)

    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 1
    code, table, data = status(config, tmp_path)
    assert code == 1 and "failing for 2 runs" in source_row(table, "iom-albania")
    assert "! source iom-albania failed 2 runs in a row: " in table
    (src,) = data["sources"]  # type: ignore[misc]
    assert (src["state"], src["outcome"]) == ("failing", "failing for 2 runs")

    # The site is back: the next run succeeds and status is ok again, exit 0.
    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 0
    code, table, data = status(config, tmp_path)
    assert code == 0 and table.startswith("status: ok")
    assert " ok " in source_row(table, "iom-albania")
    assert data["status"] == "ok" and data["failed_sources"] == []
