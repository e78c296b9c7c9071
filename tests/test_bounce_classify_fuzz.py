"""Whatever arrives in the bounce mailbox, classifying it never raises: a malformed message
must not stop the pass (and stall every message after it, run after run)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from iomfeed.bounces.classify import Kind, classify

from .bouncekit import BOUNCES

FIXTURES = sorted(p.read_bytes() for p in BOUNCES.glob("*.eml"))
HEADERS = st.sampled_from(
    [
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=",
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"',
        b"Content-Type: message/delivery-status",
        b"Content-Type: text/rfc822-headers",
        b"Auto-Submitted: auto-replied",
        b"Action: failed",
        b"Status: 5.9.99999",
        b"Final-Recipient: rfc822;",
        b"Original-Rcpt-To: <>",
        b"Content-Transfer-Encoding: base64",
        b"--b",
        b"",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(HEADERS | st.binary(max_size=40), max_size=25), st.integers(0, len(FIXTURES) - 1))
def test_classify_never_raises(lines: list[bytes], fixture: int) -> None:
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + FIXTURES[fixture][:: 1 + len(lines) % 3]
    found = classify(raw)
    assert isinstance(found.kind, Kind)
    for failure in found.failures:
        assert "@" in failure.address and failure.status[0] in "45"


def test_a_failed_action_with_a_success_status_is_a_hard_bounce_of_no_known_code() -> None:
    text = (BOUNCES / "postfix-dsn.eml").read_text(encoding="utf-8")
    raw = text.replace("Status: 5.1.1", "Status: 2.0.0").replace("{TO}", "a@example.net")
    (failure,) = classify(raw.encode()).failures
    assert (failure.hard, failure.status) == (True, "5.0.0")
    delayed = raw.replace("Action: failed", "Action: delayed").replace("2.0.0", "5.2.2")
    (failure,) = classify(delayed.encode()).failures
    assert (failure.hard, failure.status) == (False, "4.0.0")
