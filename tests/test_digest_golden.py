"""Golden digest messages: the whole .eml for one English and one Albanian subscriber, made
from a fixed store through the real render, inlining and composer, with the volatile values
(Date, the Message-ID's salt, the token's MAC, the MIME boundary) scrubbed. Parsed back with
the email package too: headers, parts in order, tokens filled."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from iomfeed.pipeline import composers, digest_content, render_languages
from iomfeed.store import Store

from .conftest import NOW
from .digestkit import add_items, add_subscribers, digest_config
from .golden import check_golden


def scrub(data: bytes) -> str:
    text = data.decode("utf-8")
    text = re.sub(r"^Date: .*$", "Date: (scrubbed)", text, flags=re.M)
    text = re.sub(r"(<digest-\d+\.\d+\.)[0-9a-f]+@", r"\1SALT@", text)
    text = re.sub(r"(t=\d+\.)[A-Za-z0-9_-]{22}", r"\1MAC", text)
    text = re.sub(r"(unsubscribe%20\d+\.)[A-Za-z0-9_-]{22}", r"\1MAC", text)
    text = re.sub(r"=_iomfeed_[A-Za-z0-9_]+", "=_iomfeed_BOUNDARY", text)
    return text.replace("\r\n", "\n")


@pytest.fixture
def made(tmp_path: Path) -> dict[str, bytes]:
    config = digest_config(tmp_path)
    with Store(tmp_path / "db.sqlite") as store:
        add_subscribers(store, 2)
        add_items(store, range(7), NOW - timedelta(days=1))
        content = digest_content(config, store, NOW)
        rendered = render_languages(config, content)
        made = composers(config, rendered, digest_id=5, date=NOW, secret=b"golden" * 4)
        subs = {s.language: s for s in store.subscribers()}
    return {
        lang: made[lang].compose(sub.id, sub.address, sub.name).data for lang, sub in subs.items()
    }


def test_golden_messages(made: dict[str, bytes], regenerate: bool) -> None:
    for lang, data in made.items():
        check_golden(f"digest/digest-{lang}.eml", scrub(data), regenerate=regenerate)


def test_messages_parse_back(made: dict[str, bytes]) -> None:
    for lang, data in made.items():
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        assert msg.defects == [] and all(not p.defects for p in msg.walk())
        text, html = (p.get_content() for p in msg.iter_parts())
        assert "%%" not in text and "%%" not in html
        assert f'lang="{lang}"' in html
        link = str(msg["List-Unsubscribe"]).split(",")[0].strip("<> ")
        assert link in text and link.replace("&", "&amp;") in html
        assert msg["Message-ID"].startswith("<digest-5.")
        for line in data.split(b"\r\n"):
            assert len(line) <= 998
