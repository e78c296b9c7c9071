"""Languages as data: a third language (Italian) added from an operator's folder with one
file and a config line, and what a mistake in a language file or a language setting says.

Real files throughout: the config and the language file are written to a temporary folder,
the digest is rendered by the real render, sent through the CLI to the outbox and read back,
subscribers are added through the CLI into a real SQLite file; the unsubscribe page is
asked for over HTTP on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import html as html_module
import logging
import re
import sqlite3
import threading
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from iomfeed import languages
from iomfeed.cli import main
from iomfeed.config import Config, load_config
from iomfeed.digest.render import render_digest
from iomfeed.digest.unsubscribe import load_secret, make_token
from iomfeed.errors import ConfigError, StoreError
from iomfeed.output_records import DigestContent, DigestEntry
from iomfeed.pipeline import render_languages
from iomfeed.store import MIGRATIONS, Store
from iomfeed.subscribers import Subscriber
from iomfeed.web import App

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_items
from .schemakit import database_before

SUBJECT = (
    "{{ title }}: {% if first %}le ultime notizie{% else %}{{ count }}"
    " {{ 'nuova notizia' if count == 1 else 'nuove notizie' }}{% endif %}, {{ date }}"
)
ITALIAN = (
    f"subject = {SUBJECT!r}\n"
    + """
[digest]
date_format = "long"
preheader = "In questo notiziario: {titles}"
heading = "{title}"
dateline = "Notiziario, {date}"
greeting = "Buongiorno {name},"
greeting_no_name = "Buongiorno,"
intro = "Ecco le nuove notizie di «{title}» dall'ultimo notiziario."
intro_first = "Ecco le ultime notizie di «{title}»."
empty = "Nessuna nuova notizia dall'ultimo notiziario."
other_news = "Altre notizie"
read_more = "Continua a leggere"
more_one = "Un'altra nuova notizia è sul nostro sito."
more_many = "Altre {count} nuove notizie sono sul nostro sito."
more_first_one = "Un'altra notizia è sul nostro sito."
more_first_many = "Altre {count} notizie sono sul nostro sito."
more_link = "Tutte le ultime notizie"
why = "Ricevi questa email perché sei iscritto al notiziario «{title}»."
sent_to = "Questa email è stata inviata a {address}."
unsubscribe_prompt = "Non vuoi più ricevere queste email?"
unsubscribe = "Annulla l'iscrizione"
website = "Sito web"
index_link = "Tutte le notizie e i feed"
view_in_browser = "Leggi questo notiziario nel browser"
web_note = "Questa è la copia web del notiziario {title} inviato per email il {date}."
web_manage = "Iscritto? Ogni email del notiziario ha un link per gestire l'iscrizione."
web_archive = "Tutti i notiziari"

[unsubscribe]
title = "Annulla l'iscrizione"
confirm = "Annullare l'iscrizione di {address} a {list}?"
explain = "Non riceverai più notiziari. Basta un clic qui sotto."
button = "Annulla l'iscrizione"
done_title = "Iscrizione annullata"
done = "{address} non riceverà più notiziari da {list}."
already = "{address} non è più iscritto a {list}."
invalid_title = "Questo link non funziona"
invalid = "Il link è incompleto o è stato modificato."

[subscribe]
confirm_subject = "Conferma l'iscrizione a {list}"
confirm_heading = "Conferma l'iscrizione"
confirm_intro = "Qualcuno, speriamo tu, ha chiesto di ricevere {list} all'indirizzo {address}."
confirm_action = "Per riceverlo, conferma con il pulsante qui sotto. Il link vale {days} giorni."
confirm_button = "Conferma l'iscrizione"
confirm_ignore = "Se non l'hai chiesto tu, ignora questo messaggio."
welcome_subject = "Benvenuto in {list}"
welcome_heading = "Sei iscritto"
welcome_intro = "Grazie: {address} riceverà il notiziario {list}."
welcome_latest = "Le ultime notizie"
welcome_none = "Non ci sono ancora notizie."
already_subject = "Sei già iscritto a {list}"
already_heading = "Sei già iscritto"
already_intro = "Qualcuno ha chiesto di iscrivere {address} a {list}, che lo riceve già."
preferences_prompt = "Cambia lingua o notizie, sospendi o annulla l'iscrizione:"
preferences = "Le tue preferenze"

