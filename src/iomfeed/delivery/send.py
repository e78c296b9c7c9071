"""The ledger-driven send: every active subscriber gets a digest exactly once.

For each ledger row still due, the row is committed as 'sending' before the message leaves
and as 'sent' (with the server's reply) after, so a crash at any point leaves at most one
row 'sending': the message that was in flight. The 'sent' of one message is committed with
the 'sending' of the next, in one transaction (one commit per message); it is committed
alone before the send waits (for a server, a connection or a pause) or reads the quota's
count of the store, and when the send ends. The next run finds the row 'sending', marks it
ambiguous and sends it again with the same Message-ID (a mail client shows one message; the
ledger says why there may be two). What follows a failure (try again, defer, give up, stop
the send, undo a streak) is decided by :class:`.policy.DeliveryPolicy`; this module only
applies it, one small function per outcome. A stop request (SIGTERM) is honoured between two
messages, and so is the relay's quota (:class:`.quota.QuotaGate`): with no room left the row
in hand and those after it stay pending, untried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..digest.lifecycle import DeliveryStatus
from ..errors import DeliveryError
from ..models import DigestRecord
from ..output_records import Delivered, Delivery, DeliveryReport
from ..stopping import Stop as Stop  # its home before the runtime made one per run
from .mailers import PermanentFailure, SmtpMailer, TemporaryFailure
from .policy import DeliveryPolicy, Streaks, Verdict

if TYPE_CHECKING:
    from ..digest.message import Composer, Outgoing
    from ..digest.segments import Key
    from ..store import Store
    from .mailers import Mailer
    from .quota import QuotaGate

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Send:
    """One send: what it works with, and what it has done so far."""

    store: Store
    record: DigestRecord
    composers: Mapping[Key, Composer]  # one per (language, segment)
    mailer: Mailer
    policy: DeliveryPolicy
    clock: Callable[[], datetime]
    stop: Stop
    streaks: Streaks
    quota: QuotaGate | None = None
    held: bool = False  # stopped by the quota before the row in hand
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    bounced: int = 0
    resent_ambiguous: int = 0
    interrupted: bool = False
    error: str = ""  # why the send stops early; set, it ends the send after this row
    unrecorded: Delivered | None = None  # taken by the server, 'sent' not committed yet
    made: dict[int, Outgoing] = field(default_factory=dict)  # the next row's, made ahead
    ahead: Callable[[], None] | None = None  # makes the next row's message
    in_flight: int = 0  # messages handed over, not answered yet (other connections)

    def commit_sent(self) -> None:
        """Commit the 'sent' still held (before the thread waits, and at the end). Held
        until its transaction succeeds, so a failed one is tried again at the end."""
        done = self.unrecorded
        if done is not None:
            self.store.mark_delivered(
                self.record.id,
                done.subscriber_id,
                done.reply,
                done.at,
                reset_failures=done.reset_failures,
            )
            self.unrecorded = None

    def report(self, finished: bool, totals: Mapping[str, int]) -> DeliveryReport:
        return DeliveryReport(
            digest_id=self.record.id,
            sent=self.sent,
            failed=self.failed,
            deferred=self.deferred,
            skipped=self.skipped,
            bounced=self.bounced,
            resent_ambiguous=self.resent_ambiguous,
            interrupted=self.interrupted,
            totals=totals,
            finished=finished,
            error=self.error,
            quota_note=self.quota.state.note() if self.held and self.quota else "",
            quota_frees_at=self.quota.state.frees_at if self.held and self.quota else None,
        )


def deliver(
    store: Store,
    record: DigestRecord,
    composers: Mapping[Key, Composer],
    mailer: Mailer,
    *,
    policy: DeliveryPolicy,
    clock: Callable[[], datetime],
    stop: Stop | None = None,
    on_message: Callable[[], None] | None = None,
    quota: QuotaGate | None = None,
    connections: int = 1,
) -> DeliveryReport:
    """Send what the ledger says is still due for ``record``; returns what happened. Each
    row's message is made from the composer of its subscriber's language and the segment
    frozen in the row. ``connections`` above 1: that many SMTP connections at once
    (:mod:`.parallel`), when the mailer is the SMTP one."""
    send = _Send(
        store, record, composers, mailer, policy, clock, stop or Stop(), Streaks(policy), quota
    )
    rows = _Ahead(store.deliveries(record.id))
    send.ahead = lambda: _make_ahead(send, rows)
    try:
        if connections > 1 and isinstance(mailer, SmtpMailer):
            from .parallel import deliver_lanes

            deliver_lanes(send, rows, _lanes(mailer, connections), on_message)
            rows = _Ahead(iter(()))
        for row in rows:
            if send.stop.requested:
                send.interrupted = True
                break
            if not _deliver_row(send, row):
                if send.held:
                    break
                continue
            if on_message is not None:
                on_message()
            if send.error or send.interrupted:
                break
    finally:
        send.commit_sent()
    finished = store.finish_digest(record.id, clock())
    return send.report(finished, store.delivery_totals(record.id))


def _lanes(mailer: SmtpMailer, connections: int) -> list[Mailer]:
    """``mailer`` and its siblings, one per connection, sharing out its rate."""
    lanes = [mailer, *(mailer.sibling() for _ in range(connections - 1))]
    for lane in lanes:
        lane.rate = lane.rate / connections
    return list(lanes)


class _Ahead:
    """The ledger's rows, with a look at the next one (whose message is made while the
    server answers the one before). A failure reading it is raised in its turn."""

    def __init__(self, rows: Iterator[Delivery]) -> None:
        self._rows = rows
        self._peeked = False
        self._next: Delivery | None = None
        self._error: Exception | None = None

    def __iter__(self) -> _Ahead:
        return self

    def __next__(self) -> Delivery:
        if not self._peeked:
            return next(self._rows)
        self._peeked = False
        if self._error is not None:
            raise self._error
        if self._next is None:
            raise StopIteration
        return self._next

    def peek(self) -> Delivery | None:
        if not self._peeked:
            self._peeked = True
            try:
                self._next = next(self._rows)
            except StopIteration:
                self._next = None
            except Exception as exc:
                self._next, self._error = None, exc
        return self._next


def _make_ahead(send: _Send, rows: _Ahead) -> None:
    """Make the next row's message now (the server is busy with this one); nothing is
    recorded: a failure is met again, and recorded, in its turn."""
    row = rows.peek()
    if row is None or row.subscriber_status != "active":
        return
    try:
        composer = send.composers[(row.language, row.segment)]
        send.made = {row.subscriber_id: composer.compose(row.subscriber_id, row.address, row.name)}
    except Exception:
        send.made = {}


def _deliver_row(send: _Send, row: Delivery) -> bool:
    """Deliver one ledger row. False when it was settled before the first try (the
    subscriber had left, or their message could not be made): no progress step for it."""
    prepared = _prepare(send, row)
    if prepared is None:
        return False
    _try(send, row, *prepared)
    return True


def _prepare(send: _Send, row: Delivery) -> tuple[Outgoing, bool] | None:
    """The row's message and whether it is ambiguous (sent before, maybe), or None when the
    row was settled before any try (left, message not made) or the quota holds it."""
    if row.subscriber_status != "active":
        _skip(send, row, f"subscriber {row.subscriber_status} before their turn")
        return None
    reads = send.quota is not None and send.quota.reads_store()
    if reads:
        send.commit_sent()  # the store's count must hold every message sent
    if send.quota is not None and not send.quota.allows(send.in_flight, read=reads):
        log.info("digest %d: %s", send.record.id, send.quota.state.note())
        send.held = True  # this row and the rest stay as they are: pending, untried
        return None
    ambiguous = row.status == DeliveryStatus.SENDING or row.ambiguous
    if row.status == DeliveryStatus.SENDING:
        log.warning(
            "digest %d to %s was in flight when a run stopped; sending it again"
            " with the same Message-ID",
            send.record.id,
            row.address,
        )
        send.resent_ambiguous += 1
    try:
        message = send.made.pop(row.subscriber_id, None) or send.composers[
            (row.language, row.segment)
        ].compose(row.subscriber_id, row.address, row.name)
    except Exception as exc:  # bad data must not stall everyone after this row
        log.exception("digest %d to %s: the message could not be made", send.record.id, row.address)
        send.commit_sent()
        send.store.mark_error(
            send.record.id, row.subscriber_id, f"message could not be made: {exc!r}", send.clock()
        )
        send.failed += 1
        return None
    return message, ambiguous


def _try(send: _Send, row: Delivery, message: Outgoing, ambiguous: bool) -> None:
    """Hand the message over, trying again as the policy says; record the outcome."""
    attempts, tries = row.attempts, 0
    for retry in range(send.policy.tries_per_run):
        try:
            reply = _hand_over(send, row, message, ambiguous)
            if reply is None:
                _skip(send, row, "unsubscribed or paused before their turn")
                return
        except TemporaryFailure as exc:
            attempts, tries = attempts + 1, tries + 1
            ambiguous = ambiguous or exc.maybe_delivered
            verdict = send.policy.after_temporary(retry=retry, attempts=attempts, server=exc.server)
            if verdict is Verdict.RETRY:
                if not send.stop.sleep(send.policy.pause(retry)):
                    log.info(
                        "digest %d to %s: %s; trying again", send.record.id, row.address, exc.reply
                    )
                    continue
                verdict = send.policy.after_temporary(
                    retry=retry, attempts=attempts, server=exc.server, stopping=True
                )
            _deferred(send, row, exc.reply, verdict, attempts, tries)
        except PermanentFailure as exc:
            _refused(send, row, exc.reply)
        except DeliveryError as exc:
            # Concerns every message (sender refused, login, TLS, outbox not writable).
            _hold(send, row, str(exc), tries + 1)
            send.error = str(exc)
        else:
            _delivered(send, row, reply)
        return


def _hand_over(send: _Send, row: Delivery, message: Outgoing, ambiguous: bool) -> str | None:
    """Give the message to the mailer, its row committed 'sending' (with the message before
    it 'sent') before its data leaves: while the server answers MAIL, when the mailer can
    (``send_overlapped``), else first. None: the subscriber left, nothing was sent."""
    delivered, send.unrecorded = send.unrecorded, None
    started: list[bool] = []

    def start() -> bool:
        nonlocal delivered
        if not started:
            started.append(False)
            started[0] = _mark_sending(send, row.subscriber_id, ambiguous, delivered)
            delivered = None
        return started[0]

    def before_wait() -> None:
        nonlocal delivered
        if delivered is not None:
            send.unrecorded, delivered = delivered, None
            send.commit_sent()

    overlapped = getattr(send.mailer, "send_overlapped", None)
    try:
        if overlapped is None:
            return send.mailer.send(message) if start() else None
        reply: str | None = overlapped(message, start, send.ahead, before_wait)
        return reply
    finally:
        start()  # a failure before MAIL was written: this try counts all the same


def _mark_sending(
    send: _Send, subscriber_id: int, ambiguous: bool, delivered: Delivered | None
) -> bool:
    """Commit the row 'sending', with ``delivered`` (taken from :attr:`_Send.unrecorded`)
    'sent' in the same transaction. When that transaction fails, ``delivered`` is held
    again, for the send's last :meth:`_Send.commit_sent`: the server took that message."""
    try:
        return send.store.mark_sending(
            send.record.id, subscriber_id, send.clock(), ambiguous=ambiguous, delivered=delivered
        )
    except BaseException:
        if delivered is not None and send.unrecorded is None:
            send.unrecorded = delivered
        raise


