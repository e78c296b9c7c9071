"""What an operator is told, as real processes tell it: `status` after a failed run, the true
cause when robots.txt cannot be fetched, one line about publishing after a failed fetch,
`items` refusing what it cannot do and ending quietly in a pipe, odd paths on the web app,
and a database that cannot be opened explained in words."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from iomfeed.demo.server import Fault, SnapshotServer
from iomfeed.ingest import upsert
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items, item
from .test_cli_snapshot import iomfeed, write_config

network = pytest.mark.network


def status(config: Path, cwd: Path) -> tuple[int, str, dict[str, object]]:
    table = iomfeed("--config", str(config), "status", cwd=cwd)
    as_json = iomfeed("--config", str(config), "status", "--json", cwd=cwd)
    assert table.returncode == as_json.returncode, (table.stderr, as_json.stderr)
    return table.returncode, table.stdout, json.loads(as_json.stdout)


def source_row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.strip().startswith(name + " "))


# ----------------------------------------------------------------------------- status


@network
def test_status_after_a_failed_run_says_failed_now_and_exits_1(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("\nmax_pages = 10\n", "\nmax_pages = 1\n"), encoding="utf-8")
    server.add_fault("/news", Fault(status=503, times=2))
    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 1
    code, table, data = status(config, tmp_path)
    assert code == 1
    assert table.startswith("status: FAILED")
    assert "! source iom-albania failed in its last run: " in table and "HTTP 503" in table
    assert "failed now" in source_row(table, "iom-albania")
    assert data["status"] == "failed" and data["failed_sources"] == ["iom-albania"]
    assert data["failing_sources"] == []  # not yet operator.failures (3) runs in a row
    (src,) = cast(list[dict[str, Any]], data["sources"])
    assert (src["state"], src["outcome"], src["ok"]) == ("failed", "failed now", False)

    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 1
    code, table, data = status(config, tmp_path)
    assert code == 1 and "failing for 2 runs" in source_row(table, "iom-albania")
    assert "! source iom-albania failed 2 runs in a row: " in table
    (src,) = cast(list[dict[str, Any]], data["sources"])
    assert (src["state"], src["outcome"]) == ("failing", "failing for 2 runs")

    # The site is back: the next run succeeds and status is ok again, exit 0.
    assert iomfeed("--config", str(config), "-q", "run", cwd=tmp_path).returncode == 0
    code, table, data = status(config, tmp_path)
    assert code == 0 and table.startswith("status: ok")
    assert " ok " in source_row(table, "iom-albania")
    assert data["status"] == "ok" and data["failed_sources"] == []


# ----------------------------------------------------------------------------- robots.txt


def closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there any more
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@network
def test_robots_txt_answering_500_is_reported_as_unreachable(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    server.add_fault("/robots.txt", Fault(status=500, times=1000))
    run = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert run.returncode == 1
    cause = "robots.txt unreachable: HTTP 500 Internal Server Error"
    assert f"iom-albania: FAILED: {server.origin}/news: {cause}" in run.stderr
    assert "disallowed" not in run.stderr and server.hits("/news") == 0  # still not crawled
    code, table, data = status(config, tmp_path)
    assert code == 1 and cause in table
    assert cause in data["sources"][0]["last_error"]  # type: ignore[index]
    live = iomfeed("--config", str(config), "check", "--live", cwd=tmp_path)
    assert live.returncode == 1 and f"FAILED: {server.origin}/news: {cause}" in live.stdout
    assert "disallowed" not in live.stdout + live.stderr


@network
def test_robots_txt_on_a_closed_port_is_reported_as_unreachable(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    origin = f"http://127.0.0.1:{closed_port()}"
    config.write_text(
        config.read_text(encoding="utf-8").replace(server.origin, origin), encoding="utf-8"
    )
    for command in (("run",), ("check", "--live")):
        done = iomfeed("--config", str(config), *command, cwd=tmp_path)
        out = done.stdout + done.stderr
        assert done.returncode == 1, out
        assert f"{origin}/news: robots.txt unreachable: connection refused;" in out
        assert "disallowed" not in out
    _code, table, _data = status(config, tmp_path)
    assert "! source iom-albania failed in its last run:" in table
    assert "robots.txt unreachable: connection refused" in table


@network
def test_a_timeout_is_said_once(server: SnapshotServer) -> None:
    from iomfeed.config import HttpConfig
    from iomfeed.errors import FetchError
    from iomfeed.http import HttpClient

    server.add_fault("/robots.txt", Fault(status=200, delay=1.0, times=2))
    http = HttpClient(HttpConfig(timeout=0.2, retries=1, backoff=0.01, min_delay=0.0))
    with http, pytest.raises(FetchError) as caught:
        http.get(server.url("/news"))
    message = str(caught.value)
    assert message == (
        f"{server.url('/news')}: robots.txt unreachable: timed out"
        " (gave up after 2 attempts); not crawling this site this run"
    )


def test_a_dns_failure_says_the_host_name_was_not_found() -> None:
    from iomfeed.http import _describe_error

    error = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert _describe_error(error) == "host name not found (DNS: Name or service not known)"


# ----------------------------------------------------------------------------- run output


@network
def test_a_failed_first_run_says_once_that_nothing_was_published(
    server: SnapshotServer, tmp_path: Path
) -> None:
    config = write_config(server, tmp_path)
    server.add_fault("/news", Fault(status=503))
    run = iomfeed("--config", str(config), "run", cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    about_publishing = [line for line in lines if "publish" in line]
    assert about_publishing == [
        "nothing published: the store has no items yet (the fetch failed)"
    ], run.stderr
    assert lines.index(about_publishing[0]) > lines.index(
        next(line for line in lines if line.startswith("iom-albania: FAILED: "))
    )
    published = iomfeed("--config", str(config), "publish", cwd=tmp_path)
    assert published.returncode == 0
    assert published.stderr == (
        "nothing published: the store has no items yet (run 'iomfeed fetch' first)\n"
    )


# ----------------------------------------------------------------------------- items


@pytest.fixture
def stocked(tmp_path: Path) -> Path:
    """The shipped config beside a store of 1,000 items (more than a pipe holds as text) and
    one item of a source no longer configured."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        add_items(store, range(1000), NOW)
        upsert(store, item(5000, source="old-feed"), NOW)
    return config


