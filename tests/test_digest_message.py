"""Messages: headers, parts, tokens, Message-IDs, unsubscribe tokens, header injection.

Unit tests on a hand-made rendered digest; every message is parsed back with the email
package, as a mail client would."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from collections import Counter
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.consent import verify_preferences_token
from iomfeed.digest.headers import clean_header_text
from iomfeed.digest.message import NAME_LIMIT, Composer, Sender, address_header, message_id
from iomfeed.digest.render import ADDRESS, GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL
from iomfeed.digest.unsubscribe import BadToken, make_token, token_subscriber, verify_token
from iomfeed.output_records import RenderedDigest

from .conftest import NOW

SECRET = b"a test secret of enough length"
SENDER = Sender(
    address="news@feeds.example.org",
    name="IOM Albania news",
    list_id="digest.feeds.example.org",
    list_name="IOM Albania news",
    unsubscribe_url="https://feeds.example.org/unsubscribe",
    unsubscribe_mailto="news@feeds.example.org",
    preferences_url="https://feeds.example.org/preferences",
)
EXPECTED_HEADERS = {
    "to",
    "from",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "precedence",
    "auto-submitted",
    "feedback-id",
    "mime-version",
    "content-type",
}


def header_counts(msg: EmailMessage) -> Counter[str]:
    return Counter(k.lower() for k in msg.keys())  # noqa: SIM118 - keys() lists repeats


ONE_EACH = Counter(EXPECTED_HEADERS)


def rendered(
    subject: str = "IOM Albania news: 3 lajme të reja, 24 nëntor 2026", language: str = "sq"
) -> RenderedDigest:
    html = (
        f'<!DOCTYPE html><html lang="{language}"><body><p>{GREETING}</p>'
        f'<p>Ëë <a href="{UNSUBSCRIBE_URL}">Çregjistrohu</a> {ADDRESS}</p>'
        f'<p><a href="{PREFERENCES_URL}">Preferencat</a></p></body></html>\n'
    )
    text = (
        f"{GREETING}\n\nLajme: Ëë çç\n\nÇregjistrohu: {UNSUBSCRIBE_URL}\n{ADDRESS}\n"
        f"Preferencat: {PREFERENCES_URL}\n"
    )
    return RenderedDigest(
        language=language,
        subject=subject,
        html=html,
        text=text,
        greeting="Përshëndetje {name},",
        greeting_no_name="Përshëndetje,",
        shown=3,
        more=0,
        html_bytes=len(html),
    )


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def compose(
    name: str = "Ëlira Hoxha",
    address: str = "elira@example.org",
    subscriber_id: int = 7,
    **kw: Any,
) -> EmailMessage:
    composer = Composer(
        rendered(**kw),
        sender=SENDER,
        digest_id=3,
        date=NOW,
        secret=SECRET,
    )
    out = composer.compose(subscriber_id, address, name)
    assert out.recipient == address and out.sender == SENDER.address
    for line in out.data.split(b"\r\n"):
        assert len(line) <= 998
    assert b"\n" not in out.data.replace(b"\r\n", b"")  # CRLF line ends only
    return parse(out.data)


def test_message_structure_headers_and_parts() -> None:
    msg = compose()
    assert header_counts(msg) == ONE_EACH
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert msg["To"].addresses[0].display_name == "Ëlira Hoxha"
    assert msg["To"].addresses[0].addr_spec == "elira@example.org"
    assert "=?utf-8?" in msg.as_string(policy=email.policy.SMTP).split("\r\n\r\n")[0]
    assert str(msg["Subject"]) == "IOM Albania news: 3 lajme të reja, 24 nëntor 2026"
    assert msg["From"].addresses[0].addr_spec == "news@feeds.example.org"
    assert msg["Date"].datetime == NOW
    assert msg["List-Id"] == "IOM Albania news <digest.feeds.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Bulk, not to be answered by a vacation responder; its campaign for Gmail's feedback loop
    assert (msg["Precedence"], msg["Auto-Submitted"]) == ("bulk", "auto-generated")
    assert msg["Feedback-ID"] == "digest-3:digest.feeds.example.org:iomfeed"
    mid = msg["Message-ID"]
    assert mid.startswith("<digest-3.7.") and mid.endswith("@feeds.example.org>")


def test_tokens_are_filled_and_escaped_per_part() -> None:
    msg = compose(name='Anna <b>"Mária"</b> & co')
    text_part, html_part = msg.iter_parts()
    text = text_part.get_content()
    html = html_part.get_content()
    assert "%%" not in text and "%%" not in html
    assert 'Përshëndetje Anna <b>"Mária"</b> & co,' in text
    assert "Përshëndetje Anna &lt;b&gt;&quot;Mária&quot;&lt;/b&gt; &amp; co," in html
    unsub = msg["List-Unsubscribe"]
    https, mailto = [u.strip(" <>") for u in unsub.split(",")]
    assert https.startswith("https://feeds.example.org/unsubscribe?t=7.")
    assert f'href="{https}"' in html and https in text
    token = https.split("t=", 1)[1]
    assert verify_token(SECRET, SENDER.list_id, token, "elira@example.org") == 7
    assert mailto == f"mailto:news@feeds.example.org?subject=unsubscribe%20{token}"
    assert "elira@example.org" in html
    # The subscriber's own preferences page, by a token of its own.
    prefs = re.search(r'href="(https://feeds\.example\.org/preferences\?t=([^"]+))"', html)
    assert prefs and f"Preferencat: {prefs.group(1)}" in text
    assert verify_preferences_token(SECRET, SENDER.list_id, prefs.group(2), "elira@example.org")
    assert prefs.group(2) != token


def test_no_name_uses_the_plain_greeting() -> None:
    text = compose(name="").iter_parts().__next__().get_content()
    assert text.startswith("Përshëndetje,\r\n")
    assert compose(name="")["To"].addresses[0].display_name == ""


def test_message_id_is_stable_per_digest_and_subscriber() -> None:
    a = message_id(SENDER, 3, 7, NOW)
    assert a == message_id(SENDER, 3, 7, NOW)
    assert (
        len(
            {
                a,
                message_id(SENDER, 3, 8, NOW),
                message_id(SENDER, 4, 7, NOW),
                message_id(SENDER, 3, 7, NOW.replace(year=2027)),
            }
        )
        == 4
    )
    assert compose()["Message-ID"] == a


@pytest.mark.parametrize(
    "title",
    [
        "Floods\r\nBcc: victim@example.com",
        "Floods\nBcc: victim@example.com",
        "Floods\rBcc: victim@example.com",
        "Trailing newline\n",
        "=?utf-8?q?Floods=0D=0ABcc:_victim@example.com?=",
        "=?utf-8?b?Rmxvb2RzDQpCY2M6IHZpY3RpbUBleGFtcGxlLmNvbQ==?=",
        "Floods\u2028Bcc: victim@example.com\u0085X-Evil: 1",
        "Floods\x00\x1b[31m\u202eBcc: victim@example.com",
    ],
)
def test_scraped_text_never_adds_a_header(title: str) -> None:
    for msg in (compose(subject=title), compose(name=title)):
        keys = header_counts(msg)
        assert keys == ONE_EACH, keys
        assert "bcc" not in keys and "x-evil" not in keys
        for value in (str(msg["Subject"]), msg["To"].addresses[0].display_name):
            assert "\r" not in value and "\n" not in value
            assert not any(ord(c) < 32 for c in value)
    assert "Bcc" in str(compose(subject=title)["Subject"]) or "Trailing" in title


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_clean_header_text_is_one_safe_line(value: str) -> None:
    cleaned = clean_header_text(value)
    assert len(cleaned) <= 150
    assert cleaned == cleaned.strip()
    assert not any(c in cleaned for c in "\r\n\x00\u2028\u2029\x85")
    assert clean_header_text(cleaned) == cleaned  # idempotent
    msg = compose(subject=value or "x")
    assert header_counts(msg) == ONE_EACH


def test_a_name_keeps_its_joiners_and_loses_what_takes_no_room() -> None:
    """A new user's trial signed up as an emoji family and with a zero-width space: both
    came out with spaces in them. The joiners are how such names are written (and Persian
    and Indic ones); other format characters (bidi overrides, zero-width spaces) take no
    room and are dropped; line breaks and controls become a space."""
    family = "\u00cblsa \U0001f1e6\U0001f1f1\U0001f469\u200d\U0001f469\u200d\U0001f467"
    assert clean_header_text(family) == family
    assert clean_header_text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    )
    assert clean_header_text("Z\u200bero\u200d") == "Zero\u200d"
    assert clean_header_text("ab\u202ecd\u2066e") == "abcde"
    assert clean_header_text("Ana\r\nBcc: x\u2028y") == "Ana Bcc: x y"
    msg = compose(name=family)
    assert msg["To"].addresses[0].display_name == family


def test_long_and_odd_names_in_to() -> None:
    from email.header import decode_header, make_header
    from email.utils import parseaddr

    for name in ["Doe, John (IOM)", "Ë" * 200, '"Quoted" Name', "Ana\tMaria"]:
        composer = Composer(rendered(), sender=SENDER, digest_id=3, date=NOW, secret=SECRET)
        raw = email.message_from_bytes(composer.compose(1, "a@example.org", name).data)
        # Decoded as RFC 2047 says (whitespace between encoded words ignored); the email
        # package's newer parser keeps a space there, so it is not used for this check.
        shown, address = parseaddr(str(make_header(decode_header(raw["To"]))))
        assert (shown, address) == (clean_header_text(name, 80), "a@example.org")
    assert address_header("", "a@b.org") == "a@b.org"


def test_unsubscribe_tokens_are_unforgeable() -> None:
    token = make_token(SECRET, "list.example.org", 42, "Reader@Example.org")
    assert token_subscriber(token) == 42
    assert verify_token(SECRET, "list.example.org", token, "reader@example.org") == 42
    sid, mac = token.split(".")
    forged = [
        f"43.{mac}",  # another subscriber
        f"{sid}.{mac[:-1]}A" if mac[-1] != "A" else f"{sid}.{mac[:-1]}B",
        make_token(b"another secret entirely", "list.example.org", 42, "reader@example.org"),
        make_token(SECRET, "other.example.org", 42, "reader@example.org"),
    ]
    for bad in forged:
        with pytest.raises(BadToken):
            verify_token(SECRET, "list.example.org", bad, "reader@example.org")
    for malformed in [
        "",
        "42",
        "x.y",
        "0.AAAAAAAAAAAAAAAAAAAAAA",
        "42." + "A" * 21,
        "42 " + mac,
        "../../etc",
    ]:
        with pytest.raises(BadToken, match="malformed"):
            token_subscriber(malformed)
    assert " " not in token and "%" not in token


def test_test_copy_is_marked_and_has_no_one_click_header() -> None:
    composer = Composer(rendered(), sender=SENDER, digest_id=3, date=NOW, secret=SECRET, test=True)
    msg = parse(composer.compose_test("me@example.org", "", "<test-1@feeds.example.org>").data)
    assert str(msg["Subject"]).startswith("[TEST] ")
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg["Auto-Submitted"] == "auto-generated"


def test_a_long_non_ascii_list_name_and_an_idn_address() -> None:
    sender = Sender(
        address="news@feeds.example.org",
        name="Lajme nga IOM Shqipëri",
        list_id="digest.feeds.example.org",
        list_name="Lajme nga IOM Shqipëri – Organizata Ndërkombëtare për Migracionin",
        unsubscribe_url="https://feeds.example.org/unsubscribe",
        unsubscribe_mailto="news@feeds.example.org",
    )
    composer = Composer(rendered(), sender=sender, digest_id=3, date=NOW, secret=SECRET)
    msg = parse(composer.compose(9, "ana@xn--shqipri-vya.al", "Ana").data)
    assert header_counts(msg) == ONE_EACH
    assert "Organizata" in str(msg["List-Id"]) and "<digest.feeds.example.org>" in str(
        msg["List-Id"]
    )
    assert msg["To"].addresses[0].addr_spec == "ana@xn--shqipri-vya.al"


def test_a_non_ascii_name_is_encoded_as_the_stdlib_would_only_faster() -> None:
    import random
    from email.header import Header

    from iomfeed.digest.message import ONE_WORD, encoded_name

    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyzÀËÇëçé日本語 -_=?.\"'ШщЖ"
    names = ["Ëlira Hoxha", "Ëë", "José María", "日本語の名前", "Ш" * 30, "Ëlira " * 12]
    names += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 70))) for _ in range(3000)]
    names = [n.strip() for n in names if n.strip() and not n.strip().isascii()]
    one_word = 0
    for name in names:
        stdlib = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
        assert encoded_name(name) == stdlib, name
        one_word += "\r\n" not in stdlib
    assert one_word > len(names) // 4  # both the short path and the long one were tried
    assert any(len(n.encode()) > ONE_WORD for n in names)


@pytest.mark.parametrize("name", ["=?ë?q?x?=", "Ana =?xë?b?YQ==?= Hoxha", "=?utf-8?q?=C3?="])
def test_an_encoded_word_with_a_charset_python_refuses_is_dropped_not_a_crash(name: str) -> None:
    # A name typed on the public form: the stdlib raises CharsetError decoding it.
    cleaned = clean_header_text(name)
    assert "=?" not in cleaned
    msg = compose(name=name)
    assert header_counts(msg) == ONE_EACH


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab Ë\u00a0\u200b\u2028\t\n=?qQ_日\u3000x…", max_size=40))
def test_a_clean_value_comes_back_as_it_is(value: str) -> None:
    # The shortcut for text already clean gives what the whole cleaning gives.
    cleaned = clean_header_text(value, 20)
    assert clean_header_text(cleaned, 20) == cleaned


#: Long words with and without letters outside ASCII: where the email policy's own
#: folding of encoded words dropped the space between two, or cut a word in two across a
#: line break (in 3 % of such subjects, 5 % of such names).
WORDS = st.sampled_from(
    ["Shqipëri", "migracionin", "të", "kthyerve:", "Ndërkombëtare", "për", "IOM", "2026,"]
    + ["Ç" * n + "ë" for n in (5, 17, 29, 38)]
    + ["x" * 30, "Gjergj", "Skënderbeu-Kastrioti"]
)


def shown(data: bytes, header: str) -> str:
    """What a reader shows of ``header``: its encoded words decoded as RFC 2047 says
    (white space between two words is not text); of an address, the name before it. The
    email package's own parser is not the judge: it keeps such white space in names."""
    from email.header import decode_header, make_header

    raw = str(email.message_from_bytes(data, policy=email.policy.compat32)[header])
    raw = raw.replace("\r\n", "").strip()  # unfolded (RFC 5322 2.2.3), no white space around
    if header != "Subject":
        raw = raw.rsplit("<", 1)[0].strip()
    text = str(make_header(decode_header(raw)))
    return text[1:-1] if header != "Subject" and text.startswith('"') else text


