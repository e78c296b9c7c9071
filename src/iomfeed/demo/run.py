"""``iomfeed demo``: the main job, run on the bundled snapshot of the IOM Albania site.

Serves the snapshot on 127.0.0.1 and runs iomfeed with the packaged configuration (or the
given file), with two addresses swapped for local ones: the live site's for the snapshot's,
and ``site.public_url`` for a local server of the feeds folder (the tag authority of new
ids stays the configured one). Nothing else changes. Output (the database, feeds, outbox,
digest previews) goes to a folder of its own so a demo never mixes with a live store.

Run from a terminal (or with ``--serve``), the demo then keeps both servers up until
Ctrl-C, so what it leaves behind works when opened: the index page's and digests' pictures
come from the snapshot, their subscribe, "more" and unsubscribe links from the feeds server.
Without a terminal (CI, tests, a pipe) it ends by itself.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..clock import utc_now
from ..config import LIVE_ORIGIN, Config, load_config
from ..errors import ConfigError
from ..ingest import fetch_all
from ..models import PublishReport, StoredItem
from ..pipeline import digest_preview, publish, send_digest
from ..runtime import Runtime, open_runtime
from ..subscribers import Subscriber
from ..web import App
from ..web_server import Server, make_server
from .server import DEFAULT_ROOT, SnapshotServer

log = logging.getLogger(__name__)


DEFAULT_PORT = 8791


def _start_server(port: int) -> SnapshotServer:
    """The snapshot on a fixed port, so a second demo run sees the same URLs (and 304s)."""
    try:
        return SnapshotServer(DEFAULT_ROOT, port=port).start()
    except OSError:
        log.warning(
            "port %d is busy; serving the snapshot on a free port instead (its stories"
            " then have other addresses: a store from another port is put aside)",
            port,
        )
        return SnapshotServer(DEFAULT_ROOT).start()


#: The file in the demo's folder that says which address the store's stories came from.
ORIGIN_FILE = ".snapshot-origin"


def _start_afresh_if_moved(config: Config, out_dir: Path, origin: str) -> None:
    """The stories' addresses name the snapshot's port: a store filled from another port
    would get every story a second time, and its digest would send them again. So when
    the snapshot moved (its port was busy), the old store is put aside and the demo
    starts a new one; the file remembers where the stories come from."""
    marker = out_dir / ORIGIN_FILE
    database = config.database_path
    if not database.resolve().is_relative_to(out_dir.resolve()):
        return  # a store of the configuration's own, outside the demo's folder: not touched
    try:
        before = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        before = origin  # none yet, or a store an older demo made: taken to be from here
    if before != origin and database.exists():
        kept = database.with_name(database.name + ".previous")
        for suffix in ("", "-wal", "-shm"):  # an older aside goes, journal files and all
            kept.with_name(kept.name + suffix).unlink(missing_ok=True)
        for suffix in ("", "-wal", "-shm"):
            old = database.with_name(database.name + suffix)
            if old.exists():
                old.replace(kept.with_name(kept.name + suffix))
        log.warning(
            "the snapshot is at %s now, not %s: a new demo store, so that no story is stored"
            " twice (the old one is %s)",
            origin,
            before,
            kept,
        )
    marker.write_text(origin + "\n", encoding="utf-8")


def _bind_feeds_server(port: int) -> Server:
    """The feeds folder's server (bound now, for site.public_url; serving only at the end)."""
    try:
        return make_server("127.0.0.1", port, None)
    except OSError:
        log.warning("port %d is busy; serving the feeds on a free port instead", port)
        return make_server("127.0.0.1", 0, None)


DEMO_SUBSCRIBERS = (
    Subscriber("reader@example.org", "Demo Reader", "en"),
    Subscriber("lexuesi@example.org", "Lexuesi Demo", "sq"),
)


def _demo_digest(rt: Runtime, out_dir: Path) -> str:
    """Previews of the digest in both languages, then the digest itself, sent now (whatever
    the schedule) to two sample subscribers through the configured transport (by default
    the outbox folder)."""
    from ..files import write_if_changed

    config, store = rt.config, rt.store
    for sub in DEMO_SUBSCRIBERS:
        store.add_subscriber(sub, rt.clock())
    previews = []
    for lang in ("en", "sq"):
        _content, _rendered, page = digest_preview(config, store, rt.clock(), lang)
        path = out_dir / f"digest-{lang}.html"
        write_if_changed(path, page.encode("utf-8"))
        previews.append(str(path))
    outcome = send_digest(config, store=store, mailer=rt.mailer(), clock=rt.clock)
    if outcome.delivery is None:
        return f"skipped ({outcome.note}); previews in {', '.join(previews)}"
    where = config.outbox_path if config.mail.transport == "outbox" else config.mail.smtp.host
    return (
        f"{outcome.items} item(s) sent to {outcome.delivery.sent} subscriber(s) in"
        f" {where}; previews in {', '.join(previews)}"
    )


