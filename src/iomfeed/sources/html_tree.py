"""The kept subtrees of a page as bs4 builds them, made from lxml's own tree.

bs4 builds its tree from lxml's parser events, one Python call per start tag, end tag and
piece of text, through its builder's bookkeeping (the tag stack, the pending text, the
linkage of each node), also for the parts of the page a strainer then drops. Here lxml
parses the page into its C tree (the same libxml2 HTML parser, with the options bs4 gives
it, so the same elements, attributes and text), the elements the anchors keep are found
by walking it, and only their subtrees become bs4 nodes: :class:`bs4.Tag` objects built as
bs4's ``handle_starttag`` builds them, and strings as its ``endData`` makes them (a string
of ASCII white space only is one space or one newline outside ``<pre>`` and
``<textarea>``; inside ``<script>``, ``<style>`` and the like, of that element's string
class), linked in document order. The elements are noted as they are made, in the order
``soup.select()`` walks them (a ``<template>``'s contents left out), so the page's index
(:class:`.html_select.PageIndex`) does not walk the tree again. ``tests/test_html_tree.py``
holds the result to bs4's own tree, node by node and link by link, and the noted order to
soupsieve's walk, on every page the tests have and on generated ones.

A page this does not reproduce exactly is left to bs4 (:func:`build` answers ``None``): one
with a processing instruction or an entity node inside a kept subtree, or an attribute
whose name starts with ``{`` (which bs4 reads as a namespace; lxml cannot look it up by
name), one with anything after its ``</html>`` (which lxml's tree leaves out, and its
events give bs4 as a second ``<html>``), or with a doctype anywhere but first (lxml's tree
has no place for it inside the page, bs4 keeps it there), one nested as deep as libxml2
goes (its tree and its events part there), or one lxml cannot parse into a tree; and every
page when the installed bs4 is not a release the tests have held this to
(:data:`CHECKED`): it copies what bs4 does inside.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import bs4
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from bs4.builder._lxml import LXMLTreeBuilder
from bs4.element import nonwhitespace_re
from lxml import etree

from .html_select import Walk

if TYPE_CHECKING:
    from .html_strain import KeepAnchored

_SPACES = " \t\n\r\f"  # bs4's ASCII white space

#: Something after an ``</html>`` end tag (``</html foo>``, ``</html/>`` end it too).
_AFTER_END = re.compile(r"</html(?![\w:.-])[^>]*>\s*\S", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!doctype", re.IGNORECASE)

#: A page nested this deep is left to bs4: libxml2 stops at 256 levels, and there its
#: tree and the events it gives bs4 part.
_DEEP = 200
_COMMENT = etree.Comment  # what lxml gives a comment as its tag

#: The bs4 releases (major.minor) whose trees this reproduces, as its tests check.
CHECKED = ("4.15",)
USED = ".".join(str(getattr(bs4, "__version__", "")).split(".")[:2]) in CHECKED


class _Builder:
    """One page's bs4 tree, node by node, in document order."""

    def __init__(self) -> None:
        builder: Any = LXMLTreeBuilder()  # (the stubs know bs4 4.12's attributes)
        self.builder = builder
        # An empty document: lxml would parse nothing into it, so its parser (and the
        # inspection of this builder's methods that making one with a Python target costs)
        # is left out.
        builder.feed = _parse_nothing
        try:
            self.soup = BeautifulSoup("", builder=builder)
        finally:
            del builder.feed
        # The node made last: the next one's previous_element. bs4 starts with none, so the
        # document's own next_element stays None, as in its strained trees.
        self.last: Any = None
        self.attrs = builder.attribute_dict_class
        self.containers = builder.string_containers
        self.preserve = builder.preserve_whitespace_tags
        self.namespaces = builder.active_namespace_prefixes[-1]
        self.preserving = 0  # open <pre> and <textarea> elements
        self.walk = Walk()  # the elements made, for the page's index
        self.hidden = 0  # open <template> elements: their contents are not in the walk
        self.settings: dict[str, tuple[dict[str, Any], frozenset[str]]] = {}

    def _link(self, node: Any, parent: Tag) -> None:
        """``node`` as the last child of ``parent`` and the next element after the last one
        made, as ``PageElement.setup`` links it."""
        node.parent = parent
        last = self.last
        node.previous_element = last
        if last is not None:
            last.next_element = node
        node.next_element = None
        node.next_sibling = None
        siblings = parent.contents
        before = siblings[-1] if siblings else None
        node.previous_sibling = before
        if before is not None:
            before.next_sibling = node
        siblings.append(node)
        self.last = node

    def string(self, text: str, parent: Tag, kind: type[NavigableString]) -> None:
        if not self.preserving and not text.strip(_SPACES):
            text = "\n" if "\n" in text else " "
        node: Any = str.__new__(kind, text)  # as NavigableString.__new__ makes it
        node.hidden = False
        self._link(node, parent)

    def _tag(self, name: str, pairs: list[tuple[str, str]], parent: Tag) -> Tag:
        """The element as ``Tag(...)`` makes it with this builder, linked in."""
        known = self.settings.get(name)
        if known is None:
            known = self.settings[name] = self._settings(name)
        settings, lists = known
        tag: Any = object.__new__(Tag)
        vars(tag).update(settings)
        attrs = self.attrs(pairs)
        if attrs and lists:  # the builder's _replace_cdata_list_attribute_values
            words = self.builder.attribute_value_list_class
            for key in [key for key in attrs if key in lists]:
                value = attrs[key]
                if isinstance(value, str):
                    value = words(nonwhitespace_re.findall(value))
                attrs[key] = value
        tag.attrs = attrs
        tag.contents = []
        if not self.namespaces:
            tag._namespaces = {}  # (a dict of its own, as Tag makes it)
        if name in self.containers:
            tag.interesting_string_types = {self.containers[name]}
        self._link(tag, parent)
        if name == "meta":
            self.builder.set_up_substitutions(tag)
        return cast(Tag, tag)

    def _settings(self, name: str) -> tuple[dict[str, Any], frozenset[str]]:
        """What ``Tag.__init__`` sets alike on every element named ``name`` of this page,
        and the names of the attributes whose values it splits into words."""
        alike, lists = _alike(name)
        return {**alike, "_namespaces": self.namespaces or {}}, lists

    def element(self, el: Any, parent: Tag, kind: type[NavigableString], depth: int) -> bool:
        """Build ``el`` (at ``depth`` in the page) and its subtree; False at a node bs4
        would build in a way this does not copy (then the whole page is left to bs4)."""
        if depth > _DEEP:
            return False
        name, pairs = el.tag, el.items()
        if pairs and "{" in "".join(el.keys()):  # as in _walk: left to bs4
            return False
        tag = self._tag(name, pairs, parent)
        elements, ends = self.walk.elements, self.walk.ends
        position = len(elements)
        if not self.hidden:
            elements.append(tag)
            ends.append(0)
        hides = name == "template"
        self.hidden += hides
        kind = self.containers.get(name, kind)
        preserve = name in self.preserve
        self.preserving += preserve
        # (Each of lxml's .tag, .text and .tail makes its string anew: read once.)
        text = el.text
        if text:
            self.string(text, tag, kind)
        for child in el:
            child_tag = child.tag
            if isinstance(child_tag, str):
                if not self.element(child, tag, kind, depth + 1):
                    return False
            elif child_tag is _COMMENT:
                self.string(child.text or "", tag, Comment)
            else:
                return False
            tail = child.tail
            if tail:
                self.string(tail, tag, kind)
        self.preserving -= preserve
        self.hidden -= hides
        if not self.hidden:
            ends[position] = len(elements)
        return True