@settings(max_examples=150, deadline=None, derandomize=True)  # the same examples each run
@given(st.lists(WORDS, min_size=2, max_size=12), st.lists(WORDS, min_size=1, max_size=6))
def test_long_subjects_and_names_come_back_with_every_space(
    words: list[str], name_words: list[str]
) -> None:
    from iomfeed.config import Config
    from iomfeed.notices import Links, Notice, Rendered
    from iomfeed.notices import compose as compose_notice

    subject = clean_header_text(" ".join(words))
    name = clean_header_text(" ".join(name_words), NAME_LIMIT)
    sender = dataclasses.replace(SENDER, name=name, list_name=name)
    composer = Composer(
        rendered(subject=subject), sender=sender, digest_id=3, date=NOW, secret=SECRET
    )
    digest = composer.compose(7, "elira@example.org", name).data
    notice = compose_notice(
        Notice.WELCOME,
        Rendered(subject=subject, text="x\n", html="<p>x</p>\n"),
        config=Config(),
        language="sq",
        subscriber_id=7,
        address="elira@example.org",
        name=name,
        links=Links(),
        now=NOW,
    ).data
    for data in (digest, notice):
        assert shown(data, "Subject") == subject
        assert shown(data, "To") == name
    assert shown(digest, "From") == shown(digest, "List-Id") == name
    for data in (digest, notice):  # encoded words folded to 78 characters a line
        fields = re.split(rb"\r\n(?=\S)", data.split(b"\r\n\r\n")[0])
        ours = [f for f in fields if f.split(b":")[0] in (b"From", b"To", b"Subject")]
        assert len(ours) == 3
        lines = [line for f in ours if b"=?" in f for line in f.split(b"\r\n")]
        assert all(len(line) <= 78 for line in lines), ours
