"""Records become JSON in one place (:mod:`iomfeed.jsonout`), the same bytes as before it.

``data/records.json`` was written by the hand-made JSON of ``items --json``, ``subscribers
list --json``, ``run --json`` and ``status --json`` (and /healthz) before they were replaced
by :func:`~iomfeed.jsonout.to_json`; it is not a golden file and is never regenerated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import Enum

from iomfeed.delivery.policy import QuotaState
from iomfeed.digest.lifecycle import DigestState
from iomfeed.health import DigestHealth, Health, SourceHealth
from iomfeed.jsonout import dumps, to_json
from iomfeed.models import (
    CycleReport,
    DateSource,
    DigestOutcome,
    DigestRecord,
    PublishReport,
    RunReport,
    SourceResult,
    StoredItem,
)
from iomfeed.output_records import DeliveryReport
from iomfeed.subscribers import Subscriber

from .conftest import DATA


def test_every_json_output_is_byte_identical_to_the_hand_written_one() -> None:
    T = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    item = StoredItem(
        id="tag:example.org,2026:1",
        url="https://example.org/a",
        source="iom",
        title="Një titull “quoted”",
        summary_html="<p>s</p>",
        content_html="<p>c</p>",
        published=T - timedelta(days=1),
        date_source=DateSource.TIME,
        updated=T,
        first_seen=T,
        last_seen=T + timedelta(hours=1),
        image_url="https://example.org/i.jpg",
        image_alt="alt",
        categories=("local", "news"),
        language="sq",
        author="IOM",
        content_hash="v1:abc",
        listing_hash="lh",
        date_note="note",
    )
    subs = [
        Subscriber("a@example.org", "Ana", "sq", "active", T, None, "", 1),
        Subscriber(
            "b@example.org",
            "",
            "en",
            "unsubscribed",
            T - timedelta(days=3),
            T,
            "unsubscribe page",
            2,
        ),
    ]
    run = RunReport(
        started=T,
        finished=T + timedelta(seconds=12),
        sources=(
            SourceResult(
                "iom",
                True,
                pages=2,
                not_modified=1,
                found=10,
                new=3,
                updated=1,
                duplicates=2,
                filtered=1,
                duration=1.23456,
                warnings=("w1",),
            ),
            SourceResult("feed", False, error="HTTP 503", duration=0.5),
        ),
    )
    cycles = [
        CycleReport(
            run=run,
            published=PublishReport(written=("atom.xml", "index.html"), unchanged=4),
            digest=DigestOutcome(
                status=DigestState.SENT,
                digest_id=7,
                items=5,
                more=2,
                note="",
                delivery=DeliveryReport(
                    digest_id=7,
                    sent=3,
                    failed=1,
                    deferred=1,
                    skipped=0,
                    bounced=1,
                    interrupted=False,
                    totals={"sent": 3, "failed": 1, "pending": 1},
                    finished=False,
                    error="relay down",
                ),
            ),
            alerts=("a1",),
        ),
        CycleReport(
            run=run,
            published=None,
            digest=DigestOutcome(
                status=DigestState.SKIPPED, digest_id=8, items=0, more=0, note="nothing new"
            ),
            alerts=(),
        ),
        CycleReport(run=run, published=None, digest=None),
    ]
    rec = DigestRecord(
        id=7,
        created=T,
        since=T - timedelta(days=7),
        cutoff=T,
        status=DigestState.SENDING,
        items=5,
        more=2,
        finished=None,
        note="",
    )
    rec2 = DigestRecord(
        id=6,
        created=T - timedelta(days=7),
        since=None,
        cutoff=T - timedelta(days=7),
        status=DigestState.SENT,
        items=4,
        more=0,
        finished=T - timedelta(days=7),
        note="",
    )
    health = Health(
        checked=T,
        sources=(
            SourceHealth("iom", True, T, False, T - timedelta(hours=2), "HTTP 503", 3, 40),
            SourceHealth("old", False, None, None, None, "", 0, 2),
            SourceHealth("feed", True, T, True, T, "", 0, 7),
        ),
        items=49,
        digests=(
            DigestHealth(rec, {"sent": 3, "failed": 1, "pending": 1, "sending": 1}, True),
            DigestHealth(rec2, {"sent": 4}, False),
        ),
        subscribers={"active": 2, "unsubscribed": 1},
        next_times={"fetch": T + timedelta(minutes=30), "digest": None},
        failures_threshold=3,
        jobs={"cycle": (3, "RuntimeError: boom"), "digest": (0, "")},
        quota=QuotaState(room=None),
        running=("pid 7: iomfeed run, since 2026-11-24 08:59:00 UTC",),
    )
    # A brief check (the operator alerts'): the quota was not read.
    health_empty = Health(checked=T, sources=(), items=0, digests=(), subscribers={})
    out = {
        "items": [to_json(item)],
        "subscribers": to_json(subs),
        "cycles": [to_json(c) for c in cycles],
        "health": [to_json(health), to_json(health_empty)],
        "problems": health.problems(),
    }
    expected = (DATA / "records.json").read_text(encoding="utf-8")
    assert json.dumps(out, ensure_ascii=False, indent=2) + "\n" == expected
    assert dumps(subs) == json.dumps(
        json.loads(expected)["subscribers"], ensure_ascii=False, indent=2
    )


class Colour(Enum):
    RED = "red"


def test_records_without_a_view_are_converted_field_by_field() -> None:
    when = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    report = PublishReport(written=("a", "b"), unchanged=1, pinged=(), ping_failures=("c",))
    assert to_json(report) == {
        "written": ["a", "b"],
        "unchanged": 1,
        "pinged": [],
        "ping_failures": ["c"],
    }
    assert to_json({"at": when, "colour": Colour.RED, 3: (1, None)}) == {
        "at": "2026-01-02T03:04:00+00:00",
        "colour": "red",
        "3": [1, None],
    }
