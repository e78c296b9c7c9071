"""Records as JSON: the one place a record becomes what ``--json`` prints and ``/healthz``
answers.

:func:`to_json` turns a record (a frozen dataclass) into JSON-ready values: datetimes as ISO
8601 text, enums as their value, tuples as lists, mappings as objects. A record whose JSON
is not simply its fields (renamed keys, counts derived from totals, an order of its own)
has its view registered below, next to the others; everything else is converted field by
field. :func:`dumps` is the text the command line prints: indented, UTF-8 kept as is.

It decides nothing and reads nothing: what a report holds is the pipeline's and the health
check's business; this module only spells it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from functools import singledispatch
from typing import Any

from .health import DigestHealth, Health, SourceHealth
from .models import CycleReport, DigestOutcome, SourceResult, StoredItem
from .output_records import DeliveryReport
from .subscribers import Subscriber


def dumps(value: object) -> str:
    """``value`` as the command line prints JSON (without the final newline)."""
    return json.dumps(to_json(value), ensure_ascii=False, indent=2)


@singledispatch
def to_json(value: object) -> Any:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers, booleans, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return value


@to_json.register
def _when(value: datetime) -> str:
    return value.isoformat()


def _pick(record: object, *names: str) -> dict[str, Any]:
    """The named attributes (fields or properties) in that order."""
    return {name: to_json(getattr(record, name)) for name in names}


# ----------------------------------------------------------------------------- items


@to_json.register
def _item(i: StoredItem) -> dict[str, Any]:
    """``iomfeed items --json``."""
    first = _pick(i, "id", "url", "source", "title", "published", "date_source", "date_note")
    dates = _pick(i, "updated", "first_seen", "last_seen", "summary_html", "content_html")
    rest = _pick(i, "image_alt", "categories", "language", "author", "content_hash")
    return {**first, **dates, "image": i.image_url, **rest}


@to_json.register
def _subscriber(s: Subscriber) -> dict[str, Any]:
    """``iomfeed subscribers list --json``: who, and when they joined and left."""
    return _pick(s, "address", "name", "language", "status", "subscribed", "left", "reason")


# ----------------------------------------------------------------------------- run report


@to_json.register
def _cycle(report: CycleReport) -> dict[str, Any]:
    """``iomfeed run --json``."""
    run, published = report.run, report.published
    return {
        "ok": report.ok,
        "started": to_json(run.started),
        "finished": to_json(run.finished),
        "sources": to_json(run.sources),
        "published": {"error": report.publish_error}
        if report.publish_error
        else None
        if published is None
        else {"written": list(published.written), "unchanged": published.unchanged},
        "digest": to_json(report.digest),
        "alerts": list(report.alerts),
        "bounces": to_json(report.bounces),
    }


@to_json.register
def _source_result(r: SourceResult) -> dict[str, Any]:
    out = _pick(r, "name", "ok", "pages", "not_modified", "found", "new", "updated")
    out |= _pick(r, "duplicates", "filtered")
    return out | {"duration": round(r.duration, 3), **_pick(r, "error", "warnings")}


@to_json.register
def _digest_outcome(d: DigestOutcome) -> dict[str, Any]:
    return {"id": d.digest_id, **_pick(d, "status", "items", "more", "note", "delivery")}


@to_json.register
def _delivery(d: DeliveryReport) -> dict[str, Any]:
    return _pick(d, "sent", "failed", "deferred", "skipped", "bounced", "error", "interrupted") | {
        "totals": dict(d.totals),
        **_pick(d, "quota_note", "quota_frees_at"),  # held by mail.hourly/daily_limit
    }


# ----------------------------------------------------------------------------- health


def _in_flight(totals: Mapping[str, int]) -> int:
    return totals.get("pending", 0) + totals.get("sending", 0)


@to_json.register
def _health(h: Health) -> dict[str, Any]:
    """``iomfeed status --json`` and ``/healthz``."""
    last = h.digests[0] if h.digests else None
    return {
        "status": to_json(h.status),
        "checked": to_json(h.checked),
        "problems": h.problems(),
        "sources": to_json(h.sources),
        "failed_sources": [s.name for s in h.failed_now],
        "failing_sources": [s.name for s in h.failing],
        "items": h.items,
        "digests": to_json(h.digests),
        "last_digest": None
        if last is None
        else {
            "id": last.record.id,
            "status": to_json(last.record.status),
            "sent": last.totals.get("sent", 0),
            "failed": last.totals.get("failed", 0),
            "pending": _in_flight(last.totals),
        },
        "subscribers": dict(h.subscribers),
        "bounces": dict(h.bounces),
        "quota": _quota(h),
        "jobs": {
            name: {"failures_in_a_row": n, "last_error": error}
            for name, (n, error) in h.jobs.items()
        },
        "next": to_json(dict(h.next_times)),
        "running": list(h.running),
    }


def _quota(h: Health) -> dict[str, Any] | None:
    """The relay's quota: its limits, what each window used, and when a full one frees up
    (null: not read)."""
    q = h.quota
    if q is None:
        return None
    return {
        "limits": dict(q.limits),
        "used": dict(q.used),
        "room": q.room,
        "full": q.full,
        "frees_at": to_json(q.frees_at),
    }


@to_json.register
def _source_health(s: SourceHealth) -> dict[str, Any]:
    return _pick(s, "name", "enabled", "last_run", "ok", "state", "outcome", "last_success") | (
        _pick(s, "last_error", "consecutive_failures", "items")
    )


@to_json.register
def _digest_health(d: DigestHealth) -> dict[str, Any]:
    totals = d.totals
    return _pick(d.record, "id", "status", "created", "finished", "items", "more", "note") | {
        "sent": totals.get("sent", 0),
        "failed": totals.get("failed", 0),
        "pending": _in_flight(totals),
        "skipped": totals.get("skipped", 0),
        "stuck": d.stuck,
    }
