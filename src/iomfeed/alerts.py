"""Operator alerts: a short e-mail to ``operator.email`` when a source fails
``operator.failures`` runs in a row, when it recovers, when a digest has permanent failures
or is stuck; at most one a day per problem, through the configured mail transport.

The state (which problems are open, when each was last mailed) is kept in the store, so a
cron ``run`` every half hour does not repeat itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .errors import DeliveryError

if TYPE_CHECKING:
    from .config import Config
    from .delivery.mailers import Mailer
    from .store import Store

log = logging.getLogger(__name__)

REPEAT_AFTER = timedelta(days=1)
SUPPRESSED = "back within a day: not mailed again"


def problems(config: Config, store: Store, now: datetime) -> dict[str, str]:
    """Open problems: key -> one line saying what is wrong (worded by the health check)."""
    from .health import check

    return check(config, store, now, next_times={}, brief=True).alert_problems()


def notify(
    config: Config, store: Store, mailer: Callable[[], Mailer], now: datetime
) -> tuple[str, ...]:
    """Mail the operator what is new (or a day old) and what recovered; returns the lines
    sent. Does nothing but keep the state when ``operator.email`` is empty."""
    current = problems(config, store, now)
    lines: list[str] = []
    due: list[str] = []
    for key, detail in current.items():
        state = store.alert(key)
        last_sent = state[1] if state else None
        once = key.endswith(":failed")  # a digest's failures are news once, not daily
        recent = last_sent is not None and now - last_sent < REPEAT_AFTER
        if last_sent is None or (not once and not recent):
            lines.append(detail)
            due.append(key)
        elif state is not None and not state[0]:
            # Back within a day of the last mail (a flapping source): no new mail, and no
            # "works again" mail when it recovers this time either.
            store.set_alert(key, active=True, detail=SUPPRESSED, sent=None)
        else:
            keep = store.alert_detail(key) == SUPPRESSED
            store.set_alert(key, active=True, detail=SUPPRESSED if keep else detail, sent=None)
    recovered = [key for key in store.active_alerts() if key not in current]
    for key in recovered:
        state_detail = store.alert_detail(key)
        if key.startswith("source:") and state_detail != SUPPRESSED:
            lines.append(f"source {key.split(':')[1]} works again")
        store.set_alert(key, active=False, detail="recovered", sent=None)
    if not lines:
        return ()
    for line in lines:
        log.warning("alert: %s", line)
    # Reported: mailed, or only logged when nobody is to be mailed. A mail that failed is
    # tried again by the next run.
    mailed = bool(config.operator.email) and _send(config, mailer, lines, now)
    if mailed:
        # Counted for mail.hourly_limit / mail.daily_limit like every message the relay takes,
        # never held back by them: the operator must hear of a problem.
        store.record_sent(now, "alert")
    reported = mailed or not config.operator.email
    for key in due:
        store.set_alert(key, active=True, detail=current[key], sent=now if reported else None)
    return tuple(lines) if mailed else ()


def _send(config: Config, mailer: Callable[[], Mailer], lines: list[str], now: datetime) -> bool:
    import secrets
    from email.message import EmailMessage
    from email.utils import format_datetime

    from .digest.headers import clean_header_text
    from .digest.message import Outgoing, mail_policy, set_address, set_subject

    msg = EmailMessage(policy=mail_policy())
    name = config.mail.from_name.get(config.site.language)
    set_address(msg, "From", name, config.mail.from_address)
    msg["To"] = config.operator.email
    set_subject(
        msg,
        clean_header_text(
            f"[iomfeed] {lines[0]}" + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")
        ),
    )
    msg["Date"] = format_datetime(now)
    mid = f"<alert-{now:%Y%m%d%H%M%S}.{secrets.token_hex(4)}@{config.mail.sender_domain}>"
    msg["Message-ID"] = mid
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        "iomfeed needs attention:\n\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n\n`iomfeed status` shows the whole picture.\n"
    )
    transport = mailer()
    try:
        transport.send(
            Outgoing(
                message_id=mid,
                sender=config.mail.from_address,
                recipient=config.operator.email,
                data=msg.as_bytes(),
            )
        )
    except DeliveryError as exc:
        log.error("could not mail the alert to %s: %s", config.operator.email, exc)
        return False
    finally:
        transport.close()
    return True