def _local_config(
    config_path: Path, text: str, out_dir: Path, snapshot: str, feeds_url: str
) -> Config:
    config = load_config(
        config_path, text=text.replace(LIVE_ORIGIN, snapshot), base_dir=out_dir.resolve()
    )
    site = config.site
    # Ids minted by the demo keep the authority the configuration would give them.
    authority = site.id_authority or urlsplit(site.public_url).hostname or ""
    return dataclasses.replace(
        config, site=dataclasses.replace(site, public_url=feeds_url, id_authority=authority)
    )


def _read_config(config_path: Path | None) -> tuple[Path, str]:
    """The configuration to swap addresses in (the packaged one when None), as text."""
    from ..shipped import shipped_config

    if config_path is None:
        config_path = Path(str(shipped_config()))
    try:
        text = config_path.read_text(encoding="utf-8-sig")  # a byte-order mark read past
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: cannot read configuration: {exc}") from None
    if LIVE_ORIGIN not in text:
        raise ConfigError(f"{config_path}: does not mention {LIVE_ORIGIN}; nothing to swap")
    return config_path, text


def run_demo(
    config_path: Path | None,
    out_dir: Path,
    *,
    keep_serving: bool | None = None,
    port: int = DEFAULT_PORT,
) -> int:
    """``config_path`` None: the packaged config.toml. ``keep_serving`` None: when standard
    input is a terminal."""
    config_path, text = _read_config(config_path)
    if keep_serving is None:
        keep_serving = sys.stdin is not None and sys.stdin.isatty()
    out_dir.mkdir(parents=True, exist_ok=True)
    server = _start_server(port)
    feeds_server = _bind_feeds_server(port + 1 if port else 0)
    try:
        log.info("serving the bundled snapshot at %s", server.origin)
        feeds_url = f"http://127.0.0.1:{feeds_server.server_port}/"
        config = _local_config(config_path, text, out_dir, server.origin, feeds_url)
        with open_runtime(config, lock="iomfeed", wait=0.0) as rt:
            _start_afresh_if_moved(config, out_dir, server.origin)  # locked, store not open
            report = fetch_all(config, store=rt.store, http=rt.http, now=rt.clock)
            published = publish(config, store=rt.store, now=rt.clock())
            total, newest = rt.store.count(), rt.store.items(limit=5)
            digest = _demo_digest(rt, out_dir)
        _say_done(config, total, newest, published, digest)
        if keep_serving:
            _keep_serving(config, feeds_server, feeds_url, server.origin)
        else:
            print(
                f"\n(Run from a terminal, the demo keeps serving {feeds_url} and the"
                f" snapshot's pictures until Ctrl-C; --serve does it anyway.)"
            )
    finally:
        feeds_server.server_close()
        server.stop()
    return 0 if report.ok else 1


def _say_done(
    config: Config,
    total: int,
    newest: list[StoredItem],
    published: PublishReport,
    digest: str,
) -> None:
    print(f"\n{total} items stored in {config.database_path}; the newest:")
    for item in newest:
        print(f"  {item.published:%Y-%m-%d}  {item.title}")
    feeds = config.feeds_path
    print(
        f"\nFeeds in {feeds} ({len(published.written)} file(s) written): open"
        f" {feeds / 'index.html'}, or subscribe to {feeds / 'atom.xml'}"
    )
    print(f"\nDigest: {digest}")


def _keep_serving(config: Config, feeds_server: Server, feeds_url: str, origin: str) -> None:
    """Serve the feeds folder (and, already, the snapshot) until Ctrl-C."""
    feeds_server.set_app(App(config, now=utc_now))
    web = threading.Thread(target=feeds_server.serve_forever, name="demo-feeds", daemon=True)
    web.start()
    feeds = config.feeds_path
    print(
        f"\nServing until Ctrl-C: the feeds at {feeds_url} (open it; the same as"
        f" {feeds / 'index.html'}, with working subscribe links), the pictures and"
        f" the snapshot at {origin}/news",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        feeds_server.shutdown()
