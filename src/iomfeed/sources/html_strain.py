"""Parsing only the parts of a page its selectors can reach (a bs4 ``SoupStrainer``).

Building bs4's tree is most of what a scrape costs once the selectors are cheap, and most of a
page (its header, menus, footer, sidebars) is never looked at. Every selector that reads a
page starts, on its left, with a compound (``main`` in ``main article.node``,
``.field--name-body`` alone): every element it finds lies inside an element that compound
matches. So the page is parsed keeping only the subtrees of the elements that one of those
leftmost compounds matches, in document order; inside them nothing is lost.

That holds when the leftmost compound can be decided from the tag alone (name, id, class,
attributes: no pseudo-class), when the first combinator after it goes down (descendant or
child, not a sibling), and when no part looks above the kept subtree (``:root``, ``:scope``,
``:lang()``, ``:dir()``, form states, or a relation inside ``:is()``/``:not()``). A page
with any selector that is not so is parsed whole (:func:`plan` answers ``None``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from bs4 import SoupStrainer
from bs4.builder._lxml import LXMLTreeBuilder

from .html_select import Walk, compile_css

#: A page with a <template> element is parsed whole (see :func:`parse`).
_TEMPLATE = re.compile(r"<template[\s/>]", re.IGNORECASE)

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag
    from soupsieve import SoupSieve
    from soupsieve.css_types import Selector, SelectorList

#: At most this many answers kept per anchor (a site's distinct tags are far fewer).
_DECIDED = 4096

#: Pseudo-class flags that read nothing outside the element itself.
_LOCAL_FLAGS = 0x1 | 0x80 | 0x100 | 0x400 | 0x1000  # :empty, :in/out-of-range, ...shown, :checked


@dataclass(frozen=True, slots=True)
class _Anchor:
    """A leftmost compound: the cheap keys that may match it, and its exact test."""

    name: str | None  # lowercased tag name, or None for any
    ident: str | None
    cls: str | None
    test: SoupSieve
    # The compound is its key alone (``main``, ``.x``, ``#y``): a tag with the name, or
    # with the class or id exactly as written, matches without the test.
    alone: bool = False
    written: str = ""
    # Attributes the compound needs present (lowercased; not those of an ``!=``, which
    # an element without the attribute matches): a tag without one of them is no match.
    needs: tuple[str, ...] = ()
    # Every attribute the test reads besides the name, id and class (lowercased; None: it
    # cannot be told, a namespaced one), those it only asks to be there (``[href]``), and
    # the test's answers by those values, so the like tags of a site's pages (its <meta
    # property=...>, its <link rel=canonical href=...>) are tested once per run.
    reads: tuple[str, ...] | None = ()
    present: tuple[str, ...] = ()
    decided: dict[tuple[str | bool | None, ...], bool] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def matches(self, name: str, attrs: Any, probe: Callable[[], Tag]) -> bool:
        """The test's answer for a start tag (``probe`` makes it as a tag, when asked)."""
        if self.reads is None:
            return bool(self.test.match(probe()))
        key = (name, attrs.get("id"), attrs.get("class"), *(attrs.get(r) for r in self.reads))
        key += tuple(p in attrs for p in self.present)
        found = self.decided.get(key)
        if found is None:
            found = bool(self.test.match(probe()))
            if len(self.decided) < _DECIDED:
                self.decided[key] = found
        return found


def _local(selectors: SelectorList, *, nested: bool) -> bool:
    """No part of these selectors looks above the element (or, nested, around it)."""
    from soupsieve.css_types import Selector

    for sel in selectors:
        if not isinstance(sel, Selector) or sel.lang or sel.flags & ~_LOCAL_FLAGS:
            return False
        if nested and sel.relation and not (sel.rel_type or "").startswith(":"):
            return False  # :is(a b) or :not(a > b): a relation from inside a pseudo-class
        if not all(_local(inner, nested=True) for inner in sel.selectors):
            return False
        if sel.relation and not _local(sel.relation, nested=nested):
            return False
    return True


