"""The simple selectors compiled without soupsieve's tokenizer are soupsieve's own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import soupsieve

from iomfeed.config import load_config, split_selector
from iomfeed.sources.html_css import compile_simple
from iomfeed.sources.html_parse import _ARTICLE_FIXED

ROOT = Path(__file__).resolve().parent.parent


def configured() -> list[str]:
    """Every CSS selector of the shipped configuration's sources, and the fixed ones."""
    found = ["*", *_ARTICLE_FIXED]
    for src in load_config(ROOT / "config.toml").sources:
        for group in (src.listing, src.article):
            for f in dataclasses.fields(group):
                if f.metadata.get("selectors"):
                    found += [split_selector(spec)[0] for spec in getattr(group, f.name)]
    return list(dict.fromkeys(found))


SIMPLE = [
    "main > article.node#x[rel~=next][type='a'][href]",
    "#Content .item-page",
    "h1.page-title, .item-page h2.contentheading",
    "DIV.Foo > P",
    'script[type="application/ld+json"]',
    "a[href^=http], a[href$='.pdf'], a[lang|=en], a[title*=x], a[rel='']",
    "a[Type=Foo]",
    "a[rel~='a b']",
    "a >b,c   d",
    "* > .x",
    "[data-x]",
    "div p span",
]
OTHERS = [
    "ul > li + li",
    "a ~ b",
    "a:not(.b)",
    "li:nth-child(2)",
    "x|y",
    "a[href=x i]",
    r".a\:b",
    "a >",
    "a,",
    ",a",
    "",
    "a[",
    "1a",
    "a::before",
]


@pytest.mark.parametrize("css", [*SIMPLE, *configured()])
def test_a_simple_selector_compiles_to_what_soupsieve_makes_of_it(css: str) -> None:
    mine = compile_simple(css)
    assert mine is not None, css
    theirs = soupsieve.compile(css)
    assert (mine.pattern, mine.flags, mine.namespaces, mine.custom) == (
        theirs.pattern,
        theirs.flags,
        theirs.namespaces,
        theirs.custom,
    )
    assert mine.selectors == theirs.selectors


@pytest.mark.parametrize("css", OTHERS)
def test_anything_else_is_left_to_soupsieve(css: str) -> None:
    assert compile_simple(css) is None
