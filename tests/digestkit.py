"""Helpers for the digest tests: a store with items and subscribers, a config for them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from iomfeed.config import Config, load_config
from iomfeed.ingest import upsert
from iomfeed.models import DateSource, Item
from iomfeed.store import Store
from iomfeed.subscribers import Subscriber

from .conftest import CONFIG_FILE, NOW

TITLES = [
    ("Ministria e Brendshme dhe IOM trajnojnë policinë kufitare në Kapshticë", "border"),
    ("IOM supports returning migrants with reintegration grants", "return"),
    ("Diaspora të rinj vizitojnë Shkodrën: 'Ndihem në shtëpi'", "diaspora"),
    ("New counter-trafficking hotline launched in Tirana", "counter-trafficking"),
    ("Workshop on labour migration data for municipalities", ""),
    ("Çmimi për gazetarinë mbi migracionin u shpall në Durrës", "diaspora"),
]


def item(
    n: int,
    *,
    published: datetime | None = None,
    category: str | None = None,
    title: str | None = None,
    source: str = "iom-albania",
) -> Item:
    base_title, base_cat = TITLES[n % len(TITLES)]
    cat = base_cat if category is None else category
    return Item(
        source=source,
        url=f"https://albania.iom.int/news/story-{n}",
        title=title or f"{base_title} ({n})",
        summary_html=f"<p>Story {n}: IOM Albania &amp; partners met in Tirana to "
        f"discuss <b>migration</b> in the region. Ëë çç.</p>",
        published=published or NOW - timedelta(days=n),
        date_source=DateSource.TIME,
        image_url=f"https://albania.iom.int/sites/default/files/story-{n}.jpg" if n % 2 else "",
        image_alt=f"Photo for story {n}" if n % 2 else "",
        categories=(cat,) if cat else (),
        language="en",
    )


def add_items(store: Store, numbers: range | list[int], seen: datetime) -> None:
    for n in numbers:
        upsert(store, item(n), seen)


def add_subscribers(
    store: Store, count: int, now: datetime = NOW, domain: str = "example.org"
) -> list[str]:
    names = ["Ëlira Hoxha", "John Smith", "Çlirim Dervishi", "", "Anna-Maria O'Neil"]
    addresses = []
    for i in range(count):
        address = f"reader{i}@{domain}"
        store.add_subscriber(
            Subscriber(address, names[i % len(names)], "sq" if i % 3 == 0 else "en"), now
        )
        addresses.append(address)
    return addresses


def digest_config(base_dir: Path, **sections: dict[str, Any]) -> Config:
    """The shipped config with the given [digest] / [mail] / [mail.smtp] values replaced."""
    config = load_config(CONFIG_FILE, base_dir=base_dir)
    for name, values in sections.items():
        if name == "smtp":
            config = dataclasses.replace(
                config,
                mail=dataclasses.replace(
                    config.mail, smtp=dataclasses.replace(config.mail.smtp, **values)
                ),
            )
        else:
            config = dataclasses.replace(
                config, **{name: dataclasses.replace(getattr(config, name), **values)}
            )
    return config


def text_of(element: Any) -> str:
    """The text of an lxml element with its white space folded, as a reader sees it."""
    return " ".join(element.text_content().split())


def stories_in(msg: EmailMessage) -> set[int]:
    """The numbers of the stories (``item(n)``, n < 10) whose links a digest message's text
    and HTML parts both carry."""
    found = []
    for kind in ("plain", "html"):
        part = msg.get_body((kind,))
        assert isinstance(part, EmailMessage)
        body = str(part.get_content())
        found.append({n for n in range(10) if f"/news/story-{n}" in body})
    assert found[0] == found[1]
    return found[0]
