"""Testing an element against a simple selector as soupsieve does, without its matcher.

A page is read with some twenty selectors, each tried on the elements its last compound can
match (:class:`.html_select.PageIndex`). soupsieve's matcher is general: a ``CSSMatch`` is
set up for every selection (a dozen caches, the document's root and kind found again), and
each element goes through generators and every kind of test a selector could hold. The
selectors a configuration uses are nearly all of :mod:`.html_css`'s grammar: compounds of a
tag name, ids, classes and attribute tests, joined by descendant and child combinators.
For those, :func:`element_test` makes a plain function with soupsieve's answers, for a page
soupsieve reads as an HTML document without namespaces (:func:`plain_html`: bs4's trees
from lxml's HTML parser), where it

* compares tag and attribute names with ASCII letters lowered, ids and classes exactly;
* reads an attribute as the first of the element's whose lowered name is the one asked
  for, a missing value as ``""``, a list (``class``, ``rel``) joined by spaces;
* walks up through parents, stopping at the document and at a ``<template>``, whose
  contents are no part of the page.

Anything else (pseudo-classes, sibling combinators, namespaces, ``!=``), another soupsieve
release than those the tests hold this to (:data:`CHECKED`), or another kind of document
is left to soupsieve. ``tests/test_html_match.py`` holds every answer to soupsieve's on
generated pages and selectors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import soupsieve
from bs4 import BeautifulSoup, Tag
from soupsieve.css_types import Selector
from soupsieve.util import ascii_lower

if TYPE_CHECKING:
    from soupsieve import SoupSieve

#: The soupsieve releases (major.minor) whose answers this copies, as its tests check.
CHECKED = ("4.1",)
USED = ".".join(str(getattr(soupsieve, "__version__", "")).split(".")[:2]) in CHECKED

ElementTest = Callable[[Tag], bool]

#: soupsieve's words of a class attribute given as one string.
_WORDS = re.compile("[^ \t\r\n\f]+")


def plain_html(soup: BeautifulSoup) -> bool:
    """soupsieve reads ``soup`` as an HTML document whose elements have no namespace."""
    if not USED or soup.is_xml:
        return False
    root = next((child for child in soup.contents if isinstance(child, Tag)), None)
    return root is None or not root.namespace


@lru_cache(maxsize=1024)
def element_test(compiled: SoupSieve) -> ElementTest | None:
    """What ``compiled.match(el)`` answers for an element of a :func:`plain_html` page, as
    a function; ``None`` when ``compiled`` is not of the simple grammar."""
    if not USED or compiled.selectors.is_not or compiled.selectors.is_html:
        return None
    tests = []
    for sel in compiled.selectors:
        test = _compound(sel)
        if test is None:
            return None
        tests.append(test)
    if len(tests) == 1:
        return tests[0]
    return lambda el: any(test(el) for test in tests)


def _compound(sel: object) -> ElementTest | None:
    """The test of one compound and, through its relation, of those to its left."""
    if not isinstance(sel, Selector):
        return None
    if sel.nth or sel.selectors or sel.contains or sel.lang or sel.flags:
        return None
    if sel.tag is not None and sel.tag.prefix is not None:
        return None
    name = None if sel.tag is None or sel.tag.name == "*" else ascii_lower(sel.tag.name)
    ids, classes = sel.ids, sel.classes
    attributes: list[tuple[str, re.Pattern[str] | None, bool]] = []
    for a in sel.attributes:
        if a.prefix or a.inverse:
            return None
        attributes.append((ascii_lower(a.attribute), a.pattern, a.ignore_case))
    keyed = bool(ids or classes or attributes)
    left: ElementTest | None = None
    child = False
    if sel.relation:
        if len(sel.relation) != 1:
            return None
        outer = sel.relation[0]
        if not isinstance(outer, Selector) or outer.rel_type not in (" ", ">"):
            return None
        left = _compound(outer)
        if left is None:
            return None
        child = outer.rel_type == ">"

    def test(el: Tag) -> bool:
        if name is not None:
            own = el.name
            if own != name and ascii_lower(own) != name:
                return False
        if keyed and not _attributes_match(el.attrs, ids, classes, attributes):
            return False
        if left is None:
            return True
        parent = _parent(el)
        if child:
            return parent is not None and left(parent)
        while parent is not None:
            if left(parent):
                return True
            parent = _parent(parent)
        return False

    return test


def _attributes_match(
    attrs: dict[str, Any],
    ids: tuple[str, ...],
    classes: tuple[str, ...],
    attributes: list[tuple[str, re.Pattern[str] | None, bool]],
) -> bool:
    if ids:
        own = _value(attrs, "id")
        if any(i != ("" if own is None else own) for i in ids):
            return False
    if classes:
        words = _value(attrs, "class")
        if words is None:
            words = []
        elif isinstance(words, str):
            words = _WORDS.findall(words)
        if any(c not in words for c in classes):
            return False
    for attribute, pattern, ignore_case in attributes:
        value = _value(attrs, attribute)
        if value is None:
            return False
        if pattern is None:
            continue
        text = value if isinstance(value, str) else " ".join(value)
        if pattern.search(ascii_lower(text) if ignore_case else text) is None:
            return False
    return True


def _value(attrs: dict[str, Any], name: str) -> Any:
    """The first attribute whose lowered name is ``name`` (``""`` for one with no value),
    or ``None``."""
    for key, value in attrs.items():
        if key == name or (len(key) == len(name) and ascii_lower(key) == name):
            return "" if value is None else value
    return None


def _parent(el: Tag) -> Tag | None:
    """The element's parent as soupsieve walks up: none at the document or a template."""
    parent = el.parent
    if parent is None or isinstance(parent, BeautifulSoup):
        return None
    own = parent.name
    if len(own) == 8 and ascii_lower(own) == "template":
        return None
    return parent
