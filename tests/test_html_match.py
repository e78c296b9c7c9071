"""The simple selectors' own element tests (``sources/html_match.py``) against soupsieve's
matcher, element by element: generated pages and selectors, hand-picked awkward ones, and
what is left to soupsieve."""

from __future__ import annotations

import pytest
import soupsieve
from bs4 import BeautifulSoup, Tag
from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.sources import html_match
from iomfeed.sources.html_css import compile_simple
from iomfeed.sources.html_match import element_test, plain_html

pytestmark = pytest.mark.skipif(
    not html_match.USED, reason="the installed soupsieve is not one html_match was checked against"
)


def _check(page: str | BeautifulSoup, css: str) -> int:
    """Every element's answer is soupsieve's, for ``css`` compiled both ways; the number of
    elements matched."""
    soup = page if isinstance(page, BeautifulSoup) else BeautifulSoup(page, "lxml")
    assert plain_html(soup)
    theirs = soupsieve.compile(css)
    ours = compile_simple(css)
    matched = 0
    for compiled in (theirs, ours):
        if compiled is None:
            continue
        test = element_test(compiled)
        assert test is not None, css
        for el in soup.find_all(True):  # (those inside a <template> too)
            expected = theirs.match(el)
            assert test(el) is expected, (css, str(el)[:120])
            matched += expected
    return matched


PAGE = """<!DOCTYPE html><html lang="sq"><head>
<meta property="og:title" content="T"><link rel="Canonical alternate" href="/a">
<script type="application/ld+json">{}</script></head>
<body class="Page"><main id="Main"><article class="node NODE--full" id="a1">
<h1 class="page-title">One <span class="x">two</span></h1>
<div class="field field--name-body" data-x="a&#160;b"><p>Body <b class="x">bold</b></p>
<div class="x social-share"><a href="/s" rel="next">share</a></div></div>
<template><p class="x">in a template</p><div class="t"><p class="x">deeper</p></div></template>
<ul><li class="it">1</li><li class="it">2</li><li class="it last">3</li></ul>
<input type="TEXT" lang="EN-gb" title=""></article></main>
<svg><a href="/svg">svg link</a></svg></body></html>"""

AWKWARD = [
    "p",
    "P",
    "*",
    ".x",
    ".X",
    "#main",
    "#Main",
    "main article.node",
    "main > article",
    "body > main > article > h1 .x",
    "article .x, template .x",
    "template p",
    "template > p",
    "div.t p",
    "html > body",
    "* > html",
    "* html",
    "link[rel~=canonical]",
    "link[rel~=Canonical]",
    "link[REL]",
    "input[type=text]",
    "input[type='TEXT']",
    "input[lang|=en]",
    "input[title='']",
    "input[title]",
    "[data-x*=a]",
    "a[href^='/']",
    "a[href$=svg]",
    "svg a",
    "meta[property='og:title'][content]",
    "script[type='application/ld+json']",
    "li.it.last",
    "ul li.it",
    "nothing, p",
]


@pytest.mark.parametrize("css", AWKWARD)
def test_each_answer_is_soupsieves(css: str) -> None:
    _check(PAGE, css)


def test_attribute_names_are_read_as_soupsieve_reads_them() -> None:
    """The first attribute whose lowered name is asked for, a missing value as "", and a
    class given as one string split at white space."""
    soup = BeautifulSoup("<div><p>a</p><p>b</p><p>c</p></div>", "lxml")
    first, second, third = soup.find_all("p")
    assert isinstance(first, Tag) and isinstance(second, Tag) and isinstance(third, Tag)
    first.attrs = {"ID": "Up", "id": "low", "Class": "a  b\tc", "TITLE": None}
    second.attrs = {"class": None, "id": None, "lang": ["en", "GB"]}
    third.attrs = {"cLaSs": ["a", "b"], "Data-X": "1"}
    for css in ("#Up", "#low", ".a", ".b.c", "p.a.b", "[title]", "[title='']", "#x"):
        _check(soup, css)
    for css in ("[class]", "[id='']", "[lang='en GB']", "[lang~=GB]", "[data-x='1']", "p[DATA-X]"):
        _check(soup, css)


@pytest.mark.parametrize(
    "css",
    ["li:nth-child(2)", "li + li", "li ~ li", ":not(p)", "p:has(b)", "[a!=b]", ":root", "p, a + b"],
)
def test_what_is_not_simple_is_left_to_soupsieve(css: str) -> None:
    assert element_test(soupsieve.compile(css)) is None


def test_only_an_html_page_without_namespaces_is_plain() -> None:
    assert plain_html(BeautifulSoup(PAGE, "lxml"))
    assert plain_html(BeautifulSoup("", "lxml"))
    assert not plain_html(BeautifulSoup("<a><b/></a>", "xml"))
    soup = BeautifulSoup("<p>x</p>", "lxml")
    html = soup.find("html")
    assert isinstance(html, Tag)
    html.namespace = "http://www.w3.org/1999/xhtml"  # as a namespace-aware parser would
    assert not plain_html(soup)


_NAMES = ["p", "div", "span", "a", "li", "template", "section"]
_WORDS = ["a", "A", "b", "node", "x-y"]


@st.composite
def pages(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        if depth >= 4 or draw(st.integers(0, 3)) == 0:
            parts.append(draw(st.sampled_from(["t", " ", ""])))
            continue
        name = draw(st.sampled_from(_NAMES))
        attrs = ""
        if draw(st.booleans()):
            words = draw(st.lists(st.sampled_from(_WORDS), max_size=3))
            attrs += f" class='{' '.join(words)}'"
        if draw(st.integers(0, 3)) == 0:
            attrs += f" id={draw(st.sampled_from(_WORDS))}"
        if draw(st.integers(0, 3)) == 0:
            attrs += f" lang={draw(st.sampled_from(['en', 'EN-gb', 'sq']))}"
        if draw(st.integers(0, 3)) == 0:
            attrs += f" title='{draw(st.sampled_from(['', 'a b', 'x-y']))}'"
        parts.append(f"<{name}{attrs}>{draw(pages(depth + 1))}</{name}>")
    return "".join(parts)


@st.composite
def selectors(draw: st.DrawFn) -> str:
    def compound() -> str:
        out = draw(st.sampled_from(["", "*", *_NAMES, "P", "DIV"]))
        for _ in range(draw(st.integers(0 if out else 1, 2))):
            kind = draw(st.integers(0, 2))
            if kind == 0:
                out += "." + draw(st.sampled_from(_WORDS))
            elif kind == 1:
                out += "#" + draw(st.sampled_from(_WORDS))
            else:
                attr = draw(st.sampled_from(["lang", "title", "class", "id", "LANG"]))
                op = draw(st.sampled_from(["", "=", "~=", "^=", "$=", "*=", "|="]))
                value = draw(st.sampled_from(["en", "'EN'", "a", "'a b'", "''", "x-y"]))
                out += f"[{attr}{op}{value}]" if op else f"[{attr}]"
        return out

    def complex_() -> str:
        out = compound()
        for _ in range(draw(st.integers(0, 2))):
            out += draw(st.sampled_from([" ", " > ", ">"])) + compound()
        return out

    return ", ".join(complex_() for _ in range(draw(st.integers(1, 2))))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(pages(), selectors())
def test_generated_pages_and_selectors(page: str, css: str) -> None:
    _check(page, css)
