"""The digest's lifecycle as a state machine, alone: its transitions, where a recorded digest
stands, and what a send decides to do. No database, except one test that holds the stored
values to the schema's CHECK constraints."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iomfeed.digest.lifecycle import (
    STORED,
    TRANSITIONS,
    Create,
    DeliveryStatus,
    DigestState,
    Resume,
    Skip,
    advance,
    after_send,
    decide,
    state_of,
)
from iomfeed.errors import IllegalTransition, IomfeedError
from iomfeed.models import DigestRecord
from iomfeed.output_records import DigestContent, DigestEntry
from iomfeed.store import Store

NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)

S = DigestState


def record(status: DigestState, digest_id: int = 7) -> DigestRecord:
    return DigestRecord(
        id=digest_id,
        created=NOW,
        since=None,
        cutoff=NOW,
        status=status,
        items=2,
        more=0,
        finished=None,
    )


def content(entries: int, since: datetime | None = None) -> DigestContent:
    entry = DigestEntry(
        id="tag:x,2026:1",
        title="A story",
        url="https://albania.iom.int/news/a",
        published=NOW,
        summary="",
        image_url="",
        image_alt="",
        category="",
    )
    return DigestContent(digest_id=0, created=NOW, since=since, entries=(entry,) * entries)


LINKED = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


def test_the_lifecycle_links_exactly_these_states() -> None:
    assert set(TRANSITIONS) == set(DigestState)
    assert {
        (S.DUE, S.CREATED),
        (S.DUE, S.SKIPPED),
        (S.CREATED, S.SENDING),
        (S.SENDING, S.SENT),
        (S.SENDING, S.PARTIAL),
        (S.PARTIAL, S.SENDING),
    } == LINKED


@pytest.mark.parametrize(("current", "target"), sorted(LINKED))
def test_an_allowed_transition_gives_the_target(current: S, target: S) -> None:
    assert advance(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"),
    sorted(set(itertools.product(DigestState, repeat=2)) - LINKED),
)
def test_any_other_transition_is_an_error_naming_both_states(current: S, target: S) -> None:
    with pytest.raises(IllegalTransition, match=f"from {current.name} to {target.name}"):
        advance(current, target)


def test_an_illegal_transition_is_in_the_error_tree() -> None:
    assert issubclass(IllegalTransition, IomfeedError)
    with pytest.raises(IllegalTransition, match="none, it is final"):
        advance(S.SENT, S.SENDING)


def test_a_send_walks_the_machine_and_a_stopped_one_is_resumed() -> None:
    state = advance(S.DUE, S.CREATED)
    state = advance(state, S.SENDING)
    state = advance(state, after_send(finished=False))
    assert state is S.PARTIAL
    state = advance(state, S.SENDING)  # the next run
    assert advance(state, after_send(finished=True)) is S.SENT


def test_the_values_are_the_strings_the_store_and_the_outcome_always_used() -> None:
    assert {s.value for s in STORED} == {"sending", "sent", "skipped"}
    assert S.PARTIAL.value == "incomplete"  # DigestOutcome.status, as `run --json` reports it
    assert {s.value for s in DeliveryStatus} == {"pending", "sending", "sent", "failed", "skipped"}


def test_the_stored_values_match_the_schema(tmp_path: Path) -> None:
    with Store(tmp_path / "db.sqlite") as store:
        tables = dict(store.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))

    def checked(table: str) -> set[str]:
        match = re.search(r"status\s+IN\s*\(([^)]*)\)", tables[table])
        assert match, tables[table]
        return set(re.findall(r"'([^']*)'", match.group(1)))

    assert checked("digests") == {s.value for s in STORED}
    assert checked("deliveries") == {s.value for s in DeliveryStatus}


def test_a_digest_found_sending_is_partial_and_a_final_one_stays_final() -> None:
    assert state_of(record(S.SENDING)) is S.PARTIAL
    assert state_of(record(S.SENT)) is S.SENT
    assert state_of(record(S.SKIPPED)) is S.SKIPPED
    with pytest.raises(IllegalTransition, match="cannot go from SENT to SENDING"):
        advance(state_of(record(S.SENT)), S.SENDING)  # a sent digest is never sent again


@pytest.mark.parametrize("status", [S.DUE, S.CREATED, S.PARTIAL])
def test_a_record_in_a_state_the_store_never_writes_is_an_error(status: S) -> None:
    with pytest.raises(IllegalTransition, match="digest 7"):
        state_of(record(status))


def test_an_open_digest_is_resumed_whatever_is_new_and_whoever_is_left() -> None:
    open_one = record(S.SENDING)
    step = decide(open_digest=open_one, content=content(0), skip_empty=True, active_subscribers=0)
    assert step == Resume(open_one)


def test_nothing_new_is_skipped_with_since_when() -> None:
    first = decide(open_digest=None, content=content(0), skip_empty=True, active_subscribers=3)
    assert first == Skip("nothing new since the start")
    since = NOW - timedelta(days=7)
    later = decide(
        open_digest=None, content=content(0, since), skip_empty=True, active_subscribers=3
    )
    assert later == Skip(f"nothing new since {since.isoformat()}")


def test_an_empty_digest_goes_out_when_skip_empty_is_off() -> None:
    step = decide(open_digest=None, content=content(0), skip_empty=False, active_subscribers=3)
    assert step == Create()


def test_nobody_to_send_to_is_a_skip_even_with_news() -> None:
    step = decide(open_digest=None, content=content(2), skip_empty=True, active_subscribers=0)
    assert step == Skip("no active subscribers")


def test_news_and_subscribers_make_a_digest() -> None:
    step = decide(open_digest=None, content=content(2), skip_empty=True, active_subscribers=1)
    assert isinstance(step, Create)
