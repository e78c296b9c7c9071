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
from ..errors import DeliveryError
from ..models import DeliveryReport, DigestRecord
from ..store import Store
from .mailers import Mailer, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

#: Permanent failures in a row after which the send stops: one address refusing is normal,
#: a relay refusing everyone is a configuration problem, not a reason to bounce the list.
MAX_PERMANENT_IN_A_ROW = 10


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
    counts = {"sent": 0, "failed": 0, "deferred": 0, "skipped": 0, "bounced": 0,
              "resent_ambiguous": 0}
    error = ""
    interrupted = False
    permanent_in_a_row = 0
    for row in store.deliveries(record.id):
        if stop.requested:
            interrupted = True
            break
        now = clock()
        if row.subscriber_status != "active":
            store.mark_skipped(record.id, row.subscriber_id,
                               f"subscriber {row.subscriber_status} before their turn", now)
            counts["skipped"] += 1
            continue
        ambiguous = row.status == "sending" or row.ambiguous
        if row.status == "sending":
            log.warning("digest %d to %s was in flight when a run stopped; sending it again"
                        " with the same Message-ID", record.id, row.address)
            counts["resent_ambiguous"] += 1
        message = composers[row.language].compose(row.subscriber_id, row.address, row.name)
        attempts = row.attempts
        for retry in range(mail.retries + 1):
            store.mark_sending(record.id, row.subscriber_id, clock(), ambiguous=ambiguous)
            attempts += 1
            try:
                reply = mailer.send(message)
            except TemporaryFailure as exc:
                if retry < mail.retries and attempts < mail.max_attempts \
                        and not stop.sleep(mail.backoff * 2 ** retry):
                    log.info("digest %d to %s: %s; trying again", record.id, row.address,
                             exc.reply)
                    continue
                give_up = attempts >= mail.max_attempts
                store.mark_deferred(record.id, row.subscriber_id, exc.reply, clock(),
                                    give_up=give_up)
                if give_up:
                    counts["failed"] += 1
                    log.warning("digest %d to %s failed after %d tries: %s", record.id,
                                row.address, attempts, exc.reply)
                else:
                    counts["deferred"] += 1
                    log.warning("digest %d to %s deferred to the next run: %s", record.id,
                                row.address, exc.reply)
                if exc.connection:
                    error = f"mail server unreachable: {exc.reply}"
                elif stop.requested:
                    interrupted = True
            except PermanentFailure as exc:
                bounced = store.mark_failed(record.id, row.subscriber_id, exc.reply, clock(),
                                            bounce_after=mail.bounce_after)
                counts["failed"] += 1
                counts["bounced"] += int(bounced)
                permanent_in_a_row += 1
                log.warning("digest %d to %s refused: %s%s", record.id, row.address,
                            exc.reply, " (subscriber marked bounced)" if bounced else "")
                if permanent_in_a_row >= MAX_PERMANENT_IN_A_ROW:
                    error = (f"{permanent_in_a_row} addresses in a row refused (last: "
                             f"{exc.reply}); stopped: is the mail server refusing every"
                             " message?")
            except DeliveryError as exc:
                # Concerns every message (sender refused, login, TLS, outbox not writable):
                # this row goes back to pending and the send stops.
                store.mark_deferred(record.id, row.subscriber_id, str(exc), clock(),
                                    give_up=False)
                error = str(exc)
            else:
                store.mark_delivered(record.id, row.subscriber_id, reply, clock())
                counts["sent"] += 1
                permanent_in_a_row = 0
                log.debug("digest %d to %s: %s", record.id, row.address, reply)
            break
        if on_message is not None:
            on_message()
        if error or interrupted:
            break
    finished = store.finish_digest(record.id, clock())
    totals = store.delivery_totals(record.id)
    return DeliveryReport(digest_id=record.id, interrupted=interrupted, totals=totals,
                            finished=finished, error=error, **counts)
