"""Digest benchmarks: one digest to 10,000 subscribers.

* Delivery: a whole ``python -m iomfeed digest --send`` process (start, render, personalise,
  ledger, SMTP over one reused connection, the archive's pages after) into an aiosmtpd sink
  running in its own process on 127.0.0.1; messages per second over the process's wall time,
  its CPU time per message, and its peak memory. The baseline is smtplib alone
  (``sendmail``) sending as many ready-made messages of the same size over one connection to
  the same sink, in the same run, just before: the target is 0.95x its rate. Then the same
  send from the same store with ``mail.connections`` = 2 and 4, against the one-connection
  rate (target 1.3x); the sink takes several connections at once, each in its own process.
* Personalising: the 10,000 messages made from the once-inlined digest (subscribers streamed
  from the store), nothing sent. The baseline is what the obvious way costs: building each
  message as an ``EmailMessage`` (measured on 300 and scaled to 10,000).
* DKIM: the first :data:`SIGNED` of those messages personalised and signed (dkimpy,
  rsa-sha256 with a 2048-bit key, relaxed/relaxed: what ``[mail.dkim]`` does to each
  message), beside the same messages personalised unsigned, in the same run; per message.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_ingest import ROOT, Row
from iomfeed.config import load_config
from iomfeed.ingest import upsert
from iomfeed.models import DateSource, Item
from iomfeed.pipeline import composers, digest_content, render_languages
from iomfeed.store import Store
from loopback import SmtpSink, free_port

#: How many messages the DKIM row signs (about 12 ms each here: a sample, not 10,000).
SIGNED = 500


def dkim_row(made: dict[str, Any], subs: list[Any], work: Path) -> Row:
    """Personalise :data:`SIGNED` messages with and without DKIM signing, same run."""
    from iomfeed.delivery.dkim import DkimSigner

    key = work / "dkim.pem"
    rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(
        ["openssl", "genpkey", *rsa, "-out", str(key)],
        check=True,
        capture_output=True,
    )
    signer = DkimSigner(key.read_bytes(), selector="bench", domain="feeds.example.org")
    signer.sign(b"From: a@b.example\r\n\r\nwarm up: import dkimpy\r\n")
    sample = subs[:SIGNED]
    start = time.perf_counter()
    for sub in sample:
        made[sub.language].compose(sub.id, sub.address, sub.name)
    plain = (time.perf_counter() - start) / len(sample)
    start = time.perf_counter()
    for sub in sample:
        signer.sign(made[sub.language].compose(sub.id, sub.address, sub.name).data)
    signed = (time.perf_counter() - start) / len(sample)
    return Row(
        f"digest: personalise + DKIM-sign, per message ({len(sample)})",
        signed * 1000,
        "ms",
        plain * 1000,
        "unsigned",
        "< 20 ms",
        signed < 0.020,
    )


#: The ``mail.connections`` values measured against one connection.
CONNECTIONS = (2, 4)


def whole_send(
    config_path: Path, fresh: Path, subscribers: int, connections: int = 1
) -> tuple[float, float, float]:
    """One whole ``digest --send`` process from the store ``fresh`` (copied over the
    config's database first) with ``connections``: wall seconds, peak MB, CPU seconds."""
    config = load_config(config_path)
    for leftover in ("-wal", "-shm"):
        Path(f"{config.database_path}{leftover}").unlink(missing_ok=True)
    shutil.copyfile(fresh, config.database_path)
    text = config_path.read_text(encoding="utf-8")
    lanes = config_path.with_name(f"config-{connections}.toml")
    lanes.write_text(text.replace("connections = 1", f"connections = {connections}", 1), "utf-8")
    command = [sys.executable, "-m", "iomfeed", "--quiet", "--config", str(lanes)]
    wall, peak, code, cpu = timed_cpu([*command, "digest", "--send"], config_path.parent)
    if code != 0:
        raise SystemExit(f"digest --send failed with exit code {code}")
    with Store(config.database_path) as store:
        record = store.last_digest()
        assert record is not None
        totals = store.delivery_totals(record.id)
    if totals != {"sent": subscribers}:
        raise SystemExit(f"not everyone got the digest: {totals}")
    return wall, peak, cpu


def timed_cpu(command: list[str], cwd: Path) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MB, exit code and CPU seconds (user + system) of one
    process."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), cpu


def make_item(n: int, now: datetime) -> Item:
    body = "".join(
        f"<p>Paragraph {k} of story {n}: IOM Albania worked with partners in"
        f" Tiranë, Durrës and Shkodër on migration governance.</p>"
        for k in range(4)
    )
    return Item(
        source="iom-albania",
        url=f"https://albania.iom.int/news/story-{n}",
        title=f"Story {n}: IOM Albania and partners on migration in the Western Balkans",
        summary_html=body,
        content_html=body,
        published=now - timedelta(hours=7 * n),
        date_source=DateSource.TIME,
        image_url=f"https://albania.iom.int/files/{n}.jpg",
        image_alt=f"Photo of story {n}",
        categories=(("Local", "Global", "Diaspora")[n % 3],),
        language="en",
    )


def write_config(work: Path, port: int) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for old, new in [
        ('transport = "outbox"', 'transport = "smtp"'),
        ('host = "localhost"', 'host = "127.0.0.1"'),
        ("port = 587", f"port = {port}"),
        ('security = "starttls"', 'security = "none"'),
        # a send refuses the example address
        ('public_url = "https://feeds.example.org/', 'public_url = "https://news.iomfeed.test/'),
    ]:
        text = text.replace(old, new, 1)
    path = work / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def smtplib_ceiling(port: int, data: bytes, count: int) -> float:
    import smtplib

    smtp = smtplib.SMTP("127.0.0.1", port)
    assert smtp.sock is not None
    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.perf_counter()
    for n in range(count):
        smtp.sendmail(
            "news@feeds.example.org", [f"r{n}@example.org"], data, mail_options=["BODY=8BITMIME"]
        )
    elapsed = time.perf_counter() - start
    smtp.quit()
    return count / elapsed


def naive_message(subject: str, text: str, html: str, n: int) -> bytes:
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address("IOM Albania news", addr_spec="news@feeds.example.org")
    msg["To"] = Address("Ëlira Hoxha", addr_spec=f"reader{n}@example.org")
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{n}@feeds.example.org>"
    msg["List-Unsubscribe"] = f"<https://feeds.example.org/unsubscribe?t={n}>"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def digest_rows(*, subscribers: int) -> list[Row]:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="iomfeed-bench-digest-") as tmp:
        work = Path(tmp)
        port = free_port()
        config_path = write_config(work, port)
        config = load_config(config_path)
        with Store(config.database_path) as store:
            for n in range(20):
                upsert(store, make_item(n, now), now - timedelta(days=1))
            store.db.execute("BEGIN")
            for n in range(subscribers):
                store.db.execute(
                    "INSERT INTO subscribers (address, name, language, status, subscribed)"
                    " VALUES (?, ?, ?, 'active', ?)",
                    (
                        f"reader{n}@example.org",
                        ("Ëlira Hoxha", "John Smith")[n % 2],
                        ("sq", "en")[n % 2],
                        "2026-01-01T00:00:00Z",
                    ),
                )
            store.db.execute("COMMIT")
            # Personalising, in this process: render and inline once, then 10,000 messages.
            content = digest_content(config, store, now)
            rendered = render_languages(config, content)
            made = composers(config, rendered, digest_id=1, date=now, secret=b"x" * 32)
            start = time.perf_counter()
            size = 0
            for sub in store.subscribers("active"):
                size = len(made[sub.language].compose(sub.id, sub.address, sub.name).data)
            personalise = time.perf_counter() - start
            signing = dkim_row(made, list(store.subscribers("active")), work)
            en = rendered["en"]
            sample = 300
            start = time.perf_counter()
            for n in range(sample):
                naive_message(en.subject, en.text, en.html, n)
            naive = (time.perf_counter() - start) * subscribers / sample

        fresh = work / "fresh.db"  # the store before any send: each send starts from it
        shutil.copyfile(config.database_path, fresh)
        with SmtpSink(port):
            ceiling = smtplib_ceiling(
                port, made["en"].compose(1, "r@example.org", "").data, min(subscribers, 3000)
            )
            wall, peak, cpu = whole_send(config_path, fresh, subscribers)
            lanes = {n: whole_send(config_path, fresh, subscribers, n)[0] for n in CONNECTIONS}
    rate = subscribers / wall
    return [
        Row(
            f"digest: {subscribers} messages of {size / 1000:.0f} KB delivered, whole process",
            rate,
            "msg/s",
            ceiling,
            "smtplib alone",
            ">= 0.95x smtplib",
            rate >= 0.95 * ceiling,
        ),
        Row("digest: --send CPU per message", cpu * 1000 / subscribers, "ms", None, "", "-", True),
        *(
            Row(
                f"digest: the same with mail.connections = {n}, whole process",
                subscribers / lanes[n],
                "msg/s",
                rate,
                "1 connection",
                ">= 1.3x 1 connection",
                subscribers / lanes[n] >= 1.3 * rate,
            )
            for n in CONNECTIONS
        ),
        Row("digest: --send peak memory", peak, "MB", None, "", "< 150 MB", peak < 150),
        Row(
            f"digest: personalise {subscribers} messages",
            personalise * 1000,
            "ms",
            naive * 1000,
            "EmailMessage each",
            "< 1000 ms",
            personalise < 1.0,
        ),
        signing,
    ]


if __name__ == "__main__":
    for row in digest_rows(subscribers=int(sys.argv[1]) if len(sys.argv) > 1 else 10_000):
        print(row.cells())
