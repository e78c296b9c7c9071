"""Where bounces arrive: a Maildir folder or an IMAP mailbox. Reads new messages and marks
each processed when told to; never deletes one.

- **Maildir** (what Postfix, Dovecot or procmail deliver into): the messages in ``new/``
  and those in ``cur/`` not yet flagged seen; a processed one is renamed into ``cur/``
  with the seen flag (``:2,S``, the standard info suffix), so a mail client shows it read.
- **IMAP** (imaplib): the unseen messages of ``bounces.imap_folder``, fetched with
  ``BODY.PEEK[]`` (which leaves them unseen); a processed one is flagged ``\\Seen`` and,
  with ``bounces.imap_done_folder``, moved there (RFC 6851 MOVE; a server without it keeps
  the message where it is, flagged). TLS by default (``imap_security``: ``tls``,
  ``starttls``, or ``none`` for a server on this host only); the password from the
  variable ``bounces.imap_password_env`` names.

Keep the mailbox for iomfeed alone: a message someone else marks read first is not read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError, MailboxError

if TYPE_CHECKING:
    import imaplib
    import ssl

    from ..config import BouncesConfig, Config

log = logging.getLogger(__name__)

#: A message larger than this is not a bounce worth reading (kept, marked processed).
MAX_MESSAGE_BYTES = 10_000_000


@dataclass(frozen=True, slots=True)
class Incoming:
    key: str  # where the mailbox keeps it: a file name, an IMAP UID
    raw: bytes


class Mailbox(Protocol):
    where: str

    def messages(self) -> Iterator[Incoming]: ...

    def done(self, key: str) -> None: ...

    def close(self) -> None: ...


class MaildirBox:
    """A Maildir folder (``cur/``, ``new/``, ``tmp/``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        for sub in ("new", "cur"):
            if not (path / sub).is_dir():
                raise MailboxError(
                    f"bounces.maildir: {path} is not a Maildir folder (it has no {sub}/)"
                )

    def _pending(self) -> list[Path]:
        try:
            new = sorted((self.path / "new").iterdir())
            cur = sorted(p for p in (self.path / "cur").iterdir() if "S" not in _flags(p.name))
        except OSError as exc:
            raise MailboxError(f"bounces.maildir: cannot list {self.path}: {exc}") from exc
        return [p for p in (*new, *cur) if not p.name.startswith(".")]

    def messages(self) -> Iterator[Incoming]:
        for path in self._pending():
            key = f"{path.parent.name}/{path.name}"
            try:
                with path.open("rb") as f:
                    raw = f.read(MAX_MESSAGE_BYTES + 1)
            except FileNotFoundError:
                continue  # another reader took it meanwhile
            except OSError as exc:
                raise MailboxError(f"bounces.maildir: cannot read {path}: {exc}") from exc
            yield Incoming(key, raw)

    def done(self, key: str) -> None:
        sub, _, name = key.partition("/")
        base, _, info = name.partition(":2,")
        flags = "".join(sorted(set(info) | {"S"}))
        source = self.path / sub / name
        target = self.path / "cur" / f"{base}:2,{flags}"
        try:
            os.replace(source, target)
        except OSError as exc:
            raise MailboxError(f"bounces.maildir: cannot mark {source} processed: {exc}") from exc

    def close(self) -> None:
        pass


def _flags(name: str) -> str:
    return name.partition(":2,")[2]


class ImapBox:
    """One IMAP mailbox, logged in once per run."""

    def __init__(self, cfg: BouncesConfig, *, password: str, ca_file: Path | None) -> None:
        self.cfg = cfg
        self.where = f"{cfg.imap_host}:{cfg.imap_port}/{cfg.imap_folder}"
        self._imap = _connect(cfg, password, ca_file)
        self._move = "MOVE" in self._capabilities()

    def _capabilities(self) -> set[str]:
        """Asked again after the login: a server offers more to a logged-in client."""
        import imaplib

        try:
            typ, data = self._imap.capability()
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP {self.where}: CAPABILITY failed: {exc}") from exc
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace")
        return set(words.upper().split()) if typ == "OK" else set()

    def _call(self, what: str, *args: str) -> list[object]:
        import imaplib

        try:
            typ, data = self._imap.uid(what, *args)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"IMAP {self.where}: {what} failed: {exc}") from exc
        if typ != "OK":
            raise MailboxError(f"IMAP {self.where}: {what} answered {typ}: {data!r}")
        return list(data)

    def messages(self) -> Iterator[Incoming]:
        found = self._call("SEARCH", "UNSEEN")
        uids = b" ".join(d for d in found if isinstance(d, bytes)).split()
        for uid in uids:
            key = uid.decode("ascii")
            data = self._call("FETCH", key, "(BODY.PEEK[])")
            raw = next((d[1] for d in data if isinstance(d, tuple) and len(d) == 2), None)
            if isinstance(raw, bytes):
                yield Incoming(key, raw[: MAX_MESSAGE_BYTES + 1])

    def done(self, key: str) -> None:
        self._call("STORE", key, "+FLAGS.SILENT", r"(\Seen)")
        if self.cfg.imap_done_folder and self._move:
            self._call("MOVE", key, _quote(self.cfg.imap_done_folder))

    def close(self) -> None:
        try:
            self._imap.logout()
        except Exception:  # the connection is gone already: nothing to close
            log.debug("IMAP %s: logout failed", self.where, exc_info=True)


def _quote(name: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", name) + '"'


def _context(ca_file: Path | None) -> ssl.SSLContext:
    import ssl

    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _connect(cfg: BouncesConfig, password: str, ca_file: Path | None) -> imaplib.IMAP4:
    import imaplib
    import ssl

    where = f"{cfg.imap_host}:{cfg.imap_port}"
    imap: imaplib.IMAP4 | None = None
    try:
        if cfg.imap_security == "tls":
            imap = imaplib.IMAP4_SSL(
                cfg.imap_host,
                cfg.imap_port,
                ssl_context=_context(ca_file),
                timeout=cfg.imap_timeout,
            )
        else:
            imap = imaplib.IMAP4(cfg.imap_host, cfg.imap_port, timeout=cfg.imap_timeout)
            if cfg.imap_security == "starttls":
                imap.starttls(ssl_context=_context(ca_file))
        imap.login(cfg.imap_user, password)
        typ, data = imap.select(_quote(cfg.imap_folder))
        if typ != "OK":
            raise MailboxError(f"IMAP {where}: no folder {cfg.imap_folder!r}: {data!r}")
    except (imaplib.IMAP4.error, ssl.SSLError, OSError) as exc:
        if imap is not None:
            with contextlib.suppress(OSError):  # a failed STARTTLS leaves a closed socket
                imap.shutdown()
        raise MailboxError(f"IMAP {where} (user {cfg.imap_user!r}): {exc}") from exc
    return imap


def open_mailbox(config: Config) -> Mailbox:
    """The mailbox ``[bounces]`` names; a ConfigError when there is none."""
    b = config.bounces
    if config.maildir_path is not None:
        return MaildirBox(config.maildir_path)
    if not b.imap_host:
        raise ConfigError("bounces: no mailbox configured (set bounces.maildir or imap_host)")
    password = os.environ.get(b.imap_password_env, "")
    if not password:
        raise ConfigError(
            f"bounces.imap_password_env: the environment variable {b.imap_password_env} is"
            f" not set (the IMAP password of {b.imap_user!r})"
        )
    ca_file = config.path(b.imap_ca_file) if b.imap_ca_file else None
    return ImapBox(b, password=password, ca_file=ca_file)
