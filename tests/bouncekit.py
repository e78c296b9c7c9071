"""Helpers for the bounce tests: a list that was sent digests through a recording mailer
(VERP on), Maildir folders, and the fixture messages of tests/data/bounces/ filled in
with the envelope sender and the recipient of a real message."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from iomfeed.config import Config
from iomfeed.digest.message import Outgoing
from iomfeed.digest.unsubscribe import load_secret, make_token
from iomfeed.pipeline import send_digest
from iomfeed.store import Store

from .conftest import DATA, NOW
from .digestkit import add_items, add_subscribers, digest_config

BOUNCES = DATA / "bounces"
BOUNCE_ADDRESS = "bounces@feeds.example.org"
MTAS = ("postfix-dsn", "exim", "qmail", "exchange", "yahoo", "sendmail-old")


class Recorder:
    """A mailer that takes everything and keeps what it took."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> str:
        self.sent.append(message)
        return "250 2.0.0 queued"

    def close(self) -> None:
        pass


def bounce_config(tmp_path: Path, *, verp: bool = True, **bounces: object) -> Config:
    return digest_config(
        tmp_path,
        mail={"bounce_address": BOUNCE_ADDRESS if verp else ""},
        bounces={"maildir": "bounces", **bounces},
    )


def make_maildir(path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def send_one(config: Config, store: Store, when: datetime, first_item: int) -> list[Outgoing]:
    """A digest of two new stories sent at ``when``; its messages."""
    add_items(store, range(first_item, first_item + 2), when - timedelta(minutes=5))
    mailer = Recorder()
    outcome = send_digest(config, store=store, mailer=mailer, clock=lambda: when)
    assert outcome.status == "sent", outcome
    return mailer.sent


def prepared(
    tmp_path: Path, subscribers: int = 3, **kw: object
) -> tuple[Config, Store, list[Outgoing]]:
    config = bounce_config(tmp_path, **kw)  # type: ignore[arg-type]
    make_maildir(config.maildir_path)  # type: ignore[arg-type]
    store = Store(config.database_path)
    add_subscribers(store, subscribers)
    return config, store, send_one(config, store, NOW, 100)


def fill(
    name: str,
    message: Outgoing | None,
    *,
    to: str = "",
    config: Config | None = None,
    store: Store | None = None,
) -> bytes:
    """A fixture with ``{VERP}`` the envelope sender of ``message`` and ``{TO}`` its
    recipient (or ``to``); ``{UNSUB}`` its unsubscribe token when a store is given."""
    text = (BOUNCES / f"{name}.eml").read_text(encoding="utf-8")
    verp = message.sender if message is not None else "bounces@feeds.example.org"
    recipient = to or (message.recipient if message is not None else "")
    unsub = "1.AAAAAAAAAAAAAAAAAAAAAA"
    if store is not None and config is not None and message is not None:
        sub = store.subscriber(message.recipient)
        assert sub is not None
        unsub = make_token(load_secret(config, store), config.list_id, sub.id, sub.address)
    text = text.replace("{VERP}", verp).replace("{TO}", recipient).replace("{UNSUB}", unsub)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def deliver(maildir: Path, raw: bytes, name: str) -> Path:
    """Drop a message into ``new/`` the way an MDA does (tmp/, then rename)."""
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    target = maildir / "new" / name
    tmp.rename(target)
    return target


def strip_token(raw: bytes) -> bytes:
    """The message with every VERP token taken out (a forwarded or mangled bounce)."""
    return re.sub(rb"bounces\+[0-9a-z-]+@", b"bounces@", raw)


Clock = Callable[[], datetime]
