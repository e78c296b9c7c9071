"""The sign-up lifecycle core (issue 11): double opt-in, its rate limits, signed links with
expiry, the welcome, preferences, data export, forgetting and the suppression list.

Real parts: a real SQLite file through the runtime, messages through the outbox transport
(read back as files) or through aiosmtpd on 127.0.0.1, digests made by the store's own
``create_digest`` and sent by the real delivery loop."""

from __future__ import annotations

import email
import email.policy
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from iomfeed.cli.show import profile_lines
from iomfeed.config import Config
from iomfeed.consent import (
    ConsentVia,
    State,
    confirm_token,
    preferences_token,
    truncate_ip,
)
from iomfeed.digest.unsubscribe import BadToken, load_secret, suppression_keys
from iomfeed.errors import BadAddress, DeliveryError, InputError
from iomfeed.runtime import Runtime, open_runtime
from iomfeed.signup import ConfirmOutcome, SignedUp, SignUpOutcome, confirm, sign_up
from iomfeed.subscribers import Subscriber
from iomfeed.subscriptions import (
    Joined,
    export_data,
    forget,
    import_rows,
    preferences_holder,
    read_csv,
    remove,
    set_preferences,
    subscribe,
)

from .conftest import NOW
from .digestkit import add_items, digest_config
from .schemakit import database_before
from .smtp import smtp_server

ANA = "ana@example.org"


class Outbox:
    """The messages the outbox transport wrote, each read once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[Path] = set()
        self.raw: dict[str, bytes] = {}  # by Message-ID: the bytes as sent

    def new(self) -> list[EmailMessage]:
        found = sorted(set(self.folder.glob("*.eml")) - self.seen) if self.folder.is_dir() else []
        self.seen |= set(found)
        out = []
        for path in found:
            data = path.read_bytes()
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            self.raw[str(msg["Message-ID"])] = data
            out.append(msg)
        return out


def text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def link(msg: EmailMessage, path: str) -> str:
    match = re.search(rf"/{path}\?t=(\S+)", text(msg))
    assert match is not None, text(msg)
    return match.group(1)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Config, Runtime, Outbox]]:
    # (an address that reads unsubscribe mail, so that List-Unsubscribe gives both URLs)
    config = digest_config(tmp_path, mail={"unsubscribe_mailto": "leave@feeds.example.org"})
    with open_runtime(config, clock=lambda: NOW) as rt:
        yield config, rt, Outbox(config.outbox_path)


def join(
    config: Config,
    rt: Runtime,
    now: datetime,
    address: str = ANA,
    language: str = "en",
    categories: tuple[str, ...] = (),
    ip: str | None = None,
) -> SignUpOutcome:
    mailer = rt.mailer()
    try:
        done = sign_up(
            rt.store,
            config,
            mailer,
            address=address,
            name="Ana Hoxha",
            language=language,
            categories=categories,
            via=ConsentVia.WEB_FORM,
            now=now,
            ip=ip,
        )
    finally:
        mailer.close()
    assert not done.mail_error
    return done.outcome


def attempt(config: Config, rt: Runtime, now: datetime, mailer: Any) -> SignedUp:
    """Ana's web sign-up through ``mailer``, whatever it does (fails, raises)."""
    return sign_up(
        rt.store,
        config,
        mailer,
        address=ANA,
        name="Ana Hoxha",
        language="en",
        categories=(),
        via=ConsentVia.WEB_FORM,
        now=now,
    )


def do_confirm(config: Config, rt: Runtime, token: str, now: datetime) -> ConfirmOutcome:
    mailer = rt.mailer()
    try:
        return confirm(rt.store, config, mailer, token, now).outcome
    finally:
        mailer.close()


