"""Normalisation: canonical URLs (property tests), sanitising, dates, datelines."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iomfeed.models import DateSource, Item
from iomfeed.normalize import (
    Origin,
    canonical_url,
    find_dateline,
    html_to_text,
    normalize_item,
    parse_date_text,
    parse_iso,
    sanitize_html,
    text_blocks,
    title_key,
    zone,
)

LIVE = (Origin.of("https://albania.iom.int/news"),)
TIRANE = zone("Europe/Tirane")
REF = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# ----------------------------------------------------------------------------- canonical URLs

segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%ëç", min_size=0, max_size=12)
path = st.lists(segment, min_size=0, max_size=4).map(lambda s: "/" + "/".join(s))
key = st.sampled_from(["page", "q", "id", "lang", "a b", "x"])
value = st.text(alphabet="abc123 +&=/%", max_size=6)
query = st.lists(st.tuples(key, value), max_size=4)
host = st.sampled_from(
    ["albania.iom.int", "ALBANIA.iom.INT", "kosovo.iom.int", "example.org", "127.0.0.1"]
)


def build(
    scheme: str, host_: str, port: str, path_: str, q: list[tuple[str, str]], frag: str
) -> str:
    from urllib.parse import urlencode

    qs = urlencode(q)
    return (
        f"{scheme}://{host_}{port}{path_}" + (f"?{qs}" if qs else "") + (f"#{frag}" if frag else "")
    )


urls = st.builds(
    build,
    st.sampled_from(["http", "https", "HTTP"]),
    host,
    st.sampled_from(["", ":80", ":443", ":8080"]),
    path,
    query,
    st.sampled_from(["", "top", "a-b"]),
)


@given(urls)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url, LIVE)
    assert canonical_url(once, LIVE) == once


@given(urls)
def test_canonical_url_has_no_fragment_default_port_or_upper_case_host(url: str) -> None:
    parts = urlsplit(canonical_url(url, LIVE))
    assert parts.fragment == ""
    assert parts.netloc == parts.netloc.lower()
    default = {"http": 80, "https": 443}[parts.scheme]
    assert parts.port != default and (parts.port is None) == (":" not in parts.netloc)


@given(path, query, st.sampled_from(["utm_source", "utm_medium", "fbclid", "gclid", "UTM_Term"]))
def test_variants_of_one_page_map_to_one_url(
    path_: str, q: list[tuple[str, str]], tracker: str
) -> None:
    plain = canonical_url(build("https", "albania.iom.int", "", path_, q, ""), LIVE)
    variants = [
        build("http", "albania.iom.int", "", path_, q, ""),
        build("https", "ALBANIA.IOM.INT", ":443", path_, q, "section"),
        build("http", "albania.iom.int", ":80", path_, [*q, (tracker, "x")], ""),
        build("https", "albania.iom.int", "", "/index.php" + path_, list(reversed(q)), ""),
    ]
    if len({k for k, _ in q}) == len(q):  # reordering is only neutral with distinct keys
        for variant in variants:
            assert canonical_url(variant, LIVE) == plain, variant


def test_canonical_url_examples() -> None:
    assert (
        canonical_url("http://Albania.IOM.int:80/index.php/news/x?utm_source=nl&b=2&a=1#top", LIVE)
        == "https://albania.iom.int/news/x?a=1&b=2"
    )
    assert canonical_url("https://albania.iom.int", LIVE) == "https://albania.iom.int/"
    assert (
        canonical_url("https://albania.iom.int/a/./b/../c", LIVE) == "https://albania.iom.int/a/c"
    )
    assert (
        canonical_url("https://albania.iom.int/news/%7euser%2f", LIVE)
        == "https://albania.iom.int/news/~user%2F"
    )
    # A loopback copy of the site keeps its own scheme and port.
    local = (Origin.of("http://127.0.0.1:8123/news"),)
    assert (
        canonical_url("http://127.0.0.1:8123/index.php/news/x", local)
        == "http://127.0.0.1:8123/news/x"
    )
    # An unknown site's http address is upgraded.
    assert canonical_url("http://example.org/x", LIVE) == "https://example.org/x"
    assert canonical_url("http://[::1]:8080/x#a", LIVE) == "http://[::1]:8080/x"
    assert canonical_url("https://host:80x/a", LIVE) == "https://host:80x/a"  # malformed: as is
    # Not http(s): left alone.
    assert canonical_url("mailto:someone@example.org", LIVE) == "mailto:someone@example.org"


# ----------------------------------------------------------------------------- sanitising


def test_sanitize_removes_everything_active_and_makes_links_absolute() -> None:
    dirty = (
        '<p style="color:red" onclick="steal()">Hello <a href="/news/x">x</a>'
        ' <a href="javascript:alert(1)">bad</a></p>'
        '<script>alert(1)</script><iframe src="https://youtube.com/embed/x"></iframe>'
        '<figure><img src="/sites/g/files/a.png" alt="A" onerror="x()"></figure>'
        '<style>p{}</style><img src="data:image/png;base64,AAAA">'
    )
    clean = sanitize_html(dirty, "https://albania.iom.int/news/page")
    for banned in (
        "script",
        "onclick",
        "onerror",
        "style",
        "iframe",
        "javascript:",
        "data:",
        "alert",
        "steal",
    ):
        assert banned not in clean
    assert '<a href="https://albania.iom.int/news/x" rel="noopener noreferrer">x</a>' in clean
    assert 'src="https://albania.iom.int/sites/g/files/a.png"' in clean
    assert 'alt="A"' in clean


@given(st.text(max_size=200))
def test_sanitize_never_lets_a_script_through(text: str) -> None:
    clean = sanitize_html(f"<p>{text}</p><script>{text}</script>", "https://a.org/")
    assert "<script" not in clean.lower()
    assert sanitize_html(clean, "https://a.org/") == clean


# ----------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Albania, 18-19 June 2024 – The ministry", datetime(2024, 6, 18, tzinfo=TIRANE)),
        ("Tirana 5 November 2018: IOM", datetime(2018, 11, 5, tzinfo=TIRANE)),
        ("Kapshtica, October 29, 2019: A group", datetime(2019, 10, 29, tzinfo=TIRANE)),
        ("Throughout March 2024 the mission", datetime(2024, 3, 1, tzinfo=TIRANE)),
        ("Tirana; 14-16 June 2021: IOM Mission", datetime(2021, 6, 14, tzinfo=TIRANE)),
        (
            "Posted: Wednesday, September 19, 2018 - 17:11",
            datetime(2018, 9, 19, 17, 11, tzinfo=TIRANE),
        ),
        ("Fri, 01/22/2021 - 03:19", datetime(2021, 1, 22, 3, 19, tzinfo=TIRANE)),
        ("Tiranë, 5 nëntor 2018: IOM", datetime(2018, 11, 5, tzinfo=TIRANE)),
    ],
)
def test_dates_in_text(text: str, expected: datetime) -> None:
    assert parse_date_text(text, TIRANE, reference=REF) == expected


def test_a_dateline_without_a_year_is_trusted_only_when_recent() -> None:
    text = "18 December, Tirana, Albania – Today"
    ref = datetime(2019, 1, 10, tzinfo=UTC)
    assert find_dateline(text, TIRANE, reference=ref) == datetime(2018, 12, 18, tzinfo=TIRANE)
    ref = datetime(2018, 12, 20, tzinfo=UTC)
    assert find_dateline(text, TIRANE, reference=ref) == datetime(2018, 12, 18, tzinfo=TIRANE)
    # Read years later (a backfill), the year cannot be known: no date rather than a wrong one.
    assert find_dateline(text, TIRANE, reference=datetime(2026, 11, 24, tzinfo=UTC)) is None


def test_the_earliest_date_in_a_dateline_wins() -> None:
    text = "18 December 2018, Tirana – the programme, running since 5 June 2015, continues"
    assert find_dateline(text, TIRANE, reference=REF) == datetime(2018, 12, 18, tzinfo=TIRANE)
    text = "Kapshtica, October 29, 2019: after the 3 March 2019 agreement"
    assert find_dateline(text, TIRANE, reference=REF) == datetime(2019, 10, 29, tzinfo=TIRANE)


def test_a_dateline_must_be_near_the_start() -> None:
    body = "IOM " + "works with partners. " * 20 + "On 5 November 2018 it met."
    assert find_dateline(body, TIRANE, reference=REF) is None
    assert find_dateline("No date here at all.", TIRANE, reference=REF) is None


def test_iso_dates_keep_their_offset_and_naive_ones_get_the_zone() -> None:
    assert parse_iso("2021-06-14T12:00:00Z", TIRANE) == datetime(2021, 6, 14, 12, tzinfo=UTC)
    got = parse_iso("2021-06-14T12:00:00", TIRANE)
    assert got is not None and got.utcoffset() == timedelta(hours=2)
    assert parse_iso("2021-06-14", TIRANE) == datetime(2021, 6, 14, tzinfo=TIRANE)
    assert parse_iso("yesterday", TIRANE) is None


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2030, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_iso_round_trip(dt: datetime) -> None:
    assert parse_iso(dt.isoformat(), TIRANE) == dt


# ----------------------------------------------------------------------------- items


def norm(raw: Item) -> Item:
    return normalize_item(raw, origins=LIVE, tz=TIRANE, language="en", summary_length=400, now=REF)


def test_normalize_item() -> None:
    raw = Item(
        source="s",
        url="/index.php/news/x?utm_source=a",
        base_url="http://albania.iom.int/news",
        title="  Fatos  Çoçoli\r\nmeets \x07 diaspora ",
        summary_html='<p onclick="x">Hi</p>',
        content_html='<p><a href="/news/y">y</a></p>',
        published=datetime(2021, 6, 14, 10, 0),  # noqa: DTZ001 - a naive date from a page
        date_source=DateSource.SELECTOR,
        image_url="/sites/g/files/a.png",
        categories=("Local", " local ", "Global"),
    )
    item = norm(raw)
    assert item.url == "https://albania.iom.int/news/x"
    assert item.title == "Fatos Çoçoli meets diaspora"
    assert item.summary_html == "<p>Hi</p>"
    assert 'href="http://albania.iom.int/news/y"' in item.content_html
    assert item.published == datetime(2021, 6, 14, 10, 0, tzinfo=TIRANE)
    in_utc = dataclasses.replace(raw, published=datetime(2023, 2, 28, 23, 40, tzinfo=UTC))
    local = norm(in_utc).published
    assert local is not None and local.isoformat() == "2023-03-01T00:40:00+01:00"
    assert item.image_url == "http://albania.iom.int/sites/g/files/a.png"
    assert item.categories == ("Local", "Global")
    assert item.language == "en"


def test_rel_canonical_is_used_only_on_the_same_site() -> None:
    raw = Item(
        source="s",
        url="https://albania.iom.int/index.php/news/x",
        title="t",
        canonical_hint="https://albania.iom.int/news/x-canonical",
    )
    assert norm(raw).url == "https://albania.iom.int/news/x-canonical"
    raw = Item(
        source="s",
        url="https://albania.iom.int/news/x",
        title="t",
        canonical_hint="https://elsewhere.example/x",
    )
    assert norm(raw).url == "https://albania.iom.int/news/x"


def test_title_key_folds_case_accents_and_punctuation() -> None:
    folded = title_key("diasporas engagement cocoli")
    assert title_key("Diaspora's “Engagement” – Çoçoli!") == folded
    assert title_key("A  b") == "a b"


def test_timezones_other_than_utc_are_accepted() -> None:
    east = timezone(timedelta(hours=5))
    assert parse_iso("2020-01-01T00:00:00", east) == datetime(2020, 1, 1, tzinfo=east)


MONTH_NAMES = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ALBANIAN_MONTHS = [
    "janar",
    "shkurt",
    "mars",
    "prill",
    "maj",
    "qershor",
    "korrik",
    "gusht",
    "shtator",
    "tetor",
    "nëntor",
    "dhjetor",
]
DATELINE_FORMS = [
    "Tirana {d} {month} {y}: IOM and partners",
    "{place}, {month} {d}, {y}: A group of",
    "Albania, {d}-{d2} {month} {y} – Officials met",
    "{place}; {d}-{d2} {month} {y}: IOM Mission",
    "Tiranë, {d} {sq} {y} – IOM",
]


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
    st.sampled_from(DATELINE_FORMS),
    st.sampled_from(["Kapshtica", "Durrës", "Shkodër"]),
)
def test_datelines_in_every_known_form_give_their_date(day: date, form: str, place: str) -> None:
    text = form.format(
        d=day.day,
        d2=min(day.day + 1, 28),
        month=MONTH_NAMES[day.month - 1],
        sq=ALBANIAN_MONTHS[day.month - 1],
        y=day.year,
        place=place,
    )
    found = find_dateline(
        text + " the rest of the body.", TIRANE, reference=datetime(2031, 1, 1, tzinfo=UTC)
    )
    assert found == datetime(day.year, day.month, day.day, tzinfo=TIRANE), text


# ----------------------------------------------------------------------------- summaries

CUT_TEASER = (
    "<p>We at IOM Albania decided to celebrate with farmers who have chosen to"
    " contribute to their communities through investm</p>"
)
BODY = (
    "<p>We at IOM Albania decided to celebrate with farmers who have chosen to contribute"
    " to their communities through investments in agriculture, using the savings and the"
    " experience they gained while working abroad.</p>\n"
    "<figure><img src='a.png' alt='x'><figcaption>An orchard.</figcaption></figure>\n"
    "<p>The Sustainable Development Goals Week is an opportunity to show how migration"
    " contributes to the 2030 Agenda.</p>"
)


def _summary(summary_html: str, content_html: str, length: int = 400) -> str:
    raw = Item(
        source="s",
        url="https://albania.iom.int/news/x",
        title="t",
        summary_html=summary_html,
        content_html=content_html,
    )
    return normalize_item(
        raw, origins=LIVE, tz=TIRANE, language="en", summary_length=length, now=REF
    ).summary_html


def test_a_teaser_cut_mid_word_is_replaced_by_the_body_cut_at_a_word() -> None:
    summary = _summary(CUT_TEASER, BODY, length=120)
    assert summary.startswith("<p>We at IOM Albania") and summary.endswith("…</p>")
    text = html_to_text(summary)
    assert len(text) <= 120
    assert "investm…" not in text and text.endswith("through…")
    assert text[:-1] in html_to_text(BODY)
    # Long enough for it all: the paragraphs stay paragraphs, the caption stays out.
    whole = _summary(CUT_TEASER, BODY, length=1000)
    assert whole.count("<p>") == 2 and "orchard" not in whole and "…" not in whole
    # A first paragraph that fits and ends a sentence is the summary, without a few words
    # of the next one.
    first = _summary(CUT_TEASER, BODY, length=260)
    assert first == BODY[: BODY.index("\n")]
    # One that does not end a sentence (a subtitle): the next one is cut at a word.
    subtitle = "<p>- Connect Albania supports 41 new investments</p>" + BODY
    two = _summary(
        "<p>- Connect Albania supports 41 new investments We at IOM</p>", subtitle, length=120
    )
    assert two.count("<p>") == 2 and two.endswith("…</p>") and len(html_to_text(two)) <= 120


@pytest.mark.parametrize(
    "teaser",
    [
        "<p>A complete sentence that the body also starts with.</p>",
        "<p>“A complete quote ends the teaser.”</p>",
        "<p>A summary the site wrote itself, not the start of the body</p>",
        "",
    ],
)
def test_a_teaser_that_is_not_visibly_cut_is_kept(teaser: str) -> None:
    body = (
        "<p>A complete sentence that the body also starts with. And more. “A complete"
        " quote ends the teaser.” And more text after it.</p>"
    )
    if teaser.startswith("<p>“"):
        body = "<p>“A complete quote ends the teaser.” Then more of the body.</p>"
    assert _summary(teaser, body) == teaser


def test_a_teaser_ending_in_an_ellipsis_mid_word_is_derived_again() -> None:
    summary = _summary("<p>We at IOM Albania decided to celebrate with far...</p>", BODY, 60)
    assert html_to_text(summary) == "We at IOM Albania decided to celebrate with farmers who…"


@given(
    st.lists(st.text(alphabet="abcdeëç", min_size=1, max_size=12), min_size=2, max_size=60),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=20, max_value=400),
)
def test_a_derived_summary_is_whole_words_within_the_length(
    words: list[str], cut: int, length: int
) -> None:
    body_text = " ".join(words) + "."
    teaser = body_text[: max(1, min(cut, len(body_text) - 2))]
    if teaser.endswith((" ", ".")):
        teaser = teaser.rstrip(" .") or body_text[:1]
    text = html_to_text(_summary(f"<p>{teaser}</p>", f"<p>{body_text}</p>", length))
    assert len(text) <= length
    if text.endswith("…"):
        kept = text[:-1]
        assert body_text.startswith(kept) and body_text[len(kept)] in " ."
    else:
        assert text == body_text


# ----------------------------------------------------------------------------- future dates


def test_a_date_more_than_a_day_after_the_fetch_is_not_used_and_says_why() -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    raw = Item(
        source="s",
        url="https://albania.iom.int/news/x",
        title="t",
        published=datetime(2062, 11, 24, 10, 0, tzinfo=UTC),
        date_source=DateSource.TIME,
    )
    item = normalize_item(raw, origins=LIVE, tz=TIRANE, language="en", summary_length=400, now=now)
    assert item.published is None and item.date_source is None
    assert "2062-11-24T11:00:00+01:00" in item.date_note and "(time)" in item.date_note
    assert "more than a day after" in item.date_note
    # Within a day (a site ahead by a time zone, an embargo lifted early): kept.
    soon = dataclasses.replace(raw, published=now + timedelta(hours=23))
    kept = normalize_item(soon, origins=LIVE, tz=TIRANE, language="en", summary_length=400, now=now)
    assert kept.published == now + timedelta(hours=23) and kept.date_note == ""


def test_plain_text_keeps_blocks_apart_and_words_whole() -> None:
    assert html_to_text(
        "<p>The mig<b>ra</b>tion office</p><p>Tirana, 9 November</p>"
        "<figure><figcaption>A caption</figcaption></figure>"
    ) == ("The migration office Tirana, 9 November")
    assert text_blocks("<h2>Heading</h2>a<br>b<aside>c</aside>") == ["Heading", "a", "b", "c"]


def test_every_name_the_package_offers_is_its_home_modules_own() -> None:
    """``normalize`` imports its parts lazily: each name it lists resolves to the object of
    the module it says the name lives in."""
    import importlib

    import iomfeed.normalize as package

    assert package.__all__ and set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        home = importlib.import_module(package._HOMES[name], package.__name__)
        assert getattr(package, name) is getattr(home, name), name
