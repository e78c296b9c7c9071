"""``iomfeed doctor``'s checks over the network, all on 127.0.0.1: the relay's TLS and login
against aiosmtpd (STARTTLS with a test certificate authority, implicit TLS, none, a wrong
password; never a MAIL command), the one-click unsubscribe probe against the WSGI app, the
feeds' URLs against the app and a server that answers wrongly, the digest's size from a
real store, and the whole command in a subprocess."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from iomfeed.config import Config, SmtpConfig
from iomfeed.digest.message import unsubscribe_link
from iomfeed.digest.unsubscribe import probe_token
from iomfeed.doctor import Status, feed_checks, size_checks, unsubscribe_check
from iomfeed.doctor.relay import check_relay
from iomfeed.doctor.urls import check_unsubscribe
from iomfeed.store import Store
from iomfeed.web import App

from . import smtp as smtpkit
from .conftest import CONFIG_FILE, NOW, ROOT
from .digestkit import add_items, add_subscribers, digest_config
from .dkimkit import DkimKey, make_key
from .dnsserver import dns_server
from .smtp import free_port, make_test_ca, smtp_server

pytestmark = pytest.mark.network

USER, PASSWORD = "digest", "s3cret-pass"
ENV = {"IOMFEED_SMTP_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> smtpkit.TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


Security = Literal["starttls", "tls", "none"]


def smtp(port: int, security: Security = "starttls", username: str = USER) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, security=security, username=username, timeout=10)


# ---------------------------------------------------------------------------- the relay


def test_starttls_with_a_valid_certificate_and_the_login_pass(ca: smtpkit.TestCA) -> None:
    # The test certificate is valid for 7 days from now: a month ago it had time to spare.
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (handler, port):
        tls, login = check_relay(smtp(port), ENV, ca.ca_file, month_ago)
        soon, _ = check_relay(smtp(port), ENV, ca.ca_file, datetime.now(UTC))
    assert tls.status is Status.OK and "offers STARTTLS" in tls.found, tls
    assert "issued by iomfeed test CA, valid until" in tls.found
    assert soon.status is Status.WARN and "it expires in 6 day(s)" in soon.found, soon
    assert login.status is Status.OK and "accepted the login of 'digest'" in login.found
    assert handler.mail_count == 0 and handler.received == []  # nothing was sent


def test_a_certificate_this_machine_does_not_trust_fails(ca: smtpkit.TestCA) -> None:
    with smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (_h, port):
        tls, login = check_relay(smtp(port), ENV, None, NOW)
    assert tls.status is Status.FAIL and "the certificate is not valid" in tls.found, tls
    assert "mail.smtp.ca_file" in tls.fix
    assert login.status is Status.SKIP


def test_a_relay_without_starttls_fails() -> None:
    with smtp_server() as (_h, port):
        tls, login = check_relay(smtp(port), ENV, None, NOW)
    assert tls.status is Status.FAIL and "does not offer STARTTLS" in tls.found
    assert login.status is Status.SKIP


def test_a_wrong_password_fails_naming_the_user(ca: smtpkit.TestCA) -> None:
    with smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (_h, port):
        tls, login = check_relay(smtp(port), {"IOMFEED_SMTP_PASSWORD": "wrong"}, ca.ca_file, NOW)
    assert tls.status is Status.OK
    assert login.status is Status.FAIL and "refused the login of 'digest'" in login.found
    assert "IOMFEED_SMTP_PASSWORD" in login.fix


def test_an_unset_password_variable_fails_naming_it(ca: smtpkit.TestCA) -> None:
    with smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (_h, port):
        _tls, login = check_relay(smtp(port), {}, ca.ca_file, NOW)
    assert login.status is Status.FAIL and "IOMFEED_SMTP_PASSWORD" in login.found


def test_implicit_tls(ca: smtpkit.TestCA) -> None:
    with smtp_server(implicit_tls=ca.server_context()) as (handler, port):
        tls, login = check_relay(smtp(port, "tls", username=""), ENV, ca.ca_file, NOW)
    assert tls.status is Status.OK and "implicit TLS" in tls.found, tls
    assert login.status is Status.OK and "no login configured" in login.found
    assert handler.mail_count == 0


def test_implicit_tls_against_a_plain_server_fails() -> None:
    with smtp_server() as (_h, port):
        tls, _ = check_relay(smtp(port, "tls", username=""), ENV, None, NOW)
    assert tls.status is Status.FAIL


def test_no_tls_on_this_machine_is_fine_and_nothing_listening_fails() -> None:
    with smtp_server() as (_h, port):
        tls, _ = check_relay(smtp(port, "none", username=""), ENV, None, NOW)
    assert tls.status is Status.OK and "on this machine" in tls.found
    tls, login = check_relay(smtp(free_port(), "none", username=""), ENV, None, NOW)
    assert tls.status is Status.FAIL and "cannot connect" in tls.found
    assert login.status is Status.SKIP


# ------------------------------------------------------------------ unsubscribe, feeds


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Config, str]]:
    """The WSGI app on 127.0.0.1 over a store with three subscribers and published feeds;
    the config's public addresses point at it."""
    config = digest_config(tmp_path)
    feeds = config.feeds_path
    feeds.mkdir(parents=True)
    for name, body in {
        "atom.xml": "<?xml version='1.0'?><feed/>",
        "rss.xml": "<?xml version='1.0'?><rss/>",
        "feed.json": "{}",
        "index.html": "<!doctype html><title>x</title>",
    }.items():
        (feeds / name).write_text(body)
    with Store(config.database_path) as store:
        add_subscribers(store, 3)
    server = make_server("127.0.0.1", 0, App(config, now=lambda: NOW), handler_class=_Quiet)
    base = f"http://127.0.0.1:{server.server_port}/"
    config = dataclasses.replace(
        config,
        site=dataclasses.replace(config.site, public_url=base),
        mail=dataclasses.replace(config.mail, unsubscribe_url=base + "unsubscribe"),
    )
    server.set_app(App(config, now=lambda: NOW))  # the list's id follows public_url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield config, base
    finally:
        server.shutdown()
        server.server_close()


