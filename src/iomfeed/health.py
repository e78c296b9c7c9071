"""How iomfeed is doing: sources, the store, the digests, subscribers, what comes next.

Built from the store and the config alone, so ``iomfeed status``, ``/healthz`` and the
operator alerts all see the same facts. Pure apart from reading the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config
    from .delivery.policy import QuotaState
    from .models import DigestRecord
    from .store import Store


class SourceState(Enum):
    """How a source's last runs went."""

    NEVER_RUN = "never_run"
    OK = "ok"
    FAILED = "failed"  # the last run failed, the one before it did not (or there was none)
    FAILING = "failing"  # the last two or more runs failed


class HealthStatus(Enum):
    """The overall verdict: what ``iomfeed status`` prints first and its exit code."""

    OK = "ok"
    FAILED = "failed"  # a source failed in its last run, or a send stopped on an error
    FAILING = "failing"  # an alert threshold is reached: /healthz answers 503


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How one source is doing: its last run, its last success and its failure streak."""

    name: str
    enabled: bool
    last_run: datetime | None
    ok: bool | None  # the last run's outcome (None: never ran)
    last_success: datetime | None
    last_error: str
    consecutive_failures: int
    items: int

    @property
    def state(self) -> SourceState:
        if self.ok is None:
            return SourceState.NEVER_RUN
        if self.ok:
            return SourceState.OK
        return SourceState.FAILED if self.consecutive_failures <= 1 else SourceState.FAILING

    @property
    def outcome(self) -> str:
        """The last run's outcome in words: ok, failed now, failing for N runs, never run."""
        return {
            SourceState.NEVER_RUN: "never run",
            SourceState.OK: "ok",
            SourceState.FAILED: "failed now",
        }.get(self.state, f"failing for {self.consecutive_failures} runs")


@dataclass(frozen=True, slots=True)
class DigestHealth:
    """One recent digest, its ledger's totals (in a brief check, of a digest that is not
    late, only the failed count), and whether its send is stuck."""

    record: DigestRecord
    totals: Mapping[str, int]
    stuck: bool  # unfinished for longer than operator.stuck_hours
    #: Whether any delivery went through (asked only when some failed; else taken so).
    reached: bool = True


