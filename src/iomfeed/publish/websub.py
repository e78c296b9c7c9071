"""WebSub: tell the hub which subscription feeds changed (W3C WebSub, section 7).

A ping is sent only for a feed whose bytes changed (the publisher marks it pending when it
writes it). A failed ping is logged, stays pending and is sent on the next run; it never fails
the run.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from ..config import Config
from ..errors import FetchError
from ..models import PublishReport
from ..store import Store

log = logging.getLogger(__name__)


def announce(
    config: Config, store: Store, report: PublishReport, *, now: datetime
) -> PublishReport:
    """Ping the hub for every feed waiting for it: those written by this run (recorded as
    pending when written) and those whose ping failed before.

    No retries inside a run (the next run is the retry), and the first failure ends the
    round, so a hub that is down costs one timeout, not one per feed.
    """
    from ..http import HttpClient

    urls = store.pending_pings()
    if not urls:
        return report
    settings = dataclasses.replace(config.http, retries=0, timeout=min(config.http.timeout, 10))
    pinged: list[str] = []
    with HttpClient(settings) as client:
        for n, url in enumerate(urls):
            try:
                client.post_form(config.site.websub_hub, {"hub.mode": "publish", "hub.url": url})
            except FetchError as exc:
                log.warning(
                    "WebSub ping to %s failed, %d feed(s) will be announced next run: %s",
                    config.site.websub_hub,
                    len(urls) - n,
                    exc,
                )
                return dataclasses.replace(
                    report, pinged=tuple(pinged), ping_failures=tuple(urls[n:])
                )
            store.set_ping_pending(url, False, now)
            pinged.append(url)
    return dataclasses.replace(report, pinged=tuple(pinged))