def test_the_one_click_probe_gets_200_and_unsubscribes_nobody(app: tuple[Config, str]) -> None:
    config, _base = app
    with Store(config.database_path) as store:
        check = unsubscribe_check(config, store)
        statuses = {s.address: s.status for s in store.subscribers()}
    assert check.status is Status.OK and "200, no redirect" in check.found, check
    assert set(statuses.values()) == {"active"}, statuses


def test_the_probe_is_only_a_post_and_only_signed(app: tuple[Config, str]) -> None:
    import http.client

    config, base = app
    with Store(config.database_path) as store:
        from iomfeed.digest.unsubscribe import load_secret

        token = probe_token(load_secret(config, store), config.list_id)
    port = int(base.rsplit(":", 1)[1].strip("/"))

    def ask(method: str, token: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = b"List-Unsubscribe=One-Click" if method == "POST" else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request(method, f"/unsubscribe?t={token}", body=body, headers=headers)
        response = connection.getresponse()
        answer = response.status, response.read()
        connection.close()
        return answer

    status, body = ask("POST", token)
    assert status == 200 and b"nobody was unsubscribed" in body
    assert ask("GET", token)[0] == 400  # a page for people: the probe names nobody
    assert ask("POST", "0." + "A" * 22)[0] == 400  # unsigned: a malformed token, as before


def test_a_server_with_another_secret_refuses_the_probe(app: tuple[Config, str]) -> None:
    config, base = app
    other = probe_token(b"another secret, not the list's", config.list_id)
    check = check_unsubscribe(unsubscribe_link(base + "unsubscribe", other))
    assert check.status is Status.FAIL and "400 instead of 200" in check.found
    assert "secret" in check.fix


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each path as ``ANSWERS`` says: (status, content type, Location)."""

    answers: ClassVar[dict[str, tuple[int, str, str]]] = {}

    def _answer(self) -> None:
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, kind, location = self.answers.get(self.path.split("?")[0], (404, "text/plain", ""))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[tuple[type[_Scripted], str]]:
    handler = type("Handler", (_Scripted,), {"answers": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unsubscribe_url_that_redirects_fails(scripted: tuple[type[_Scripted], str]) -> None:
    handler, base = scripted
    handler.answers["/unsubscribe"] = (302, "text/html", "https://elsewhere.example.net/u")
    check = check_unsubscribe(base + "unsubscribe?t=0.x")
    assert check.status is Status.FAIL and "302, a redirect to https://elsewhere" in check.found


def test_the_feeds_served_by_the_app_pass(app: tuple[Config, str]) -> None:
    config, base = app
    checks = feed_checks(config)
    assert [c.status for c in checks] == [Status.OK] * 4, checks
    assert f"{base}feed.json: 200, application/feed+json" in checks[2].found


def test_feeds_with_wrong_answers_are_named(
    tmp_path: Path, scripted: tuple[type[_Scripted], str]
) -> None:
    handler, base = scripted
    handler.answers.update(
        {
            "/atom.xml": (200, "application/xml", ""),
            "/rss.xml": (200, "text/plain", ""),
            "/index.html": (301, "text/html", base + "elsewhere/"),
        }
    )
    config = digest_config(tmp_path)
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, public_url=base))
    checks = {c.name: c for c in feed_checks(config)}
    assert checks["public atom.xml"].status is Status.WARN
    assert "application/xml rather than application/atom+xml" in checks["public atom.xml"].found
    assert checks["public rss.xml"].status is Status.FAIL
    assert "text/plain instead of application/rss+xml" in checks["public rss.xml"].found
    assert checks["public feed.json"].status is Status.FAIL
    assert "answered 404" in checks["public feed.json"].found
    assert "answered 301 (to " in checks["public index.html"].found


# ------------------------------------------------------------------------ digest size


def test_the_digest_size_is_measured_per_language(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    with Store(config.database_path) as store:
        empty = size_checks(config, store, NOW)
        add_items(store, range(1, 8), NOW - timedelta(hours=2))
        full = size_checks(config, store, NOW)
        record = store.create_digest(created=NOW, since=None, cutoff=NOW, item_ids=[], more=0)
        assert store.finish_digest(record.id, NOW)  # every story went out
        after = size_checks(config, store, NOW + timedelta(hours=1))
    # It said "the store has no stories yet" with seven in it.
    assert {c.status for c in after} == {Status.WARN}
    assert "nothing is new since the last digest" in after[0].found, after[0]
    assert [c.name for c in full] == ["digest size (en)", "digest size (sq)"]
    assert {c.status for c in empty} == {Status.WARN}
    assert "no stories yet" in empty[0].found
    assert {c.status for c in full} == {Status.OK}, full
    assert "5 of 5 stories shown" in full[0].found  # the first digest: digest.first_items


def test_a_digest_over_gmails_clipping_size_fails(tmp_path: Path) -> None:
    config = digest_config(tmp_path, digest={"max_bytes": 400_000, "first_items": 150})
    with Store(config.database_path) as store:
        add_items(store, range(1, 151), NOW - timedelta(hours=2))
        checks = size_checks(config, store, NOW)
    assert checks[0].status is Status.FAIL, checks[0]
    assert "over Gmail's 102 kB" in checks[0].found and "digest.max_bytes" in checks[0].fix


# ------------------------------------------------------------------- the whole command


def _config_file(
    folder: Path, base: str, smtp_port: int, ca: smtpkit.TestCA, database: Path, key: Path
) -> Path:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    for old, new in {
        'public_url = "https://feeds.example.org/iom-albania/"': f'public_url = "{base}"',
        'database = "iomfeed.db"': f'database = "{database}"',
        'transport = "outbox"': 'transport = "smtp"',
        'from_address = "news@feeds.example.org"': 'from_address = "news@example.net"',
        'bounce_address = ""': 'bounce_address = "bounces@example.net"',
        'host = "localhost"': 'host = "127.0.0.1"',
        "port = 587": f"port = {smtp_port}",
        'username = ""': f'username = "{USER}"',
        'ca_file = ""': f'ca_file = "{ca.ca_file}"',
        'selector = ""': 'selector = "news2026"',
        'key_file = ""': f'key_file = "{key}"',
    }.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / "doctor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _doctor(config: Path, resolver: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "iomfeed",
            "--config",
            str(config),
            "doctor",
            "--resolver",
            resolver,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _records(key: DkimKey) -> dict[tuple[str, str], list[str]]:
    return {
        ("example.net", "TXT"): ["v=spf1 ip4:203.0.113.25 -all"],
        ("_dmarc.example.net", "TXT"): ["v=DMARC1; p=reject"],
        ("news2026._domainkey.example.net", "TXT"): [key.record.decode()],
    }


def test_the_command_exits_0_when_nothing_fails_and_1_when_something_does(
    app: tuple[Config, str], ca: smtpkit.TestCA, tmp_path: Path
) -> None:
    config, base = app
    with (
        smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (handler, port),
        dns_server(_records(key := make_key(tmp_path))) as dns,
    ):
        path = _config_file(tmp_path, base, port, ca, config.database_path, key.path)
        good = _doctor(path, dns.address, "--json")
        text = _doctor(path, dns.address)
        strict = _doctor(path, dns.address, "--strict")
        del dns.records[("_dmarc.example.net", "TXT")]
        dns.records[("news2026._domainkey.example.net", "TXT")] = [
            make_key(tmp_path, name="other.pem").record.decode()
        ]
        broken = _doctor(path, dns.address)
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert report["passed"] is True
    # The relay at 127.0.0.1: SPF cannot be judged from here.
    assert statuses["SPF"] == "warn"
    assert statuses["relay TLS"] == "warn"  # the test certificate expires within 14 days
    for name in ("DKIM", "DMARC", "alignment", "relay login", "one-click unsubscribe"):
        assert statuses[name] == "ok", (name, report)
    assert statuses["public atom.xml"] == "ok" and statuses["digest size (sq)"] == "warn"
    assert handler.mail_count == 0
    assert text.returncode == 0 and "doctor: " in text.stdout.splitlines()[-1]
    assert "ready to send" in text.stdout
    assert strict.returncode == 1  # the warnings count with --strict
    assert broken.returncode == 1
    assert (
        "fail  DMARC" in broken.stdout and "no DMARC record at _dmarc.example.net" in broken.stdout
    )


def test_doctor_before_the_first_run_makes_no_store(
    app: tuple[Config, str], ca: smtpkit.TestCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preflight only reads: on a new install it skips what needs a store (the size of a
    digest of stories there are none of yet, the secret the store would make) instead of
    making one; with the secret in the environment it still probes the one-click link."""
    config, base = app
    fresh = tmp_path / "not-yet" / "iomfeed.db"
    fresh.parent.mkdir()
    found = []
    with (
        smtp_server(tls=ca.server_context(), auth=(USER, PASSWORD)) as (_handler, port),
        dns_server(_records(key := make_key(tmp_path))) as dns,
    ):
        path = _config_file(tmp_path, base, port, ca, fresh, key.path)
        monkeypatch.delenv(config.mail.secret_env, raising=False)
        found.append(json.loads(_doctor(path, dns.address, "--json").stdout))
        # (The served app runs in this process: it reads the same variable.)
        monkeypatch.setenv(config.mail.secret_env, "a secret from the environment, long")
        found.append(json.loads(_doctor(path, dns.address, "--json").stdout))
    without, with_env = ({c["name"]: (c["status"], c["found"]) for c in r["checks"]} for r in found)
    assert without["digest size"] == ("skip", "not measured: no store yet, no stories")
    assert without["one-click unsubscribe"] == (
        "skip",
        "not asked: no store yet, whose secret signs",
    )
    assert with_env["one-click unsubscribe"][0] == "ok"  # asked, signed with that secret
    assert list(fresh.parent.iterdir()) == []  # no store, no -wal, no lock file


def test_the_cron_path_does_not_import_dnspython(tmp_path: Path) -> None:
    code = (
        "import sys, iomfeed.cli, iomfeed.pipeline, iomfeed.web\n"
        "print(sorted(m for m in ('dns', 'dkim', 'iomfeed.doctor') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_resolver_that_is_not_an_address_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    run = _doctor(config, "dns.example.net")
    assert run.returncode == 2, run.stderr
    assert "--resolver dns.example.net: give the DNS server as an IP address" in run.stderr
    assert not (tmp_path / "iomfeed.db").exists()  # refused before anything was opened
