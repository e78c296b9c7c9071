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

from functools import lru_cache
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag
    from soupsieve import SoupSieve


@lru_cache(maxsize=1024)
def compile_css(css: str) -> SoupSieve | None:
    """``css`` compiled, once; ``None`` for a selector with a namespace prefix, which bs4
    compiles with the page's own namespaces."""
    if "|" in css:
        return None
    import soupsieve

    return soupsieve.compile(css)


class PageIndex:
    """One page's elements, walked once, by tag name, class and id (lowercased: a key only
    narrows the candidates; soupsieve's matcher decides)."""

    __slots__ = ("by_class", "by_id", "by_name", "elements", "removed", "soup")

    def __init__(self, soup: BeautifulSoup) -> None:
        from soupsieve.css_match import CSSMatch

        self.soup = soup
        self.elements: list[Tag] = []
        self.by_name: dict[str, list[int]] = {}
        self.by_class: dict[str, list[int]] = {}
        self.by_id: dict[str, list[int]] = {}
        self.removed: set[int] = set()  # id() of the elements decompose() took out
        any_element = compile_css("*")
        assert any_element is not None
        # The tree walk soup.select() makes (a <template>'s contents are not the page's).
        walker = CSSMatch(any_element.selectors, soup, None, any_element.flags)
        for position, el in enumerate(walker.get_tag_descendants(soup, template_contents=True)):
            self.elements.append(el)
            self.by_name.setdefault((el.name or "").lower(), []).append(position)
            classes = el.get("class")
            if classes:
                for cls in classes if isinstance(classes, list) else classes.split():
                    self.by_class.setdefault(cls.lower(), []).append(position)
            ident = el.get("id")
            if isinstance(ident, str):
                self.by_id.setdefault(ident.lower(), []).append(position)

    def _candidates(self, compiled: SoupSieve) -> list[int] | None:
        """Positions of the elements that may match; ``None``: every element."""
        from soupsieve.css_types import Selector

        found: set[int] = set()
        for sel in compiled.selectors:
            if not isinstance(sel, Selector):
                return None
            if sel.ids:
                found.update(self.by_id.get(sel.ids[0].lower(), ()))
            elif sel.classes:
                found.update(self.by_class.get(sel.classes[0].lower(), ()))
            elif sel.tag is not None and sel.tag.name not in (None, "*"):
                found.update(self.by_name.get(sel.tag.name.lower(), ()))
            else:
                return None
        return sorted(found)

    def decompose(self, el: Tag) -> None:
        """Take ``el`` and everything in it out of the page (and out of later selections)."""
        self.removed.add(id(el))
        self.removed.update(id(child) for child in el.find_all(True))
        el.decompose()

    def select(self, css: str, limit: int = 0) -> list[Tag]:
        """What ``soup.select(css, limit=limit)`` gives, in the same order."""
        compiled = compile_css(css)
        if compiled is None:
            return list(self.soup.select(css, limit=limit))
        from soupsieve.css_match import CSSMatch

        matcher = CSSMatch(compiled.selectors, self.soup, compiled.namespaces, compiled.flags)
        positions = self._candidates(compiled)
        elements, removed = self.elements, self.removed
        found: list[Tag] = []
        for position in range(len(elements)) if positions is None else positions:
            el = elements[position]
            if removed and id(el) in removed:
                continue
            if matcher.match(el):
                found.append(el)
                if len(found) == limit:
                    break
        return found


#: Where a selector runs: the whole page (through its index) or one element's subtree.
Root = Union[PageIndex, "Tag"]


def select(root: Root, css: str, limit: int = 0) -> list[Tag]:
    """``root.select(css, limit=limit)``, with the selector compiled once."""
    if isinstance(root, PageIndex):
        return root.select(css, limit)
    compiled = compile_css(css)
    if compiled is None:
        return list(root.select(css, limit=limit))
    return compiled.select(root, limit)


def select_one(root: Root, css: str) -> Tag | None:
    found = select(root, css, 1)
    return found[0] if found else None
