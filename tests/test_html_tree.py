"""The kept subtrees built straight from lxml's tree (``sources/html_tree.py``) against bs4's
own strained tree, node by node and link by link: the snapshot's pages, a generated site's,
hand-written awkward ones and generated documents, each under the shipped selectors and
under others that keep more or less of a page."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup, NavigableString, PageElement
from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.config import load_config, split_selector
from iomfeed.demo.server import DEFAULT_ROOT
from iomfeed.sources import html_tree
from iomfeed.sources.html_parse import _article_selectors
from iomfeed.sources.html_select import walk
from iomfeed.sources.html_strain import KeepAnchored, parse, plan

from .conftest import CONFIG_FILE

pytestmark = pytest.mark.skipif(
    not html_tree.USED, reason="the installed bs4 is not one html_tree was checked against"
)


def _shipped() -> list[tuple[str, ...]]:
    source = load_config(CONFIG_FILE).sources[0]
    listing = source.listing
    groups: tuple[tuple[str, ...], ...] = (listing.item, listing.title, listing.link)
    groups += (listing.summary, listing.date, listing.image, listing.next)
    out = []
    for chosen in (groups, _article_selectors(source.article)):
        specs = (split_selector(spec)[0] for group in chosen for spec in group)
        out.append(tuple(dict.fromkeys(specs)))
    return out


#: The shipped listing and article selectors, then ones keeping the whole page, single
#: elements, text-preserving and string-container elements, attribute tests.
SELECTORS = [
    *_shipped(),
    ("*",),
    ("body",),
    ("p", "li"),
    ("pre", "textarea", "script", "style"),
    ("div.a", "#main", "span[title]", "a[href^='http']"),
    ("[lang]", "td", "option"),
    ("meta[property='og:title']", "meta[name=description][content]", "link[rel~=canonical]"),
    ("span[title='']", "a[href$='.pdf']", "div[class~=a]", "p[lang^=en]", "[id=MAIN]"),
    ("p[\u00c9a='2']", "div.post", "div[b]"),
]

AWKWARD = [
    "<!DOCTYPE html><html lang='sq'><head><title>t</title></head><body><p>a</p></body></html>",
    "\ufeff<p class=' x  y '>bom then text</p>",
    "<body>  \n  <p>  </p>\n<p>\t</p><p> a </p>  </body>",
    "<pre>\n  kept  \n <b>  </b> </pre><textarea>  \n </textarea><p>  \n  </p>",
    "<div><!----><!--   --><!-- c --><p>x<!--\n-->y</p></div>",
    "<script>  </script><script>if (a < b) { x = '</p>'; }</script><style> p{} </style>",
    "<div class=a id=main><span title>t</span><span title=''>u</span><br><img src=x alt></div>",
    "<table><tr><td>1<td>2</table><ul><li>a<li>b</ul><select><option>o</select>",
    "<P CLASS=A>upper</P><Div Id=Main>case</Div>",
    "<p>&amp; &lt; &nbsp; &eacute; &#x1F600; &unknown; &</p>",
    "<div><p>unclosed <b>bold <i>both</div> after",
    "<a href='http://x/'>in<a href='/y'>nested</a></a>",
    "<math><mi>x</mi></math><svg viewBox='0 0 1 1'><circle r='1'/></svg>",
    "<p>pi <?php echo 1 ?> after</p>",
    "<html><body><p>one</p></body><p>after body</p></html>",
    "<body class=a><p>x</p><body class=b id=c><p>y</p>",
    "<head><title>a</title></head><body>x</body><head><meta name=z></head>",
    "<html lang=a><html lang=b dir=rtl><p>x</p>",
    "<frameset><frame src=a></frameset>",
    "text first<html><p>x</p>",
    "<p>a</p></p></div></span>b",
    "a\x00b<p>x\x00y</p><p>\x0c\x1b control characters</p>",
    "<?xml version='1.0' encoding='utf-8'?><html><p>x</p></html>",
    "<script><![CDATA[ x < y ]]></script><p><![CDATA[z]]></p>",
    "<p \u00c9a=1 title=x>a</p><p \u00c9a=2>b</p>",
    "no markup at all",
    "<noscript><p>n</p></noscript><iframe><p>i</p></iframe><template><p>t</p></template>",
]


#: Pages left to bs4's builder (each still checked against bs4's tree through parse()):
#: something after </html>, nesting as deep as libxml2 goes, attribute names bs4 reads as
#: namespaces, a doctype inside the page or after a comment, and no tree at all.
LEFT = [
    "<html><body><p lang=en>one</p></body></html><p>after the end</p>",
    "<html><body><p>one</p></body></html>\n<!-- after -->\n",
    "<div>" * 300 + "deeper than libxml2 goes" + "</div>" * 300,
    # (from a second reading: unrendered template markup, late doctypes, odd end tags)
    "<body><div class=post {{ attrs }}><p>x</p></div><div {a}b=1>y</div></body>",
    "<html {x=1><p>x</p></html>",
    "<body><div a{b=1 c}=2 class=post><p>a brace inside a name</p></div></body>",
    "<div class=body>Intro<!DOCTYPE html>Second</div><p>a<!doctype html>b</p>",
    "<!-- first --><!DOCTYPE html><p>after a comment</p>",
    "<html><body><p>one</p></body></html/><p>two</p>",
    "<html><body><p>one</p></body></html foo><p>two</p>",
    "",
    "   ",
]


def _pages() -> list[str]:
    pages = [p.read_text(encoding="utf-8") for p in sorted(DEFAULT_ROOT.rglob("*.html"))]
    assert len(pages) > 20
    return pages + AWKWARD


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The snapshot's pages, the awkward ones, and a generated site's, read once."""
    from dev.sitegen import build_site, synthetic_items

    site = tmp_path_factory.mktemp("site")
    build_site(synthetic_items(30, undated=0.1), site)
    return _pages() + [p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html"))]


#: A node's links and children, compared by place; what the soup was parsed with (the
#: strainer, the builder object) differs by construction.
_LINKS = {"parent", "previous_element", "next_element", "previous_sibling", "next_sibling"}
_LINKS |= {"_most_recent_element"}  # (the soup's)
_NOT_COMPARED = _LINKS | {"contents", "attrs", "builder", "parse_only"}


def _settings(node: Any) -> tuple[tuple[str, Any], ...]:
    """Every other attribute the node holds, by name: a node made without bs4's own
    constructors must hold the same ones (a Tag answers a missing one with find())."""
    return tuple(sorted((k, _kept(v)) for k, v in vars(node).items() if k not in _NOT_COMPARED))


def _kept(value: Any) -> Any:
    """A value to compare: a node (the soup's parse state holds some) by its kind and name,
    not by bs4's deep equality."""
    if isinstance(value, PageElement):
        return ("node", type(value), getattr(value, "name", None))
    if isinstance(value, list) and any(isinstance(v, PageElement) for v in value):
        return [_kept(v) for v in value]
    return value


def shape(soup: BeautifulSoup) -> list[tuple[Any, ...]]:
    """Every node in document order: its kind, every attribute it holds, its HTML attributes
    (and their types), the tag's settings, and where each of its links points (by place in
    the order)."""
    nodes: list[Any] = [soup, *soup.descendants]
    place = {id(node): n for n, node in enumerate(nodes)}

    def at(node: Any) -> int | None:
        return None if node is None else place.get(id(node), -1)

    out = []
    for node in nodes:
        links: tuple[Any, ...] = (node.parent, node.previous_element, node.next_element)
        links += (node.previous_sibling, node.next_sibling)
        links += (vars(node).get("_most_recent_element"),)
        row: tuple[Any, ...] = (type(node), tuple(at(x) for x in links))
        row += (_settings(node),)
        if hasattr(node, "attrs"):
            attrs = tuple((k, v, type(v)) for k, v in node.attrs.items())
            row += (node.name, type(node.attrs), attrs, node.namespace, node.prefix)
            row += (node.can_be_empty_element, node.hidden, node.known_xml)
            row += (node.interesting_string_types, node._namespaces, len(node.contents))
            row += (at(node.contents[0]) if node.contents else None,)
        else:
            row += (str(node),)
        out.append(row)
    return out


class EveryAnchor(KeepAnchored):
    """The strainer as plainly as it can be: every anchor's own test on every start tag (no
    keys first, no shortcut, no answers kept)."""

    def allow_tag_creation(self, nsprefix: str | None, name: str, attrs: Any) -> bool:
        from bs4 import Tag

        attrs = attrs or {}
        if name == "html" and self.html_attrs is None:
            self.html_attrs = dict(attrs)
        probe = Tag(builder=self._builder, name=name, attrs=dict(attrs), is_xml=False)
        groups = (self.unkeyed, *self.by_name.values(), *self.by_id.values())
        anchors = [a for group in (*groups, *self.by_class.values()) for a in group]
        return any(a.test.match(probe) for a in anchors)


def check(text: str, selectors: tuple[str, ...]) -> bool:
    """The direct tree, with the strainer's keys and kept answers (warm from the pages
    before), is bs4's with every anchor tested on every tag; whether the page was built
    directly (not left to bs4)."""
    anchors = plan(selectors)
    assert anchors is not None, selectors
    expected = BeautifulSoup(text, "lxml", parse_only=EveryAnchor(anchors))
    strainer = KeepAnchored(anchors)
    made = html_tree.build(text, strainer)
    if made is None:
        return False
    built, walked = made
    assert shape(built) == shape(expected), (selectors, text[:200])
    assert built.decode() == expected.decode()
    # Its elements as they were made are the walk soup.select() makes of it.
    again = walk(built)
    assert [id(el) for el in walked.elements] == [id(el) for el in again.elements]
    assert walked.ends == again.ends
    reference = EveryAnchor(anchors)
    BeautifulSoup(text, "lxml", parse_only=reference)
    assert (strainer.html_attrs or {}) == (reference.html_attrs or {})
    return True


@pytest.mark.parametrize("selectors", SELECTORS, ids=lambda s: s[0])
def test_the_direct_tree_is_bs4s_on_every_page(
    selectors: tuple[str, ...], pages: list[str]
) -> None:
    for text in pages:
        assert check(text, selectors), text[:200]  # built directly, and bs4's
    for text in LEFT:
        assert not check(text, selectors), text[:200]
        anchors = plan(selectors)
        assert anchors is not None
        soup, attrs = parse(text, selectors)  # bs4's own way, as before
        expected = EveryAnchor(anchors)
        assert shape(soup) == shape(BeautifulSoup(text, "lxml", parse_only=expected))
        assert attrs == (expected.html_attrs or {})


def test_what_it_cannot_copy_is_left_to_bs4_and_parse_reads_either() -> None:
    anchors = plan(("p",))
    assert anchors is not None
    after = "<html><body><p>one</p></body></html><p>after the end</p>"
    assert html_tree.build(after, KeepAnchored(anchors)) is None  # lxml's tree drops "after"
    assert html_tree.build("<p>one</p>", KeepAnchored(anchors)) is not None
    # A node other than an element, text or a comment (this libxml2 reads <?php ?> in HTML
    # as a comment; a processing instruction made in lxml's tree stands for one it keeps).
    from lxml import etree

    page = etree.Element("p")
    page.append(etree.ProcessingInstruction("php", "echo 1"))
    tree = html_tree._Builder()
    assert tree.element(page, tree.soup, NavigableString, 0) is False
    for text in (after, "<html lang=sq><p>one</p>"):
        soup, attrs = parse(text, ("p",))
        expected = KeepAnchored(anchors)
        assert shape(soup) == shape(BeautifulSoup(text, "lxml", parse_only=expected))
        assert attrs == (expected.html_attrs or {})
    assert [p.get_text() for p in parse(after, ("p",))[0].find_all("p")] == ["one", "after the end"]


_TEXT = st.sampled_from([" ", "\n", "\t", "  \n ", "a", " b ", "&amp;", "&nbsp;", "é", "<", ""])
_TAG = st.sampled_from(["p", "div", "span", "pre", "textarea", "script", "style", "b", "li", "a"])
_ATTR = st.sampled_from(
    [
        *("", " class='a'", " class=' a  b '", " id=main", " id=MAIN", " title", " title=''"),
        *(" lang=sq", " lang=en-GB", " class=A", " href=x.pdf", " href='http://a'"),
    ]
)


@st.composite
def documents(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 5 if depth < 3 else 2))
        if kind <= 1:
            parts.append(draw(_TEXT))
        elif kind == 2:
            parts.append(f"<!--{draw(_TEXT)}-->")
        else:
            tag, attr = draw(_TAG), draw(_ATTR)
            close = draw(st.booleans())
            parts.append(f"<{tag}{attr}>{draw(documents(depth + 1))}" + (f"</{tag}>" * close))
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(documents(), st.sampled_from(SELECTORS[2:]))
def test_the_direct_tree_is_bs4s_on_generated_documents(
    text: str, selectors: tuple[str, ...]
) -> None:
    check(text, selectors)
