"""A stop request (SIGTERM, SIGINT) that the cycle's stages poll: finish the page or the
message in hand, then stop.

A module of its own, importing nothing heavy: the runtime builds one for every ``run``, and
a quiet cycle must not load the delivery code (the mailers, the policy) to get it.
"""

from __future__ import annotations

import threading

from .errors import StopRequested


class Stop:
    """A stop request, set from a signal handler: finish the message in hand, then stop.
    Its :meth:`sleep` ends early when a stop is requested."""

    def __init__(self) -> None:
        self._event = threading.Event()
        #: the signal that asked for the stop (0: none, or asked otherwise)
        self.signal = 0

    def set(self, signal: int = 0) -> None:
        self.signal = self.signal or signal
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


def stop_signals() -> tuple[int, ...]:
    """The signals that stop the work after what is in hand: SIGHUP too, unless it is
    ignored (``nohup``: whoever started it asked that a closed terminal not stop it)."""
    import signal

    hup = () if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else (signal.SIGHUP,)
    return (signal.SIGTERM, signal.SIGINT, *hup)