@lru_cache(maxsize=512)
def _alike(name: str) -> tuple[dict[str, Any], frozenset[str]]:
    """What ``Tag.__init__`` sets alike on every element named ``name`` that bs4's lxml
    builder makes, of any page (the builder's settings are its class's), but the namespaces
    in scope; and the attributes it splits into words."""
    builder: Any = LXMLTreeBuilder()
    settings = {
        "parser_class": BeautifulSoup,
        "name": name,
        "namespace": None,
        "prefix": None,
        "sourceline": None,
        "sourcepos": None,
        "attribute_value_list_class": builder.attribute_value_list_class,
        "known_xml": builder.is_xml,
        "hidden": False,
        "can_be_empty_element": builder.can_be_empty_element(name),
        "cdata_list_attributes": builder.cdata_list_attributes,
        "preserve_whitespace_tags": builder.preserve_whitespace_tags,
        "interesting_string_types": cast(Any, Tag).MAIN_CONTENT_STRING_TYPES,  # (4.13 on)
    }
    lists = builder.cdata_list_attributes or {}
    return settings, frozenset(lists.get("*", set()) | lists.get(name.lower(), set()))


def _parse_nothing(markup: object) -> None:
    """The builder's ``feed`` for the empty document a page's tree starts from."""


def build(text: str, strainer: KeepAnchored) -> tuple[BeautifulSoup, Walk] | None:
    """The page's tree with only the subtrees ``strainer`` keeps, as bs4 would build it with
    lxml and that strainer, and its elements as they were made (for its
    :class:`.html_select.PageIndex`); ``None`` when it must be left to bs4."""
    if not USED or _AFTER_END.search(text):
        return None
    if text.startswith("\N{BYTE ORDER MARK}"):
        text = text[1:]  # as bs4 does before lxml sees it
    doctypes = [m.start() for m in _DOCTYPE.finditer(text)]
    if len(doctypes) > 1 or (doctypes and text[: doctypes[0]].strip()):
        return None
    parser = etree.HTMLParser(recover=True)
    try:
        parser.feed(text)
        root = parser.close()
    except (etree.Error, ValueError):
        return None
    if root is None or not isinstance(root.tag, str):
        return None
    tree = _Builder()
    if not _walk(root, tree, strainer, 0):
        return None
    soup: Any = tree.soup
    soup._most_recent_element = tree.last  # (as bs4 leaves it after parsing)
    return soup, tree.walk


def _walk(el: Any, tree: _Builder, strainer: KeepAnchored, depth: int) -> bool:
    """Build each element ``strainer`` keeps, at or below ``el`` (at ``depth``); descend
    into the others. False: one of them cannot be built so."""
    if depth > _DEEP:
        return False
    keys = el.keys()
    if keys and "{" in "".join(keys):  # a namespaced key ("{uri}name"), or a brace in one
        return False  # (before anything looks one up by name)
    name, attrib = el.tag, el.attrib
    if name == "html" and strainer.html_attrs is None:
        strainer.html_attrs = dict(attrib)
    if strainer.keys_match(name, attrib) and strainer.allow_tag_creation(None, name, attrib):
        return tree.element(el, tree.soup, NavigableString, depth)
    for child in el:  # (a loop, not all(): one frame a level)
        if isinstance(child.tag, str) and not _walk(child, tree, strainer, depth + 1):
            return False
    return True
