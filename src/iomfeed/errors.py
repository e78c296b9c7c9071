"""The one exception root of iomfeed and its tree.

Every error iomfeed raises on purpose derives from :class:`IomfeedError` and says what to
check. Anything else that escapes is a bug.

Every class below is defined here unless its module is named; each is caught by its own
type or by one of its ancestors, never by a standard exception (``ValueError``, ``OSError``)
it might happen to resemble. ``tests/test_code_quality.py`` checks that every exception class
under ``src/iomfeed`` is in this tree and descends from :class:`IomfeedError`.

A standard exception is raised only where a protocol asks for that very type and it is
caught right there: ``argparse.ArgumentTypeError`` from a command-line value's type function
(argparse turns it into a usage error, exit code 2), ``TimeoutError`` from the web server's
request reader (the socket protocol ``http.server`` expects), socket-level errors inside the
HTTP client that it turns into :class:`FetchError`, and the ``TypeError`` guard in
``config.py`` for a settings field of a type the loader does not know (a bug, never a
user's mistake). The development tools under ``demo/`` (the snapshot server and the site
generator) are not part of this contract.

::

    IomfeedError
    ├── ConfigError            bad configuration or usage (exit code 2)
    │   ├── UnknownLanguage    CLDR has no data for a language tag (dates.py)
    │   ├── SecretChanged      not the secret that signed the links already mailed
    │   │                      (digest/unsubscribe.py)
    │   └── ForgottenUnchecked addresses forgotten before the list's own key, hashed with a
    │                          secret not at hand: no add or import (digest/unsubscribe.py)
    ├── InputError             bad input data: an e-mail address, a file to import, a token
    │   │                      (exit code 65, EX_DATAERR)
    │   ├── BadAddress         an e-mail address that cannot be used (says why)
    │   └── BadToken           an unsubscribe, confirmation or preferences token that is
    │                          malformed, forged or expired (digest/unsubscribe.py)
    ├── SourceError            one source could not be read (exit code 1, others go on)
    │   ├── FetchError         network, HTTP status, size, robots.txt
    │   │   ├── RobotsDisallowed
    │   │   └── RobotsUnreachable
    │   ├── ParseError         a page or file did not have the expected shape
    │   │   └── BadRecord      one record of a JSON source (the others are stored)
    │   └── ProxyError         the proxy is unreachable or refused; the client turns it into
    │                          a retry or a FetchError (transport/)
    ├── StoreError             the SQLite store cannot be opened or migrated
    ├── PublishError           a feed file could not be written
    ├── DeliveryError          a message could not be handed over
    │   ├── TemporaryFailure   try again later (delivery/mailers.py)
    │   └── PermanentFailure   this address will not take it (delivery/mailers.py)
    ├── MailboxError           the bounce mailbox (Maildir, IMAP) cannot be read or a message
    │                          marked processed; nothing read is lost (bounces/mailbox.py)
    ├── LookupFailed           a DNS server did not answer ``iomfeed doctor``'s question
    │                          (a timeout, a refusal): the check says it could not tell
    ├── AlreadyRunning         another run holds the lock (exit code 75, lock.py)
    ├── IllegalTransition      a digest asked to move between two states its lifecycle does
    │                          not link (a bug, never a user's mistake: digest/lifecycle.py)
    ├── ExistsError            ``iomfeed init`` would overwrite a file (shipped.py)
    ├── NotWrittenError        ``iomfeed init`` could not write it (shipped.py)
    └── StopRequested          a stop request (SIGTERM) cut an HTTP pause short; the
                               pipeline records the source as stopped, never as failed
"""

from __future__ import annotations


class IomfeedError(Exception):
    """Root of every error iomfeed raises on purpose."""


class ConfigError(IomfeedError):
    """The configuration (or the command line) is wrong; the message names the key."""


class InputError(IomfeedError):
    """Data given to a command is unusable (not the configuration): an e-mail address, a
    file to import that is missing or has no address column, a forged unsubscribe token.
    The message names the value or the file (and line) and what is wrong with it."""


class BadAddress(InputError):
    """An e-mail address that cannot be used; the message says why (not which: the caller
    names the address, the config key or the CSV line)."""


class SourceError(IomfeedError):
    """A source could not be read; the run goes on with the other sources."""


class FetchError(SourceError):
    """An HTTP fetch failed: connection, status, size, redirects or robots.txt."""

    def __init__(self, url: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


class RobotsDisallowed(FetchError):
    """robots.txt forbids fetching this URL; it was skipped."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "disallowed by robots.txt, skipped")


class RobotsUnreachable(FetchError):
    """robots.txt could not be fetched (no connection, a timeout, a server error): the site is
    not crawled this run (RFC 9309 2.3.1.4), and the next run asks again."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(url, f"robots.txt unreachable: {cause}; not crawling this site this run")
        self.cause = cause


class ParseError(SourceError):
    """A page or file did not have the shape the configuration expects."""


class BadRecord(ParseError):
    """One record of a JSON source is unusable; the message says what is wrong with it (the
    caller adds where it is). The source's other records are stored."""


class StoreError(IomfeedError):
    """The store cannot be opened, migrated or written."""


class PublishError(IomfeedError):
    """A published file could not be written; the previous one is intact."""


class DeliveryError(IomfeedError):
    """A message could not be delivered."""


class MailboxError(IomfeedError):
    """The mailbox bounces arrive in cannot be reached, read or updated (a Maildir folder,
    an IMAP server); the message names it and why. A message is marked processed only
    after its effect is stored, so nothing is lost: the next run reads it again."""


class LookupFailed(IomfeedError):
    """A DNS question of ``iomfeed doctor`` got no answer (a timeout, a refusal, no server):
    not the same as "no such record". The message names the name, the type and the
    resolver asked."""


class IllegalTransition(IomfeedError):
    """A digest was asked to move between two states that its lifecycle
    (:mod:`iomfeed.digest.lifecycle`) does not link, such as resuming one already sent. A
    bug, never a user's mistake: the message names both states."""


class StopRequested(IomfeedError):
    """A stop request (SIGTERM, Ctrl-C) arrived while the HTTP client was pausing between
    requests (politeness, Retry-After, backoff). Raised only by the stop-aware pause the
    pipeline gives the client, so the fetch ends at once instead of after the pause; the
    pipeline catches it by this type and records the source as stopped, not failed. Not a
    :class:`SourceError`: a source's own error handling never mistakes it for a failure."""
