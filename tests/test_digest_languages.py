"""The digest in each subscriber's language: category headings, the sender's name and the
postal line come from the config, per language; the built-in words (the language files) name no
organisation, and the intro names the digest by its configured title.

Config keys are read from real files; the messages are made by the real render and composer
from a real store and parsed back."""

from __future__ import annotations

import email
import email.policy
import re
import tomllib
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import lxml.html
import pytest

from iomfeed.config import CategoryNames, PerLanguage, load_config
from iomfeed.errors import ConfigError
from iomfeed.ingest import upsert
from iomfeed.languages import BUILT_IN, own_folder
from iomfeed.pipeline import composers, digest_content, render_languages, sender
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_subscribers, digest_config, item, text_of


def load(tmp_path: Path, extra: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG_FILE.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return load_config(path)


# ----------------------------------------------------------------------------- config


def test_the_shipped_config_names_things_in_both_languages() -> None:
    config = load_config(CONFIG_FILE)
    assert config.mail.from_name.get("en") == "IOM Albania news"
    assert config.mail.from_name.get("sq") == "Lajme nga IOM Shqipëri"
    assert config.digest.categories.get("Local", "sq") == "Vendore"
    assert config.digest.categories.get("GLOBAL", "sq") == "Globale"  # case is ignored
    assert config.digest.categories.get("Local", "en") == "Local"  # not named: as stored
    assert config.digest.categories.get("Diaspora", "sq") == "Diaspora"
    assert "Shqipëri" in config.mail.postal_address.get("sq")


def test_a_plain_string_still_serves_every_language(tmp_path: Path) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8")
    text = re.sub(r"^from_name = .*$", 'from_name = "Newsroom"', text, flags=re.M)
    text = re.sub(r"^postal_address = .*$", 'postal_address = "Rruga 1, Tirana"', text, flags=re.M)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.mail.from_name == PerLanguage("Newsroom")
    assert [config.mail.from_name.get(lang) for lang in ("en", "sq")] == ["Newsroom"] * 2
    assert config.mail.postal_address.get("sq") == "Rruga 1, Tirana"


def test_categories_as_a_table_per_language(tmp_path: Path) -> None:
    text = re.sub(r"^categories = .*$", "", CONFIG_FILE.read_text(encoding="utf-8"), flags=re.M)
    text += (
        '\n[digest.categories.sq]\nLocal = "Vendore"\n[digest.categories.en]\nLocal = "Albania"\n'
    )
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    names = load_config(path).digest.categories
    assert names == CategoryNames(
        (("sq", (("Local", "Vendore"),)), ("en", (("Local", "Albania"),)))
    )
    assert (names.get("Local", "sq"), names.get("Local", "en")) == ("Vendore", "Albania")
    assert names.get("Global", "sq") == "Global"


@pytest.mark.parametrize(
    ("find", "replace", "message"),
    [
        (
            r"^from_name = .*$",
            'from_name = { en = "News", fr = "Nouvelles" }',
            "mail.from_name.fr: unknown language (digest languages: en, sq)",
        ),
        (
            r"^from_name = .*$",
            'from_name = { en = "News" }',
            "mail.from_name.sq: required key is missing",
        ),
        (
            r"^from_name = .*$",
            'from_name = { en = "News", sq = 3 }',
            "mail.from_name.sq: expected a string, got integer 3",
        ),
        (
            r"^from_name = .*$",
            "from_name = 7",
            "mail.from_name: expected a string, or a table with one string per language",
        ),
        (r"^postal_address = .*$", 'postal_address = ["x"]', "mail.postal_address: expected"),
        (
            r"^categories = .*$",
            'categories = { de = { Local = "Lokal" } }',
            "digest.categories.de: unknown language",
        ),
        (
            r"^categories = .*$",
            'categories = { sq = "Vendore" }',
            "digest.categories.sq: expected a table of category",
        ),
        (
            r"^categories = .*$",
            "categories = { sq = { Local = 1 } }",
            "digest.categories.sq.Local: expected the name to show",
        ),
        (
            r"^categories = .*$",
            'categories = { sq = { Local = "A", local = "B" } }',
            "digest.categories.sq.local: the same category as 'Local'",
        ),
        (r"^categories = .*$", 'categories = "Vendore"', "digest.categories: expected a table"),
    ],
)
def test_a_mistake_names_its_dotted_key(
    tmp_path: Path, find: str, replace: str, message: str
) -> None:
    text = re.sub(find, replace, CONFIG_FILE.read_text(encoding="utf-8"), flags=re.M)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_an_unknown_key_beside_them_is_still_refused(tmp_path: Path) -> None:
    text = CONFIG_FILE.read_text(encoding="utf-8").replace(
        "[mail]\n", '[mail]\nfrom_names = "x"\n', 1
    )
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"mail\.from_names: unknown key \(did you mean"
        r" 'from_name'\?\)",
    ):
        load_config(path)