def _anchor(sel: Selector, compiled: SoupSieve) -> _Anchor | None:
    """The leftmost compound of ``sel`` as an :class:`_Anchor`, or ``None`` when it cannot
    be decided from a start tag (or the combinator after it is a sibling one)."""
    from soupsieve import SoupSieve
    from soupsieve.css_types import Selector, SelectorList

    left, combinator = sel, None
    while left.relation:
        if len(left.relation) != 1 or not isinstance(left.relation[0], Selector):
            return None
        left = left.relation[0]
        combinator = left.rel_type
    if combinator not in (None, " ", ">"):
        return None
    if left.nth or left.selectors or left.contains or left.lang or left.flags:
        return None
    if left.tag is not None and left.tag.prefix is not None:
        return None
    name = left.tag.name.lower() if left.tag is not None and left.tag.name != "*" else None
    test = SoupSieve(
        compiled.pattern, SelectorList([left]), None, cast(Any, compiled.custom), compiled.flags
    )
    keys = (name is not None) + len(left.ids) + len(left.classes)
    alone = keys == 1 and not left.attributes
    return _Anchor(
        name,
        left.ids[0].lower() if left.ids else None,
        left.classes[0].lower() if left.classes else None,
        test,
        alone,
        (left.ids or left.classes or ("",))[0],
        tuple(a.attribute.lower() for a in left.attributes if not a.inverse),
        *_reads(left),
    )


def _reads(left: Selector) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The attributes a compound's test reads the values of, and those it only asks to be
    present; None for the first when that cannot be told (a namespaced attribute, or a name
    with letters beyond ASCII)."""
    if any(a.prefix or not a.attribute.isascii() for a in left.attributes):
        # (soupsieve lowercases names as ASCII; lxml keeps other letters' case)
        return None, ()
    values = {a.attribute.lower() for a in left.attributes if a.pattern is not None}
    present = {a.attribute.lower() for a in left.attributes} - values
    return tuple(sorted(values)), tuple(sorted(present))


@lru_cache(maxsize=64)
def plan(selectors: tuple[str, ...]) -> tuple[_Anchor, ...] | None:
    """The leftmost compounds of ``selectors`` (CSS only, no ``@attr``), once per run, or
    ``None``: one of them may reach outside what they keep, so the page is parsed whole."""
    from soupsieve.css_types import Selector

    anchors: list[_Anchor] = []
    for css in selectors:
        compiled = compile_css(css)
        if compiled is None or not _local(compiled.selectors, nested=False):
            return None
        for sel in compiled.selectors:
            found = _anchor(sel, compiled) if isinstance(sel, Selector) else None
            if found is None:
                return None
            anchors.append(found)
    return tuple(anchors)


class KeepAnchored(SoupStrainer):
    """Keep the subtree of each element a leftmost compound matches (outside such a subtree:
    below one, bs4 keeps everything); note the ``<html>`` element's attributes on the way."""

    def __init__(self, anchors: tuple[_Anchor, ...]) -> None:
        super().__init__()
        self.by_name: dict[str, list[_Anchor]] = {}
        self.by_id: dict[str, list[_Anchor]] = {}
        self.by_class: dict[str, list[_Anchor]] = {}
        self.unkeyed: list[_Anchor] = []
        for a in anchors:
            if a.ident:
                self.by_id.setdefault(a.ident, []).append(a)
            elif a.cls:
                self.by_class.setdefault(a.cls, []).append(a)
            elif a.name:
                self.by_name.setdefault(a.name, []).append(a)
            else:
                self.unkeyed.append(a)
        self.html_attrs: dict[str, Any] | None = None
        from bs4.builder import HTMLTreeBuilder

        # The probe's attributes as the parser's tree will have them (class and the other
        # multi-valued ones split into words as bs4 splits them), so a selector tests the
        # same values in the probe as in the tree.
        self._builder = HTMLTreeBuilder()

    @property
    def excludes_everything(self) -> bool:
        return False

    def allow_string_creation(self, string: str) -> bool:
        return False  # text outside every kept subtree

    def _candidates(self, name: str, attrs: Any) -> list[_Anchor]:
        """The anchors a start tag may match, by its name, id and classes alone."""
        candidates = self.unkeyed + self.by_name.get(name.lower(), [])
        ident = attrs.get("id")
        if ident:
            candidates += self.by_id.get(ident.lower(), [])
        classes = attrs.get("class")
        if classes:
            for cls in classes.split():
                candidates += self.by_class.get(cls.lower(), [])
        return candidates

    def keys_match(self, name: str, attrs: Any) -> bool:
        """Whether some anchor may match a start tag, by its name, id and classes alone
        (what :meth:`_candidates` finds, without making the list)."""
        if self.unkeyed or name.lower() in self.by_name:
            return True
        ident = attrs.get("id")
        if ident and ident.lower() in self.by_id:
            return True
        classes = attrs.get("class")
        return bool(classes) and any(c.lower() in self.by_class for c in classes.split())

    def allow_tag_creation(self, nsprefix: str | None, name: str, attrs: Any) -> bool:
        attrs = attrs or {}
        if name == "html" and self.html_attrs is None:  # the first, as soup.find("html")
            self.html_attrs = dict(attrs)
        candidates = self._candidates(name, attrs)
        if not candidates:
            return False
        for a in candidates:
            if a.alone and _has_key(a, attrs):
                return True
        present = {key.lower() for key in attrs if isinstance(key, str)}
        candidates = [a for a in candidates if present.issuperset(a.needs)]
        if not candidates:
            return False
        from bs4 import Tag

        made: list[Tag] = []

        def probe() -> Tag:
            # Alone, in an HTML tree: its compound is all an anchor tests.
            if not made:
                made.append(Tag(builder=self._builder, name=name, attrs=dict(attrs), is_xml=False))
            return made[0]

        return any(a.matches(name, attrs, probe) for a in candidates)