@dataclass(frozen=True, slots=True)
class Health:
    """Everything ``iomfeed status``, ``/healthz`` and the operator alerts report."""

    checked: datetime
    sources: tuple[SourceHealth, ...]
    items: int
    digests: tuple[DigestHealth, ...]  # newest first
    subscribers: Mapping[str, int]
    next_times: Mapping[str, datetime | None] = field(default_factory=dict)
    failures_threshold: int = 3
    jobs: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # failures, last error
    #: Messages of the bounce mailbox by kind in the last BOUNCE_DAYS days, and "ignored":
    #: bounces and complaints not acted on (not believed, or about nobody on the list).
    bounces: Mapping[str, int] = field(default_factory=dict)
    #: The relay's quota now (mail.hourly_limit, mail.daily_limit): when a full one frees up.
    #: None: not read (a brief check, with no digest that could be stuck).
    quota: QuotaState | None = None
    #: Who holds the database's locks as ``status`` looks (``serve``, a run): what each
    #: lock file names, "pid N: iomfeed run, since T UTC". Empty when nothing runs.
    running: tuple[str, ...] = ()

    @property
    def failing(self) -> tuple[SourceHealth, ...]:
        # Only sources that still run: one disabled or removed from the config is history.
        return tuple(
            s
            for s in self.sources
            if s.enabled and s.consecutive_failures >= self.failures_threshold
        )

    @property
    def failed_now(self) -> tuple[SourceHealth, ...]:
        """Enabled sources whose last run failed, however many times in a row."""
        return tuple(s for s in self.sources if s.enabled and s.ok is False)

    @property
    def failing_jobs(self) -> dict[str, tuple[int, str]]:
        return {name: v for name, v in self.jobs.items() if v[0] >= self.failures_threshold}

    @property
    def stopped_sends(self) -> tuple[DigestHealth, ...]:
        """Digests being sent whose last send stopped on an error (the next run resumes)."""
        return tuple(d for d in self.digests if d.record.status == "sending" and d.record.note)

    @property
    def undelivered(self) -> DigestHealth | None:
        """The newest digest not skipped, when it was sent to nobody: every delivery failed
        for good (a relay refusing each recipient, for the sender's domain or a block list).
        A skip after it (nobody left to send to) does not make that right."""
        newest = next((d for d in self.digests if d.record.status != "skipped"), None)
        if newest is None or newest.record.status != "sent":
            return None
        return newest if newest.totals.get("failed", 0) and not newest.reached else None

    @property
    def stuck_digest(self) -> DigestHealth | None:
        return next((d for d in self.digests if d.stuck), None)

    @property
    def ok(self) -> bool:
        """No alert threshold is reached (what /healthz and the operator alerts go by); a
        source that failed fewer than ``operator.failures`` runs in a row does not count."""
        return not self.failing and self.stuck_digest is None and not self.failing_jobs

    @property
    def status(self) -> HealthStatus:
        if not self.ok:
            return HealthStatus.FAILING
        failed = self.failed_now or self.stopped_sends or self.undelivered is not None
        return HealthStatus.FAILED if failed else HealthStatus.OK

    def problems(self) -> list[str]:
        """What needs attention, one line each (``status`` and ``/healthz``): every enabled
        source whose last run failed, the jobs and the digest past their thresholds."""
        out = [source_problem(s) for s in self.failed_now]
        out += [job_problem(name, n, error) for name, (n, error) in self.failing_jobs.items()]
        out += [stopped_problem(d) for d in self.stopped_sends if not d.stuck]
        if self.undelivered is not None:
            out.append(undelivered_problem(self.undelivered))
        stuck = self.stuck_digest
        if stuck is not None:
            out.append(stuck_problem(stuck))
        return out

    def alert_problems(self) -> dict[str, str]:
        """The problems worth mailing the operator about, by a key that stays the same
        while the problem lasts: sources and jobs past ``operator.failures``, digests with
        permanent failures or stuck."""
        found = {f"source:{s.name}:failing": source_problem(s) for s in self.failing}
        for name, (n, error) in self.failing_jobs.items():
            found[f"job:{name}:failing"] = job_problem(name, n, error)
        for d in self.digests:
            failed = d.totals.get("failed", 0)
            if failed:
                found[f"digest:{d.record.id}:failed"] = (
                    f"digest {d.record.id} of {d.record.created:%Y-%m-%d}: {failed}"
                    " delivery(ies) failed permanently (see `iomfeed status`)"
                )
            if d.stuck:
                found[f"digest:{d.record.id}:stuck"] = stuck_problem(d)
        return found


# The problems in words: the same line in ``iomfeed status``, /healthz and the operator's mail.


def source_problem(s: SourceHealth) -> str:
    if s.consecutive_failures == 1:
        return f"source {s.name} failed in its last run: {s.last_error}"
    return f"source {s.name} failed {s.consecutive_failures} runs in a row: {s.last_error}"


def job_problem(name: str, failures: int, error: str) -> str:
    return f"the scheduled {name} job failed {failures} times in a row: {error}"


def stopped_problem(d: DigestHealth) -> str:
    return f"digest {d.record.id}: {d.record.note}; the next run resumes it"


def undelivered_problem(d: DigestHealth) -> str:
    failed = d.totals.get("failed", 0)
    return (
        f"digest {d.record.id} of {d.record.created:%Y-%m-%d} reached nobody: all {failed}"
        f" deliveries failed permanently (`iomfeed digests show {d.record.id}` has the"
        " relay's replies)"
    )


def stuck_problem(d: DigestHealth) -> str:
    return f"digest {d.record.id} unfinished since {d.record.created.isoformat()}: {dict(d.totals)}"


def source_health(store: Store, name: str, *, enabled: bool) -> SourceHealth:
    history = store.source_history(name)
    failures = 0
    for _started, ok, _error in history:
        if ok:
            break
        failures += 1
    last_success = next((started for started, ok, _e in history if ok), None)
    last_error = next((error for _s, ok, error in history if not ok), "")
    last = history[0] if history else None
    return SourceHealth(
        name=name,
        enabled=enabled,
        last_run=last[0] if last else None,
        ok=last[1] if last else None,
        last_success=last_success,
        last_error=last_error if failures else "",
        consecutive_failures=failures,
        items=store.count(name),
    )