# ----------------------------------------------------------------------------- the words


def test_the_built_in_words_name_no_organisation() -> None:
    for code in BUILT_IN:
        words = tomllib.loads(own_folder().joinpath(f"{code}.toml").read_text(encoding="utf-8"))
        for table in ("digest", "unsubscribe"):
            for key, value in words[table].items():
                assert not re.search(r"IOM|Albania|Shqipëri", value), (code, key, value)


# ----------------------------------------------------------------------------- messages


@pytest.fixture
def messages(tmp_path: Path) -> dict[str, EmailMessage]:
    """One message per language: a regular digest of stories in the site's two
    categories and one without a category."""
    config = digest_config(
        tmp_path,
        digest={
            "title": PerLanguage(
                "Migration news", (("en", "Migration news"), ("sq", "Lajmet e migracionit"))
            )
        },
    )
    with Store(tmp_path / "db.sqlite") as store:
        # A digest went out a week ago (to nobody yet): this one is not the first.
        assert store.finish_digest(
            store.create_digest(
                created=NOW - timedelta(days=7),
                since=None,
                cutoff=NOW - timedelta(days=7),
                item_ids=[],
                more=0,
            ).id,
            NOW - timedelta(days=7),
        )
        add_subscribers(store, 2)
        for n, category in enumerate(["Local", "Global", "Local", ""]):
            upsert(store, item(n, category=category), NOW - timedelta(days=1))
        content = digest_content(config, store, NOW)
        assert not content.first
        made = composers(
            config, render_languages(config, content), digest_id=3, date=NOW, secret=b"k" * 32
        )
        subscribers = {s.language: s for s in store.subscribers()}
    out = {}
    for language, sub in subscribers.items():
        data = made[language].compose(sub.id, sub.address, sub.name).data
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out[language] = msg
    return out


def parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = (p.get_content() for p in msg.iter_parts())
    return text.replace("\r\n", "\n"), html


def headings(html: str) -> list[str]:
    doc = lxml.html.document_fromstring(html)
    return [text_of(h) for h in doc.cssselect("h2")]


def test_the_albanian_digest_is_albanian(messages: dict[str, EmailMessage]) -> None:
    msg = messages["sq"]
    assert msg["From"].addresses[0].display_name == "Lajme nga IOM Shqipëri"
    text, html = parts(msg)
    assert headings(html) == ["Vendore", "Globale", "Lajme të tjera"]
    assert "\nVENDORE\n" in text and "\nGLOBALE\n" in text and "LOCAL" not in text
    doc = lxml.html.document_fromstring(html)
    intro = text_of(doc.cssselect("p.intro")[0])
    assert intro == "Ja lajmet e reja në „Lajmet e migracionit“ që nga përmbledhja e fundit."
    assert "Misioni në Shqipëri" in text and "Misioni në Shqipëri" in html
    assert "Mission in Albania" not in text + html


def test_the_english_digest_keeps_the_stored_names(messages: dict[str, EmailMessage]) -> None:
    msg = messages["en"]
    assert msg["From"].addresses[0].display_name == "IOM Albania news"
    text, html = parts(msg)
    assert headings(html) == ["Local", "Global", "Other news"]
    assert "\nLOCAL\n" in text
    assert "Here are the new stories from Migration news since the last digest." in " ".join(
        text.split()
    )
    assert "Mission in Albania" in text


def test_the_sender_follows_the_language(tmp_path: Path) -> None:
    config = digest_config(
        tmp_path,
        mail={"from_name": PerLanguage("Newsroom", (("en", "Newsroom"), ("sq", "Redaksia")))},
    )
    assert (sender(config, "en").name, sender(config, "sq").name) == ("Newsroom", "Redaksia")
