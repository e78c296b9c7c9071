"""Category segments: the same 10,000 subscribers, all in one segment and spread over 8
(language, category set) segments, measured in the same run.

* Personalising: the messages made from the once-inlined rendering of each subscriber's
  segment (subscribers streamed from the store), nothing sent; the 8 renderings are made
  before the clock starts, as the send makes them before its first message.
* Delivery: a whole ``python -m iomfeed digest --send`` process into the aiosmtpd sink on
  127.0.0.1, messages per second over the process's wall time (8 renderings and inlines
  instead of 1 included).

The baseline of each row is the single-segment figure; the targets: personalising under
1 s, delivery within 10 % of the single-segment rate.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_digest import make_item, write_config
from bench_ingest import Row, timed
from iomfeed.config import load_config
from iomfeed.digest.segments import Key, offered_categories, segment_of
from iomfeed.digest.steps import digest_content, render_segments, segment_composers
from iomfeed.ingest import upsert
from iomfeed.store import Store
from loopback import SmtpSink, free_port

#: Three categories on offer, so that two languages make 8 segments with "every category".
OFFER = 'categories = { sq = { Local = "Vendore", Global = "Globale", Diaspora = "Diaspora" } }'
CHOICES = [[], ["Local"], ["Global"], ["Diaspora"]]
PUBLIC_URL = "https://feeds.iom-news.test/iom-albania/"


@dataclass(frozen=True, slots=True)
class Measured:
    segments: int
    personalise: float  # seconds
    rate: float  # messages per second, whole process
    size: int  # bytes of the last message made


def _fill(store: Store, subscribers: int, segmented: bool, now: datetime) -> None:
    for n in range(20):
        upsert(store, make_item(n, now), now - timedelta(days=1))
    store.db.execute("BEGIN")
    for n in range(subscribers):
        store.db.execute(
            "INSERT INTO subscribers (address, name, language, status, subscribed, categories)"
            " VALUES (?, ?, ?, 'active', ?, ?)",
            (
                f"reader{n}@example.org",
                ("Ëlira Hoxha", "John Smith")[n % 2],
                ("sq", "en")[n % 2] if segmented else "en",
                "2026-01-01T00:00:00Z",
                json.dumps(CHOICES[(n // 2) % 4] if segmented else []),
            ),
        )
    store.db.execute("COMMIT")


class Personalise:
    """The messages of every subscriber made from their segment's once-inlined rendering
    (made here, before any loop is timed), nothing sent."""

    QUERY = "SELECT id, address, name, language, categories FROM subscribers ORDER BY id"

    def __init__(self, config_path: Path, now: datetime) -> None:
        config = load_config(config_path)
        offered = offered_categories(config)
        self.store = Store(config.database_path)
        content = digest_content(config, self.store, now)
        self.keys: dict[tuple[str, str], Key] = {}
        for r in self.store.db.execute(self.QUERY):
            self.keys.setdefault((r[3], r[4]), (r[3], segment_of(json.loads(r[4]), offered)))
        self.rendered = render_segments(config, content, sorted(set(self.keys.values())))
        self.made = segment_composers(
            config, self.rendered, digest_id=1, date=now, secret=b"x" * 32
        )
        self.size = 0

    def loop(self) -> float:
        """Seconds to make every message once."""
        start = time.perf_counter()
        for sid, address, name, language, chosen in self.store.db.execute(self.QUERY):
            message = self.made[self.keys[(language, chosen)]].compose(sid, address, name)
            self.size = len(message.data)
        return time.perf_counter() - start


def _deliver(work: Path, config_path: Path, port: int, subscribers: int) -> float:
    with SmtpSink(port):
        command = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(config_path)]
        wall, _peak, code = timed([*command, "digest", "--send"], work)
        if code != 0:
            raise SystemExit(f"digest --send failed with exit code {code}")
    with Store(load_config(config_path).database_path) as store:
        record = store.last_digest()
        assert record is not None
        totals = store.delivery_totals(record.id)
    if totals != {"sent": subscribers}:
        raise SystemExit(f"not everyone got the digest: {totals}")
    return subscribers / wall


class Setup:
    """A folder with the config and a store of ``subscribers`` for one of the two cases."""

    def __init__(self, subscribers: int, *, segmented: bool, now: datetime) -> None:
        self.subscribers, self.segmented, self.now = subscribers, segmented, now
        self._tmp = tempfile.TemporaryDirectory(prefix="iomfeed-bench-segments-")
        self.work = Path(self._tmp.name)
        self.port = free_port()
        self.config_path = write_config(self.work, self.port)
        text = self.config_path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("categories = {"):
                text = text.replace(line, OFFER, 1)
            elif line.startswith("public_url = "):  # a send refuses the example address
                text = text.replace(line, f'public_url = "{PUBLIC_URL}"', 1)
        self.config_path.write_text(text, encoding="utf-8")
        self.database = load_config(self.config_path).database_path
        self.reset()

    def reset(self) -> None:
        """A fresh store: the subscribers and the items, no digest yet."""
        for path in self.database.parent.glob(self.database.name + "*"):
            path.unlink()
        with Store(self.database) as store:
            _fill(store, self.subscribers, self.segmented, self.now)

    def close(self) -> None:
        self._tmp.cleanup()


def measure(setups: list[Setup], repeat: int) -> list[Measured]:
    """Each setup personalised ``repeat`` + 1 times, then sent ``repeat`` times, the setups
    in turn each time (a busy machine slows them alike); the best of each."""
    makers = [Personalise(s.config_path, s.now) for s in setups]
    loops: list[list[float]] = [[] for _ in setups]
    for _ in range(repeat + 1):
        for maker, found in zip(makers, loops, strict=True):
            found.append(maker.loop())
    for maker in makers:
        maker.store.close()
    rates: list[list[float]] = [[] for _ in setups]
    for n in range(repeat):
        for setup, found in zip(setups, rates, strict=True):
            if n:
                setup.reset()
            found.append(_deliver(setup.work, setup.config_path, setup.port, setup.subscribers))
    return [
        Measured(maker.rendered.made, min(took), max(found), maker.size)
        for maker, took, found in zip(makers, loops, rates, strict=True)
    ]


def segment_rows(*, subscribers: int, repeat: int = 2) -> list[Row]:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    setups = [Setup(subscribers, segmented=s, now=now) for s in (False, True)]
    try:
        single, spread = measure(setups, repeat)
    finally:
        for setup in setups:
            setup.close()
    assert (single.segments, spread.segments) == (1, 8), (single.segments, spread.segments)
    return [
        Row(
            f"digest: personalise {subscribers} messages over 8 segments"
            f" ({spread.size / 1000:.0f} KB, 1 segment: {single.size / 1000:.0f} KB)",
            spread.personalise * 1000,
            "ms",
            single.personalise * 1000,
            "1 segment",
            "< 1000 ms",
            spread.personalise < 1.0,
        ),
        Row(
            f"digest: {subscribers} messages over 8 segments delivered, whole process",
            spread.rate,
            "msg/s",
            single.rate,
            "1 segment",
            ">= 0.90x",
            spread.rate >= 0.9 * single.rate,
        ),
    ]


if __name__ == "__main__":
    for row in segment_rows(subscribers=int(sys.argv[1]) if len(sys.argv) > 1 else 10_000):
        print(row.cells())