def test_a_sign_up_is_pending_until_confirmed_then_welcomed_in_its_language(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, outbox = setup
    add_items(rt.store, range(1, 9), NOW - timedelta(days=1))
    assert join(config, rt, NOW, "Ana@Example.ORG", "sq") is SignUpOutcome.CONFIRMATION_SENT
    profile = rt.store.profile(address="Ana@example.org")
    assert profile is not None and profile.state is State.PENDING
    assert profile.consent.via is ConsentVia.WEB_FORM and profile.consent.language == "sq"
    assert profile.consent.confirmed is None and profile.consent.ip == ""  # record_ip off
    # Pending: not in a digest's ledger.
    record = rt.store.create_digest(
        created=NOW, since=None, cutoff=NOW, item_ids=[], left_out=[], more=0
    )
    assert rt.store.delivery_totals(record.id) == {}
    rt.store.finish_digest(record.id, NOW)

    [message] = outbox.new()
    assert message["Subject"] == "Ju lutemi konfirmoni regjistrimin në Lajme nga IOM Shqipëri"
    # Nothing the form's stranger typed: no name in To or in the greeting.
    assert message["To"] == "Ana@example.org"
    assert "Ana Hoxha" not in message.as_string() and "Përshëndetje," in text(message)
    assert message["List-Unsubscribe"] is None  # not on the list yet: ignoring it is "no"
    assert message["Auto-Submitted"] == "auto-generated" and message["Precedence"] is None
    assert message["Feedback-ID"] == f"confirm:{config.list_id}:iomfeed"
    assert "Konfirmo regjistrimin" in html(message) and "7 ditë" in text(message)
    token = link(message, "confirm")
    assert f"{config.confirm_url}?t={token}" in html(message)
    # It links the preferences page too: language, categories or leaving, before confirming.
    pending_prefs = link(message, "preferences")
    assert preferences_holder(rt.store, config, pending_prefs).state is State.PENDING

    later = NOW + timedelta(days=6, hours=23)
    assert do_confirm(config, rt, token, later) is ConfirmOutcome.CONFIRMED
    profile = rt.store.profile(address="Ana@example.org")
    assert profile is not None and profile.state is State.ACTIVE
    assert profile.consent.confirmed == later.replace(microsecond=0)
    [welcome] = outbox.new()
    assert welcome["Subject"] == "Mirë se vini në Lajme nga IOM Shqipëri"
    assert welcome["To"] == "Ana Hoxha <Ana@example.org>"  # the person said yes: by name
    assert "Përshëndetje Ana Hoxha" in text(welcome)
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe?t=" in welcome["List-Unsubscribe"]
    # As sent: the URLs in angle brackets, not RFC 2047 words no mail provider reads as links
    # (a URL longer than a line cannot be folded, so the email policy encoded it).
    raw = outbox.raw[str(welcome["Message-ID"])]
    unsub = re.escape(link(welcome, "unsubscribe"))
    assert re.search(
        rb"\r\nList-Unsubscribe: <https://feeds\.example\.org/iom-albania/unsubscribe\?t="
        + unsub.encode()
        + rb">,\r\n <mailto:leave@feeds\.example\.org\?subject=[^>]+>\r\n",
        b"\r\n" + raw.split(b"\r\n\r\n")[0] + b"\r\n",
    ), raw[:800]
    # The latest digest.first_items stories, newest first, with their links.
    stories = re.findall(r"https://albania\.iom\.int/news/story-(\d+)", text(welcome))
    assert stories == [str(n) for n in range(1, config.digest.first_items + 1)]
    prefs = link(welcome, "preferences")
    assert preferences_holder(rt.store, config, prefs).id == profile.id
    # Confirming twice: nothing changes, no second welcome.
    assert do_confirm(config, rt, token, later) is ConfirmOutcome.ALREADY
    assert outbox.new() == []


def test_signing_up_again_is_rate_limited_and_never_changes_a_subscriber(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, outbox = setup
    assert join(config, rt, NOW) is SignUpOutcome.CONFIRMATION_SENT
    assert len(outbox.new()) == 1
    soon = NOW + timedelta(minutes=59)
    assert join(config, rt, soon) is SignUpOutcome.CONFIRMATION_HELD
    assert outbox.new() == []
    hour = NOW + timedelta(hours=1)
    assert join(config, rt, hour) is SignUpOutcome.CONFIRMATION_RESENT
    [again] = outbox.new()
    assert do_confirm(config, rt, link(again, "confirm"), hour) is ConfirmOutcome.CONFIRMED
    outbox.new()  # the welcome

    before = rt.store.profile(address=ANA)
    assert join(config, rt, hour, language="sq", categories=("Other",)) is (
        SignUpOutcome.NOTICE_SENT
    )
    [notice] = outbox.new()
    assert notice["Subject"] == "You are already subscribed to IOM Albania news"
    assert "/preferences?t=" in text(notice) and notice["List-Unsubscribe"]
    after = rt.store.profile(address=ANA)
    assert before is not None and after is not None
    assert (after.language, after.categories, after.state) == ("en", (), State.ACTIVE)
    assert join(config, rt, hour + timedelta(hours=23)) is SignUpOutcome.NOTICE_HELD
    assert outbox.new() == []
    assert join(config, rt, hour + timedelta(hours=24)) is SignUpOutcome.NOTICE_SENT
    assert len(outbox.new()) == 1

    # Someone who left starts a new double opt-in, with the new sign-up's consent.
    rt.store.set_subscriber_status(ANA, "unsubscribed", "test", hour + timedelta(days=2))
    back = hour + timedelta(days=3)
    assert join(config, rt, back, language="sq") is SignUpOutcome.CONFIRMATION_SENT
    pending = rt.store.profile(address=ANA)
    assert pending is not None and pending.state is State.PENDING
    assert pending.consent.at == back and pending.consent.confirmed is None
    assert pending.language == "sq"
    assert len(outbox.new()) == 1


def test_a_bad_token_changes_nothing(setup: tuple[Config, Runtime, Outbox]) -> None:
    config, rt, outbox = setup
    join(config, rt, NOW)
    token = link(outbox.new()[0], "confirm")
    sid, stamp, mac = token.split(".")
    secret = load_secret(config, rt.store)
    before = rt.store.profile(address=ANA)
    tampered = [
        f"{sid}.{int(stamp) + 1}.{mac}",  # a later issue time
        f"{int(sid) + 1}.{stamp}.{mac}",  # another subscriber
        f"{sid}.{stamp}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        confirm_token(b"another secret entirely", config.list_id, int(sid), ANA, NOW),
        preferences_token(secret, config.list_id, int(sid), ANA),  # another kind of token
        "",
        "1.2.3.4",
    ]
    for bad in tampered:
        with pytest.raises(BadToken):
            do_confirm(config, rt, bad, NOW)
    with pytest.raises(BadToken, match="expired"):
        do_confirm(config, rt, token, NOW + timedelta(days=7, seconds=1))
    with pytest.raises(BadToken):  # a preferences token for a pending address
        set_preferences(rt.store, config, token, language="sq")
    forged = preferences_token(b"another secret entirely", config.list_id, int(sid), ANA)
    with pytest.raises(BadToken):
        export_data(rt.store, config, forged)
    assert rt.store.profile(address=ANA) == before
    assert outbox.new() == []
    # A token from before a later sign-up no longer confirms.
    rt.store.set_subscriber_status(ANA, "unsubscribed", "test", NOW + timedelta(hours=2))
    join(config, rt, NOW + timedelta(hours=3))
    with pytest.raises(BadToken, match="later sign-up"):
        do_confirm(config, rt, token, NOW + timedelta(hours=4))
    # And one for someone who has left since does not bring them back.
    fresh = link(outbox.new()[0], "confirm")
    rt.store.set_subscriber_status(ANA, "unsubscribed", "test", NOW + timedelta(hours=5))
    assert do_confirm(config, rt, fresh, NOW + timedelta(hours=6)) is ConfirmOutcome.NOT_PENDING
    gone = rt.store.profile(address=ANA)
    assert gone is not None and gone.state is State.UNSUBSCRIBED
    assert outbox.new() == []


def test_only_active_subscribers_not_paused_get_a_digest(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, _ = setup
    secret, keys = load_secret(config, rt.store), suppression_keys(config, rt.store)
    for name in ("active", "paused", "resumed", "later"):
        subscribe(rt.store, f"{name}@example.org", "", "en", NOW, languages=("en",), keys=keys)
    join(config, rt, NOW, "pending@example.org")
    ids = {}
    for name in ("paused", "resumed", "later"):
        profile = rt.store.profile(address=f"{name}@example.org")
        assert profile is not None
        ids[name] = profile.id
        token = preferences_token(secret, config.list_id, profile.id, profile.address)
        until = {"paused": NOW + timedelta(days=30), "resumed": NOW - timedelta(days=1)}
        if name in until:
            set_preferences(rt.store, config, token, paused_until=until[name])
    record = rt.store.create_digest(
        created=NOW, since=None, cutoff=NOW, item_ids=[], left_out=[], more=0
    )
    listed = {d.address for d in rt.store.deliveries(record.id)}
    assert listed == {"active@example.org", "resumed@example.org", "later@example.org"}
    # Paused after the digest was made: mark_sending refuses, as for someone who left.
    later = rt.store.profile(address="later@example.org")
    assert later is not None
    token = preferences_token(secret, config.list_id, later.id, later.address)
    set_preferences(rt.store, config, token, paused_until=NOW + timedelta(days=1))
    assert not rt.store.mark_sending(record.id, later.id, NOW)
    assert rt.store.mark_sending(record.id, ids["resumed"], NOW)
    # And once the pause is over, the next digest has them again.
    assert rt.store.mark_sending(record.id, later.id, NOW + timedelta(days=2))


def test_preferences_change_what_is_stored_and_refuse_bad_values(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, outbox = setup
    join(config, rt, NOW, categories=(" Return  migration ", "Other", "Other", ""))
    do_confirm(config, rt, link(outbox.new()[0], "confirm"), NOW)
    token = link(outbox.new()[0], "preferences")
    profile = preferences_holder(rt.store, config, token)
    assert profile.categories == ("Return migration", "Other")
    until = datetime(2027, 1, 1, tzinfo=NOW.tzinfo)
    changed = set_preferences(
        rt.store, config, token, language="sq", categories=["Other"], paused_until=until
    )
    assert (changed.language, changed.categories, changed.paused_until) == ("sq", ("Other",), until)
    assert set_preferences(rt.store, config, token).paused_until == until  # left as it was
    resumed = set_preferences(rt.store, config, token, categories=[], paused_until=None)
    assert (resumed.categories, resumed.paused_until, resumed.language) == ((), None, "sq")
    for bad in (
        {"language": "de"},
        {"paused_until": datetime(2027, 1, 1, tzinfo=NOW.tzinfo).replace(tzinfo=None)},
        {"categories": ["x" * 101]},
        {"categories": [str(n) for n in range(51)]},
    ):
        with pytest.raises(InputError):
            set_preferences(rt.store, config, token, **bad)
    assert rt.store.profile(address=ANA) == resumed


def test_the_client_address_is_kept_only_when_asked_and_then_truncated(
    tmp_path: Path,
) -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0/24"
    assert truncate_ip("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert truncate_ip("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert truncate_ip("not an address") == ""
    config = digest_config(tmp_path, subscribe={"record_ip": True})
    with open_runtime(config, clock=lambda: NOW) as rt:
        join(config, rt, NOW, ip="203.0.113.77")
        join(config, rt, NOW, "b@example.org", ip="2001:db8:1234:5678::1")
        assert [
            p.consent.ip for p in (rt.store.profile(address=a) for a in (ANA, "b@example.org")) if p
        ] == [
            "203.0.113.0/24",
            "2001:db8:1234::/48",
        ]
    config = digest_config(tmp_path / "off")
    with open_runtime(config, clock=lambda: NOW) as rt:
        join(config, rt, NOW, ip="203.0.113.77")
        profile = rt.store.profile(address=ANA)
        assert profile is not None and profile.consent.ip == ""
        raw = sqlite3.connect(config.database_path).execute("SELECT * FROM subscribers")
        assert "203.0.113" not in repr(raw.fetchall())


def test_export_holds_everything_and_forget_keeps_only_a_hash(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, outbox = setup
    join(config, rt, NOW, categories=("Other",))
    do_confirm(config, rt, link(outbox.new()[0], "confirm"), NOW)
    token = link(outbox.new()[0], "preferences")
    record = rt.store.create_digest(
        created=NOW, since=None, cutoff=NOW, item_ids=[], left_out=[], more=0
    )
    profile = preferences_holder(rt.store, config, token)
    rt.store.mark_sending(record.id, profile.id, NOW)
    rt.store.mark_failed(record.id, profile.id, f"550 <{ANA}> mailbox full", NOW, bounce_after=3)
    data = export_data(rt.store, config, token)
    json.dumps(data)  # JSON-ready as it is
    assert data["subscriber"]["address"] == ANA and data["subscriber"]["state"] == "active"
    assert data["subscriber"]["consent"]["via"] == "web form"
    assert data["subscriber"]["categories"] == ["Other"]
    assert data["before_this_sign_up"] == {}  # nobody had left
    assert [(d["digest_id"], d["status"]) for d in data["deliveries"]] == [(record.id, "failed")]
    assert ANA in data["deliveries"][0]["reply"]
    shown = "\n".join(profile_lines(profile, rt.store.history(profile.id), NOW))
    assert re.search(rf"^  {record.id} +\S+ +failed +1 ", shown, re.M), shown
    assert "by web form, form in 'en'" in shown and "categories:   Other" in shown

    done = forget(rt.store, config, " ana@Example.ORG ", NOW + timedelta(days=1))
    assert done.found and done.address == ANA
    dump = "\n".join(sqlite3.connect(config.database_path).iterdump())
    assert "ana@" not in dump.lower() and "Hoxha" not in dump
    keys = suppression_keys(config, rt.store)
    assert rt.store.is_suppressed(keys.hash("ANA@example.org"))
    assert rt.store.delivery_totals(record.id) == {"failed": 1}  # the ledger keeps its row
    with pytest.raises(BadToken):
        preferences_holder(rt.store, config, token)
    assert ANA not in [s.address for s in rt.store.subscribers()]

    # No import or operator add brings them back without --resubscribe ...
    read = read_csv(f"{ANA},Ana,en\nnew@example.org,,en\n".encode(), languages=("en",))
    done_import = import_rows(rt.store, read, NOW, keys=keys)
    assert done_import.added == 1 and [p.address for p in done_import.suppressed] == [ANA]
    again = subscribe(rt.store, ANA, "", "en", NOW, languages=("en",), keys=keys)
    assert again.joined is Joined.SUPPRESSED and rt.store.profile(address=ANA) is None
    # ... and signing up themselves is a new double opt-in, which lifts the suppression.
    assert join(config, rt, NOW + timedelta(days=2)) is SignUpOutcome.CONFIRMATION_SENT
    assert rt.store.is_suppressed(keys.hash(ANA))
    do_confirm(config, rt, link(outbox.new()[0], "confirm"), NOW + timedelta(days=2))
    assert not rt.store.is_suppressed(keys.hash(ANA))
    back = rt.store.profile(address=ANA)
    assert back is not None and back.state is State.ACTIVE and back.id != profile.id

    # Forgetting an address nobody has suppresses it all the same; a bad one is refused.
    assert not forget(rt.store, config, "stranger@example.org", NOW).found
    assert rt.store.is_suppressed(keys.hash("stranger@example.org"))
    with pytest.raises(InputError):
        forget(rt.store, config, "not an address", NOW)


def test_import_reports_who_left_and_resubscribe_brings_them_back(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, _ = setup
    keys = suppression_keys(config, rt.store)
    for who in ("left@example.org", "gone@example.org"):
        subscribe(rt.store, who, "", "en", NOW, languages=("en",), keys=keys)
    rt.store.set_subscriber_status("left@example.org", "unsubscribed", "test", NOW)
    forget(rt.store, config, "gone@example.org", NOW)
    read = read_csv(
        b"left@example.org,L,en\ngone@example.org,G,en\nnew@example.org,N,en\n", languages=("en",)
    )
    plain = import_rows(rt.store, read, NOW, keys=keys)
    assert (plain.added, [p.line for p in plain.left], [p.line for p in plain.suppressed]) == (
        1,
        [1],
        [2],
    )
    fresh = NOW + timedelta(days=1)
    again = import_rows(rt.store, read, fresh, keys=keys, resubscribe=True)
    assert (again.added, again.resubscribed, again.unchanged) == (2, 2, 1)
    for who in ("left@example.org", "gone@example.org"):
        profile = rt.store.profile(address=who)
        assert profile is not None and profile.state is State.ACTIVE
        assert (profile.consent.via, profile.consent.at) == (ConsentVia.CSV_IMPORT, fresh)
    assert not rt.store.is_suppressed(keys.hash("gone@example.org"))


def test_a_stranger_signing_up_someone_who_left_does_not_undo_their_unsubscribe(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    """Anyone may type an address into the form. Someone who unsubscribed stays someone
    who left until they confirm: an import or ``subscribers add`` does not make them
    active behind their back, and ``subscribers show`` still says when and why they left.
    Their own confirmation brings them back, the old departure forgotten."""
    config, rt, outbox = setup
    keys = suppression_keys(config, rt.store)
    for who in (ANA, "control@example.org"):
        subscribe(rt.store, who, "Cara Dervishi", "sq", NOW, languages=("en", "sq"), keys=keys)
    rt.store.set_subscriber_status(ANA, "unsubscribed", "one-click unsubscribe", NOW)
    rt.store.set_subscriber_status("control@example.org", "bounced", "550 no such user", NOW)
    as_left = rt.store.profile(address="control@example.org")
    later = NOW + timedelta(days=2)
    assert join(config, rt, later) is SignUpOutcome.CONFIRMATION_SENT
    [message] = outbox.new()
    kept = export_data(rt.store, config, link(message, "preferences"))["before_this_sign_up"]
    assert (kept["name"], kept["language"], kept["categories"]) == ("Cara Dervishi", "sq", [])
    pending = rt.store.profile(address=ANA)
    assert pending is not None and pending.state is State.PENDING
    assert (pending.left, pending.reason) == (NOW, "one-click unsubscribe")
    shown = "pending, not confirmed; left 2026-11-24 09:00 UTC (one-click unsubscribe)"
    assert any(line.endswith(shown) for line in profile_lines(pending, [], later))

    read = read_csv(b"control@example.org,C,en\nana@example.org,A,en\n", languages=("en",))
    done = import_rows(rt.store, read, later, keys=keys)
    assert (done.added, [p.line for p in done.left]) == (0, [1, 2])
    assert rt.store.add_subscriber(Subscriber(ANA, "", "en"), later) == "left"
    still = rt.store.profile(address=ANA)
    assert still is not None and still.state is State.PENDING

    # The operator removing such a sign-up drops it, and the departure stays as it was.
    assert join(config, rt, later, "control@example.org") is SignUpOutcome.CONFIRMATION_SENT
    outbox.new()
    _address, before = remove(rt.store, "control@example.org", "asked by phone", later)
    assert before is not None and before.status == "pending"
    control = rt.store.subscriber("control@example.org")
    assert control is not None and control.status == "bounced"  # as it left, not unsubscribed
    assert (control.left, control.reason) == (NOW, "550 no such user")
    # And what the stranger's sign-up replaced is back: name, language, the consent record.
    assert rt.store.profile(address="control@example.org") == as_left
    assert as_left is not None and as_left.name == "Cara Dervishi"
    # Forgetting someone while such a sign-up waits leaves nothing of them aside either.
    assert join(config, rt, later, "control@example.org") is SignUpOutcome.CONFIRMATION_SENT
    outbox.new()
    forget(rt.store, config, "control@example.org", later)
    kept = "SELECT left_profile FROM subscribers WHERE id = ?"
    assert rt.store.db.execute(kept, (as_left.id,)).fetchone()[0] == ""

    assert do_confirm(config, rt, link(message, "confirm"), later) is ConfirmOutcome.CONFIRMED
    back = rt.store.profile(address=ANA)
    assert back is not None and back.state is State.ACTIVE
    assert (back.left, back.reason, back.failures) == (None, "", 0)
    assert (back.name, back.language) == ("Ana Hoxha", "en")  # the sign-up they confirmed
    assert back.consent.confirmed == later
    assert rt.store.db.execute(kept, (back.id,)).fetchone()[0] == ""


def test_the_operator_bringing_back_someone_with_a_sign_up_waiting_restores_their_record(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    """``subscribers add --resubscribe`` (or an import with it) for someone who left while
    a stranger's sign-up for them waits: active again with their own name, language and
    categories, not the ones the form was given, and nothing left aside."""
    config, rt, outbox = setup
    keys = suppression_keys(config, rt.store)
    subscribe(rt.store, ANA, "Cara Dervishi", "sq", NOW, languages=("en", "sq"), keys=keys)
    rt.store.set_subscriber_status(ANA, "unsubscribed", "one-click unsubscribe", NOW)
    assert join(config, rt, NOW) is SignUpOutcome.CONFIRMATION_SENT  # as "Ana Hoxha", en
    [message] = outbox.new()
    later = NOW + timedelta(days=1)
    done = subscribe(
        rt.store, ANA, "", "en", later, languages=("en", "sq"), keys=keys, resubscribe=True
    )
    assert done.joined is Joined.ADDED
    back = rt.store.profile(address=ANA)
    assert back is not None and back.state is State.ACTIVE
    assert (back.name, back.language, back.left, back.reason) == ("Cara Dervishi", "sq", None, "")
    assert back.consent.via is ConsentVia.COMMAND_LINE and back.consent.at == later
    data = export_data(rt.store, config, link(message, "preferences"))
    assert data["before_this_sign_up"] == {}
    # The confirmation link of the stranger's sign-up changes nothing now.
    assert do_confirm(config, rt, link(message, "confirm"), later) is ConfirmOutcome.ALREADY
    still = rt.store.profile(address=ANA)
    assert still is not None and still.name == "Cara Dervishi"


def test_a_sign_up_waiting_from_before_the_kept_record_is_dropped_as_it_stands(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    """A store made before the record was kept aside has such sign-ups with nothing kept:
    dropping one restores the state they left in and leaves the rest as it is."""
    config, rt, _outbox = setup
    keys = suppression_keys(config, rt.store)
    subscribe(rt.store, ANA, "Cara", "en", NOW, languages=("en",), keys=keys)
    rt.store.set_subscriber_status(ANA, "unsubscribed", "one-click unsubscribe", NOW)
    assert join(config, rt, NOW) is SignUpOutcome.CONFIRMATION_SENT
    rt.store.db.execute("UPDATE subscribers SET left_profile = ''")  # as the old step left it
    _address, before = remove(rt.store, ANA, "asked by phone", NOW)
    assert before is not None and before.status == "pending"
    after = rt.store.subscriber(ANA)
    assert after is not None and (after.status, after.name) == ("unsubscribed", "Ana Hoxha")


def test_the_ids_in_confirmation_links_do_not_tell_whether_an_address_is_known(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    """An attacker signs up an address of theirs, the address they ask about, and another of
    theirs, and reads the ids in the two confirmation links: one apart, a new address took
    none, so it was known. Every sign-up now uses up one id, whatever the state."""
    config, rt, outbox = setup
    keys = suppression_keys(config, rt.store)
    subscribe(rt.store, "active@example.org", "", "en", NOW, languages=("en",), keys=keys)
    subscribe(rt.store, "left@example.org", "", "en", NOW, languages=("en",), keys=keys)
    rt.store.set_subscriber_status("left@example.org", "unsubscribed", "test", NOW)
    assert join(config, rt, NOW, "pending@example.org") is SignUpOutcome.CONFIRMATION_SENT
    later = NOW + timedelta(days=2)
    gaps = {}
    for n, target in enumerate(
        ("new@example.org", "active@example.org", "left@example.org", "pending@example.org")
    ):
        ids = []
        for address in (f"spy{n}a@example.org", target, f"spy{n}b@example.org"):
            join(config, rt, later, address)
            if address.startswith("spy"):
                [message] = [m for m in outbox.new() if address in str(m["To"])]
                ids.append(int(link(message, "confirm").split(".")[0]))
        gaps[target] = ids[1] - ids[0]
    assert set(gaps.values()) == {2}, gaps


@pytest.mark.parametrize("state", ["new", "pending", "unsubscribed", "active"])
def test_a_sign_up_taken_up_by_another_process_mid_send_sends_no_second_message(
    setup: tuple[Config, Runtime, Outbox], state: str
) -> None:
    """Two web workers took up sign-ups of one address at once: both read that no message
    had gone (it was marked only once sent) and both sent one. Now a message is counted as
    going before it goes: the other process's sign-up, made while it is being sent (here
    from the mailer, on a connection of its own), is held; and one that does not go is
    uncounted, so the next sign-up sends it."""
    config, rt, outbox = setup
    keys = suppression_keys(config, rt.store)
    if state in ("unsubscribed", "active"):
        subscribe(rt.store, ANA, "", "en", NOW, languages=("en",), keys=keys)
    if state == "unsubscribed":
        rt.store.set_subscriber_status(ANA, "unsubscribed", "test", NOW)
    later = NOW + timedelta(days=2)
    if state == "pending":
        assert join(config, rt, NOW) is SignUpOutcome.CONFIRMATION_SENT  # 2 days ago
        outbox.new()
    inner: list[SignUpOutcome] = []

    class Racing:
        def __init__(self, real: Any) -> None:
            self.real = real

        def send(self, message: Any) -> str:
            if not inner:
                with open_runtime(config, clock=lambda: later) as other:
                    inner.append(join(config, other, later))
            return str(self.real.send(message))

        def close(self) -> None:
            self.real.close()

    mailer = Racing(rt.mailer())
    done = attempt(config, rt, later, mailer)
    mailer.close()
    held = SignUpOutcome.NOTICE_HELD if state == "active" else SignUpOutcome.CONFIRMATION_HELD
    assert inner == [held], (done, inner)
    assert len(outbox.new()) == 1

    class Down:
        def send(self, message: Any) -> str:
            raise DeliveryError("relay down")

        def close(self) -> None:
            pass

    # A message that did not go is not counted: the next sign-up sends it.
    much_later = later + timedelta(days=2)
    failed = attempt(config, rt, much_later, Down())
    assert failed.mail_error == "relay down"

    class Broken(Down):
        def send(self, message: Any) -> str:
            raise RuntimeError("a bug, not a delivery error")

    with pytest.raises(RuntimeError):  # raised, not returned: uncounted all the same
        attempt(config, rt, much_later, Broken())
    sent = SignUpOutcome.NOTICE_SENT if state == "active" else SignUpOutcome.CONFIRMATION_RESENT
    assert join(config, rt, much_later) is sent
    assert len(outbox.new()) == 1


def test_a_bad_address_or_language_is_refused_before_anything_is_stored(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    config, rt, outbox = setup
    with pytest.raises(BadAddress):
        join(config, rt, NOW, "not-an-address")
    with pytest.raises(InputError, match="language"):
        join(config, rt, NOW, language="de")
    assert list(rt.store.subscribers()) == [] and outbox.new() == []


def test_the_sign_up_mails_go_through_smtp_with_their_headers_encoded(tmp_path: Path) -> None:
    with smtp_server() as (handler, port):
        config = digest_config(
            tmp_path,
            mail={"transport": "smtp"},
            smtp={"host": "127.0.0.1", "port": port, "security": "none"},
        )
        with open_runtime(config, clock=lambda: NOW) as rt:
            mailer = rt.mailer()
            try:
                done = sign_up(
                    rt.store,
                    config,
                    mailer,
                    address=ANA,
                    name="Ëndrit Çela\r\nBcc: x@example.org",
                    language="sq",
                    categories=(),
                    via=ConsentVia.WEB_FORM,
                    now=NOW,
                )
            finally:
                mailer.close()
            assert done.outcome is SignUpOutcome.CONFIRMATION_SENT and not done.mail_error
            [confirmation] = handler.received
            assert confirmation.rcpt_tos == [ANA]
            asked = confirmation.message()
            assert "Ëndrit" not in str(asked["To"]) and "Ëndrit" not in text(asked)
            assert do_confirm(config, rt, link(asked, "confirm"), NOW) is ConfirmOutcome.CONFIRMED
        [_, received] = handler.received
        head = received.data.split(b"\r\n\r\n")[0].decode("ascii")  # every header ASCII
        assert "=?utf-8?" in head
        assert not any(line.lower().startswith("bcc") for line in head.split("\r\n"))
        msg = received.message()
        assert msg["To"].addresses[0].display_name == "Ëndrit Çela Bcc: x@example.org"
        assert "Përshëndetje Ëndrit Çela" in text(msg)


def test_the_schema_step_keeps_every_subscriber_and_delivery(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = database_before(path, "issue 11 (subscriber lifecycle)", foreign_keys=True)
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed, failures)"
        " VALUES ('a@example.org', 'Ana', 'sq', 'bounced', '2026-11-01T00:00:00Z', 3)"
    )
    db.execute(
        "INSERT INTO digests (id, created, cutoff, items, more, status) VALUES"
        " (1, '2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z', 0, 0, 'sent')"
    )
    db.execute(
        "INSERT INTO deliveries (digest_id, subscriber_id, status, updated)"
        " VALUES (1, 1, 'failed', '2026-11-02T00:00:00Z')"
    )
    db.close()
    config = digest_config(tmp_path, storage={"database": str(path)})
    with open_runtime(config, clock=lambda: NOW) as rt:
        profile = rt.store.profile(address="a@example.org")
        assert profile is not None
        assert (profile.state, profile.failures, profile.language) == (State.BOUNCED, 3, "sq")
        assert profile.consent.at is None and profile.categories == ()
        assert [d.status for d in rt.store.history(profile.id)] == ["failed"]
        join(config, rt, NOW, "new@example.org")
        fresh = rt.store.profile(address="new@example.org")
        assert fresh is not None and fresh.state is State.PENDING


def test_forgetting_someone_mid_send_skips_them_and_the_send_finishes(
    setup: tuple[Config, Runtime, Outbox],
) -> None:
    """A digest killed after Ana's row was marked 'sending' is resumed after she was
    forgotten: nothing goes to her (she has no address any more), the others get it."""
    from iomfeed.digest.steps import send_digest

    config, rt, outbox = setup
    add_items(rt.store, range(1, 4), NOW - timedelta(days=1))
    keys = suppression_keys(config, rt.store)
    for who in (ANA, "ben@example.org", "cleo@example.org"):
        subscribe(rt.store, who, "", "en", NOW, languages=("en",), keys=keys)
    items = [i.id for i in rt.store.items()]
    record = rt.store.create_digest(
        created=NOW, since=None, cutoff=NOW, item_ids=items, left_out=[], more=0
    )
    ana = rt.store.profile(address=ANA)
    cleo = rt.store.profile(address="cleo@example.org")
    assert ana is not None and cleo is not None
    assert rt.store.mark_sending(record.id, ana.id, NOW)  # then the process died
    forget(rt.store, config, ANA, NOW)
    forget(rt.store, config, "cleo@example.org", NOW)  # still pending: skipped too
    mailer = rt.mailer()
    try:
        send_digest(config, store=rt.store, mailer=mailer, clock=lambda: NOW)
    finally:
        mailer.close()
    assert [m["To"] for m in outbox.new()] == ["ben@example.org"]
    assert rt.store.delivery_totals(record.id) == {"sent": 1, "skipped": 2}
