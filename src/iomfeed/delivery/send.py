"""The ledger-driven send: every active subscriber gets a digest exactly once.

For each ledger row still due, the row is committed as 'sending' before the message leaves
and as 'sent' (with the server's reply) after, so a crash at any point leaves at most one row
'sending': the message that was in flight. The next run finds it, marks it ambiguous and sends
it again with the same Message-ID (a mail client shows one message; the ledger says why there
may be two). Temporary failures are retried with backoff, then left pending for the next run;
permanent ones are recorded, count towards a bounce, and do not stop the others. A stop request
(SIGTERM) is honoured between two messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from ..config import MailConfig
from ..digest.message import Composer
from ..errors import DeliveryError, StopRequested
from ..models import DeliveryReport, DigestRecord
from ..store import Store
from .mailers import Mailer, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

#: Refusals in a row after which the send stops: one address refusing is normal, a relay
#: refusing everyone is a configuration problem, not a reason to fail or bounce the list;
#: the streak's rows are put back to pending and its bounce counts undone.
MAX_PERMANENT_IN_A_ROW = 10
#: Addresses in a row still deferred after their retries: a quota or a rate limit answered
#: at RCPT, not greylisting; the send stops and the streak's tries are given back.
MAX_TEMPORARY_IN_A_ROW = 5


class Stop:
    """A stop request, set from a signal handler: finish the message in hand, then stop.
    Its :meth:`sleep` ends early when a stop is requested."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until a stop is requested; True if one was."""
        return self._event.wait(seconds) if seconds > 0 else self._event.is_set()

    def sleep_or_stop(self, seconds: float) -> None:
        """A sleep for the HTTP client's pauses (politeness, Retry-After, backoff) that
        ends the fetch when a stop is requested instead of waiting minutes: it raises
        :class:`StopRequested`, which the pipeline records as a stop, not a failure."""
        if self.sleep(seconds):
            raise StopRequested("stopped on request during a pause between requests")


