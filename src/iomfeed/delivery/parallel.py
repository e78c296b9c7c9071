"""A send over several SMTP connections (``mail.connections``), with one ledger writer.

Each connection is a lane: a thread with its own mailer that only sends what it is given
and hands back the reply or the failure. Everything else stays in the sending thread, as in
:func:`.send.deliver`: reading the ledger, the quota, making the messages, committing each
row 'sending' before its lane gets it, and recording what came back, through the same
functions as a one-connection send (policy, streaks, bounces). As there, a message's 'sent'
is committed with the next row's 'sending', one commit per message; it is committed alone
before this thread waits for a lane (or pauses). So a crash leaves at most one row
'sending' per lane: a message in flight, or one answered whose lane is free again. A lane
whose first connection is refused (a relay that allows one connection answers 421 to the
next) is closed while another lane works, and its message, still 'sending', goes to the
next free lane as the same try: fewer connections, not a failed send.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DeliveryError
from .mailers import PermanentFailure, TemporaryFailure
from .policy import Verdict

if TYPE_CHECKING:
    from ..digest.message import Outgoing
    from ..output_records import Delivery
    from .mailers import Mailer
    from .send import _Send

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    """One message in a lane, and its tries in this run."""

    row: Delivery
    message: Outgoing
    ambiguous: bool
    attempts: int
    tries: int = 0
    retry: int = 0


#: What a lane hands back: its number, the job, the reply or the failure, and whether the
#: lane had never been connected when it failed.
_Result = tuple[int, _Job, "str | Exception", bool]


def _lane(
    number: int, mailer: Mailer, jobs: queue.Queue[_Job | None], out: queue.Queue[_Result]
) -> None:
    connected = False
    try:
        while (job := jobs.get()) is not None:
            try:
                reply = mailer.send(job.message)
            except Exception as exc:
                out.put((number, job, exc, not connected))
            else:
                connected = True
                out.put((number, job, reply, False))
    finally:
        mailer.close()


@dataclass(slots=True)
class _Lanes:
    send: _Send
    queues: list[queue.Queue[_Job | None]]
    results: queue.Queue[_Result] = field(default_factory=queue.Queue)
    idle: list[int] = field(default_factory=list)
    alive: set[int] = field(default_factory=set)
    waiting: list[_Job] = field(default_factory=list)  # started, for the next free lane
    on_message: Callable[[], None] | None = None
    closing: bool = False  # the lanes have stopped: record answers, try nothing again

    @property
    def busy(self) -> int:
        return len(self.alive) - len(self.idle)

    def give(self, job: _Job) -> None:
        self.queues[self.idle.pop()].put(job)

    def free_one(self) -> None:
        """Until a lane is free for a new row (re-queued messages go first)."""
        while True:
            while self.waiting and self.idle:
                self.give(self.waiting.pop(0))
            if self.idle and not self.waiting:
                return
            _settle(self, self.answer())

    def answer(self) -> _Result:
        """The next answer a lane hands back. A 'sent' still held is committed first: it
        waits for the next row's 'sending' only while this thread does not wait."""
        self.send.commit_sent()
        return self.results.get()

    def close(self) -> None:
        """After the lanes stopped (an exception may have skipped :meth:`drain`): record
        what they had answered, with no more tries; a message started but given to no lane
        is pending again, its try given back."""
        from .send import _hold

        self.closing = True
        while True:
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                break
            try:
                _settle(self, result)
            except Exception:
                log.exception("digest %d: an answer not recorded", self.send.record.id)
        for job in self.waiting:
            _hold(self.send, job.row, "not sent: the send stopped", 1)
        self.waiting.clear()

    def drain(self) -> None:
        while self.busy or self.waiting:
            while self.waiting and self.idle:
                self.give(self.waiting.pop(0))
            if self.busy:
                _settle(self, self.answer())


