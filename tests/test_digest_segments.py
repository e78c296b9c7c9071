"""Category segments in the digest send: each subscriber gets only the stories of the
categories chosen, the digest is rendered and inlined once per (language, segment) its
recipients have, a subscriber with nothing new is skipped (not failed, not sent), and a
resumed send renders the segments frozen in the ledger."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from iomfeed.config import Config
from iomfeed.delivery.send import Stop
from iomfeed.digest import render
from iomfeed.digest.lifecycle import (
    NOTHING_FOR_THEM,
    Create,
    DeliveryStatus,
    DigestState,
    Skip,
    decide,
    first_status,
)
from iomfeed.digest.message import Outgoing
from iomfeed.digest.segments import EVERY, for_segment, offered_categories, segment_of
from iomfeed.ingest import upsert
from iomfeed.output_records import DigestContent, DigestEntry
from iomfeed.pipeline import send_digest
from iomfeed.runtime import open_runtime
from iomfeed.store import Store

from .conftest import CONFIG_FILE, NOW
from .digestkit import add_subscribers, digest_config, item, stories_in
from .schemakit import database_before

OFFERED = ("Local", "Global")


class Mailer:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> str:
        self.sent.append(message)
        return "250 OK"

    def close(self) -> None:
        pass

    def by_address(self) -> dict[str, EmailMessage]:
        out = {}
        for m in self.sent:
            msg = email.message_from_bytes(m.data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out[m.recipient] = msg
        return out


def clock() -> datetime:
    return NOW


def store_with(tmp_path: Path, categories: dict[int, str], subscribers: int) -> Store:
    store = Store(tmp_path / "db.sqlite")
    for n, cat in categories.items():
        upsert(store, item(n, category=cat), NOW - timedelta(days=1))
    add_subscribers(store, subscribers)
    return store


def choose(store: Store, n: int, categories: list[str]) -> None:
    profile = store.profile(address=f"reader{n}@example.org")
    assert profile is not None
    store.set_preferences(
        profile.id, language=profile.language, categories=categories, paused_until=None
    )


def count_inlines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every premailer inline from now on, as "mail" (a message's rendering) or "web" (a
    digest page of the archive, published after the send)."""
    calls: list[str] = []
    kind: list[str] = []
    real_inline: Callable[[str, str], str] = render.inline_css
    real_render = render.render_digest

    def inline(html: str, css: str) -> str:
        calls.append(kind[-1] if kind else "other")
        return real_inline(html, css)

    def rendering(content: DigestContent, language: str, config: Config, **kw: Any) -> Any:
        kind.append("web" if kw.get("web") is not None else "mail")
        try:
            return real_render(content, language, config, **kw)
        finally:
            kind.pop()

    monkeypatch.setattr(render, "inline_css", inline)
    monkeypatch.setattr(render, "render_digest", rendering)
    return calls


# ------------------------------------------------------------------ the rules, pure


def test_a_segment_is_the_offered_categories_chosen() -> None:
    assert segment_of([], OFFERED) == EVERY
    assert segment_of(["Local"], OFFERED) == ("local",)
    assert segment_of([" gLoBaL "], OFFERED) == ("global",)  # case and spaces ignored
    assert segment_of(["Global", "Local"], OFFERED) == EVERY  # every one offered
    assert segment_of(["local", "LOCAL"], OFFERED) == ("local",)
    # A category the config no longer offers is dropped; nothing left: the whole digest.
    assert segment_of(["Global", "Diaspora"], OFFERED) == ("global",)
    assert segment_of(["Diaspora"], OFFERED) == EVERY
    # A config that offers none keeps the choice as made.
    assert segment_of(["Diaspora", "local"], ()) == ("diaspora", "local")