def deliver(
    store: Store,
    record: DigestRecord,
    composers: Mapping[str, Composer],
    mailer: Mailer,
    *,
    mail: MailConfig,
    clock: Callable[[], datetime],
    stop: Stop | None = None,
    on_message: Callable[[], None] | None = None,
) -> DeliveryReport:
    """Send what the ledger says is still due for ``record``; returns what happened."""
    stop = stop or Stop()
    counts = {
        "sent": 0,
        "failed": 0,
        "deferred": 0,
        "skipped": 0,
        "bounced": 0,
        "resent_ambiguous": 0,
    }
    error = ""
    interrupted = False
    refused: list[int] = []  # subscribers refused permanently in a row
    deferred: list[tuple[int, int]] = []  # (subscriber, tries this run) deferred in a row
    for row in store.deliveries(record.id):
        if stop.requested:
            interrupted = True
            break
        if row.subscriber_status != "active":
            store.mark_skipped(
                record.id,
                row.subscriber_id,
                f"subscriber {row.subscriber_status} before their turn",
                clock(),
            )
            counts["skipped"] += 1
            continue
        ambiguous = row.status == "sending" or row.ambiguous
        if row.status == "sending":
            log.warning(
                "digest %d to %s was in flight when a run stopped; sending it again"
                " with the same Message-ID",
                record.id,
                row.address,
            )
            counts["resent_ambiguous"] += 1
        try:
            message = composers[row.language].compose(row.subscriber_id, row.address, row.name)
        except Exception as exc:  # bad data must not stall everyone after this row
            log.exception("digest %d to %s: the message could not be made", record.id, row.address)
            store.mark_error(
                record.id, row.subscriber_id, f"message could not be made: {exc!r}", clock()
            )
            counts["failed"] += 1
            continue
        attempts = row.attempts
        tries = 0
        for retry in range(mail.retries + 1):
            if not store.mark_sending(record.id, row.subscriber_id, clock(), ambiguous=ambiguous):
                store.mark_skipped(
                    record.id, row.subscriber_id, "unsubscribed before their turn", clock()
                )
                counts["skipped"] += 1
                break
            attempts += 1
            tries += 1
            try:
                reply = mailer.send(message)
            except TemporaryFailure as exc:
                ambiguous = ambiguous or exc.maybe_delivered
                if (
                    retry < mail.retries
                    and attempts < mail.max_attempts
                    and not stop.sleep(mail.backoff * 2**retry)
                ):
                    log.info("digest %d to %s: %s; trying again", record.id, row.address, exc.reply)
                    continue
                if exc.server:
                    # Not this subscriber's problem: pending again, the tries given back.
                    store.mark_deferred(
                        record.id, row.subscriber_id, exc.reply, clock(), give_up=False
                    )
                    store.uncount_attempts(record.id, row.subscriber_id, tries)
                    error = f"mail server: {exc.reply}"
                    break
                give_up = attempts >= mail.max_attempts
                store.mark_deferred(
                    record.id, row.subscriber_id, exc.reply, clock(), give_up=give_up
                )
                if give_up:
                    counts["failed"] += 1
                    log.warning(
                        "digest %d to %s failed after %d tries: %s",
                        record.id,
                        row.address,
                        attempts,
                        exc.reply,
                    )
                else:
                    counts["deferred"] += 1
                    deferred.append((row.subscriber_id, tries))
                    log.warning(
                        "digest %d to %s deferred to the next run: %s",
                        record.id,
                        row.address,
                        exc.reply,
                    )
                if len(deferred) >= MAX_TEMPORARY_IN_A_ROW:
                    for sid, n in deferred:
                        store.uncount_attempts(record.id, sid, n)
                    error = (
                        f"{len(deferred)} addresses in a row deferred (last: {exc.reply});"
                        " stopped: is the mail server refusing everyone for now?"
                    )
                elif stop.requested:
                    interrupted = True
            except PermanentFailure as exc:
                bounced = store.mark_failed(
                    record.id, row.subscriber_id, exc.reply, clock(), bounce_after=mail.bounce_after
                )
                counts["failed"] += 1
                counts["bounced"] += int(bounced)
                refused.append(row.subscriber_id)
                deferred.clear()
                log.warning(
                    "digest %d to %s refused: %s%s",
                    record.id,
                    row.address,
                    exc.reply,
                    " (subscriber marked bounced)" if bounced else "",
                )
                if len(refused) >= MAX_PERMANENT_IN_A_ROW:
                    store.revert_failures(record.id, refused, bounce_after=mail.bounce_after)
                    counts["failed"] -= len(refused)
                    counts["bounced"] = 0
                    error = (
                        f"{len(refused)} addresses in a row refused (last: {exc.reply});"
                        " stopped, and those deliveries are pending again: is the mail"
                        " server refusing every message?"
                    )
            except DeliveryError as exc:
                # Concerns every message (sender refused, login, TLS, outbox not writable):
                # this row goes back to pending, its try given back, and the send stops.
                store.mark_deferred(record.id, row.subscriber_id, str(exc), clock(), give_up=False)
                store.uncount_attempts(record.id, row.subscriber_id, tries)
                error = str(exc)
            else:
                store.mark_delivered(
                    record.id,
                    row.subscriber_id,
                    reply,
                    clock(),
                    reset_failures=row.subscriber_failures > 0,
                )
                counts["sent"] += 1
                refused.clear()
                deferred.clear()
                log.debug("digest %d to %s: %s", record.id, row.address, reply)
            break
        if on_message is not None:
            on_message()
        if error or interrupted:
            break
    finished = store.finish_digest(record.id, clock())
    totals = store.delivery_totals(record.id)
    return DeliveryReport(
        digest_id=record.id,
        interrupted=interrupted,
        totals=totals,
        finished=finished,
        error=error,
        **counts,
    )
