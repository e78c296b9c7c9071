"""The bounce mailbox over IMAP, against a real server: Debian's dovecot, configured here
in a temporary folder on a free 127.0.0.1 port with a password file of its own (skipped,
saying so, where dovecot is not installed: ``apt-get install dovecot-imapd``)."""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from iomfeed.errors import MailboxError
from iomfeed.pipeline import read_bounces

from .bouncekit import fill, prepared
from .conftest import NOW
from .smtp import make_test_ca

DOVECOT = shutil.which("dovecot") or (
    "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else ""
)
PASSWORD = "imap-test-password"

pytestmark = pytest.mark.skipif(
    not DOVECOT,
    reason="dovecot is not installed (Debian: apt-get install dovecot-imapd); the IMAP"
    " bounce tests need a real server",
)


@dataclasses.dataclass
class Dovecot:
    port: int  # IMAP, with STARTTLS
    tls_port: int  # IMAP over TLS
    ca_file: Path  # the authority of the server's certificate (localhost, 127.0.0.1)
    inbox: Path  # the user's Maildir
    owner: tuple[int, int]  # who the mail files must belong to


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _users() -> tuple[str, str, str, int, int]:
    """(internal user, its group, login user, mail uid, mail gid). As root, dovecot runs
    its login processes as the package's unprivileged users; otherwise as this user."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.getuid())
        group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True)
        return me.pw_name, group.stdout.strip(), me.pw_name, me.pw_uid, me.pw_gid
    try:
        internal, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
    except KeyError:
        pytest.skip("running as root, and dovecot's users (dovecot, dovenull) do not exist")
    import grp

    return (
        "dovecot",
        grp.getgrgid(internal.pw_gid).gr_name,
        login.pw_name,
        internal.pw_uid,
        internal.pw_gid,
    )


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    # As root, dovecot's own users must reach the folder: pytest's are private (0700).
    root = Path(tempfile.mkdtemp(prefix="iomfeed-dovecot-")) if os.geteuid() == 0 else tmp_path
    try:
        yield from _serve(root)
    finally:
        if root != tmp_path:
            shutil.rmtree(root, ignore_errors=True)


def _serve(root: Path) -> Iterator[Dovecot]:
    for sub in ("run", "state", "home", "mail/bounces/new", "mail/bounces/cur", "mail/bounces/tmp"):
        (root / sub).mkdir(parents=True)
    internal, group, login, uid, gid = _users()
    port, tls_port = _free_port(), _free_port()
    ca = make_test_ca(root / "tls")
    (root / "passwd").write_text(f"bounces:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
    (root / "dovecot.conf").write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{ca.cert_file}
ssl_key = <{ca.key_file}
disable_plaintext_auth = no
listen = 127.0.0.1
protocols = imap
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
""",
        encoding="utf-8",
    )
    _own(root, uid, gid)
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(root / "dovecot.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for(port, proc, root)
        yield Dovecot(port, tls_port, ca.ca_file, root / "mail" / "bounces", (uid, gid))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _own(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            os.chown(path, uid, gid)


def _wait_for(port: int, proc: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (root / "dovecot.log").read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"dovecot exited ({proc.returncode}): {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("dovecot did not answer on its port within 15 s")


def _drop(server: Dovecot, raw: bytes, name: str) -> None:
    path = server.inbox / "new" / name
    path.write_bytes(raw)
    if os.geteuid() == 0:
        os.chown(path, *server.owner)


def test_bounces_read_over_imap_are_flagged_seen_and_moved_never_deleted(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imaplib

    config, store, sent = prepared(tmp_path)
    bounces = dataclasses.replace(
        config.bounces, maildir="", imap_host="127.0.0.1", imap_port=dovecot.port,
        imap_security="none", imap_user="bounces", imap_done_folder="Processed",
    )  # fmt: skip
    config = dataclasses.replace(config, bounces=bounces)
    monkeypatch.setenv("IOMFEED_IMAP_PASSWORD", PASSWORD)
    client = imaplib.IMAP4("127.0.0.1", dovecot.port)
    client.login("bounces", PASSWORD)
    client.create("Processed")
    _drop(dovecot, fill("postfix-dsn", sent[0]), "1.eml")
    _drop(dovecot, fill("arf", sent[1]), "2.eml")
    _drop(dovecot, fill("out-of-office", sent[2]), "3.eml")
    with store:
        report = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.ok, report.error
        assert report.kinds == {"hard": 1, "complaint": 1, "auto-reply": 1}
        assert report.unsubscribed == 1
        sub = store.subscriber(sent[1].recipient)
        assert sub is not None and sub.status == "unsubscribed"
        again = read_bounces(config, store=store, clock=lambda: NOW + timedelta(hours=2))
        assert again.read == again.again == 0  # nothing unseen is left
    client.select("INBOX")
    assert client.uid("SEARCH", "ALL")[1] == [b""]  # moved out of the inbox ...
    client.select("Processed")
    typ, data = client.uid("SEARCH", "SEEN")
    assert typ == "OK" and len(data[0].split()) == 3  # ... all three there, seen
    client.logout()


def test_a_wrong_password_is_named_and_changes_nothing(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, store, sent = prepared(tmp_path)
    bounces = dataclasses.replace(
        config.bounces, maildir="", imap_host="127.0.0.1", imap_port=dovecot.port,
        imap_security="none", imap_user="bounces",
    )  # fmt: skip
    config = dataclasses.replace(config, bounces=bounces)
    monkeypatch.setenv("IOMFEED_IMAP_PASSWORD", "not-the-password")
    _drop(dovecot, fill("postfix-dsn", sent[0]), "1.eml")
    with store, pytest.raises(MailboxError, match=r"IMAP 127\.0\.0\.1:\d+ \(user 'bounces'\)"):
        read_bounces(config, store=store, clock=lambda: NOW)
    assert list((dovecot.inbox / "new").iterdir())  # still there, unread


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_verify_the_server_certificate(
    tmp_path: Path, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    config, store, sent = prepared(tmp_path)
    port = dovecot.tls_port if security == "tls" else dovecot.port
    bounces = dataclasses.replace(
        config.bounces, maildir="", imap_host="127.0.0.1", imap_port=port,
        imap_security=security, imap_user="bounces",  # type: ignore[arg-type]
    )  # fmt: skip
    monkeypatch.setenv("IOMFEED_IMAP_PASSWORD", PASSWORD)
    _drop(dovecot, fill("exim", sent[0]), "1.eml")
    untrusted = dataclasses.replace(config, bounces=bounces)
    with store:
        # The test authority is not the system's: the connection is refused, nothing read.
        with pytest.raises(MailboxError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
            read_bounces(untrusted, store=store, clock=lambda: NOW)
        trusted = dataclasses.replace(
            config, bounces=dataclasses.replace(bounces, imap_ca_file=str(dovecot.ca_file))
        )
        report = read_bounces(trusted, store=store, clock=lambda: NOW + timedelta(hours=1))
        assert report.ok and report.kinds == {"hard": 1}, report


#: ``iomfeed bounces`` that kills itself (SIGKILL) when asked to flag the second message.
KILLER = (
    "import os, signal, sys\n"
    "from iomfeed.bounces import mailbox\n"
    "done, calls = mailbox.ImapBox.done, []\n"
    "def dying(self, key):\n"
    "    calls.append(key)\n"
    "    if len(calls) == 2:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    done(self, key)\n"
    "mailbox.ImapBox.done = dying\n"
    "from iomfeed.cli import main\n"
    "sys.exit(main(['--config', sys.argv[1], 'bounces']))\n"
)


def test_killed_mid_mailbox_over_imap_nothing_is_lost_or_counted_twice(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    import sys

    from iomfeed.config import load_config
    from iomfeed.store import Store

    from .test_bounces_cli import config_file, sent_list

    path = config_file(tmp_path)
    _config, raws = sent_list(path)  # a list sent digest 1, and what came back
    text = path.read_text(encoding="utf-8").replace('\nmaildir = "bounces"', '\nmaildir = ""')
    text = text.replace('\nimap_host = ""', '\nimap_host = "127.0.0.1"')
    text = text.replace("\nimap_port = 993", f"\nimap_port = {dovecot.port}")
    text = text.replace('\nimap_security = "tls"', '\nimap_security = "starttls"')
    text = text.replace('\nimap_ca_file = ""', f'\nimap_ca_file = "{dovecot.ca_file}"')
    path.write_text(text.replace('\nimap_user = ""', '\nimap_user = "bounces"'), "utf-8")
    for i, raw in enumerate(raws, start=1):
        _drop(dovecot, raw, f"{i}.eml")
    env = {**os.environ, "IOMFEED_IMAP_PASSWORD": PASSWORD}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    again = subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(path), "bounces"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "2 message(s) read" in again.stdout and "1 already recorded" in again.stdout
    with Store(load_config(path).database_path) as store:
        events = store.bounce_events()
        assert len(events) == 4 and len({e.message_key for e in events}) == 4