def deliver_lanes(
    send: _Send,
    rows: Iterable[Delivery],
    mailers: list[Mailer],
    on_message: Callable[[], None] | None = None,
) -> None:
    """:func:`.send.deliver`'s loop over several connections (``mailers``, one per lane)."""
    from .send import _prepare

    lanes = _Lanes(send, [queue.Queue() for _ in mailers], on_message=on_message)
    threads = [
        threading.Thread(target=_lane, args=(n, m, lanes.queues[n], lanes.results), daemon=True)
        for n, m in enumerate(mailers)
    ]
    lanes.idle = list(reversed(range(len(mailers))))
    lanes.alive = set(range(len(mailers)))
    for thread in threads:
        thread.start()
    try:
        for row in rows:
            if send.stop.requested:
                send.interrupted = True
                break
            lanes.free_one()  # may wait for a lane's answer, and a stop request with it
            if send.stop.requested:
                send.interrupted = True
            if send.error or send.interrupted:
                break
            send.in_flight = lanes.busy + len(lanes.waiting)
            prepared = _prepare(send, row)
            if prepared is None:
                if send.held:
                    break
                continue
            job = _Job(row, prepared[0], prepared[1], row.attempts)
            if _start(send, job):
                lanes.give(job)
        lanes.drain()
    finally:
        try:
            send.commit_sent()  # (the lanes' closing may take a while)
        except Exception:  # held: tried again at the send's end
            log.exception("digest %d: a 'sent' not recorded yet", send.record.id)
        for q in lanes.queues:
            q.put(None)
        for thread in threads:
            thread.join(timeout=60)
        lanes.close()


def _start(send: _Send, job: _Job) -> bool:
    """Commit the row 'sending' (with a 'sent' waiting for it); False: the subscriber left."""
    from .send import _mark_sending, _skip

    delivered, send.unrecorded = send.unrecorded, None
    if _mark_sending(send, job.row.subscriber_id, job.ambiguous, delivered):
        return True
    _skip(send, job.row, "unsubscribed or paused before their turn")
    return False


def _settle(lanes: _Lanes, result: _Result) -> None:
    """Record what a lane handed back, as a one-connection send would."""
    from .send import _delivered, _hold, _refused

    number, job, outcome, fresh = result
    send = lanes.send
    refused = isinstance(outcome, TemporaryFailure) and outcome.connection and fresh
    if refused and len(lanes.alive) > 1 and not lanes.closing:
        lanes.alive.discard(number)
        lanes.queues[number].put(None)
        log.info(
            "digest %d: another connection was refused (%s); going on with %d",
            send.record.id,
            outcome,
            len(lanes.alive),
        )
        lanes.waiting.append(job)  # still 'sending': the next free lane sends it
        return
    lanes.idle.append(number)
    if isinstance(outcome, str):
        _delivered(send, job.row, outcome)  # 'sent' with the next row's 'sending'
        if lanes.on_message is not None:
            lanes.on_message()
        return
    if isinstance(outcome, TemporaryFailure):
        _temporary(lanes, job, outcome)
    elif isinstance(outcome, PermanentFailure):
        _refused(send, job.row, outcome.reply)
    elif isinstance(outcome, DeliveryError):
        _hold(send, job.row, str(outcome), job.tries + 1)
        send.error = str(outcome)
    elif lanes.closing:  # the send is ending on another exception: this row stays 'sending'
        log.error("digest %d to %s: %r", send.record.id, job.row.address, outcome)
    else:
        raise outcome


def _temporary(lanes: _Lanes, job: _Job, exc: TemporaryFailure) -> None:
    from .send import _deferred

    send = lanes.send
    job.attempts, job.tries = job.attempts + 1, job.tries + 1
    job.ambiguous = job.ambiguous or exc.maybe_delivered
    policy = send.policy
    verdict = policy.after_temporary(retry=job.retry, attempts=job.attempts, server=exc.server)
    if verdict is Verdict.RETRY:
        send.commit_sent()  # (before the pause)
        if not lanes.closing and not send.stop.sleep(policy.pause(job.retry)):
            log.info(
                "digest %d to %s: %s; trying again", send.record.id, job.row.address, exc.reply
            )
            job.retry += 1
            if _start(send, job):
                lanes.waiting.append(job)
            return
        verdict = policy.after_temporary(
            retry=job.retry, attempts=job.attempts, server=exc.server, stopping=True
        )
    _deferred(send, job.row, exc.reply, verdict, job.attempts, job.tries)
