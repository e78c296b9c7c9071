"""Parsing only what the selectors can reach gives the same article and listing as parsing
the whole page, and a selector that could reach outside makes the page parse whole."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from iomfeed.config import ArticleConfig, ListingConfig
from iomfeed.sources import html_strain
from iomfeed.sources.html_parse import parse_article, parse_listing
from iomfeed.sources.html_strain import parse, plan

NOW = datetime(2025, 3, 1, tzinfo=UTC)

ARTICLE = """<!DOCTYPE html>
<html lang="sq-AL"><head>
<meta property="og:title" content="From the head">
<meta property="og:image" content="/head.png">
<meta property="article:modified_time" content="2024-05-02T10:00:00Z">
<link rel="canonical" href="/news/one">
<title>Page</title>
</head><body>
<header><h1 class="site">Site name</h1><p class="date">1 January 2020</p>
<span class="cat">From the header</span></header>
<main><article class="node">
<h1 class="page-title">Story title</h1>
<div class="body"><p>Tirana, 3 February 2024 - Body text.</p>
<div class="share">share</div><script>var x;</script></div>
<span class="cat">Local</span><span class="cat">Global</span>
</article></main>
<footer><p class="date">2 March 2021</p><img class="logo" src="/logo.png" alt="Logo"></footer>
</body></html>"""

CONFIGS = {
    "ordinary": ArticleConfig(
        container=("main article.node", "main"),
        title=("h1.page-title", "meta[property='og:title']@content"),
        body=(".body",),
        remove=(".share", "script"),
        category=(".cat",),
    ),
    "a title outside the container": ArticleConfig(title=("h1",), body=(".body",)),
    "a date in the header and the footer": ArticleConfig(date=(".date",), body=(".body",)),
    "a sibling combinator first": ArticleConfig(title=("header + main h1",), body=(".body",)),
    "the root": ArticleConfig(title=(":root h1",), body=("body > main .body",)),
    "a language test": ArticleConfig(category=(":lang(sq) .cat",), body=(".body",)),
    "a relation inside :not()": ArticleConfig(category=(".cat:not(header *)",), body=(".body",)),
    "structural pseudo-classes": ArticleConfig(
        category=("article .cat:first-of-type",), body=("main div:nth-child(2)",)
    ),
    "an image by attribute": ArticleConfig(image=("footer img[src$='.png']@src",), body=(".body",)),
}


def _whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_strain, "plan", lambda selectors: None)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_strained_article_reads_as_the_whole_page(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = CONFIGS[name]
    if cfg.container == ArticleConfig().container:  # its "body" would keep the whole page
        cfg = replace(cfg, container=("main article.node",))
    url = "https://example.org/news/one"
    strained = parse_article(ARTICLE, url, cfg, tz=UTC, now=NOW)
    _whole(monkeypatch)
    assert parse_article(ARTICLE, url, cfg, tz=UTC, now=NOW) == strained
    assert strained.body_html and strained.language == "sq"


def test_which_selectors_the_strainer_serves() -> None:
    served = [
        "main article.node",
        ".body",
        "meta[property='og:title']",
        "a b + c",
        "main > :is(p, b)",
    ]
    served += ["[rel~=next]", "article .cat:first-of-type", "h3.teaser-title a"]
    for css in served:
        assert plan((css,)) is not None, css
    outside = [
        "header + main h1",
        "a ~ b",
        ":root h1",
        ":scope p",
        ":lang(sq) .cat",
        "p:first-child",
    ]
    outside += [".cat:not(header *)", ":is(main p)", "svg|a", "*|p", ":dir(ltr)", "input:default"]
    for css in outside:
        assert plan((css,)) is None, css
        assert plan(("main", css)) is None, css  # one is enough to parse whole


def test_the_strainer_keeps_only_what_the_selectors_reach() -> None:
    soup, html_attrs = parse(ARTICLE, ("main article.node", "meta[property='og:title']"))
    assert html_attrs == {"lang": "sq-AL"}
    assert [el.name for el in soup.find_all(True, recursive=False)] == ["meta", "main"]
    assert soup.find("footer") is None and soup.find("header") is None
    soup, html_attrs = parse(ARTICLE, ("header + main",))
    assert html_attrs is None  # parsed whole
    assert soup.find("footer") is not None


LISTING = """<html><head><link rel="next" href="?page=2"></head><body>
<nav><a href="/nav">Nav</a></nav>
<div class="view-content">
<div class="views-row"><h3><a href="/a">A</a></h3><div class="teaser">First</div></div>
<div class="views-row"><h3><a href="mailto:x@example.org">Mail</a></h3></div>
<div class="views-row"><h2 class="t"><a href="/b">B</a></h2><span class="d">1 May 2024</span></div>
</div><ul class="pager"><li class="next"><a href="?page=2">next</a></li></ul>
</body></html>"""

LISTINGS = {
    "ordinary": ListingConfig(
        item=(".view-content .views-row",),
        title=("h3 a", "h2.t a"),
        link=("h3 a@href", "h2.t a@href"),
        summary=(".teaser",),
        date=(".d",),
        next=("link[rel~=next]@href", "li.next a@href"),
    ),
    "a sibling next link": ListingConfig(
        item=(".views-row",), title=("a",), link=("a@href",), next=("nav ~ ul a@href",)
    ),
}


@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_strained_listing_reads_as_the_whole_page(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = LISTINGS[name]
    strained = parse_listing(LISTING, "https://example.org/news", cfg)
    _whole(monkeypatch)
    assert parse_listing(LISTING, "https://example.org/news", cfg) == strained
    assert strained.entries and strained.next_url and strained.skipped


@pytest.mark.parametrize(
    ("page", "css"),
    [
        # A <template>'s contents are not the page's for soupsieve: the page parses whole.
        (
            "<body><div class='list'><template><div class='item'>{{title}}</div></template>"
            "<div class='item'>Real</div></div></body>",
            ".item",
        ),
        # The probe sees an element's attributes as the tree does: class split into words
        # the way bs4 splits them (spaces around, doubled, a no-break space).
        ("<body><div class=' article-body'><p>x</p></div></body>", "div[class^='article'] p"),
        ("<body><div class='post  big'><p>x</p></div></body>", "div[class='post big'] p"),
        ("<body><div class='foo\u00a0bar'><p>x</p></div></body>", ".foo p"),
        ("<body><a rel='nofollow  noopener' href='/a'>a</a></body>", "a[rel~='noopener']"),
    ],
)
def test_a_strained_page_selects_what_the_whole_page_does(page: str, css: str) -> None:
    from bs4 import BeautifulSoup

    from iomfeed.sources.html_select import PageIndex

    whole = [str(e) for e in BeautifulSoup(page, "lxml").select(css)]
    strained = [str(e) for e in PageIndex(parse(page, (css,))[0]).select(css)]
    assert strained == whole and whole


TRICKY = """<!DOCTYPE html><html lang="en" class="X"><head>
<meta property="og:title" content="t"><meta name="x"><meta PROPERTY="og:image" content="i">
<link rel="next canonical" href="/n"><!-- a comment outside --><script>1</script></head>
<body><div ID="Main" class="Body body"><p>kept? <b>bold</b></p></div>
<div id="main" class="BODY">text<a rel="next" href="/2">next</a></div>
<a href="/x">no rel</a><a rel="nofollow next" href="/3">3</a><p lang="sq" data-x>x</p>
<div id="MAIN">the id in capitals</div><span class="Body">the class in capitals</span>
<section class="teaser"><section class="teaser">nested</section></section> tail
</body></html>"""

TRICKY_SELECTORS = (
    ".body",
    "#main",
    "main",
    "a[rel~=next]",
    "meta[property='og:title']",
    "meta[property='og:image']",
    "p[data-x]",
    "p[lang!=en]",
    "section.teaser > section",
    "script",
    "link[rel~=canonical][href]",
)


@pytest.mark.parametrize("page", [ARTICLE, TRICKY])
def test_the_builder_that_drops_early_builds_what_the_strainer_alone_builds(page: str) -> None:
    from bs4 import BeautifulSoup

    for selectors in (TRICKY_SELECTORS, tuple(s.split("@")[0] for s in CONFIGS["ordinary"].title)):
        anchors = plan(selectors)
        assert anchors is not None
        strainer = html_strain.KeepAnchored(anchors)
        plain = BeautifulSoup(page, "lxml", parse_only=strainer)
        soup, html_attrs = parse(page, selectors)
        assert soup.decode() == plain.decode() and soup.decode()
        assert html_attrs == strainer.html_attrs
