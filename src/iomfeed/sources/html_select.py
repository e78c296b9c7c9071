"""Running the configured CSS selectors over a parsed page, cheaply and with bs4's answers.

``soup.select(css)`` walks every element of the page and tries the selector on each; an
article is read with a dozen or more selectors (the fall-back lists, the date's places, the
image, the canonical link), so that was most of a scrape's time. Here each selector is compiled
once per process (:func:`compile_css`), and a page is walked once (:class:`PageIndex`): its
elements by tag name, class and id, in document order. A selector then only tries the elements
that can match its last compound (``meta[property=...]`` the ``meta`` elements, ``.x`` those
of class ``x``), with soupsieve's own matcher, rooted at the document as ``soup.select`` roots
it: the same elements in the same order. A selector whose last compound names none of them
(``*``, ``:is(...)``) tries every element; one with a namespace prefix goes to bs4 unchanged.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag
    from soupsieve import SoupSieve


@lru_cache(maxsize=1024)
def compile_css(css: str) -> SoupSieve | None:
    """``css`` compiled, once (the simple ones by :mod:`.html_css`, as soupsieve would);
    ``None`` for a selector with a namespace prefix, which bs4 compiles with the page's own
    namespaces."""
    if "|" in css:
        return None
    from .html_css import compile_simple

    compiled = compile_simple(css)  # the usual selector, without soupsieve's tokenizer
    if compiled is not None:
        return compiled
    import soupsieve

    return soupsieve.compile(css)


@dataclass(slots=True)
class Walk:
    """A tree's elements in document order (as ``soup.select`` walks them), and for each
    the place just after its last descendant; made by whoever builds the tree, or by
    :func:`walk`."""

    elements: list[Tag] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)


def walk(soup: BeautifulSoup) -> Walk:
    """The walk ``soup.select()`` makes (a ``<template>``'s contents are not the page's)."""
    from soupsieve.css_match import CSSMatch

    any_element = compile_css("*")
    assert any_element is not None
    walker = CSSMatch(any_element.selectors, soup, None, any_element.flags)
    found = Walk()
    elements, ends, open_ = found.elements, found.ends, list[int]()
    for position, el in enumerate(walker.get_tag_descendants(soup, template_contents=True)):
        parent = el.parent
        while open_ and elements[open_[-1]] is not parent:
            ends[open_.pop()] = position
        open_.append(position)
        elements.append(el)
        ends.append(0)
    for position in open_:
        ends[position] = len(elements)
    return found


class PageIndex:
    """One page's elements, walked once (or as the tree was built: ``walked``), by tag
    name, class and id (lowercased: a key only narrows the candidates; soupsieve's matcher
    decides), with where each one's subtree ends."""

    __slots__ = (
        "by_class",
        "by_id",
        "by_name",
        "elements",
        "ends",
        "plain",
        "positions",
        "removed",
        "soup",
    )

    def __init__(self, soup: BeautifulSoup, walked: Walk | None = None) -> None:
        self.soup = soup
        found = walk(soup) if walked is None else walked
        self.elements, self.ends = found.elements, found.ends
        self.positions: dict[int, int] = {}  # id() of an element: its place in the walk
        self.by_name: dict[str, list[int]] = {}
        self.by_class: dict[str, list[int]] = {}
        self.by_id: dict[str, list[int]] = {}
        self.removed: set[int] = set()  # id() of the elements decompose() took out
        from .html_match import plain_html

        self.plain = plain_html(soup)  # the simple selectors need no soupsieve matcher
        positions, by_name = self.positions, self.by_name
        by_class, by_id = self.by_class, self.by_id
        for position, el in enumerate(self.elements):
            positions[id(el)] = position
            by_name.setdefault((el.name or "").lower(), []).append(position)
            attrs = el.attrs  # (what Tag.get reads, without its call)
            classes = attrs.get("class")
            if classes:
                for cls in classes if isinstance(classes, list) else classes.split():
                    by_class.setdefault(cls.lower(), []).append(position)
            ident = attrs.get("id")
            if isinstance(ident, str):
                by_id.setdefault(ident.lower(), []).append(position)

    def _candidates(self, compiled: SoupSieve, start: int, end: int) -> Iterable[int]:
        """Places in ``start:end`` of the elements that may match, in document order."""
        from soupsieve.css_types import Selector

        found: set[int] = set()
        alternatives = len(compiled.selectors)
        for sel in compiled.selectors:
            if not isinstance(sel, Selector):
                return range(start, end)
            if sel.ids:
                keyed = self.by_id.get(sel.ids[0].lower(), [])
            elif sel.classes:
                keyed = self.by_class.get(sel.classes[0].lower(), [])
            elif sel.tag is not None and sel.tag.name not in (None, "*"):
                keyed = self.by_name.get(sel.tag.name.lower(), [])
            else:
                return range(start, end)
            inside = keyed[bisect_left(keyed, start) : bisect_left(keyed, end)]
            if alternatives == 1:
                return inside
            found.update(inside)
        return sorted(found)

    def decompose(self, el: Tag) -> None:
        """Take ``el`` and everything in it out of the page (and out of later selections)."""
        self.removed.add(id(el))
        self.removed.update(id(child) for child in el.find_all(True))
        el.decompose()

    def select(self, css: str, limit: int = 0) -> list[Tag]:
        """What ``soup.select(css, limit=limit)`` gives, in the same order."""
        return self._select(self.soup, 0, len(self.elements), css, limit)

    def within(self, el: Tag) -> Within:
        return Within(self, el)

    def _select(self, scope: Tag, start: int, end: int, css: str, limit: int) -> list[Tag]:
        compiled = compile_css(css)
        if compiled is None:
            return list(scope.select(css, limit=limit))
        candidates = self._candidates(compiled, start, end)
        if not candidates:
            return []  # (a fall-back for another layout, say: no element has its key)
        from .html_match import element_test

        test = element_test(compiled) if self.plain else None
        if test is None:
            from soupsieve.css_match import CSSMatch

            # Rooted where scope.select() roots it (:scope, and the relations, see the same).
            test = CSSMatch(compiled.selectors, scope, compiled.namespaces, compiled.flags).match
        elements, removed = self.elements, self.removed
        found: list[Tag] = []
        for position in candidates:
            el = elements[position]
            if removed and id(el) in removed:
                continue
            if test(el):
                found.append(el)
                if len(found) == limit:
                    break
        return found


@dataclass(frozen=True, slots=True)
class Within:
    """One element of an indexed page, as a place to select in: ``el.select(css)``."""

    page: PageIndex
    el: Tag

    def select(self, css: str, limit: int = 0) -> list[Tag]:
        page, el = self.page, self.el
        position = page.positions.get(id(el))
        if position is None or id(el) in page.removed or el.name == "template":
            # Not walked with the page (or a <template>, whose own contents a select reaches).
            found = compile_css(css)
            if found is None:
                return list(el.select(css, limit=limit))
            return found.select(el, limit)
        return page._select(el, position + 1, page.ends[position], css, limit)


#: Where a selector runs: the whole page or one of its elements (through the page's index),
#: or an element of a page that has none.
Root = Union[PageIndex, Within, "Tag"]


def select(root: Root, css: str, limit: int = 0) -> list[Tag]:
    """``root.select(css, limit=limit)``, with the selector compiled once."""
    if isinstance(root, (PageIndex, Within)):
        return root.select(css, limit)
    compiled = compile_css(css)
    if compiled is None:
        return list(root.select(css, limit=limit))
    return compiled.select(root, limit)


def select_one(root: Root, css: str) -> Tag | None:
    found = select(root, css, 1)
    return found[0] if found else None