def test_items_refuses_an_unknown_source_like_fetch(stocked: Path) -> None:
    cwd = stocked.parent
    unknown = iomfeed("--config", str(stocked), "items", "--source", "nope", cwd=cwd)
    fetch = iomfeed("--config", str(stocked), "fetch", "--source", "nope", cwd=cwd)
    assert unknown.returncode == fetch.returncode == 2
    assert "no source named 'nope' (configured: iom-albania)" in unknown.stderr
    assert unknown.stderr == fetch.stderr and unknown.stdout == ""
    # A source removed from the config still lists what it left in the store.
    old = iomfeed("--config", str(stocked), "items", "--source", "old-feed", cwd=cwd)
    assert old.returncode == 0 and "story-5000" in old.stdout and "story-1" not in old.stdout


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_items_refuses_a_limit_below_one(stocked: Path, limit: str) -> None:
    done = iomfeed("--config", str(stocked), "items", "--limit", limit, cwd=stocked.parent)
    assert done.returncode == 2 and done.stdout == ""
    assert "argument --limit:" in done.stderr


def test_items_limit_n_lists_n(stocked: Path) -> None:
    done = iomfeed("--config", str(stocked), "items", "--json", "--limit", "2", cwd=stocked.parent)
    assert [i["url"][-8:] for i in json.loads(done.stdout)] == ["/story-0", "/story-1"]


