"""``iomfeed status`` says what is running on the database as it looks: the process that
holds the run lock (or ``serve``'s), read from the lock file without taking the lock; a run
that was killed is not listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from iomfeed.lock import RunLock, ServiceLock, holders

from .test_cli_snapshot import iomfeed


def config_in(folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text('[[sources]]\nname = "local"\nkind = "json"\npath = "items.json"\n')
    (folder / "items.json").write_text("[]")
    return path


def test_status_names_the_run_holding_the_lock_and_forgets_it_after(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    assert iomfeed("--config", str(config), "fetch", cwd=tmp_path).returncode == 0
    database = tmp_path / "iomfeed.db"
    with RunLock(database, what="iomfeed run"):
        done = iomfeed("--config", str(config), "status", cwd=tmp_path)
        shown = iomfeed("--config", str(config), "status", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    line = done.stdout.splitlines()[1]
    assert line.startswith(f"  running now: pid {os.getpid()}: iomfeed run, since 20")
    assert line.endswith(" UTC")
    assert json.loads(shown.stdout)["running"] == [line.removeprefix("  running now: ")]
    after = iomfeed("--config", str(config), "status", "--json", cwd=tmp_path)
    assert json.loads(after.stdout)["running"] == []  # released: its file names nobody
    assert (tmp_path / "iomfeed.db.lock").read_bytes() == b""


def test_serve_then_a_run_are_listed_and_a_killed_holder_is_not(tmp_path: Path) -> None:
    database = tmp_path / "iomfeed.db"
    with ServiceLock(database), RunLock(database, what="iomfeed serve cycle"):
        serve, run = holders(database)
    assert serve.startswith(f"pid {os.getpid()}: iomfeed serve, since ")
    assert run.startswith(f"pid {os.getpid()}: iomfeed serve cycle, since ")
    # A run killed holding the lock leaves its name in the file; its process is gone.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL
    )
    child.kill()
    child.wait(timeout=30)
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    (tmp_path / "iomfeed.db.lock").write_text(f"{child.pid} iomfeed run\n{since}")
    assert holders(database) == ()
    for junk in ("0 iomfeed run", f"{2**80} iomfeed run", "x iomfeed run", "\xff\xfe"):
        (tmp_path / "iomfeed.db.lock").write_text(junk)
        assert holders(database) == ()  # no number of a process: nobody
    assert holders(tmp_path / "nothing-here.db") == ()
