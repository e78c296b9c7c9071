"""When the next digest is due, computed once and kept in the store.

Working out the next time of a crontab expression loads APScheduler (about 20 ms), which a
cron ``run`` with nothing new cannot afford on every cycle. The time only changes when a
digest is made or skipped (the mark moves), when the schedule or the time zone changes, or
before the first digest, when the first run is recorded; so it is computed then, stored
beside what it was computed from (schedule, time zone, mark), and read back while those are
the same. A restart reads the stored time; a changed ``schedule.digest`` computes a new one.

The rule itself (due when a scheduled time has passed since the mark, or while a digest is
being sent) is :func:`.lifecycle.is_due`'s; this module only spares its computation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

#: The settings key of the stored time: ``<schedule>|<time zone>|<mark>|<next time>``.
SETTING = "digest.next_due"


def _basis(config: Config, mark: datetime) -> str:
    return f"{config.schedule.digest}|{config.site.timezone}|{mark.isoformat()}"


def next_digest_time(
    config: Config, store: Store, now: datetime, *, save: bool = True
) -> datetime | None:
    """When the next digest is due: ``now`` while one is being sent, None before iomfeed
    ever ran, else the first scheduled time after the last digest was made (or, before the
    first, after the first run), as :func:`.lifecycle.next_digest` says. Read from the store
    when it was stored for the same schedule, time zone and mark; else computed and, with
    ``save``, stored (``status`` and the health page read without writing)."""
    if store.open_digest() is not None:
        return now
    last = store.last_digest()
    mark = last.created if last is not None else store.first_run_started()
    if mark is None:
        return None
    basis = _basis(config, mark)
    stored = store.setting(SETTING)
    if stored is not None:
        kept, _, when = stored.rpartition("|")
        if kept == basis:
            return datetime.fromisoformat(when)
    from .lifecycle import next_due

    due = next_due(config.schedule.digest, config.site.timezone, mark)
    if save:
        store.set_setting(SETTING, f"{basis}|{due.isoformat()}")
    return due


def digest_due(config: Config, store: Store, now: datetime) -> bool:
    """Whether a run should send a digest now (:func:`.lifecycle.is_due`, with the next
    time read from the store)."""
    when = next_digest_time(config, store, now)
    return when is not None and when <= now
