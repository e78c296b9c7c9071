"""The retry and bounce rules of a send, alone: no SMTP, no database, no clock."""

from __future__ import annotations

import dataclasses

import pytest

from iomfeed.config import MailConfig
from iomfeed.delivery.policy import (
    MAX_PERMANENT_IN_A_ROW,
    MAX_TEMPORARY_IN_A_ROW,
    DeliveryPolicy,
    Streaks,
    Verdict,
)

POLICY = DeliveryPolicy(retries=3, backoff=2.0, max_attempts=12, bounce_after=3)


def test_built_from_the_mail_keys() -> None:
    mail = dataclasses.replace(MailConfig(), retries=1, backoff=0.5, max_attempts=4, bounce_after=2)
    policy = DeliveryPolicy.from_config(mail)
    assert (policy.retries, policy.backoff, policy.max_attempts, policy.bounce_after) == (
        1,
        0.5,
        4,
        2,
    )
    assert policy.refused_in_a_row == MAX_PERMANENT_IN_A_ROW == 10
    assert policy.deferred_in_a_row == MAX_TEMPORARY_IN_A_ROW == 5
    defaults = MailConfig()
    assert DeliveryPolicy.from_config(defaults) == DeliveryPolicy()  # one set of defaults


def test_the_backoff_doubles_and_a_message_gets_one_try_plus_its_retries() -> None:
    assert POLICY.tries_per_run == 4
    assert [POLICY.pause(r) for r in range(3)] == [2.0, 4.0, 8.0]
    assert DeliveryPolicy(backoff=0.0).pause(5) == 0.0


def run_of_temporary_failures(policy: DeliveryPolicy, attempts_before: int) -> list[Verdict]:
    """The verdicts of one run in which every try fails for now, as the send asks them."""
    verdicts = []
    attempts = attempts_before
    for retry in range(policy.tries_per_run):
        attempts += 1
        verdict = policy.after_temporary(retry=retry, attempts=attempts, server=False)
        verdicts.append(verdict)
        if verdict is not Verdict.RETRY:
            break
    return verdicts


def test_greylisting_is_retried_then_deferred_to_the_next_run() -> None:
    assert run_of_temporary_failures(POLICY, 0) == [Verdict.RETRY] * 3 + [Verdict.DEFER]


def test_a_delivery_is_given_up_after_max_attempts_over_all_runs() -> None:
    policy = DeliveryPolicy(retries=2, max_attempts=4)
    first = run_of_temporary_failures(policy, 0)
    assert first == [Verdict.RETRY, Verdict.RETRY, Verdict.DEFER]  # 3 tries
    second = run_of_temporary_failures(policy, 3)
    assert second == [Verdict.GIVE_UP]  # the 4th try is the last


def test_a_failure_concerning_every_message_holds_the_row_and_stops() -> None:
    last = POLICY.after_temporary(retry=3, attempts=4, server=True)
    assert last is Verdict.HOLD
    # The server's failure never uses up a subscriber's tries, even at the limit.
    assert POLICY.after_temporary(retry=3, attempts=12, server=True) is Verdict.HOLD
    # While tries are left, the server is asked again like anyone else.
    assert POLICY.after_temporary(retry=0, attempts=1, server=True) is Verdict.RETRY


def test_a_stop_during_the_pause_ends_the_tries_without_giving_up() -> None:
    assert POLICY.after_temporary(retry=0, attempts=1, server=False) is Verdict.RETRY
    verdict = POLICY.after_temporary(retry=0, attempts=1, server=False, stopping=True)
    assert verdict is Verdict.DEFER
    assert POLICY.after_temporary(retry=0, attempts=1, server=True, stopping=True) is Verdict.HOLD


def test_no_retries_defers_at_once() -> None:
    assert run_of_temporary_failures(DeliveryPolicy(retries=0), 0) == [Verdict.DEFER]


def test_refusals_in_a_row_stop_the_send_at_the_limit() -> None:
    streaks = Streaks(DeliveryPolicy(refused_in_a_row=3))
    assert not streaks.on_refused(1, bounced=True)
    assert not streaks.on_refused(2, bounced=False)
    assert streaks.on_refused(3, bounced=True)
    assert streaks.refused_ids == [1, 2, 3] and streaks.refused_bounces == 2


def test_a_success_ends_both_streaks() -> None:
    streaks = Streaks(DeliveryPolicy(refused_in_a_row=2, deferred_in_a_row=2))
    streaks.on_refused(1, bounced=False)
    streaks.on_sent()
    assert not streaks.on_refused(2, bounced=False)  # one in a row again, not two
    streaks.on_deferred(3, 1)  # a deferral does not end the refusals
    assert streaks.on_refused(4, bounced=False)
    streaks.on_sent()
    assert not streaks.on_deferred(5, 1)
    streaks.on_sent()
    assert not streaks.on_deferred(6, 1)


def test_a_refusal_ends_the_deferred_streak() -> None:
    streaks = Streaks(DeliveryPolicy(deferred_in_a_row=2))
    assert not streaks.on_deferred(1, 4)
    streaks.on_refused(2, bounced=False)  # the server took commands: not a quota
    assert not streaks.on_deferred(3, 4)
    assert streaks.on_deferred(4, 2)
    assert streaks.deferred == [(3, 4), (4, 2)]  # whose tries to give back, and how many


@pytest.mark.parametrize("limit", [1, MAX_TEMPORARY_IN_A_ROW])
def test_deferrals_in_a_row_stop_the_send_at_the_limit(limit: int) -> None:
    streaks = Streaks(DeliveryPolicy(deferred_in_a_row=limit))
    stops = [streaks.on_deferred(sid, 4) for sid in range(limit)]
    assert stops == [False] * (limit - 1) + [True]


def test_a_streak_stops_the_send_once_and_what_follows_it_is_undone_alone() -> None:
    # Several connections: answers to the messages in flight come after the stop.
    streaks = Streaks(DeliveryPolicy(refused_in_a_row=2, deferred_in_a_row=2))
    streaks.on_refused(1, bounced=False)
    assert streaks.on_refused(2, bounced=True)
    assert streaks.continues("refused") and not streaks.continues("deferred")
    streaks.on_deferred(3, 1)  # a deferral does not break the refusals
    assert streaks.continues("refused")
    assert not streaks.on_refused(4, bounced=False)  # never stops (and undoes) twice
    streaks.on_sent()  # the server took one: what follows is counted as it comes
    assert not streaks.continues("refused")
    assert not streaks.on_refused(5, bounced=False) and not streaks.on_refused(6, bounced=False)


def test_a_refusal_after_a_deferred_stop_breaks_that_streak() -> None:
    streaks = Streaks(DeliveryPolicy(refused_in_a_row=5, deferred_in_a_row=2))
    streaks.on_deferred(1, 4)
    assert streaks.on_deferred(2, 4)
    assert streaks.continues("deferred")
    assert not streaks.on_deferred(3, 4)
    assert streaks.continues("deferred")
    streaks.on_refused(4, bounced=False)  # the server takes commands again
    assert not streaks.continues("deferred") and not streaks.continues("refused")
