"""WebSub: tell the hub which subscription feeds changed (W3C WebSub, section 7).

A ping is sent only for a feed whose bytes changed. A failed ping is logged, remembered in
the store and sent again on the next run; it never fails the run.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import FetchError
from ..models import PublishReport
from ..store import Store

if TYPE_CHECKING:
    from ..http import HttpClient

log = logging.getLogger(__name__)

SUBSCRIPTION_FILES = ("atom.xml", "rss.xml", "feed.json")


def changed_feed_urls(config: Config, written: tuple[str, ...]) -> list[str]:
    base = config.site.public_url if config.site.public_url.endswith("/") \
        else config.site.public_url + "/"
    return [base + path for path in written
            if path.rsplit("/", 1)[-1] in SUBSCRIPTION_FILES and not path.startswith("archive/")]


def announce(config: Config, store: Store, report: PublishReport, *, now: datetime,
             http: HttpClient | None) -> PublishReport:
    from ..http import HttpClient

    urls = sorted(set(changed_feed_urls(config, report.written)) | set(store.pending_pings()))
    if not urls:
        return report
    client = http or HttpClient(config.http)
    pinged, failed = [], []
    try:
        for url in urls:
            try:
                client.post_form(config.site.websub_hub,
                                 {"hub.mode": "publish", "hub.url": url})
            except FetchError as exc:
                log.warning("WebSub ping for %s failed, will retry next run: %s", url, exc)
                store.set_ping_pending(url, True, now)
                failed.append(url)
            else:
                store.set_ping_pending(url, False, now)
                pinged.append(url)
    finally:
        if http is None:
            client.close()
    return dataclasses.replace(report, pinged=tuple(pinged), ping_failures=tuple(failed))
