"""Rendering the digest: structure for mail programs, grouping, dates, subjects, the size
cap, line lengths, operator overrides, CSS inlined once, and how it looks in a browser.

The content is built by hand: twelve stories in three categories plus some without one,
English and Albanian titles."""

from __future__ import annotations

import dataclasses
import html as htmllib
import logging
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from iomfeed.config import Config, PerLanguage
from iomfeed.digest.render import (
    ADDRESS,
    GREETING,
    MAX_LINE_BYTES,
    PREFERENCES_URL,
    TOKEN_STAND_IN,
    TOKENS,
    UNSUBSCRIBE_URL,
    fold_html,
    format_date,
    group_entries,
    load_chrome,
    measure,
    render_digest,
)
from iomfeed.errors import ConfigError
from iomfeed.output_records import DigestContent, DigestEntry, RenderedDigest

from .conftest import NOW

PUBLIC_URL = "https://feeds.example.org/iom/"
INDEX_URL = PUBLIC_URL + "index.html"
POSTAL = "IOM Albania, Rruga Brigada e VIII, Tirana, Albania"

#: (title, category): three categories and stories without one, English and Albanian.
STORIES = [
    ("Diaspora të rinj vizitojnë Shkodrën: 'Ndihem në shtëpi'", "Diaspora"),
    ("IOM supports returning migrants with reintegration grants", "Return & reintegration"),
    ("Policia kufitare trajnohet në Kapshticë për mbrojtjen e migrantëve", "Kufijtë"),
    ("Çmimi për gazetarinë mbi migracionin u shpall në Durrës", "Diaspora"),
    ("Workshop on labour migration data for municipalities", ""),
    ("New counter-trafficking hotline launched in Tirana", "Return & reintegration"),
    ("Ministria dhe IOM nënshkruajnë marrëveshjen për kthimin vullnetar", "Kufijtë"),
    ("Diaspora mentors support young entrepreneurs in Shkodër and Lezhë", "Diaspora"),
    ("Fushata kundër trafikimit arrin në shkollat e Kukësit", ""),
    ("Border officers trained in protection-sensitive screening", "Kufijtë"),
    ("Remittances and savings: Albania's diaspora at home", "Diaspora"),
    ("Reintegrimi i të kthyerve: grante për biznese të vogla në Elbasan", "Return & reintegration"),
]
SUMMARY = (
    "IOM Albania & partners met in Tirana to discuss migration in the region; çështjet e "
    "kthimit dhe të integrimit u diskutuan gjerësisht nga të gjithë pjesëmarrësit."
)


def entry(n: int, title: str, category: str, **changes: Any) -> DigestEntry:
    values: dict[str, Any] = {
        "id": f"tag:feeds.example.org,2026:story-{n}",
        "title": title,
        "url": f"https://albania.iom.int/news/story-{n}",
        "published": NOW - timedelta(days=n, hours=2),
        "summary": SUMMARY,
        "image_url": f"https://img.test/story-{n}.png" if n % 3 != 2 else "",
        "image_alt": f"Photo for story {n}: people in Tirana" if n % 2 else "",
        "category": category,
    }
    values.update(changes)
    return DigestEntry(**values)


ENTRIES = tuple(entry(n, title, cat) for n, (title, cat) in enumerate(STORIES))
CONTENT = DigestContent(
    digest_id=4, created=NOW, since=NOW - timedelta(days=14), entries=ENTRIES, more=2
)


def make_config(**digest: Any) -> Config:
    base = Config()
    return dataclasses.replace(
        base,
        site=dataclasses.replace(base.site, public_url=PUBLIC_URL),
        mail=dataclasses.replace(base.mail, postal_address=PerLanguage(POSTAL)),
        digest=dataclasses.replace(base.digest, **digest),
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, RenderedDigest]:
    config = make_config()
    return {lang: render_digest(CONTENT, lang, config) for lang in ("en", "sq")}


def parse(html: str) -> Any:
    return lxml.html.document_fromstring(html)


def style(element: Any) -> dict[str, str]:
    pairs = (p.split(":", 1) for p in element.get("style", "").split(";") if ":" in p)
    return {k.strip().lower(): v.strip() for k, v in pairs}


