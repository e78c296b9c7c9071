"""The page index answers every selector as ``soup.select`` does: same elements, same order."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from bs4 import BeautifulSoup

from iomfeed.sources.html_select import PageIndex, compile_css, select, select_one

PAGE = """<!DOCTYPE html>
<html lang="sq"><head>
<meta property="og:title" content="Titulli">
<link rel="canonical alternate" href="/a">
<script type="application/ld+json">{"datePublished": "2024-01-02"}</script>
</head><body class="Page">
<main id="Main"><article class="node NODE--full" id="a1">
<h1 class="page-title">One <span class="x">two</span></h1>
<div class="field field--name-body"><p>Body <b class="x">bold</b></p>
<div class="x social-share"><a href="/s">share</a></div></div>
<template><p class="x">inside a template</p></template>
<ul><li class="it">1</li><li class="it">2</li><li class="it last">3</li></ul>
</article></main>
<aside><time datetime="2024-01-01">1</time><p class="x">aside</p></aside>
<svg><a href="/svg">svg link</a></svg>
</body></html>"""

SELECTORS = [
    "p",
    "P",
    ".x",
    ".X",
    "#a1",
    "#MAIN",
    "#main",
    "main article.node",
    "article.node--full",
    ".field--name-body",
    "meta[property='og:title']",
    "link[rel~=canonical][href]",
    "script[type='application/ld+json']",
    "time[datetime]",
    "li.it:nth-child(2)",
    "li:last-child",
    "li.it + li",
    "li ~ li.last",
    "ul > li",
    ":root",
    ":root > body",
    "body.Page",
    "*",
    ":is(.x, time)",
    ":not(p)",
    "h1 .x, aside .x, .field--name-body .x",
    "#a1 .x, meta",
    "a[href]",
    "p:has(b)",
    ":scope > html",
    "template p",
    "nomatch",
    ".nomatch, #nomatch",
]


def _pair() -> tuple[BeautifulSoup, PageIndex]:
    plain = BeautifulSoup(PAGE, "lxml")
    indexed = BeautifulSoup(PAGE, "lxml")
    return plain, PageIndex(indexed)


def _shown(found: Iterable[object]) -> list[str]:
    return [str(el) for el in found]


@pytest.mark.parametrize("css", SELECTORS)
def test_index_selects_what_soup_selects(css: str) -> None:
    plain, page = _pair()
    expected = _shown(plain.select(css))
    assert _shown(page.select(css)) == expected
    assert _shown(page.select(css, 1)) == expected[:1]
    assert _shown(select(page, css)) == expected


def test_a_namespace_prefix_goes_to_bs4() -> None:
    plain, page = _pair()
    assert compile_css("svg|a") is None
    assert compile_css("a") is compile_css("a")  # compiled once
    expected = _shown(plain.select("*|a"))
    assert expected  # the svg link and the share link
    assert _shown(page.select("*|a")) == expected


def test_elements_decomposed_through_the_index_are_no_longer_selected() -> None:
    plain, page = _pair()
    body = select_one(page, ".field--name-body")
    assert body is not None
    for junk in select(body, ".social-share"):
        page.decompose(junk)
    for junk in plain.select(".field--name-body .social-share"):
        junk.decompose()
    for css in ("a", ".x", "div", "*"):
        assert _shown(page.select(css)) == _shown(plain.select(css)), css
    assert not page.select(".social-share")


@pytest.mark.parametrize("css", SELECTORS)
@pytest.mark.parametrize("scope", ["article", "main", "ul", "li.last", "head", "template", "svg"])
def test_selecting_inside_an_element_selects_what_it_selects(scope: str, css: str) -> None:
    plain, page = _pair()
    inside = page.select(scope, 1)[0]
    expected = plain.select_one(scope)
    assert expected is not None
    wanted = _shown(expected.select(css))
    assert _shown(page.within(inside).select(css)) == wanted
    assert _shown(select(page.within(inside), css, 1)) == wanted[:1]
    assert _shown(select(inside, css)) == wanted  # an element without its page's index


def test_selecting_inside_after_a_removal() -> None:
    plain, page = _pair()
    article = page.within(page.select("article", 1)[0])
    for junk in article.select(".x"):
        page.decompose(junk)
    expected = plain.select_one("article")
    assert expected is not None
    for junk in expected.select(".x"):
        junk.decompose()
    for css in ("*", "span", "div", "a", ".x"):
        assert _shown(article.select(css)) == _shown(expected.select(css)), css