def _skip(send: _Send, row: Delivery, reason: str) -> None:
    send.commit_sent()
    send.store.mark_skipped(send.record.id, row.subscriber_id, reason, send.clock())
    send.skipped += 1


def _hold(send: _Send, row: Delivery, reply: str, tries: int) -> None:
    """Not this subscriber's problem: pending again, this run's tries given back."""
    send.store.mark_deferred(send.record.id, row.subscriber_id, reply, send.clock(), give_up=False)
    send.store.uncount_attempts(send.record.id, row.subscriber_id, tries)


def _delivered(send: _Send, row: Delivery, reply: str) -> None:
    """Taken: committed with the next message's 'sending' (or alone: :meth:`_Send.commit_sent`)."""
    send.commit_sent()  # several connections: another message may be waiting for its 'sent'
    send.unrecorded = Delivered(row.subscriber_id, reply, send.clock(), row.subscriber_failures > 0)
    send.sent += 1
    send.streaks.on_sent()
    if send.quota is not None:
        send.quota.spent()
    log.debug("digest %d to %s: %s", send.record.id, row.address, reply)


def _deferred(
    send: _Send, row: Delivery, reply: str, verdict: Verdict, attempts: int, tries: int
) -> None:
    """A temporary failure with no more tries this run: held, deferred or given up."""
    digest_id = send.record.id
    if verdict is Verdict.HOLD:
        _hold(send, row, reply, tries)
        send.error = f"mail server: {reply}"
        return
    give_up = verdict is Verdict.GIVE_UP
    send.store.mark_deferred(digest_id, row.subscriber_id, reply, send.clock(), give_up=give_up)
    if give_up:
        send.failed += 1
        log.warning(
            "digest %d to %s failed after %d tries: %s", digest_id, row.address, attempts, reply
        )
    else:
        send.deferred += 1
        log.warning("digest %d to %s deferred to the next run: %s", digest_id, row.address, reply)
        if send.streaks.continues("deferred"):  # in flight when the streak stopped the send
            send.store.uncount_attempts(digest_id, row.subscriber_id, tries)
        elif send.streaks.on_deferred(row.subscriber_id, tries):
            for sid, n in send.streaks.deferred:
                send.store.uncount_attempts(digest_id, sid, n)
            send.error = (
                f"{len(send.streaks.deferred)} addresses in a row deferred (last: {reply});"
                " stopped: is the mail server refusing everyone for now?"
            )
            return
    if send.stop.requested:
        send.interrupted = True