[categories]
Local = "Locali"
"""
)

#: What the operator writes in a minimal config to add Italian: the code and the folder.
ADD_ITALIAN = '[digest]\nlanguages = ["en", "sq", "it"]\nlanguages_dir = "lang"\n'
SOURCE = '[[sources]]\nname = "manual"\nkind = "json"\npath = "x.json"\n'


def italian_folder(tmp_path: Path, text: str = ITALIAN) -> Path:
    folder = tmp_path / "lang"
    folder.mkdir(exist_ok=True)
    (folder / "it.toml").write_text(text, encoding="utf-8")
    return folder


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(n: int, category: str) -> DigestEntry:
    return DigestEntry(
        id=f"tag:x,2026:{n}",
        title=f"Story {n}",
        url=f"https://albania.iom.int/news/story-{n}",
        summary="A summary.",
        published=NOW - timedelta(days=n),
        image_url="",
        image_alt="",
        category=category,
    )


ONE_STORY = DigestContent(
    digest_id=0, created=NOW, since=NOW - timedelta(days=7), entries=(entry(1, ""),)
)
#: CLDR's Italian month names, written out here to check what Babel gives.
MESI = (
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre"
)


def test_italian_is_one_file_and_a_config_line(tmp_path: Path) -> None:
    italian_folder(tmp_path)
    config = load_config(write(tmp_path, ADD_ITALIAN + SOURCE))
    assert config.digest.languages == ("en", "sq", "it")
    content = DigestContent(
        digest_id=0,
        created=NOW,
        since=NOW - timedelta(days=7),
        entries=(entry(1, "Local"), entry(2, "Global")),
        more=3,
    )
    rendered = render_languages(config, content)
    assert set(rendered) == {"en", "sq", "it"}
    it = rendered["it"]
    # The subject is the file's; the date is CLDR's Italian (Babel), not a table of ours.
    assert it.subject == "IOM Albania news: 5 nuove notizie, 24 novembre 2026"
    assert "Notiziario, 24 novembre 2026" in it.html
    assert "23 novembre 2026" in it.text and "22 novembre 2026" in it.text  # story dates
    assert "Continua a leggere" in it.html and "Altre 3 nuove notizie" in it.text
    assert "Locali" in it.html  # the file's category name; "Global" it does not name
    assert "Global" in it.html
    assert '<html lang="it"' in it.html
    assert it.greeting == "Buongiorno {name},"
    # The other languages are unchanged.
    assert rendered["en"].subject == "IOM Albania news: 5 new stories, 24 November 2026"
    assert "nëntor 2026" in rendered["sq"].subject


def test_italian_end_to_end_from_the_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped config with Italian added: each per-language table it writes names the
    new code (a missing one is an error naming the key); subscribers choose it through the
    CLI; the digest goes out in Italian; their unsubscribe page is in Italian."""
    italian_folder(tmp_path)
    shipped = CONFIG_FILE.read_text(encoding="utf-8")
    text = shipped.replace('languages = ["en", "sq"]', 'languages = ["en", "sq", "it"]', 1)
    text = text.replace('languages_dir = ""', 'languages_dir = "lang"', 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"digest\.title\.it: required key is missing"):
        load_config(path)
    text = text.replace(
        'sq = "Lajme nga IOM Shqipëri"\n',
        'sq = "Lajme nga IOM Shqipëri"\nit = "Notizie OIM Albania"\n',
        1,
    )
    text = re.sub(r"^(from_name = \{.*) \}$", r'\1, it = "Notizie OIM" }', text, flags=re.M)
    text = re.sub(
        r"^(postal_address = \{.*) \}$",
        r'\1, it = "OIM, Missione in Albania, Tirana" }',
        text,
        flags=re.M,
    )
    path = write(tmp_path, text)
    config = load_config(path)
    assert config.digest.title.get("it") == "Notizie OIM Albania"

    cli = ["--config", str(path), "subscribers"]
    assert main([*cli, "add", "giulia@example.org", "--name", "Giulia", "--lang", "it"]) == 0
    assert main([*cli, "add", "arta@example.org", "--name", "Arta", "--lang", "sq"]) == 0
    assert main([*cli, "add", "x@example.org", "--lang", "fr"]) == 65
    assert "unknown language 'fr' (expected en, sq or it)" in capsys.readouterr().err
    people = tmp_path / "people.csv"
    people.write_text("address,name,language\nmarco@example.org,Marco,it\n", encoding="utf-8")
    assert main([*cli, "import", str(people)]) == 0
    with Store(config.database_path) as store:
        add_items(store, range(3), NOW - timedelta(days=1))
        assert {s.address: s.language for s in store.subscribers()} == {
            "giulia@example.org": "it",
            "arta@example.org": "sq",
            "marco@example.org": "it",
        }

    assert main(["--config", str(path), "digest", "--send"]) == 0
    assert "3 sent now" in capsys.readouterr().out
    messages = {m["To"].addresses[0].addr_spec: m for m in outbox(tmp_path)}
    giulia = messages["giulia@example.org"]
    assert str(giulia["Subject"]).startswith("Notizie OIM Albania: le ultime notizie, ")
    assert giulia["From"].addresses[0].display_name == "Notizie OIM"
    assert "Notizie OIM Albania" in str(giulia["List-Id"])
    html = giulia.get_body(("html",))
    assert html is not None
    body = html.get_content()
    assert "Buongiorno Giulia," in body and "OIM, Missione in Albania, Tirana" in body
    assert "24 novembre 2026" in body and "22 novembre 2026" in body  # the stories' dates
    assert re.search(
        rf"le ultime notizie, \d{{1,2}} ({'|'.join(MESI.split())}) \d{{4}}$", str(giulia["Subject"])
    )
    assert "Lajme nga IOM Shqipëri" in str(messages["arta@example.org"]["Subject"])

    with Store(config.database_path) as store:
        sub = store.subscriber("giulia@example.org")
        assert sub is not None
        token = make_token(load_secret(config, store), config.list_id, sub.id, sub.address)
    page = html_module.unescape(unsubscribe_page(config, token))
    assert '<html lang="it">' in page
    assert "Annullare l'iscrizione di giulia@example.org a Notizie OIM Albania?" in page