def _has_key(anchor: _Anchor, attrs: Any) -> bool:
    """The start tag, found by ``anchor``'s lowercased key, has it as written (a tag name:
    lxml lowercases them; a class or an id: soupsieve compares them as written)."""
    if anchor.name is not None:
        return True
    if anchor.ident is not None:
        return bool(attrs.get("id") == anchor.written)
    return anchor.written in (attrs.get("class") or "").split()


class _StrainedBuilder(LXMLTreeBuilder):
    """bs4's lxml builder, with what lies outside every kept subtree dropped as lxml reports
    it, before bs4 rebuilds its attributes and asks the strainer: a start tag no anchor can
    match by its keys, the end tags and the text out there. bs4 would drop each of them (a
    tag the strainer refuses, an end tag that closes nothing open, text outside the kept
    subtrees), so the tree is the same, built without most of the per-tag work."""

    def __init__(self, strainer: KeepAnchored) -> None:
        super().__init__()
        self.strainer = strainer

    def _outside(self) -> bool:
        soup = self.soup
        return soup is not None and len(soup.tagStack) <= 1 and len(self.nsmaps) == 1

    def start(self, tag: Any, attrib: Any, nsmap: Any = None) -> None:
        if (
            not nsmap
            and self._outside()
            and (tag != "html" or self.strainer.html_attrs is not None)
            and not self.strainer.keys_match(tag, attrib)
        ):
            return
        super().start(tag, attrib, nsmap or {})

    def end(self, tag: Any) -> None:
        if self._outside() and self.soup is not None and not self.soup.current_data:
            return
        super().end(tag)

    def data(self, data: Any) -> None:
        if not self._outside():
            super().data(data)


def parse(text: str, selectors: tuple[str, ...]) -> tuple[BeautifulSoup, dict[str, Any] | None]:
    """The page as bs4 reads it with lxml, strained when ``selectors`` allow it; with the
    ``<html>`` element's attributes when it was strained (``None``: parsed whole)."""
    soup, html_attrs, _walked = parse_walked(text, selectors)
    return soup, html_attrs


def parse_walked(
    text: str, selectors: tuple[str, ...]
) -> tuple[BeautifulSoup, dict[str, Any] | None, Walk | None]:
    """:func:`parse`, with the page's elements as the tree was built from lxml's (``None``:
    built by bs4, to be walked)."""
    from bs4 import BeautifulSoup

    anchors = plan(selectors)
    if anchors is None or _TEMPLATE.search(text):
        # (A <template>'s contents are no part of the page for soupsieve; the strainer,
        # asked about one tag at a time, cannot tell that an element is inside one.)
        return BeautifulSoup(text, "lxml"), None, None
    from .html_tree import build

    strainer = KeepAnchored(anchors)
    built = build(text, strainer)  # the kept subtrees straight from lxml's tree
    if built is not None:
        return built[0], strainer.html_attrs or {}, built[1]
    # A page that is not built so (see html_tree): bs4's own way.
    strainer = KeepAnchored(anchors)
    soup = BeautifulSoup(text, builder=_StrainedBuilder(strainer), parse_only=strainer)
    return soup, strainer.html_attrs or {}, None