def _refused(send: _Send, row: Delivery, reply: str) -> None:
    """A permanent failure: failed, counted towards a bounce, unless the streak says the
    server refuses everyone, which undoes the streak and stops the send."""
    digest_id = send.record.id
    if send.streaks.continues("refused"):  # in flight when the streak stopped the send
        send.store.mark_deferred(digest_id, row.subscriber_id, reply, send.clock(), give_up=False)
        log.warning(
            "digest %d to %s refused after the send stopped (everyone refused); pending again: %s",
            digest_id,
            row.address,
            reply,
        )
        return
    bounce_after = send.policy.bounce_after
    bounced = send.store.mark_failed(
        digest_id, row.subscriber_id, reply, send.clock(), bounce_after=bounce_after
    )
    send.failed += 1
    send.bounced += int(bounced)
    log.warning(
        "digest %d to %s refused: %s%s",
        digest_id,
        row.address,
        reply,
        " (subscriber marked bounced)" if bounced else "",
    )
    if send.streaks.on_refused(row.subscriber_id, bounced):
        streak = send.streaks.refused_ids
        send.store.revert_failures(digest_id, streak, bounce_after=bounce_after)
        send.failed -= len(streak)
        send.bounced -= send.streaks.refused_bounces
        send.error = (
            f"{len(streak)} addresses in a row refused (last: {reply});"
            " stopped, and those deliveries are pending again: is the mail"
            " server refusing every message?"
        )