def outbox(folder: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted((folder / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        messages.append(msg)
    return messages


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def unsubscribe_page(config: Config, token: str) -> str:
    import http.client

    server = make_server("127.0.0.1", 0, App(config, now=lambda: NOW), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        conn.request("GET", f"/unsubscribe?t={token}")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read().decode("utf-8")
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('read_more = "Continua a leggere"\n', ""),
            r"\[digest\] read_more: required key is missing",
        ),
        (
            lambda t: t.replace('button = "Annulla l\'iscrizione"\n', ""),
            r"\[unsubscribe\] button: required key is missing",
        ),
        (lambda t: t.replace("subject = ", "subjetto = "), r": subjetto: unknown key"),
        (lambda t: t.replace('read_more = "', 'read_mor = "'), r"\[digest\] read_mor: unknown key"),
        (
            lambda t: t.replace('date_format = "long"', 'date_format = "{day} {month}"'),
            r"date_format: expected a CLDR date pattern",
        ),
        (lambda t: t.replace("{% endif %}", ""), r"it\.toml: subject: invalid template"),
        (lambda t: t + "[oops\n", "not valid TOML"),
    ],
)
def test_a_mistake_in_a_language_file_names_the_file_and_the_key(
    tmp_path: Path, edit: object, message: str
) -> None:
    assert callable(edit)
    folder = italian_folder(tmp_path, edit(ITALIAN))
    path = write(tmp_path, ADD_ITALIAN + SOURCE)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(folder / "it.toml") in str(caught.value)


def test_a_language_without_a_file_names_the_config_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[digest]\nlanguages = ["en", "de"]\n' + SOURCE)
    with pytest.raises(ConfigError, match=r"digest\.languages\[1\]: no language file de\.toml"):
        load_config(path)
    path = write(tmp_path, ADD_ITALIAN + SOURCE)  # no lang/ folder
    with pytest.raises(ConfigError, match=r"digest\.languages_dir: .*lang is not a folder"):
        load_config(path)
    path = write(tmp_path, '[digest]\nlanguages = ["en", "en"]\n' + SOURCE)
    with pytest.raises(ConfigError, match=r"digest\.languages: 'en' is listed twice"):
        load_config(path)
    path = write(tmp_path, "[digest]\nlanguages = []\n" + SOURCE)
    with pytest.raises(ConfigError, match=r"digest\.languages: expected at least one"):
        load_config(path)


def test_a_language_not_configured_is_refused_where_it_is_used(tmp_path: Path) -> None:
    italian_folder(tmp_path)  # the file is there, but the config does not list it
    config = load_config(write(tmp_path, '[digest]\nlanguages_dir = "lang"\n' + SOURCE))
    content = ONE_STORY
    with pytest.raises(ConfigError, match=r"no digest language 'it' \(digest\.languages: en, sq\)"):
        render_digest(content, "it", config)
    path = tmp_path / "config.toml"
    assert (
        main(["--config", str(path), "subscribers", "add", "a@example.org", "--lang", "it"]) == 65
    )
    with pytest.raises(ConfigError, match=r"digest\.subject\.it: unknown language"):
        load_config(write(tmp_path, '[digest.subject]\nit = "x"\n' + SOURCE))


def test_a_file_in_the_folder_replaces_a_built_in_language(tmp_path: Path) -> None:
    own = languages.own_folder().joinpath("en.toml").read_text(encoding="utf-8")
    italian_folder(tmp_path)
    (tmp_path / "lang" / "en.toml").write_text(
        own.replace('read_more = "Read more"', 'read_more = "Keep reading"'), encoding="utf-8"
    )
    config = load_config(write(tmp_path, '[digest]\nlanguages_dir = "lang"\n' + SOURCE))
    content = ONE_STORY
    assert "Keep reading" in render_digest(content, "en", config).html


# ----------------------------------------------------------------------------- old keys


def test_the_old_per_language_keys_are_read_with_a_warning_naming_the_new_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """config.toml shipped subject_en/subject_sq/title_en/title_sq: such a file still loads."""
    old = (
        '[digest]\ntitle_sq = "Lajmet"\nsubject_en = "{{ title }} ({{ count }})"\n'
        'subject_sq = "{{ title }}: {{ count }}"\n'
    )
    with caplog.at_level(logging.WARNING, logger="iomfeed.config"):
        config = load_config(write(tmp_path, old + SOURCE))
    assert "digest.title_sq is an old key: write it as [digest.title] sq = ..." in caplog.text
    assert "digest.subject_en is an old key: write it as [digest.subject] en" in caplog.text
    assert config.digest.title.get("sq") == "Lajmet"
    assert config.digest.title.get("en") == "IOM Albania news"  # the default kept
    assert config.digest.subject.get("en") == "{{ title }} ({{ count }})"
    content = ONE_STORY
    assert render_digest(content, "sq", config).subject == "Lajmet: 1"
    both = '[digest]\ntitle_sq = "A"\n[digest.title]\nen = "B"\nsq = "C"\n'
    with pytest.raises(ConfigError, match=r"digest\.title_sq: also given as digest\.title"):
        load_config(write(tmp_path, both + SOURCE))
    # Only the keys config.toml shipped are read the old way; others are unknown as ever.
    with pytest.raises(ConfigError, match=r"digest\.subject_it: unknown key"):
        load_config(write(tmp_path, '[digest]\nsubject_it = "A"\n' + SOURCE))


# ----------------------------------------------------------------------------- the schema


def test_a_database_from_before_takes_any_configured_code(tmp_path: Path) -> None:
    """The migration rebuilds subscribers without its CHECK (language IN ('en', 'sq')),
    keeping every row and the deliveries that point at them."""
    path = tmp_path / "old.db"
    db = database_before(path, "issue 10 (languages)", foreign_keys=True)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute(
            "INSERT INTO subscribers (address, name, language, status, subscribed)"
            " VALUES ('x@example.org', '', 'it', 'active', '2026-11-01T00:00:00Z')"
        )
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed, failures)"
        " VALUES ('a@example.org', 'Ana', 'sq', 'bounced', '2026-11-01T00:00:00Z', 3)"
    )
    db.execute(
        "INSERT INTO digests (id, created, cutoff, items, more, status) VALUES"
        " (1, '2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z', 0, 0, 'sent')"
    )
    db.execute(
        "INSERT INTO deliveries (digest_id, subscriber_id, status, updated)"
        " VALUES (1, 1, 'sent', '2026-11-02T00:00:00Z')"
    )
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.add_subscriber(Subscriber("g@example.org", "Giulia", "it"), NOW) == "added"
        old = store.subscriber("a@example.org")
        assert old is not None and (old.language, old.status) == ("sq", "bounced")
        assert [d.address for d in store.deliveries(1, ("sent",))] == ["a@example.org"]
        assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    with Store(path) as store, pytest.raises(StoreError, match=r"CHECK"):
        store.add_subscriber(Subscriber("e@example.org", "", ""), NOW)


