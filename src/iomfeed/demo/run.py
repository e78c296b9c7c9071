"""``iomfeed demo``: the main job, run on the bundled snapshot of the IOM Albania site.

Serves the snapshot on 127.0.0.1 and runs iomfeed with the given configuration file, whose
live address is swapped for the local one, and nothing else changed. Output (the database)
goes to a folder of its own so a demo never mixes with a live store.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..clock import utc_now
from ..config import LIVE_ORIGIN, Config, load_config
from ..errors import ConfigError
from ..http import HttpClient
from ..lock import RunLock
from ..pipeline import digest_preview, fetch_all, open_store, publish, send_digest
from ..store import Store
from ..subscribers import Subscriber
from .server import DEFAULT_ROOT, SnapshotServer

log = logging.getLogger(__name__)


DEFAULT_PORT = 8791


def _start_server(port: int) -> SnapshotServer:
    """The snapshot on a fixed port, so a second demo run sees the same URLs (and 304s)."""
    try:
        return SnapshotServer(DEFAULT_ROOT, port=port).start()
    except OSError:
        log.warning("port %d is busy; serving the snapshot on a free port instead (a later"
                    " demo run will then see different addresses)", port)
        return SnapshotServer(DEFAULT_ROOT).start()


DEMO_SUBSCRIBERS = (
    Subscriber("reader@example.org", "Demo Reader", "en"),
    Subscriber("lexuesi@example.org", "Lexuesi Demo", "sq"),
)


def _demo_digest(config: Config, store: Store, out_dir: Path) -> str:
    """Previews of the digest in both languages, then the digest itself, sent now (whatever
    the schedule) to two sample subscribers through the configured transport (by default
    the outbox folder)."""
    from ..delivery.mailers import make_mailer
    from ..files import write_if_changed

    for sub in DEMO_SUBSCRIBERS:
        store.add_subscriber(sub, utc_now())
    previews = []
    for lang in ("en", "sq"):
        _content, _rendered, page = digest_preview(config, store, utc_now(), lang)
        path = out_dir / f"digest-{lang}.html"
        write_if_changed(path, page.encode("utf-8"))
        previews.append(str(path))
    outcome = send_digest(config, store=store, mailer=make_mailer(config), clock=utc_now)
    if outcome.delivery is None:
        return f"skipped ({outcome.note}); previews in {', '.join(previews)}"
    where = config.outbox_path if config.mail.transport == "outbox" else config.mail.smtp.host
    return (f"{outcome.items} item(s) sent to {outcome.delivery.sent} subscriber(s) in"
            f" {where}; previews in {', '.join(previews)}")


def run_demo(config_path: Path, out_dir: Path, *, keep_serving: bool = False,
             port: int = DEFAULT_PORT) -> int:
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{config_path}: not found; run the demo from the project's folder or pass --config"
        ) from None
    if LIVE_ORIGIN not in text:
        raise ConfigError(f"{config_path}: does not mention {LIVE_ORIGIN}; nothing to swap")
    out_dir.mkdir(parents=True, exist_ok=True)
    server = _start_server(port)
    try:
        log.info("serving the bundled snapshot at %s", server.origin)
        config = load_config(config_path, text=text.replace(LIVE_ORIGIN, server.origin),
                             base_dir=out_dir.resolve())
        with RunLock(config.database_path), open_store(config) as store, \
                HttpClient(config.http, validators=store) as http:
            report = fetch_all(config, store=store, http=http, now=utc_now)
            published = publish(config, store=store, now=utc_now())
            total = store.count()
            newest = store.items(limit=5)
            digest = _demo_digest(config, store, out_dir)
        print(f"\n{total} items stored in {config.database_path}; the newest:")
        for item in newest:
            print(f"  {item.published:%Y-%m-%d}  {item.title}")
        feeds = config.feeds_path
        print(f"\nFeeds in {feeds} ({len(published.written)} file(s) written): open"
              f" {feeds / 'index.html'}, or subscribe to {feeds / 'atom.xml'}")
        print(f"\nDigest: {digest}")
        if keep_serving:
            print(f"\nServing the snapshot at {server.origin}/news until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        server.stop()
    return 0 if report.ok else 1