@pytest.mark.parametrize(
    "command", [("items",), ("items", "--json"), ("status",), ("status", "--json"), ("check",)]
)
def test_a_reader_that_stops_reading_ends_the_command_quietly(
    stocked: Path, command: tuple[str, ...]
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "iomfeed", "--config", str(stocked), *command],
        cwd=stocked.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # before the command writes: every write hits a closed pipe
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141, err
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_items_piped_into_head_ends_quietly(stocked: Path) -> None:
    script = f"{sys.executable} -m iomfeed --config {stocked} items | head -n 2"
    done = subprocess.run(
        ["sh", "-c", script],
        cwd=stocked.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 2
    assert done.stderr == ""


# ----------------------------------------------------------------------------- web paths


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The WSGI app over real HTTP on 127.0.0.1, a published atom.xml and, beside the feeds
    folder, a file no request may reach."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from iomfeed.web import App

    from .digestkit import digest_config

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    config = digest_config(tmp_path)
    config.feeds_path.mkdir(parents=True)
    (config.feeds_path / "atom.xml").write_text("<feed/>", encoding="utf-8")
    (config.feeds_path.parent / "secret.txt").write_text("not for the web", encoding="utf-8")
    Store(config.database_path).close()
    server = make_server("127.0.0.1", 0, App(config, now=lambda: NOW), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, config.feeds_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    """GET with the request target sent exactly as given (http.client refuses odd ones)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


@network
@pytest.mark.parametrize(
    "target",
    [
        b"/" + b"a" * 5000,  # one segment longer than any file name may be
        b"/a" * 3000,  # a path longer than the system allows
        b"/" + b"%61" * 5000,
        b"/atom.xml%00",
        b"/%00",
        b"/a%00b/atom.xml",
        b"/../secret.txt",
        b"/..%2Fsecret.txt",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E%2Fsecret.txt",
        b"/%252e%252e%252fsecret.txt",
        b"/.%2e/secret.txt",
        b"/atom.xml/..%2F..%2Fsecret.txt",
        b"/atom.xml/",
        b"/%C0%AE%C0%AE/secret.txt",
        b"/%FF%FE",
        b"/.hidden",
    ],
)
def test_odd_paths_are_404_without_an_error_in_the_log(
    web: tuple[int, Path], target: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    port, _feeds = web
    code, body = raw_get(port, target)
    assert code == 404 and body == b"not found\n"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@network
def test_very_long_query_strings_are_answered_as_usual(
    web: tuple[int, Path], caplog: pytest.LogCaptureFixture
) -> None:
    port, _feeds = web
    long = b"x=" + b"y" * 30_000
    assert raw_get(port, b"/atom.xml?" + long) == (200, b"<feed/>")
    assert raw_get(port, b"/?" + long)[0] == 404  # no index.html published yet
    assert raw_get(port, b"/unsubscribe?t=" + b"a" * 30_000)[0] == 400
    assert raw_get(port, b"/unsubscribe?t=%00%FF&" + long)[0] == 400
    assert raw_get(port, b"/healthz?" + long)[0] == 200
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


# ----------------------------------------------------------------------------- the database


def db_config(folder: Path, database: str = "iomfeed.db") -> Path:
    """The shipped config in ``folder`` with the store at ``database`` (relative to it)."""
    text = CONFIG_FILE.read_text(encoding="utf-8")
    assert '\ndatabase = "iomfeed.db"\n' in text
    config = folder / "config.toml"
    config.write_text(
        text.replace('\ndatabase = "iomfeed.db"\n', f'\ndatabase = "{database}"\n'),
        encoding="utf-8",
    )
    return config


def run_limited(config: Path, fsize: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a process whose RLIMIT_FSIZE (ulimit -f) is ``fsize`` bytes."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))\n"
        "from iomfeed.cli import main\n"
        f"sys.exit(main({['--config', str(config), *args]!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_file_size_limit_on_a_new_database_is_named(tmp_path: Path) -> None:
    config = db_config(tmp_path)
    done = run_limited(config, 8192, "publish")  # (a command that makes the store)
    database = tmp_path / "iomfeed.db"
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"iomfeed: cannot open the database {database}: this process may not write files"
        " larger than 8192 bytes (the file-size limit, ulimit -f); raise it"
        " (SQLite: disk I/O error)\n"
    )


def test_a_file_size_limit_reached_while_writing_is_named(tmp_path: Path) -> None:
    config = db_config(tmp_path)
    assert iomfeed("--config", str(config), "publish", cwd=tmp_path).returncode == 0  # a store
    rows = "".join(f"reader{i}@example.org,Reader {i},en\n" for i in range(3000))
    (tmp_path / "many.csv").write_text(rows, encoding="utf-8")
    done = run_limited(config, 200_000, "subscribers", "import", "many.csv")
    assert done.returncode == 1
    assert (
        f"iomfeed: cannot use the database {tmp_path / 'iomfeed.db'}: this process may not"
        " write files larger than 200000 bytes (the file-size limit, ulimit -f)" in done.stderr
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    import os

    config = db_config(tmp_path)
    (tmp_path / "iomfeed.db").write_bytes(os.urandom(5000))
    done = iomfeed("--config", str(config), "subscribers", "list", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        f"iomfeed: cannot open the database {tmp_path / 'iomfeed.db'}: the file is not an"
        " SQLite database (does storage.database name some other file?); move it away or"
        " point storage.database elsewhere (SQLite: file is not a database)\n"
    )


@pytest.fixture
def unprivileged() -> Iterator[tuple[Path, list[str]]]:
    """A folder, and the command prefix that runs a program as a user file permissions apply
    to: this one, or, when the tests run as root (whom permissions do not stop), root without
    the capabilities that override them (through util-linux's setpriv)."""
    import os
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="iomfeed-perm-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        prefix = [
            shutil.which("setpriv") or "setpriv",
            f"--inh-caps={caps}",
            f"--bounding-set={caps}",
        ]
        try:
            probe = subprocess.run(
                [*prefix, sys.executable, "-c", "import iomfeed.cli"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            problem = probe.stderr[-200:] if probe.returncode else ""
        except OSError as exc:
            problem = str(exc)
        if problem:
            shutil.rmtree(folder)
            pytest.skip(f"running as root and cannot drop the permission overrides: {problem}")
    try:
        yield folder, prefix
    finally:
        for sub in folder.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(folder)


def as_user(prefix: list[str], config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "iomfeed", "--config", str(config), *args],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_read_only_folder_is_named(unprivileged: tuple[Path, list[str]]) -> None:
    folder, prefix = unprivileged
    config = db_config(folder, "data/iomfeed.db")
    (folder / "data").mkdir()
    (folder / "data").chmod(0o555)
    done = as_user(prefix, config, "subscribers", "add", "ana@example.org")  # (makes a store)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"iomfeed: cannot open the database {folder / 'data' / 'iomfeed.db'}: the folder"
        f" {folder / 'data'} is not writable by this user (uid "
    ), done.stderr
    assert "the database and its -wal and -shm files are created there" in done.stderr
    assert done.stderr.endswith("(SQLite: unable to open database file)\n")


def test_a_database_file_without_permission_is_named(unprivileged: tuple[Path, list[str]]) -> None:
    folder, prefix = unprivileged
    config = db_config(folder, "data/iomfeed.db")
    (folder / "data").mkdir()
    database = folder / "data" / "iomfeed.db"
    Store(database).close()
    database.chmod(0o000)  # this user may not read it
    done = as_user(prefix, config, "subscribers", "list")
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"iomfeed: cannot open the database {database}: {database}"
        " cannot be read and written by this user (uid "
    ), done.stderr


def test_a_file_size_limit_reached_while_storing_a_page_is_named(tmp_path: Path) -> None:
    """A page's items go in one transaction, whose COMMIT is where WAL mode reports a full
    disk or a file-size limit: explained like any other database error, no traceback."""
    import json

    def records(n: int) -> str:
        return json.dumps(
            [
                {
                    "url": f"https://albania.iom.int/news/story-{i}",
                    "title": f"Story {i}",
                    "date_published": "2024-01-01",
                    "content_html": "<p>" + "words " * 400 + "</p>",
                }
                for i in range(n)
            ]
        )

    (tmp_path / "items.json").write_text(records(1), encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "manual"\nkind = "json"\npath = "items.json"\n', encoding="utf-8"
    )
    first = iomfeed("--config", str(config), "--quiet", "fetch", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "items.json").write_text(records(400), encoding="utf-8")
    done = run_limited(config, 200_000, "--quiet", "fetch")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert (
        f"iomfeed: cannot use the database {tmp_path / 'iomfeed.db'}: this process may not"
        " write files larger than 200000 bytes (the file-size limit, ulimit -f)" in done.stderr
    ), done.stderr