def text_of(element: Any) -> str:
    return " ".join(element.text_content().split())


# ----------------------------------------------------------------------------- tokens


def test_the_tokens_are_space_free_distinct_and_need_no_escaping() -> None:
    assert TOKENS == (GREETING, UNSUBSCRIBE_URL, ADDRESS, PREFERENCES_URL)
    assert len(set(TOKENS)) == 4
    for token in TOKENS:
        assert re.fullmatch(r"%%[A-Z_]+%%", token)
        assert htmllib.escape(token) == token


@pytest.mark.parametrize("language", ["en", "sq"])
def test_every_token_is_where_its_value_goes(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    r = rendered[language]
    assert f'href="{UNSUBSCRIBE_URL}"' in r.html  # literally, not URL-encoded
    for token in TOKENS:
        assert token in r.html and token in r.text
    chrome = load_chrome(language)
    assert (r.greeting, r.greeting_no_name) == (chrome.greeting, chrome.greeting_no_name)
    assert "{name}" in r.greeting and "{name}" not in r.greeting_no_name
    greeting = parse(r.html).cssselect("p.greeting")[0]
    assert text_of(greeting) == GREETING
    assert f"\n{GREETING}\n" in r.text
    assert f"\n{UNSUBSCRIBE_URL}\n" in r.text
    assert f'href="{PREFERENCES_URL}"' in r.html and f"\n{PREFERENCES_URL}\n" in r.text


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("language", ["en", "sq"])
def test_the_html_is_built_for_mail_programs(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    r = rendered[language]
    assert r.html.startswith("<!DOCTYPE html>")
    doc = parse(r.html)
    assert doc.get("lang") == language
    assert doc.cssselect("head meta[charset]")[0].get("charset").lower() == "utf-8"
    assert "width=device-width" in doc.cssselect("head meta[name=viewport]")[0].get("content")

    tables = doc.cssselect("table")
    assert len(tables) > r.shown
    for table in tables:
        assert table.get("role") == "presentation"
        assert (table.get("cellpadding"), table.get("cellspacing"), table.get("border")) == (
            "0",
            "0",
            "0",
        )
    container = doc.cssselect("table.container")[0]
    assert container.get("width") == "600" and style(container)["width"] == "600px"

    images = doc.cssselect("img")
    assert len(images) == sum(1 for e in ENTRIES if e.image_url)
    for img in images:
        assert img.get("alt") is not None
        assert 0 < int(img.get("width")) <= 552
        assert style(img)["max-width"] == "100%" and style(img)["height"] == "auto"
    assert {img.get("alt") for img in images} >= {"Photo for story 1: people in Tirana", ""}

    # Real headings: the digest's name, one per group, one per story linking to it.
    title = "Lajme nga IOM Shqipëri" if language == "sq" else "IOM Albania news"
    assert [text_of(h) for h in doc.cssselect("h1")] == [title]
    assert len(doc.cssselect("h2")) == 4
    stories = doc.cssselect("h3")
    assert len(stories) == r.shown == len(ENTRIES)
    urls = {e.url for e in ENTRIES}
    for h3 in stories:
        (link,) = h3.cssselect("a")
        assert link.get("href") in urls

    # Styles are inlined ...
    assert style(doc.cssselect("h1")[0])["font-size"] == "26px"
    assert style(doc.cssselect("td.header")[0])["background-color"].lower() == "#0033a0"
    assert all("font-family" in style(p) for p in doc.cssselect("p"))
    # ... and the phone rules are kept, !important and all, in the head.
    (block,) = doc.cssselect("head style")
    css = block.text
    assert "@media screen and (max-width: 600px)" in css
    assert re.search(r"\.container\s*\{[^}]*width:\s*100%\s*!important", css)
    assert "!important" in css.split("@media", 1)[1]
    assert not doc.cssselect("body style") and "<link" not in r.html


@pytest.mark.parametrize("language", ["en", "sq"])
def test_the_preheader_comes_first_and_is_hidden(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    body = parse(rendered[language].html).cssselect("body")[0]
    first = body[0]
    assert first.tag == "div" and "preheader" in first.get("class")
    css = style(first)
    assert css["display"] == "none" and css["max-height"] == "0"
    assert css["overflow"] == "hidden" and css["mso-hide"] == "all"
    newest = max(ENTRIES, key=lambda e: e.published)
    assert newest.title in text_of(first)


@pytest.mark.parametrize("language", ["en", "sq"])
def test_the_footer_says_why_who_and_how_to_leave(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    r = rendered[language]
    chrome = load_chrome(language)
    footer = parse(r.html).cssselect("td.footer")[0]
    unsubscribe = [a for a in footer.cssselect("a") if a.get("href") == UNSUBSCRIBE_URL]
    assert [text_of(a) for a in unsubscribe] == [chrome.unsubscribe]
    assert POSTAL in text_of(footer) and POSTAL in r.text
    assert ADDRESS in text_of(footer)
    assert INDEX_URL in [a.get("href") for a in footer.cssselect("a")]
    expected = {"en": "Unsubscribe", "sq": "Çregjistrohu"}[language]
    assert chrome.unsubscribe == expected


@pytest.mark.parametrize("language", ["en", "sq"])
def test_more_stories_are_counted_and_linked(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    r = rendered[language]
    assert (r.shown, r.more) == (12, 2)
    doc = parse(r.html)
    more = doc.cssselect("td.more-cell")[0]
    expected = {
        "en": "2 more new stories are on our website.",
        "sq": "Edhe 2 lajme të reja janë në faqen tonë të internetit.",
    }[language]
    assert text_of(more.cssselect("p.more-text")[0]) == expected
    assert more.cssselect("a")[0].get("href") == INDEX_URL
    assert expected in " ".join(r.text.split()) and f"\n{INDEX_URL}\n" in r.text


def test_one_more_story_is_singular() -> None:
    content = dataclasses.replace(CONTENT, entries=ENTRIES[:3], more=1)
    r = render_digest(content, "en", make_config())
    assert "One more new story is on our website." in r.text
    assert "Edhe një lajm i ri" in render_digest(content, "sq", make_config()).text


def test_an_empty_digest_says_so() -> None:
    content = dataclasses.replace(CONTENT, entries=(), more=0)
    r = render_digest(content, "sq", make_config())
    assert (r.shown, r.more) == (0, 0)
    doc = parse(r.html)
    assert not doc.cssselect("h2") and not doc.cssselect("h3")
    assert "Nuk ka lajme të reja" in text_of(doc.cssselect("p.empty")[0])
    assert "Nuk ka lajme të reja" in r.text and UNSUBSCRIBE_URL in r.html


def test_scraped_text_is_escaped_in_html_and_plain_in_text() -> None:
    hostile = entry(
        0,
        'Tirana <script>alert("x")</script> & "Durrës"',
        "A <b>bold</b> one",
        summary="Less <than> & more",
        image_alt='"><img src=x onerror=1>',
    )
    content = dataclasses.replace(CONTENT, entries=(hostile,), more=0)
    r = render_digest(content, "en", make_config())
    assert "<script" not in r.html and "<b>" not in r.html
    assert "&lt;script&gt;" in r.html
    doc = parse(r.html)
    assert text_of(doc.cssselect("h3")[0]) == 'Tirana <script>alert("x")</script> & "Durrës"'
    assert doc.cssselect("img")[0].get("alt") == '"><img src=x onerror=1>'
    assert len(doc.cssselect("img")) == 1
    assert 'Tirana <script>alert("x")</script> & "Durrës"' in r.text
    assert "&amp;" not in r.text and "&lt;" not in r.text


def test_links_a_mail_cannot_carry_are_replaced() -> None:
    odd = (
        entry(0, "Script link", "", url="javascript:alert(1)", image_url="javascript:alert(2)"),
        entry(
            1,
            "Very long link",
            "",
            url="https://albania.iom.int/" + "x" * 2000,
            image_url="https://img.test/" + "y" * 2000 + ".png",
        ),
    )
    r = render_digest(dataclasses.replace(CONTENT, entries=odd, more=0), "en", make_config())
    assert "javascript:" not in r.html and "javascript:" not in r.text
    assert "x" * 800 not in r.html and "y" * 800 not in r.html
    doc = parse(r.html)
    assert [a.get("href") for a in doc.cssselect("h3 a")] == [INDEX_URL, INDEX_URL]
    assert not doc.cssselect("img")


# ----------------------------------------------------------------------------- grouping


def test_groups_follow_their_newest_story_and_uncategorised_come_last() -> None:
    shuffled = ENTRIES[5:] + ENTRIES[:5]
    groups = group_entries(shuffled)
    assert [name for name, _ in groups] == ["Diaspora", "Return & reintegration", "Kufijtë", ""]
    for _, items in groups:
        dates = [e.published for e in items]
        assert dates == sorted(dates, reverse=True)
    assert sum(len(items) for _, items in groups) == len(ENTRIES)
    # An uncategorised story newer than all others still goes last.
    newest = entry(99, "Lajmi më i ri", "", published=NOW)
    assert group_entries((*ENTRIES, newest))[-1][1][0] == newest


@pytest.mark.parametrize(("language", "other"), [("en", "Other news"), ("sq", "Lajme të tjera")])
def test_the_html_and_text_show_the_groups_in_order(
    rendered: dict[str, RenderedDigest], language: str, other: str
) -> None:
    r = rendered[language]
    doc = parse(r.html)
    names = [text_of(h) for h in doc.cssselect("h2")]
    assert names == ["Diaspora", "Return & reintegration", "Kufijtë", other]
    titles = [text_of(h) for h in doc.cssselect("h3")]
    expected = [e.title for _, items in group_entries(ENTRIES) for e in items]
    assert titles == expected
    positions = [r.text.index(name.upper()) for name in names]
    assert positions == sorted(positions)
    text_positions = [r.text.index(t.split(":")[0]) for t in expected]
    assert text_positions == sorted(text_positions)


# ----------------------------------------------------------------------------- dates


def test_dates_are_written_per_language_in_the_site_time_zone() -> None:
    en, sq = load_chrome("en"), load_chrome("sq")
    assert format_date(NOW, en, "Europe/Tirane") == "24 November 2026"
    assert format_date(NOW, sq, "Europe/Tirane") == "24 nëntor 2026"
    months = [
        "janar",
        "shkurt",
        "mars",
        "prill",
        "maj",
        "qershor",
        "korrik",
        "gusht",
        "shtator",
        "tetor",
        "nëntor",
        "dhjetor",
    ]
    for month, name in enumerate(months, start=1):
        assert (
            format_date(datetime(2026, month, 3, 12, tzinfo=UTC), sq, "Europe/Tirane")
            == f"3 {name} 2026"
        )
    # 23:30 UTC on 30 November is already 1 December in Tirana.
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert format_date(late, sq, "Europe/Tirane") == "1 dhjetor 2026"
    assert format_date(late, en, "UTC") == "30 November 2026"


def test_story_dates_in_the_rendered_digest(rendered: dict[str, RenderedDigest]) -> None:
    dates = [text_of(p) for p in parse(rendered["sq"].html).cssselect("p.item-date")]
    assert "24 nëntor 2026" in dates and "13 nëntor 2026" in dates
    assert "24 nëntor 2026" in rendered["sq"].text
    assert "13 November 2026" in rendered["en"].text
    assert "Përmbledhje lajmesh, 24 nëntor 2026" in rendered["sq"].text


# ----------------------------------------------------------------------------- subject


def test_subjects_in_both_languages(rendered: dict[str, RenderedDigest]) -> None:
    assert rendered["en"].subject == "IOM Albania news: 14 new stories, 24 November 2026"
    assert rendered["sq"].subject == "Lajme nga IOM Shqipëri: 14 lajme të reja, 24 nëntor 2026"
    one = dataclasses.replace(CONTENT, entries=ENTRIES[:1], more=0)
    assert (
        render_digest(one, "en", make_config()).subject
        == "IOM Albania news: 1 new story, 24 November 2026"
    )
    assert (
        render_digest(one, "sq", make_config()).subject
        == "Lajme nga IOM Shqipëri: 1 lajm i ri, 24 nëntor 2026"
    )


@pytest.mark.parametrize(
    ("title", "template"),
    [
        ("News\r\nBcc: victim@example.org", "{{ title }}: {{ count }}"),
        ("News", "{{ title }}\nBcc: victim@example.org\r\n{{ count }}\n"),
        ("=?utf-8?q?News=0D=0ABcc:_victim@example.org?=", "{{ title }} {{ date }}"),
        ("Lajme\u2028ë\x00ç\u202e", "{{ title }} {{ count }} {{ date }}"),
        ("x" * 400, "{{ title }} {{ title }}"),
    ],
)
def test_a_hostile_title_or_subject_template_gives_one_safe_line(title: str, template: str) -> None:
    content = dataclasses.replace(CONTENT, entries=ENTRIES[:2], more=0)
    r = render_digest(
        content, "en", make_config(title=PerLanguage(title), subject=PerLanguage(template))
    )
    assert r.subject and len(r.subject) <= 150
    assert not re.search(r"[\x00-\x1f\x7f\u2028\u202e]", r.subject)
    assert "=?" not in r.subject


def test_a_subject_template_naming_an_unknown_variable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"digest\.subject\.sq"):
        render_digest(CONTENT, "sq", make_config(subject=sq_only("{{ titel }}")))
    subject = PerLanguage("x", (("en", "{{ ''.__class__.__mro__ }}"), ("sq", "x")))
    with pytest.raises(ConfigError, match=r"digest\.subject\.en"):
        render_digest(CONTENT, "en", make_config(subject=subject))


def sq_only(text: str) -> PerLanguage:
    """A per-language table giving only Albanian (English keeps its own)."""
    return PerLanguage(text, (("sq", text),))


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ConfigError, match="'de'"):
        render_digest(CONTENT, "de", make_config())


# ----------------------------------------------------------------------------- size


def test_a_digest_too_big_for_max_bytes_shows_fewer_stories(
    rendered: dict[str, RenderedDigest], caplog: pytest.LogCaptureFixture
) -> None:
    full = rendered["sq"]
    few = render_digest(dataclasses.replace(CONTENT, entries=ENTRIES[:5]), "sq", make_config())
    limit = few.html_bytes + 500  # room for five stories, not for six
    with caplog.at_level(logging.WARNING, logger="iomfeed.digest.render"):
        r = render_digest(CONTENT, "sq", make_config(max_bytes=limit))
    assert r.shown == 5 and r.more == full.more + (12 - 5)
    assert r.html_bytes <= limit < full.html_bytes
    assert r.html_bytes == measure(r.html)
    (record,) = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert "5 of 12 stories kept" in record.getMessage()
    assert str(r.html_bytes) in record.getMessage()
    # The newest stories stay; the "N more" line counts the rest.
    doc = parse(r.html)
    shown = {a.get("href") for a in doc.cssselect("h3 a")}
    assert shown == {e.url for e in sorted(ENTRIES, key=lambda e: e.published)[-5:]}
    assert "Edhe 9 lajme të reja" in text_of(doc.cssselect("p.more-text")[0])
    assert "Edhe 9 lajme të reja" in r.text and "Lexo më shumë" in r.text
    assert r.subject == full.subject  # the subject counts every new story
    assert r.text.count("Lexo më shumë:") == 5


def test_html_bytes_counts_every_token_at_its_longest(rendered: dict[str, RenderedDigest]) -> None:
    r = rendered["en"]
    filled = r.html
    for token in TOKENS:
        filled = filled.replace(token, "a" * TOKEN_STAND_IN)
    assert r.html_bytes == len(filled.encode()) < make_config().digest.max_bytes


def test_a_tiny_max_bytes_keeps_no_story_but_still_renders(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        r = render_digest(CONTENT, "en", make_config(max_bytes=1000))
    assert (r.shown, r.more) == (0, 14)
    assert "0 of 12 stories kept" in caplog.text
    assert UNSUBSCRIBE_URL in r.html and "14 more new stories" in r.text


# ----------------------------------------------------------------------------- lines


def line_sizes(text: str) -> list[int]:
    return [measure(line) for line in text.split("\n")]


@pytest.mark.parametrize("language", ["en", "sq"])
def test_no_line_is_longer_than_900_bytes_with_tokens_filled(
    rendered: dict[str, RenderedDigest], language: str
) -> None:
    r = rendered[language]
    assert max(line_sizes(r.html)) <= MAX_LINE_BYTES
    assert max(line_sizes(r.text)) <= MAX_LINE_BYTES


def test_long_scraped_text_still_gives_short_lines() -> None:
    word = "Ë" * 3000
    long = (
        entry(
            0,
            "Çështje " * 200,
            "Kategori " * 100,
            summary="Ë ç " * 400 + word,
            image_alt="Foto " * 300,
        ),
        entry(1, word, "", summary=word, url="https://albania.iom.int/" + "ë" * 300),
    )
    config = make_config(
        title=PerLanguage("IOM Albania news", (("en", "IOM Albania news"), ("sq", "Lajme " * 80)))
    )
    r = render_digest(dataclasses.replace(CONTENT, entries=long), "sq", config)
    assert max(line_sizes(r.html)) <= MAX_LINE_BYTES
    assert max(line_sizes(r.text)) <= MAX_LINE_BYTES
    doc = parse(r.html)
    assert len(doc.cssselect("h3")) == 2
    assert text_of(doc.cssselect("h3")[0]) == " ".join(("Çështje " * 200).split())


def test_the_text_part_is_wrapped_at_72_columns(rendered: dict[str, RenderedDigest]) -> None:
    for r in rendered.values():
        for line in r.text.split("\n"):
            assert len(line) <= 72 or re.fullmatch(r"https?://\S+|%%[A-Z_]+%%", line), line
        assert r.text.endswith("\n") and "\n\n\n" not in r.text
        assert "\r" not in r.text


def fold_fixture() -> str:
    attrs = " ".join(f'data-a{i}="value {i} with spaces &amp; more"' for i in range(40))
    text = " ".join(f"fjalë{i}" for i in range(300))
    return (
        f'<p class="x" {attrs}>{text} <a href="https://example.org/{"p" * 500}"'
        f' title="{"t " * 200}">lidhje</a>{UNSUBSCRIBE_URL} <b>e fortë</b></p>'
    )


def test_folding_keeps_the_document_the_same() -> None:
    line = fold_fixture()
    folded = fold_html(line, limit=200)
    assert max(line_sizes(folded)) <= 1100  # one attribute (a 500-byte URL) stays whole
    before, after = lxml.html.fragment_fromstring(line), lxml.html.fragment_fromstring(folded)
    assert " ".join(before.text_content().split()) == " ".join(after.text_content().split())
    assert [(e.tag, dict(e.attrib)) for e in before.iter()] == [
        (e.tag, dict(e.attrib)) for e in after.iter()
    ]
    # Breaks replace whitespace or sit inside a tag: nothing is glued or split apart.
    assert folded.replace("\n", " ").replace(" >", ">") == line.replace("\n", " ")
    assert f'href="https://example.org/{"p" * 500}"' in folded
    folded_big = fold_html(line)
    assert max(line_sizes(folded_big)) <= MAX_LINE_BYTES


# ----------------------------------------------------------------------------- overrides


@pytest.fixture
def override(tmp_path: Path) -> Path:
    folder = tmp_path / "my-templates"
    folder.mkdir()
    return folder


def test_an_override_folder_replaces_the_css(override: Path) -> None:
    (override / "digest.css").write_text(
        ".title { color: #123456; font-size: 30px; }\n"
        "@media screen and (max-width: 600px) { .title { font-size: 20px !important; } }\n",
        encoding="utf-8",
    )
    r = render_digest(CONTENT, "en", make_config(templates=str(override)))
    doc = parse(r.html)
    assert style(doc.cssselect("h1")[0]) == {"color": "#123456", "font-size": "30px"}
    assert "font-size: 20px !important" in doc.cssselect("head style")[0].text
    assert "background-color" not in style(doc.cssselect("td.header")[0])


def test_an_override_chrome_file_replaces_only_its_keys(override: Path) -> None:
    (override / "chrome.toml").write_text(
        '[sq]\nread_more = "Lexoni më tej"\ngreeting = "Tungjatjeta {name},"\n', encoding="utf-8"
    )
    config = make_config(templates=str(override))
    sq = render_digest(CONTENT, "sq", config)
    assert "Lexoni më tej" in sq.html and "Lexoni më tej:" in sq.text
    assert "Lexo më shumë" not in sq.html
    assert sq.greeting == "Tungjatjeta {name},"
    assert "Çregjistrohu" in sq.html  # the other keys are the built-in ones
    en = render_digest(CONTENT, "en", config)
    assert "Read more" in en.html and en.greeting == "Hello {name},"


def test_an_override_folder_replaces_a_partial(override: Path) -> None:
    (override / "_footer.html.j2").write_text(
        '<td class="footer"><p>Custom footer for {{ postal_address }}</p>'
        '<a href="{{ UNSUBSCRIBE_URL }}">{{ chrome.unsubscribe }}</a></td>\n',
        encoding="utf-8",
    )
    r = render_digest(CONTENT, "en", make_config(templates=str(override)))
    footer = parse(r.html).cssselect("td.footer")[0]
    assert text_of(footer) == f"Custom footer for {POSTAL} Unsubscribe"
    assert len(parse(r.html).cssselect("h3")) == 12  # the other templates are the built-in ones


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[sq]\nread_mor = "x"\n', r"\[sq\] read_mor: unknown key"),
        ('[de]\nread_more = "x"\n', r"\[de\]: unknown table"),
        # Month names come from CLDR now: an older override's table or placeholders say so.
        (
            '[sq]\nmonths = ["janar"]\n',
            r"\[sq\] months: no longer used: month names come from CLDR",
        ),
        (
            '[sq]\ndate_format = "{day} {month} {year}"\n',
            r"\[sq\] date_format: expected a CLDR date pattern such as 'd MMMM y'",
        ),
        ('[sq]\ndate_format = ""\n', r"date_format: expected a CLDR date pattern"),
        ("[sq]\nread_more = 3\n", "read_more: expected a string"),
        ("[sq\n", "not valid TOML"),
    ],
)
def test_a_bad_override_chrome_file_is_a_config_error(
    override: Path, content: str, message: str
) -> None:
    (override / "chrome.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        render_digest(CONTENT, "sq", make_config(templates=str(override)))


def test_a_broken_override_template_is_a_config_error(override: Path) -> None:
    (override / "_item.html.j2").write_text("{{ story.nonexistent }}", encoding="utf-8")
    with pytest.raises(ConfigError, match="digest template"):
        render_digest(CONTENT, "en", make_config(templates=str(override)))


def test_a_missing_override_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"digest\.templates"):
        render_digest(CONTENT, "en", make_config(templates=str(tmp_path / "nowhere")))


def test_the_templates_ship_in_the_package() -> None:
    import importlib.resources

    folder = importlib.resources.files("iomfeed.templates") / "digest"
    for name in (
        "digest.html.j2",
        "digest.txt.j2",
        "_item.html.j2",
        "_item.txt.j2",
        "_footer.html.j2",
        "digest.css",
    ):
        assert (folder / name).is_file(), name
    words = importlib.resources.files("iomfeed.languages")
    for code in ("en", "sq"):
        assert (words / f"{code}.toml").is_file(), code


# ----------------------------------------------------------------------------- inlining


@pytest.fixture
def transforms(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from premailer import Premailer

    calls: list[int] = []
    original = Premailer.transform

    def counting(self: Premailer, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Premailer, "transform", counting)
    return calls


def test_the_css_is_inlined_once_per_digest_and_language(transforms: list[int]) -> None:
    render_digest(CONTENT, "en", make_config())
    assert len(transforms) == 1
    render_digest(CONTENT, "sq", make_config())
    assert len(transforms) == 2


def test_fitting_the_size_inlines_once_per_attempt(transforms: list[int]) -> None:
    few = render_digest(dataclasses.replace(CONTENT, entries=ENTRIES[:7]), "en", make_config())
    transforms.clear()
    r = render_digest(CONTENT, "en", make_config(max_bytes=few.html_bytes + 100))
    assert r.shown == 7
    # none and all (known), then interpolated guesses: 7 fits, 8 does not.
    assert len(transforms) <= 4


def test_inlining_logs_and_warns_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        render_digest(CONTENT, "en", make_config())
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- in a browser


def png(width: int, height: int) -> bytes:
    """A gradient picture, made without an imaging library."""
    rows = b"".join(
        b"\x00"
        + bytes(
            c for x in range(width) for c in (20 + x * 100 // width, 60 + y * 120 // height, 160)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def filled(r: RenderedDigest) -> str:
    name = "Ëlira" if r.language == "sq" else "Ana"
    values = {
        GREETING: r.greeting.replace("{name}", name),
        UNSUBSCRIBE_URL: "https://feeds.example.org/unsubscribe?t=7.abc&x=1",
        ADDRESS: "elira@example.org",
    }
    out = r.html
    for token, value in values.items():
        out = out.replace(token, htmllib.escape(value))
    return out


@pytest.fixture
def pages(tmp_path: Path, rendered: dict[str, RenderedDigest]) -> dict[str, str]:
    paths = {}
    for lang, r in rendered.items():
        path = tmp_path / f"digest-{lang}.html"
        path.write_text(filled(r), encoding="utf-8")
        paths[lang] = path.as_uri()
    return paths


@pytest.mark.browser
def test_the_digest_reads_well_on_a_desktop_and_a_phone(pages: dict[str, str]) -> None:
    from .browser import browser, screenshot_path

    picture = png(900, 600)

    def serve(route: Any) -> None:
        if route.request.url.startswith("https://img.test/"):
            route.fulfill(status=200, content_type="image/png", body=picture)
        else:
            route.abort()

    measure_js = """() => {
        const box = e => e.getBoundingClientRect();
        const container = document.querySelector('table.container');
        return {
            container: box(container).width,
            scroll: document.documentElement.scrollWidth,
            images: [...document.images].map(i => ({right: box(i).right, width: box(i).width,
                                                     loaded: i.complete && i.naturalWidth > 0,
                                                     thumb: i.classList.contains('thumb')})),
            tooWide: [...document.querySelectorAll('body *')]
                .filter(e => box(e).right > window.innerWidth + 1).length,
            preheader: box(document.querySelector('.preheader')).height,
            font: parseFloat(getComputedStyle(document.querySelector('p.item-summary')).fontSize),
        };
    }"""
    with browser() as chromium:
        for lang, uri in pages.items():
            for width in (800, 600, 375):
                page = chromium.new_page(viewport={"width": width, "height": 900})
                page.route(re.compile(r"^https?://"), serve)
                page.goto(uri)
                page.wait_for_load_state("networkidle")
                page.screenshot(
                    path=str(screenshot_path(f"digest-{lang}-{width}.png")), full_page=True
                )
                got = page.evaluate(measure_js)
                page.close()
                assert got["images"] and all(i["loaded"] for i in got["images"])
                assert got["preheader"] == 0
                assert got["font"] == 16
                assert got["scroll"] <= width, f"{lang} {width}: horizontal scrolling"
                assert got["tooWide"] == 0
                assert all(i["right"] <= width for i in got["images"])
                thumbs = [i["width"] for i in got["images"] if i["thumb"]]
                if width > 600:
                    assert got["container"] == 600
                    assert set(thumbs) == {168}
                else:
                    # The phone rules beat the inlined widths: full width, images too.
                    assert got["container"] == width
                    assert all(w == width - 2 * 16 for w in thumbs), thumbs


def test_scraped_text_and_links_cannot_spell_a_subscriber_token() -> None:
    from iomfeed.digest.render import ADDRESS, TOKENS, UNSUBSCRIBE_URL, ascii_url, clean_text

    hostile = f"Win a prize {ADDRESS} {UNSUBSCRIBE_URL}"
    assert not any(t in clean_text(hostile) for t in TOKENS)
    link = f"https://tracker.example/?who={ADDRESS}&u={UNSUBSCRIBE_URL}"
    assert not any(t in ascii_url(link) for t in TOKENS)
