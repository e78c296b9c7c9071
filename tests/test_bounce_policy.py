"""The bounce rules and the VERP token as pure functions: no database, no mailbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from iomfeed.bounces.classify import Kind
from iomfeed.bounces.policy import Action, BouncePolicy, SentDigest, Trust
from iomfeed.delivery.verp import envelope_sender, find_tokens, make_token, verify

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SECRET = b"a-secret-of-enough-length"
POLICY = BouncePolicy(bounce_after=3, soft_after=3, soft_days=14, trust_days=14)


def sent(n: int, *, refused: bool = False, hard: bool = False, soft: bool = False) -> SentDigest:
    """Digest ``n``, sent a week after digest ``n - 1``."""
    return SentDigest(n, T0 + timedelta(days=7 * (n - 1)), refused, hard, soft)


def test_hard_bounces_mark_bounced_after_bounce_after_in_a_row() -> None:
    history = [sent(3), sent(2, hard=True), sent(1, hard=True)]
    verdict = POLICY.verdict(Kind.HARD, Trust.TOKEN, 3, history)
    assert verdict == POLICY.verdict(Kind.HARD, Trust.RECENT, 3, history)
    assert verdict.action is Action.BOUNCED and verdict.detail == "3 hard bounces in a row"
    # A refusal during the send counts as a hard bounce (the in-session rule).
    refused = [sent(3), sent(2, refused=True), sent(1, hard=True)]
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, 3, refused).action is Action.BOUNCED


def test_one_digest_without_a_bounce_resets_the_streak() -> None:
    history = [sent(4), sent(3), sent(2, hard=True), sent(1, hard=True)]
    verdict = POLICY.verdict(Kind.HARD, Trust.TOKEN, 4, history)
    assert (verdict.action, verdict.detail) == (Action.COUNTED, "hard bounce 1 of 3 in a row")
    # Digests after the one the bounce is about do not break its streak.
    later = [sent(4), sent(3), sent(2, hard=True), sent(1, hard=True)]
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, 3, later).action is Action.BOUNCED


def test_a_counted_hard_bounce_carries_its_streak_for_the_sends_own_count() -> None:
    # What the send's count of refusals in a row continues from: this one and those before.
    two = POLICY.verdict(Kind.HARD, Trust.TOKEN, 2, [sent(2), sent(1, hard=True)])
    assert (two.action, two.hard_streak) == (Action.COUNTED, 2)
    after_a_refusal = POLICY.verdict(Kind.HARD, Trust.TOKEN, 2, [sent(2), sent(1, refused=True)])
    assert after_a_refusal.hard_streak == 2
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, 2, [sent(2), sent(1)]).hard_streak == 1
    # A late bounce of an older digest joins the run of the newer ones that bounced.
    late = POLICY.verdict(Kind.HARD, Trust.TOKEN, 1, [sent(2, hard=True), sent(1)])
    assert (late.detail, late.hard_streak) == ("hard bounce 2 of 3 in a row", 2)
    # One whose run a later success ended counts, but continues no count of the send's.
    ended = POLICY.verdict(Kind.HARD, Trust.TOKEN, 1, [sent(2), sent(1)])
    assert (ended.action, ended.hard_streak) == (Action.COUNTED, 0)
    # Soft bounces, sign-up bounces and untrusted ones move no count.
    assert POLICY.verdict(Kind.SOFT, Trust.TOKEN, 2, [sent(2), sent(1)]).hard_streak == 0
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, None, [sent(1)]).hard_streak == 0
    assert POLICY.verdict(Kind.HARD, Trust.NONE, 1, [sent(1)]).hard_streak == 0


def test_soft_bounces_need_their_count_and_their_days() -> None:
    quick = [
        SentDigest(3, T0 + timedelta(days=6), False, False, False),
        SentDigest(2, T0 + timedelta(days=3), False, False, True),
        SentDigest(1, T0, False, False, True),
    ]
    verdict = POLICY.verdict(Kind.SOFT, Trust.TOKEN, 3, quick)
    assert verdict.action is Action.COUNTED and "(6 of 14 days)" in verdict.detail
    weekly = [sent(3), sent(2, soft=True), sent(1, soft=True)]
    verdict = POLICY.verdict(Kind.SOFT, Trust.TOKEN, 3, weekly)
    assert verdict.action is Action.BOUNCED and "over 14 days" in verdict.detail
    # A soft bounce does not count towards the hard streak.
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, 3, weekly).action is Action.COUNTED


def test_untrusted_auto_replies_and_sign_up_bounces_do_nothing() -> None:
    history = [sent(3), sent(2, hard=True), sent(1, hard=True)]
    ignored = POLICY.verdict(Kind.HARD, Trust.NONE, 3, history)
    assert ignored.action is Action.IGNORED and "not trusted" in ignored.detail
    assert POLICY.verdict(Kind.COMPLAINT, Trust.NONE, 3, history).action is Action.IGNORED
    assert POLICY.verdict(Kind.COMPLAINT, Trust.RECENT, 3, []).action is Action.UNSUBSCRIBED
    assert POLICY.verdict(Kind.AUTO_REPLY, Trust.TOKEN, 3, history).action is Action.IGNORED
    assert POLICY.verdict(Kind.HARD, Trust.TOKEN, None, history).action is Action.COUNTED


def test_a_digest_missing_from_the_ledger_moves_no_streak() -> None:
    # Not sent since they (re)joined, or its send unfinished: the streak stays as it was.
    verdict = POLICY.verdict(Kind.HARD, Trust.TOKEN, 5, [sent(2, hard=True), sent(1, hard=True)])
    assert verdict.action is Action.COUNTED and "moves no streak" in verdict.detail
    assert POLICY.verdict(Kind.SOFT, Trust.TOKEN, 5, []).action is Action.COUNTED
    assert "moves no streak" in POLICY.verdict(Kind.SOFT, Trust.TOKEN, 5, []).detail


def test_a_verp_token_is_lower_case_atext_and_verifies_only_as_made() -> None:
    token = make_token(SECRET, "digest.example.org", 12, 345, "Ana@Example.org")
    assert token == token.lower() and token.startswith("12-345-")
    assert all(c.isalnum() or c == "-" for c in token)
    sender = envelope_sender(
        "bounces@example.org", "news@example.org", secret=SECRET, list_id="digest.example.org",
        digest_id=12, subscriber_id=345, address="ana@example.org",
    )  # fmt: skip
    assert sender == f"bounces+{token}@example.org" and len(sender.partition("@")[0]) <= 64
    (found,) = find_tokens(f"Delivered-To: {sender.upper()}\nTo: <{sender}>", "bounces@example.org")
    assert verify(SECRET, "digest.example.org", found, "ana@example.org")
    assert not verify(SECRET, "digest.other.org", found, "ana@example.org")
    assert not verify(b"another-secret-entirely", "digest.example.org", found, "ana@example.org")
    tampered = found.__class__(13, found.subscriber_id, found.mac)
    assert not verify(SECRET, "digest.example.org", tampered, "ana@example.org")
    assert find_tokens(sender, "bounces@elsewhere.org") == []
    assert find_tokens(f"xbounces+{token}@example.org", "bounces@example.org") == []


@pytest.mark.parametrize("digest", [None, 0])
def test_a_sign_up_message_token_names_no_digest(digest: int | None) -> None:
    token = make_token(SECRET, "l", digest, 7, "a@example.org")
    assert token.startswith("0-7-")
    (found,) = find_tokens(f"b+{token}@example.org", "b@example.org")
    assert found.digest_id is None and verify(SECRET, "l", found, "a@example.org")


def test_opening_the_store_loads_no_email_parser_nor_detector() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, iomfeed.store\n"
        "print(sorted(m for m in ('iomfeed.bounces.classify', 'flufl.bounce', 'email.message')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout
