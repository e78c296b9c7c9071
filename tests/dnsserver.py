"""A DNS server on 127.0.0.1 for the tests (UDP, dnspython's message API): it answers TXT,
A, AAAA and MX questions from a dict, NXDOMAIN for a name it has nothing for, and stops by
itself after ``lifetime`` seconds whatever the test does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

#: (name, type) -> the values: TXT as plain text (quoted and split into 255-byte strings
#: here), A/AAAA as addresses, MX as "preference host"
Records = Mapping[tuple[str, str], Sequence[str]]


def _txt(value: str) -> str:
    raw = value.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join(
        '"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks
    )


class DnsServer:
    def __init__(self, records: Records, *, lifetime: float = 60.0) -> None:
        self.records = {
            (n.lower().rstrip("."), t.upper()): list(v) for (n, t), v in records.items()
        }
        self.names = {n for n, _ in self.records}
        self.questions: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.sock.sendto(self.answer(data), peer)

    def answer(self, data: bytes) -> bytes:
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        for q in query.question:
            name = q.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(q.rdtype)
            self.questions.append((name, rdtype))
            values = self.records.get((name, rdtype))
            if values:
                texts = [_txt(v) for v in values] if rdtype == "TXT" else values
                response.answer.append(dns.rrset.from_text(q.name, 60, "IN", rdtype, *texts))
            elif name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
        wire: bytes = response.to_wire()
        return wire

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextmanager
def dns_server(records: Records, *, lifetime: float = 60.0) -> Iterator[DnsServer]:
    server = DnsServer(records, lifetime=lifetime)
    server._thread.start()
    try:
        yield server
    finally:
        server.stop()
