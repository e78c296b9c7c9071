"""Compiling the common, simple CSS selectors without soupsieve's tokenizer.

soupsieve tokenizes a selector with a dozen large case-insensitive Unicode regular
expressions, compiled by ``re`` the first time any selector is compiled: about 95 ms of a
process's CPU, more than a short run spends on everything else it reads. The selectors a
configuration uses are nearly all of a small grammar: compounds of a tag name (or ``*``),
``#id``, ``.class`` and ``[attr]`` or ``[attr op value]`` (``=``, ``~=``, ``^=``, ``$=``,
``*=``, ``|=``; a plain or quoted value without escapes), joined by descendant or child
combinators, in a comma-separated list. :func:`compile_simple` builds for those the very
objects soupsieve builds (its own ``css_types``, its own attribute patterns: a test compares
the two for every selector the shipped configuration and the tests use) and answers ``None``
for anything else, which soupsieve then compiles.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soupsieve import SoupSieve
    from soupsieve.css_types import Selector, SelectorAttribute

_IDENT = r"-?[A-Za-z_][A-Za-z0-9_-]*"
_VALUE = rf"""(?:{_IDENT}|"[^"\\\n]*"|'[^'\\\n]*')"""
_ATTR = rf"\[\s*({_IDENT})\s*(?:([~^$*|]?=)\s*({_VALUE})\s*)?\]"
_COMPOUND = re.compile(rf"({_IDENT}|\*)?((?:#{_IDENT}|\.{_IDENT}|{_ATTR})*)")
_PART = re.compile(rf"#({_IDENT})|\.({_IDENT})|{_ATTR}")
_COMBINATOR = re.compile(r"\s*(>)\s*|\s+")
_COMMA = re.compile(r"\s*,\s*")


def compile_simple(css: str) -> SoupSieve | None:
    """``css`` compiled as soupsieve compiles it, or ``None``: not of the simple grammar."""
    from soupsieve import SoupSieve
    from soupsieve.css_types import SelectorList

    selectors, count, at, text = [], 0, 0, css.strip()
    if not text:
        return None
    while True:
        parsed = _complex(text, at)
        if parsed is None:
            return None
        selector, simple, at = parsed
        selectors.append(selector)
        count += simple
        if at == len(text):
            break
        comma = _COMMA.match(text, at)
        if comma is None or comma.end() == len(text):
            return None
        at = comma.end()
    return SoupSieve(css, SelectorList(selectors, False, False, count), None, None, 0)


def _complex(text: str, at: int) -> tuple[Selector, int, int] | None:
    """Compounds joined by combinators from ``at``: the selector, its count of simple
    selectors and where it ends (before a comma or at the end)."""
    from soupsieve.css_types import SelectorList

    chain: list[tuple[Selector, int]] = []
    combinators: list[str] = []
    while True:
        parsed = _compound(text, at)
        if parsed is None:
            return None
        chain.append((parsed[0], parsed[1]))
        at = parsed[2]
        if at == len(text) or _COMMA.match(text, at):
            break
        joint = _COMBINATOR.match(text, at)
        if joint is None:
            return None
        combinators.append(joint.group(1) or " ")
        at = joint.end()
    # The rightmost compound is the selector; each one to its left is its relation, carrying
    # the combinator that follows it.
    relation, total = SelectorList(), 0
    for (selector, simple), rel_type in zip(chain, [*combinators, None], strict=True):
        total += simple
        selector = _with(selector, relation, rel_type, rightmost=rel_type is None)
        relation = SelectorList([selector])
    return selector, total, at


def _compound(text: str, at: int) -> tuple[Selector, int, int] | None:
    from soupsieve.css_types import Selector, SelectorList, SelectorTag

    m = _COMPOUND.match(text, at)
    if m is None or m.end() == at:
        return None
    ids: list[str] = []
    classes: list[str] = []
    attributes: list[SelectorAttribute] = []
    for part in _PART.finditer(m.group(2)):
        if part.group(1):
            ids.append(part.group(1))
        elif part.group(2):
            classes.append(part.group(2))
        else:
            attributes.append(_attribute(part.group(3), part.group(4), part.group(5)))
    tag = SelectorTag(m.group(1), None) if m.group(1) else None  # see _with
    simple = (1 if m.group(1) else 0) + len(ids) + len(classes) + len(attributes)
    selector = Selector(
        tag, tuple(ids), tuple(classes), tuple(attributes), (), (), SelectorList(), None, (), (), 0
    )
    return selector, simple, m.end()


def _with(
    selector: Selector, relation: object, rel_type: str | None, *, rightmost: bool
) -> Selector:
    """``selector`` with its relation; soupsieve gives a compound with no tag name ``*``
    when it is the rightmost, no tag at all when it is a relation."""
    from soupsieve.css_types import Selector, SelectorTag

    return Selector(
        selector.tag or (SelectorTag("*", None) if rightmost else None),
        selector.ids,
        selector.classes,
        selector.attributes,
        selector.nth,
        selector.selectors,
        relation,  # type: ignore[arg-type]
        rel_type,
        selector.contains,
        selector.lang,
        selector.flags,
    )


def _attribute(name: str, op: str | None, raw: str | None) -> SelectorAttribute:
    """As soupsieve's ``parse_attribute_selector`` makes it (no namespace, no case flag)."""
    from soupsieve import util
    from soupsieve.css_parser import HTML_CASE_INSENSITIVE_ATTRIBUTES, CSSParser
    from soupsieve.css_types import SelectorAttribute

    insensitive = util.lower(name) in HTML_CASE_INSENSITIVE_ATTRIBUTES
    pattern = xml_pattern = None
    if op and raw is not None:
        value = raw[1:-1] if raw[:1] in ("'", '"') else raw
        pattern = CSSParser.parse_attribute_pattern(op, util.lower(value) if insensitive else value)
        if insensitive:
            xml_pattern = CSSParser.parse_attribute_pattern(op, value)
    return SelectorAttribute(name, "", pattern, xml_pattern, False, insensitive)