def test_the_offered_categories_come_from_the_config(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    assert offered_categories(config) == OFFERED


def entry(n: int, category: str) -> DigestEntry:
    return DigestEntry(
        id=f"id{n}",
        title=f"t{n}",
        url=f"https://x/{n}",
        published=NOW,
        summary="",
        image_url="",
        image_alt="",
        category=category,
    )


def test_a_story_belongs_to_the_category_it_is_shown_under() -> None:
    content = DigestContent(
        digest_id=0,
        created=NOW,
        since=None,
        entries=(entry(0, "Local"), entry(1, "Global"), entry(2, ""), entry(3, " local ")),
    )
    assert [e.id for e in for_segment(content, ("local",)).entries] == ["id0", "id3"]
    assert [e.id for e in for_segment(content, ("global",)).entries] == ["id1"]
    # Uncategorised stories go only to those who get every category.
    assert len(for_segment(content, EVERY).entries) == 4


def test_a_digest_with_nothing_for_anybody_is_skipped_whole() -> None:
    content = DigestContent(digest_id=0, created=NOW, since=None, entries=(entry(0, "Local"),))
    common: dict[str, Any] = {"open_digest": None, "content": content, "active_subscribers": 3}
    step = decide(skip_empty=True, wanted=0, **common)
    assert isinstance(step, Skip) and "categories" in step.note
    assert isinstance(decide(skip_empty=True, wanted=1, **common), Create)
    assert isinstance(decide(skip_empty=False, wanted=0, **common), Create)


def test_a_recipient_with_nothing_new_is_skipped_unless_empty_digests_are_sent() -> None:
    assert first_status(has_stories=False, skip_empty=True) is DeliveryStatus.SKIPPED
    assert first_status(has_stories=False, skip_empty=False) is DeliveryStatus.PENDING
    assert first_status(has_stories=True, skip_empty=True) is DeliveryStatus.PENDING


# ------------------------------------------------------------------ the send


def test_each_subscriber_gets_only_their_categories_rendered_once_per_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Local", 1: "Local", 2: "Global", 3: ""}, 8)
    # Languages: reader0, 3 and 6 sq, the others en.
    chosen = {
        0: [],  # sq, every category
        1: ["Local"],  # en local
        2: ["global"],  # en global
        3: ["Local"],  # sq local
        4: ["Local", "Global"],  # en, every one offered: every category
        5: ["Removed"],  # en, only a category no longer offered: every category
        6: ["Global", "Removed"],  # sq global
        7: ["local"],  # en local, the same segment as reader1
    }
    for n, cats in chosen.items():
        choose(store, n, cats)
    inlines = count_inlines(monkeypatch)
    mailer = Mailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.status is DigestState.SENT
        assert store.delivery_totals(outcome.digest_id) == {"sent": 8}
    # (sq, every), (en, local), (en, global), (sq, local), (en, every), (sq, global)
    assert inlines.count("mail") == 6
    # The archive's pages are not segmented: one per language, with every story.
    assert inlines.count("web") == 2
    pages = sorted((config.feeds_path / "digests").glob("*-*.html"))
    assert [p.name[-8:] for p in pages] == ["-en.html", "-sq.html"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert all(f"/news/story-{n}" in text for n in range(4))
    got = {a: stories_in(m) for a, m in mailer.by_address().items()}
    every, local, glob = {0, 1, 2, 3}, {0, 1}, {2}
    expected = [every, local, glob, local, every, every, glob, local]
    assert got == {f"reader{n}@example.org": s for n, s in enumerate(expected)}


def test_nothing_new_in_their_categories_is_skipped_not_failed_nor_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Local", 1: "Local"}, 3)
    choose(store, 1, ["Global"])
    with store:
        sid = store.profile(address="reader1@example.org")
        assert sid is not None
        store.db.execute("UPDATE subscribers SET failures = 2 WHERE id = ?", (sid.id,))
        inlines = count_inlines(monkeypatch)
        mailer = Mailer()
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.status is DigestState.SENT and outcome.ok
        # (sq, every), (en, every): nothing rendered for Global
        assert inlines.count("mail") == 2
        assert sorted(m.recipient for m in mailer.sent) == [
            "reader0@example.org",
            "reader2@example.org",
        ]
        assert outcome.delivery is not None
        assert (outcome.delivery.sent, outcome.delivery.failed) == (2, 0)
        assert outcome.delivery.skipped == 1
        assert store.delivery_totals(outcome.digest_id) == {"sent": 2, "skipped": 1}
        row = store.delivery(outcome.digest_id, sid.id)
        assert row is not None and row.reply == NOTHING_FOR_THEM and row.attempts == 0
        after = store.profile(address="reader1@example.org")
        assert after is not None and after.failures == 2  # a skip is not a success either
        assert after.state.value == "active"
        history = store.history(sid.id)
        assert [(h.status, h.reply) for h in history] == [("skipped", NOTHING_FOR_THEM)]


def test_with_skip_empty_off_everybody_gets_one(tmp_path: Path) -> None:
    config = digest_config(tmp_path, digest={"skip_empty": False})
    store = store_with(tmp_path, {0: "Local"}, 2)
    choose(store, 1, ["Global"])
    mailer = Mailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert store.delivery_totals(outcome.digest_id) == {"sent": 2}
    assert mailer.by_address().keys() == {"reader0@example.org", "reader1@example.org"}
    assert stories_in(mailer.by_address()["reader1@example.org"]) == set()


def test_with_everybody_paused_it_is_no_question_of_categories(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Global"}, 2)
    choose(store, 0, ["Local"])
    store.db.execute("UPDATE subscribers SET paused_until = ?", ("2027-01-01T00:00:00Z",))
    with store:
        outcome = send_digest(config, store=store, mailer=Mailer(), clock=clock)
        # As before segments: made with an empty ledger, so finished at once.
        assert outcome.status is DigestState.SENT and "categories" not in outcome.note
        assert store.delivery_totals(outcome.digest_id) == {}


def test_nothing_for_anybody_skips_the_whole_digest(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Global"}, 2)
    choose(store, 0, ["Local"])
    choose(store, 1, ["Local"])
    mailer = Mailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert outcome.status is DigestState.SKIPPED
        assert "categories" in outcome.note and mailer.sent == []
        record = store.last_digest()
        assert record is not None and record.status == "skipped"
        assert store.delivery_totals(record.id) == {}


def test_a_resumed_send_renders_the_segments_frozen_in_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Local", 1: "Global", 2: "Local"}, 6)
    for n in range(6):
        choose(store, n, [["Local"], ["Global"], []][n % 3])
    stop = Stop()
    first, second = Mailer(), Mailer()
    with store:
        # Stopped after two messages: readers 0 and 1 have theirs.
        sent: list[int] = []

        def step() -> None:
            sent.append(1)
            if len(sent) == 2:
                stop.set()

        outcome = send_digest(
            config, store=store, mailer=first, clock=clock, stop=stop, on_message=step
        )
        assert outcome.status is DigestState.PARTIAL
        # Reader 3 changes their mind meanwhile: this digest keeps what it was made with.
        choose(store, 3, ["Global"])
        inlines = count_inlines(monkeypatch)
        resumed = send_digest(config, store=store, mailer=second, clock=clock)
        assert resumed.status is DigestState.SENT and resumed.digest_id == outcome.digest_id
        # Due: reader2 (en every), 3 (sq local), 4 (en global), 5 (en every).
        assert inlines.count("mail") == 3
    got = {a: stories_in(m) for a, m in {**first.by_address(), **second.by_address()}.items()}
    local, glob, every = {0, 2}, {1}, {0, 1, 2}
    assert got == {f"reader{n}@example.org": s for n, s in enumerate([local, glob, every] * 2)}


def test_the_ledger_step_keeps_rows_of_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = database_before(path, "issue 11 (segments)", foreign_keys=True)
    db.execute(
        "INSERT INTO subscribers (address, name, language, status, subscribed, categories)"
        " VALUES ('a@example.org', 'Ana', 'sq', 'active', '2026-11-01T00:00:00Z', '[\"Local\"]')"
    )
    db.execute(
        "INSERT INTO digests (id, created, cutoff, items, more, status) VALUES"
        " (1, '2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z', 0, 0, 'sending')"
    )
    db.execute(
        "INSERT INTO deliveries (digest_id, subscriber_id, status, attempts, updated)"
        " VALUES (1, 1, 'sending', 1, '2026-11-02T00:00:00Z')"
    )
    db.close()
    config: Config = digest_config(tmp_path, storage={"database": str(path)})
    with open_runtime(config, clock=clock) as rt:
        row = rt.store.delivery(1, 1)
        assert row is not None
        # Made before segments: it keeps sending the whole digest, as it would have.
        assert (row.status, row.attempts, row.segment) == ("sending", 1, EVERY)
        assert rt.store.digest_segments(1) == [("sq", EVERY)]


def test_the_commands_show_segments_and_skipped_deliveries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from iomfeed.cli import main

    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with Store(tmp_path / "iomfeed.db") as store:
        for n in (0, 1):
            upsert(store, item(n, category="Local"), NOW - timedelta(days=1))
        add_subscribers(store, 4)
        choose(store, 1, ["Global"])
        choose(store, 2, ["Local"])
    args = ["--config", str(config)]
    assert main([*args, "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 segment(s), each rendered once: en local: 1; sq every category: 2" in out
    assert "1 subscriber(s) with nothing new in their categories: skipped" in out
    assert main([*args, "digest", "--send"]) == 0
    assert "digest 1: 3 sent now (3 sent, 1 skipped); complete" in capsys.readouterr().out
    assert main([*args, "status"]) == 0
    lines = capsys.readouterr().out.split("digests:")[1].strip().splitlines()
    assert lines[0].split() == [
        *("id", "made", "status", "items", "sent", "failed", "pending", "skipped", "note")
    ]
    cells = lines[1].split()  # the date made is two cells
    assert cells[:1] + cells[3:] == ["1", "sent", "2", "3", "0", "0", "1"]
    assert main([*args, "subscribers", "show", "reader1@example.org"]) == 0
    assert NOTHING_FOR_THEM in capsys.readouterr().out
    with Store(tmp_path / "iomfeed.db") as store:  # a Global story, nobody for it
        upsert(store, item(2, category="Global"), datetime.now(UTC))
        for n in range(4):
            choose(store, n, ["Local"])
    assert main([*args, "digest", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing new in the categories the subscribers chose: it would be skipped" in out


def test_a_language_the_config_no_longer_has_fails_only_its_subscribers(tmp_path: Path) -> None:
    config = digest_config(tmp_path)
    store = store_with(tmp_path, {0: "Local"}, 3)
    store.db.execute("UPDATE subscribers SET language = 'it' WHERE address = 'reader1@example.org'")
    mailer = Mailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=clock)
        assert store.delivery_totals(outcome.digest_id) == {"sent": 2, "failed": 1}
        profile = store.profile(address="reader1@example.org")
        assert profile is not None
        row = store.delivery(outcome.digest_id, profile.id)
        assert row is not None and "not in digest.languages" in row.reply
    assert sorted(m.recipient for m in mailer.sent) == [
        "reader0@example.org",
        "reader2@example.org",
    ]


# ------------------------------------------------------------------ beyond the digest's cap


def second_digest(
    tmp_path: Path, categories: dict[int, str], max_items: int
) -> tuple[Config, Store]:
    """A list whose first digest went out (story 9, to everyone), then ``categories``'
    stories first seen after it: the second digest's, newest first by their number."""
    config = digest_config(tmp_path, digest={"max_items": max_items})
    store = store_with(tmp_path, {9: ""}, 5)  # reader0 and 3 read Albanian
    first = send_digest(config, store=store, mailer=Mailer(), clock=clock)
    assert first.status is DigestState.SENT
    for n, cat in categories.items():
        upsert(store, item(n, category=cat), NOW + timedelta(hours=1))
    return config, store


def later() -> datetime:
    return NOW + timedelta(hours=2)


def test_a_rare_category_gets_its_stories_in_a_busy_week(tmp_path: Path) -> None:
    # Three newer Local stories fill the whole digest's max_items; the Global one is
    # beyond it. Its subscriber gets it, and is not told "nothing new in their categories".
    config, store = second_digest(tmp_path, {0: "Local", 1: "Local", 2: "Local", 3: "Global"}, 3)
    choose(store, 1, ["Global"])
    choose(store, 2, ["Local"])
    mailer = Mailer()
    with store:
        outcome = send_digest(config, store=store, mailer=mailer, clock=later)
        assert outcome.status is DigestState.SENT
        assert outcome.more == 1
        assert store.delivery_totals(outcome.digest_id) == {"sent": 5}
    got = mailer.by_address()
    assert stories_in(got["reader0@example.org"]) == {0, 1, 2}  # every category: as before
    assert stories_in(got["reader1@example.org"]) == {3}
    assert stories_in(got["reader2@example.org"]) == {0, 1, 2}
    # Only the whole digest has one more; each segment shows all of its own.
    whole = got["reader4@example.org"].get_body(("plain",))
    assert whole is not None and "One more new story" in whole.get_content()
    for n in (1, 2):
        body = got[f"reader{n}@example.org"].get_body(("plain",))
        assert body is not None and "more new stor" not in body.get_content()
    assert ": 1 new story," in str(got["reader1@example.org"]["Subject"])
    assert ": 3 new stories," in str(got["reader2@example.org"]["Subject"])
    assert ": 4 new stories," in str(got["reader4@example.org"]["Subject"])


def test_a_segments_more_line_counts_only_its_own_stories(tmp_path: Path) -> None:
    # max_items 2: the whole digest shows 0, 1 and counts 4 more; Local shows 0, 1 and
    # counts 5; Global shows 2, 3 and counts 4.
    stories = {0: "Local", 1: "Local", 2: "Global", 3: "Global", 4: "Global", 5: "Local"}
    config, store = second_digest(tmp_path, stories, 2)
    choose(store, 1, ["Global"])
    choose(store, 2, ["local"])
    mailer = Mailer()
    with store:
        send_digest(config, store=store, mailer=mailer, clock=later)
    got = mailer.by_address()
    expected = {4: ({0, 1}, "4 more new stories"), 1: ({2, 3}, "One more"), 2: ({0, 1}, "One more")}
    for n, (shown, more) in expected.items():
        msg = got[f"reader{n}@example.org"]
        assert stories_in(msg) == shown
        text = msg.get_body(("plain",))
        assert text is not None and more in text.get_content()
    assert ": 3 new stories," in str(got["reader1@example.org"]["Subject"])
    assert ": 3 new stories," in str(got["reader2@example.org"]["Subject"])
    assert ": 6 new stories," in str(got["reader4@example.org"]["Subject"])


def test_a_resumed_segmented_send_renders_each_segment_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stories = {0: "Local", 1: "Local", 2: "Global", 3: "Global", 4: "Global", 5: "Local"}
    config, store = second_digest(tmp_path, stories, 2)
    choose(store, 1, ["Global"])
    choose(store, 2, ["Local"])
    made: list[tuple[str, str, str, str]] = []
    real = render.render_digest

    def recording(content: DigestContent, language: str, cfg: Config, **kw: Any) -> Any:
        out = real(content, language, cfg, **kw)
        if kw.get("web") is None:
            made.append((language, out.subject, out.html, out.text))
        return out

    monkeypatch.setattr(render, "render_digest", recording)
    stop, first = Stop(), Mailer()
    with store:
        outcome = send_digest(
            config, store=store, mailer=first, clock=later, stop=stop, on_message=stop.set
        )
        assert outcome.status is DigestState.PARTIAL
        before = set(made)
        made.clear()
        # Meanwhile: a newer Global story, a bigger max_items. Neither changes this digest.
        upsert(store, item(6, published=NOW + timedelta(days=1), category="Global"), later())
        changed = digest_config(tmp_path, digest={"max_items": 10})
        second = Mailer()
        resumed = send_digest(changed, store=store, mailer=second, clock=later)
        assert resumed.status is DigestState.SENT and resumed.digest_id == outcome.digest_id
    assert len(made) >= 3 and set(made) <= before  # the segments still due, same bytes
    got = {**first.by_address(), **second.by_address()}
    assert stories_in(got["reader1@example.org"]) == {2, 3}
    assert stories_in(got["reader2@example.org"]) == {0, 1}