# ----------------------------------------------------------------------------- the pages


def test_the_pages_words_come_from_the_language_file(tmp_path: Path) -> None:
    """index.html and the month pages take their words from [pages]; the templates hold
    none of them, and a file's [pages] is checked like its other tables."""
    from iomfeed.publish.site import pages_words

    en = pages_words("en")
    assert en.latest == "Latest stories" and pages_words("sq").latest == "Lajmet e fundit"
    import importlib.resources

    folder = importlib.resources.files("iomfeed.templates") / "site"
    templates = "".join(
        p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(".j2")
    )
    for words in (en.latest, en.subscribe, en.older, "published in", "Last change"):
        assert words not in templates, words
    broken = ITALIAN + '\n[pages]\ndate_format = "long"\n'
    italian_folder(tmp_path, broken)
    with pytest.raises(ConfigError, match=r"it\.toml: \[pages\] website: required key is missing"):
        languages.load("it", tmp_path / "lang")


def test_a_list_without_english_needs_no_english_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """English is only the first built-in language, not a default that a list in Albanian
    alone must still satisfy: the config loads, and every default language is its first."""
    from iomfeed.subscriptions import read_csv

    config = write(tmp_path, '[digest]\nlanguages = ["sq"]\n')
    loaded = load_config(config)
    assert loaded.digest.languages == ("sq",)
    assert main(["--config", str(config), "subscribers", "add", "ana@example.org"]) == 0
    with Store(loaded.database_path) as store:
        sub = store.subscriber("ana@example.org")
        assert sub is not None and sub.language == "sq"
        add_items(store, range(3), NOW)
    read = read_csv(b"email,name\nbesa@example.org,Besa\n", languages=("sq", "it"))
    assert [(s.address, s.language) for _, s in read.rows] == [("besa@example.org", "sq")]
    capsys.readouterr()
    preview = tmp_path / "preview.html"
    assert main(["--config", str(config), "digest", "--preview", str(preview)]) == 0
    assert "digest preview (sq)" in capsys.readouterr().out
    assert 'lang="sq"' in preview.read_text(encoding="utf-8")
