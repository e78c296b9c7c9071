"""A transport that answers from a function, in process, without a socket (like httpx's
``MockTransport``): for fast tests of sources and of the client. Pass it as
``HttpClient(config, transport=MockTransport(handler))``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import Request, TransportResponse

__all__ = ["MockTransport", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What :class:`MockTransport`'s function answers. Header names in any case."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class _MockResponse:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.headers = {k.lower(): v for k, v in reply.headers.items()}
        self._body = b"" if reply.status in (204, 304) else reply.body
        self._at = 0

    def read(self, amount: int, timeout: float) -> bytes:
        chunk = self._body[self._at : self._at + amount]
        self._at += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class MockTransport:
    """A transport that answers every request from ``handler(request) -> Reply``, in
    process, without a socket (like httpx's ``MockTransport``). The handler may raise an
    ``OSError`` (``ConnectionRefusedError``, ``TimeoutError``...) to play a network failure.
    Everything the client does above the wire (robots.txt, retries, redirects, the body cap,
    gzip, conditional GET) runs as usual. ``requests`` lists what was sent, in order.
    """

    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def send(self, request: Request) -> TransportResponse:
        self.requests.append(request)
        return _MockResponse(self.handler(request))

    def close(self) -> None:
        pass