def next_scheduled(config: Config, store: Store, now: datetime) -> dict[str, datetime | None]:
    """When the next cycle runs and when the next digest is due, by the schedule."""
    from .digest.due import next_digest_time
    from .digest.lifecycle import next_due

    tz = config.site.timezone
    fetch = next_due(config.schedule.fetch, tz, now, "schedule.fetch")
    # Read, not stored: a status check writes nothing.
    digest = next_digest_time(config, store, now, save=False) or next_due(
        config.schedule.digest, tz, now
    )
    return {"fetch": fetch, "digest": digest}


def check(
    config: Config,
    store: Store,
    now: datetime,
    *,
    next_times: Mapping[str, datetime | None] | None = None,
    digests: int = 5,
    brief: bool = False,
) -> Health:
    """How iomfeed is doing at ``now``. ``brief``: only what the operator alerts read (the
    sources, the jobs, the recent digests), as every cron run asks: no subscriber or bounce
    counts, of the recent digests' deliveries only the failed ones, and the relay's quota
    only when a digest has been sending for longer than ``operator.stuck_hours`` (a quota
    that holds it means it waits, not that it is stuck)."""
    configured = {s.name: s.enabled for s in config.sources}
    names = list(configured) + [n for n in store.run_sources() if n not in configured]
    sources = tuple(source_health(store, n, enabled=configured.get(n, False)) for n in names)
    stuck_after = timedelta(hours=config.operator.stuck_hours)
    recent = store.digests(limit=digests)
    late = {d.id for d in recent if d.status == "sending" and now - d.created > stuck_after}
    quota = None
    if late or not brief:
        from .delivery.quota import quota_state

        quota = quota_state(config, store, now)
    free = quota is not None and not quota.full  # (a full quota holds a send: it waits)
    digest_health = tuple(
        _digest_health(store, d, brief=brief and d.id not in late, stuck=d.id in late and free)
        for d in recent
    )
    jobs = {}
    for name in JOBS:
        failures = int(store.setting(f"job:{name}:failures") or 0)
        jobs[name] = (failures, store.setting(f"job:{name}:error") or "")
    return Health(
        bounces={} if brief else store.bounce_counts(now - timedelta(days=BOUNCE_DAYS)),
        quota=quota,
        jobs=jobs,
        checked=now,
        sources=sources,
        items=store.count(),
        digests=digest_health,
        subscribers={} if brief else store.subscriber_counts(),
        next_times=dict(next_times)
        if next_times is not None
        else next_scheduled(config, store, now),
        failures_threshold=config.operator.failures,
    )


def _digest_health(store: Store, d: DigestRecord, *, brief: bool, stuck: bool) -> DigestHealth:
    """A digest's health. ``brief``, for one that is not late: only its failed deliveries
    are counted, which is what the alerts read (counting every status would read every
    recipient's row of the last digests on every run), and, when some failed, whether any
    went through, in the (digest, status) index alone. A late one's totals are whole: its
    stuck alert shows them."""
    if not brief:
        totals = store.delivery_totals(d.id)
        return DigestHealth(d, totals, stuck, reached=totals.get("sent", 0) > 0)
    failed = store.failed_deliveries(d.id)
    if not failed:
        return DigestHealth(d, {}, stuck)
    return DigestHealth(d, {"failed": failed}, stuck, reached=store.delivered_any(d.id))


JOBS = ("cycle", "digest")
#: ``status`` and ``/healthz`` count the bounce mailbox's messages of this many days.
BOUNCE_DAYS = 30


def record_job(store: Store, job: str, error: Exception | None) -> None:
    """Count a scheduled job's failures in a row (reset by a success)."""
    key = f"job:{job}:failures"
    if error is None:
        if store.setting(key) not in (None, "0"):  # (a cron cycle writes nothing new)
            store.set_setting(key, "0")
        return
    store.set_setting(key, str(int(store.setting(key) or 0) + 1))
    store.set_setting(f"job:{job}:error", f"{type(error).__name__}: {error}"[:300])
