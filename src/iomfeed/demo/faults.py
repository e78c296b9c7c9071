"""Misbehaviour injected per request target, for tests: error statuses, delays, truncated
or replaced bodies (see :meth:`iomfeed.demo.server.SnapshotServer.add_fault`).

The queue is consumed by the request handler; the demo itself never adds a fault.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final

from .resources import CACHE_CONTROL, Response, strong_etag


class _FrozenHeaders(Mapping[str, str]):
    """An immutable, hashable header mapping (the default of :attr:`Fault.headers`)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple((items or {}).items())

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(dict(self._items))


_NO_HEADERS: Final = _FrozenHeaders()


@dataclass(frozen=True)
class Fault:
    """A misbehaviour to inject for one request target (see :meth:`SnapshotServer.add_fault`).

    The kind of response depends on the fields:

    * ``raw_body`` set: answer ``status`` with exactly these bytes (not rewritten) and
      ``content_type`` (default: the routed file's type, else ``application/octet-stream``).
      With ``status=200`` this replaces a page's content, e.g. with a windows-1252 page or
      an oversized body.
    * ``truncate``: send the real response's headers, including the full
      ``Content-Length``, then only half of the body, then close the connection.
    * ``status == 200`` and empty ``body``: serve the real response (useful with
      ``delay`` or extra ``headers``).
    * otherwise: answer ``status`` with ``body`` (``content_type`` defaults to HTML).

    ``headers`` are added to (and override) the response headers in every case, ``delay``
    seconds are slept before answering, and the fault is used for ``times`` requests.
    """

    status: int = 500
    headers: Mapping[str, str] = _NO_HEADERS
    body: bytes = b""
    delay: float = 0.0
    truncate: bool = False
    raw_body: bytes | None = None
    content_type: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(f"fault status must be in 200..599, got {self.status}")
        if self.times < 1:
            raise ValueError(f"fault times must be at least 1, got {self.times}")
        if self.delay < 0:
            raise ValueError(f"fault delay must not be negative, got {self.delay}")
        if not isinstance(self.headers, _FrozenHeaders):
            object.__setattr__(self, "headers", _FrozenHeaders(self.headers))


@dataclass
class _PendingFault:
    fault: Fault
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = self.fault.times


class FaultQueue:
    """Faults waiting per request target, each used for its ``times``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, deque[_PendingFault]] = {}

    def add(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(path, deque()).append(_PendingFault(fault))

    def take(self, path: str) -> Fault | None:
        """The fault for this request to ``path``, if one is queued (counting it as used)."""
        with self._lock:
            queue = self._faults.get(path)
            if not queue:
                return None
            pending = queue[0]
            pending.remaining -= 1
            if pending.remaining <= 0:
                queue.popleft()
                if not queue:
                    del self._faults[path]
            return pending.fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def fault_response(
    fault: Fault, *, real: Callable[[bool], Response], routed_type: Callable[[], str]
) -> Response:
    """The answer ``fault`` makes of a request: ``real(conditional)`` is the answer without a
    fault, ``routed_type()`` the content type of the file the target routes to."""
    if fault.raw_body is not None:
        content_type = fault.content_type
        if content_type is None:
            content_type = routed_type()
        body = fault.raw_body
        response = Response(
            status=fault.status,
            headers=[
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("ETag", strong_etag(body)),
                ("Cache-Control", CACHE_CONTROL),
            ],
            body=body,
        )
    elif fault.truncate or (fault.status == HTTPStatus.OK and not fault.body):
        response = real(not fault.truncate)
    else:
        response = Response(
            status=fault.status,
            headers=[
                ("Content-Type", fault.content_type or "text/html; charset=utf-8"),
                ("Content-Length", str(len(fault.body))),
                ("Cache-Control", "no-cache"),
            ],
            body=fault.body,
        )
    response.truncate = fault.truncate
    if fault.headers:
        overridden = {name.lower() for name in fault.headers}
        response.headers = [
            (name, value) for name, value in response.headers if name.lower() not in overridden
        ]
        response.headers.extend(fault.headers.items())
    return response
