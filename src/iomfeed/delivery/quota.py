"""The relay's quotas applied: the rule is :class:`.policy.Quota` (pure); this reads the
store's sent-mail log for it, and keeps count during a send without a query per message.

A send asks :meth:`QuotaGate.allows` before each message and tells :meth:`QuotaGate.spent`
after each one the relay took. The gate asks the store again whenever the room it counted
itself runs low (:data:`RECHECK_BELOW`), and at least every :data:`RECHECK_EVERY`, so sends
by another process (sign-up notices from the web server, another send) are seen before the
last messages of a window go, however much room there was at the start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .policy import Quota, QuotaState

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Store

#: Below this much room the gate reads the store again before each message.
RECHECK_BELOW = 10
#: And whatever the room, the store is read again after this long.
RECHECK_EVERY = timedelta(seconds=30)


def quota_state(config: Config, store: Store, now: datetime) -> QuotaState:
    """The quota at ``now``: room left, and when a full one frees up."""
    quota = Quota.from_config(config.mail)
    span = quota.span
    if span is None:
        return QuotaState(room=None)
    return quota.state(now, store.sent_times(now - span))


class QuotaGate:
    """One send's view of the quota."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.limited = Quota.from_config(config.mail).span is not None
        self.state = QuotaState(room=None)
        self._read_at = clock()
        if self.limited:
            store.prune_sent(clock())
            self._read()

    def _read(self) -> None:
        self._read_at = self.clock()
        self.state = quota_state(self.config, self.store, self._read_at)

    def reads_store(self) -> bool:
        """Whether the next :meth:`allows` reads the store's count again."""
        if not self.limited:
            return False
        low = self.state.room is not None and self.state.room < RECHECK_BELOW
        return low or self.clock() - self._read_at >= RECHECK_EVERY

    def allows(self, in_flight: int = 0, *, read: bool | None = None) -> bool:
        """Whether one more message may go now, with ``in_flight`` others handed over and
        not answered yet (several connections). ``read``: whether to read the store's count
        again, as :meth:`reads_store` answered the caller a moment before (which committed
        what it holds first); by default, asked again here."""
        if self.reads_store() if read is None else read:
            self._read()
        room = self.state.room
        return not self.limited or room is None or room > in_flight

    def spent(self) -> None:
        """One message was handed over (already counted in the store)."""
        room = self.state.room
        if room is not None and room > 0:
            self.state = QuotaState(room=room - 1)
