"""``iomfeed subscribers show``: one subscriber's record as lines of text."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..consent import DeliveryRecord, Profile, State


def _when(value: datetime | None, never: str = "-") -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else never


def profile_lines(profile: Profile, history: Sequence[DeliveryRecord], now: datetime) -> list[str]:
    """What is stored about ``profile``, and its latest deliveries, newest first."""
    from ..subscribers import aligned

    consent = profile.consent
    if consent.at is None:
        how = "not recorded (added before iomfeed recorded consent)"
    else:
        how = f"{_when(consent.at)}, by {consent.via.value if consent.via else 'unknown'}"
        if consent.language:
            how += f", form in {consent.language!r}"
    status = profile.state.value
    why = f" ({profile.reason})" if profile.reason else ""
    if profile.left is not None and profile.state is State.PENDING:
        status += f", not confirmed; left {_when(profile.left)}{why}"
    elif profile.left is not None:
        status += f" since {_when(profile.left)}{why}"
    pause = "no"
    if profile.paused_until is not None:
        pause = f"until {_when(profile.paused_until)}"
        pause += "" if profile.paused(now) else " (over)"
    rows = [
        ("address", profile.address),
        ("name", profile.name or "-"),
        ("language", profile.language),
        ("status", status),
        ("joined", _when(profile.subscribed)),
        ("consent", how),
        ("client", consent.ip or "not recorded"),
        ("confirmed", _when(consent.confirmed, "no")),
        ("categories", ", ".join(profile.categories) or "all"),
        ("paused", pause),
        ("failures", f"{profile.failures} permanent failure(s) in a row"),
        ("confirm sent", _when(profile.confirm_sent)),
        ("notice sent", _when(profile.notice_sent)),
    ]
    lines = [f"{key + ':':<14}{value}" for key, value in rows]
    if not history:
        return [*lines, "deliveries:   none"]
    table = [("digest", "date", "status", "tries", "last change", "reply")]
    table += [
        (
            str(d.digest_id),
            d.digest_created.strftime("%Y-%m-%d"),
            d.status,
            str(d.attempts),
            _when(d.updated),
            d.reply[:60],
        )
        for d in history
    ]
    return [*lines, f"deliveries:   the latest {len(history)}", *("  " + r for r in aligned(table))]
