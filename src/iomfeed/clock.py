"""The wall clock, read in exactly one place, and time zones by name.

Everything else receives ``now`` as an argument (or a callable returning it), so the core is
deterministic under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache


def utc_now() -> datetime:
    """The current time, time-zone aware, in UTC."""
    return datetime.now(UTC)


@lru_cache(maxsize=32)
def zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (the configuration has checked that it exists)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
