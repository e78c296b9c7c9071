"""The wall clock, read in exactly one place.

Everything else receives ``now`` as an argument (or a callable returning it), so the core is
deterministic under test.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, time-zone aware, in UTC."""
    return datetime.now(UTC)
