"""The before/after benchmark harness (benchmarks/compare.py), on tiny inputs: that the
baseline it exports is the code that runs, that it refuses a config it cannot point at the
local site, that the site switch restores the same bytes, and how it reads a ratio. The
timed workloads themselves run only from the command line, never in the test suite."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT


def _compare() -> ModuleType:
    name = "benchmarks_compare"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


compare = _compare()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_an_exported_commit_runs_its_own_code_and_templates(tmp_path: Path) -> None:
    tree = compare.export_ref("HEAD", tmp_path / "tree")
    probe = "import iomfeed, iomfeed.templates; print(iomfeed.__file__, iomfeed.templates.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=tree.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(out) == 2 and all(Path(p).is_relative_to(tmp_path / "tree") for p in out)
    work = tmp_path / "work"
    work.mkdir()
    assert tree.output(work, "--help").startswith("usage: iomfeed")


def test_configure_points_the_shipped_config_at_the_local_site_or_says_why_not(
    tmp_path: Path,
) -> None:
    shipped = compare.Tree("current", ROOT)
    compare.configure(shipped, tmp_path / "ok", "http://127.0.0.1:8001", 2525, 7)
    text = (tmp_path / "ok" / "config.toml").read_text(encoding="utf-8")
    assert compare.LIVE_ORIGIN not in text and "http://127.0.0.1:8001/news" in text
    for line in ("min_delay = 0.0", "max_pages = 7", 'transport = "smtp"', "port = 2525"):
        assert line in text

    old = tmp_path / "old"
    old.mkdir()
    original = (ROOT / "config.toml").read_text(encoding="utf-8")
    (old / "config.toml").write_text(original.replace("min_delay = 0.5", "min_delay = 1"))
    with pytest.raises(SystemExit, match=re.escape("'min_delay = 0.5'")):
        compare.configure(compare.Tree("old", old), tmp_path / "w", "http://h", 1, 1)


def test_the_site_with_one_new_story_and_back_serves_the_same_bytes(tmp_path: Path) -> None:
    site = compare.Site(tmp_path, 3)
    before = _files(site.served)
    assert before == _files(site.before) and before != _files(site.after)
    with site.with_new_story():
        assert _files(site.served) == _files(site.after)
    assert _files(site.served) == before


def test_the_ratio_is_current_over_baseline_and_a_worse_one_is_marked() -> None:
    names = [w.name for w in compare.WORKLOADS]
    assert [w.higher_is_better for w in compare.WORKLOADS] == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    base = {n: [100.0, 90.0, 110.0] for n in names}
    current = {n: [80.0] if n == names[0] else [95.0] for n in names}
    rows, ok = compare.table({"b": base, "c": current}, ["b", "c"], 0.10)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name[names[0]][3].startswith("0.80x") and by_name[names[0]][4] == "SLOWER"
    assert by_name[names[1]][3].startswith("0.95x") and by_name[names[1]][4] == "ok"
    assert by_name[names[4]][4] == "ok"  # 5 % fewer messages a second: within 10 %
    assert by_name[names[5]][4] == "ok"
    assert not ok
    assert all(row[5] == "-" for row in rows[1:])  # no CPU times given


def test_the_cpu_column_is_the_ratio_of_the_medians_where_measured() -> None:
    names = [w.name for w in compare.WORKLOADS]
    walls = {n: [1.0] for n in names}
    cpu_base = {names[1]: [100.0, 300.0, 200.0]}
    cpu_current = {names[1]: [250.0, 150.0, 50.0]}
    rows, ok = compare.table(
        {"b": walls, "c": walls}, ["b", "c"], 0.10, {"b": cpu_base, "c": cpu_current}
    )
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name[names[1]][5] == "0.75x"  # 150 / 200
    assert by_name[names[0]][5] == "-"  # not measured for this row
    assert ok


def test_a_command_reports_the_cpu_its_process_used(tmp_path: Path) -> None:
    tree = compare.Tree("here", tmp_path)
    (tmp_path / "src" / "iomfeed").mkdir(parents=True)
    (tmp_path / "src" / "iomfeed" / "__main__.py").write_text(
        "import sys, time\n"
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "time.sleep(0.3)\n"
        "print('done')\n",
        encoding="utf-8",
    )
    (tmp_path / "src" / "iomfeed" / "__init__.py").write_text("", encoding="utf-8")
    wall, cpu = tree.timed(tmp_path, "anything")
    assert wall >= 0.6
    assert 0.3 <= cpu < wall - 0.2  # the busy loop counted, the sleep not


def test_the_sink_times_the_messages_after_a_count() -> None:
    import smtplib
    import time

    with compare.SmtpSink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
            for n in range(3):
                if n == 2:
                    time.sleep(0.2)
                smtp.sendmail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nbody")
        assert sink.received() == 3
        assert sink.span(0) >= 0.2 and sink.span(1) >= 0.2
        assert sink.span(2) == 0.0  # one message: no interval
        assert sink.span(3) == 0.0  # none


def test_the_sink_serves_connections_at_once_each_in_its_own_process() -> None:
    """A relay that takes several connections: the second is greeted (and its message
    taken) while the first is still open, by another of the sink's processes."""
    import smtplib

    with compare.SmtpSink(workers=2) as sink:
        with (
            smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as first,
            smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as second,
        ):
            second.sendmail("a@example.org", ["b@example.org"], b"Subject: 2\r\n\r\nbody")
            first.sendmail("a@example.org", ["c@example.org"], b"Subject: 1\r\n\r\nbody")
            counts = [int(answer) for answer in sink._ask("?")]
        assert sorted(counts) == [1, 1]  # one message in each process
        assert sink.received() == 2
