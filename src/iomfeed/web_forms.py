"""The web forms of ``iomfeed serve``: ``/subscribe``, ``/confirm`` and ``/preferences``.
Thin: the rules are :mod:`iomfeed.forms` (what a form may hold, tokens, limits),
:mod:`iomfeed.signup` and :mod:`iomfeed.subscriptions` (the lifecycle); the pages are
:mod:`iomfeed.web_pages`'. A GET never changes anything (link scanners prefetch them).

Nobody learns from ``POST /subscribe`` who is on the list: the answer is one page, the same
bytes for a new, pending, confirmed, unsubscribed or forgotten address, for a filled-in
honeypot and for a sign-up over the rate limits. The request's own work is the same too
(read, check the token and the syntax, count the rate limits, hand over): the sign-up itself
(the store's lookup, the confirmation or "already subscribed" message and its limits) is
done by :class:`SignUpWorker`'s thread after the answer, so the time an answer takes does not
depend on who is on the list either. What is handed over is kept in the store first, so a
process killed before its worker got to it loses no sign-up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .config import Config
from .digest.unsubscribe import BadToken
from .errors import IomfeedError
from .forms import (
    HONEYPOT,
    SignUpForm,
    TokenCheck,
    admit,
    check_form_token,
    check_sign_up,
    form_token,
    read_sign_up,
    sign_up_view,
)
from .runtime import open_runtime
from .web_pages import Answer, Pages

if TYPE_CHECKING:
    from .runtime import Runtime
    from .store import Store
    from .store.records import QueuedSignUp

log = logging.getLogger(__name__)

#: The largest form body read (413 beyond it), whatever the WSGI server allows.
MAX_FORM_BYTES = 10_000
#: Sign-ups waiting for the worker at most; beyond it one is dropped (logged), the answer
#: the same.
QUEUE_SIZE = 256
#: A claimed sign-up not done after this was being done by a worker that died (on another
#: host: one of this host is known to be gone at once): taken up again. Longer than a
#: sign-up can take with a slow relay (each SMTP step may wait mail.timeout).
LEASE = timedelta(minutes=30)
#: How often an idle worker looks for sign-ups another process left (or a crash did).
POLL_SECONDS = 60.0

Fields = Mapping[str, Sequence[str]]


def read_fields(environ: Mapping[str, Any]) -> Fields | None:
    """A POST's form fields; None when the body is larger than :data:`MAX_FORM_BYTES`
    (also a body of unknown length, as a chunked one reaches gunicorn's app)."""
    raw = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    try:
        length = int(raw) if raw else -1
    except ValueError:
        length = -1
    if length > MAX_FORM_BYTES:
        return None
    body = stream.read(length) if length >= 0 else stream.read(MAX_FORM_BYTES + 1)
    if len(body) > MAX_FORM_BYTES:
        return None
    content_type = str(environ.get("CONTENT_TYPE") or "")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_fields(content_type, body)
    # No cap on the number of fields: the size cap bounds them, and parse_qs's cap raised
    # (a 500) where the fields it did not want could simply be left unread.
    return parse_qs(body.decode("utf-8", "replace"))


def _multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The text fields of a ``multipart/form-data`` body (RFC 7578), which RFC 8058 says a
    one-click request SHOULD be sent as; what cannot be read gives no fields."""
    import email.parser
    import email.policy

    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, list[str]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name, []).append(payload.decode("utf-8", "replace").strip())
    return fields


def query_fields(environ: Mapping[str, Any]) -> Fields:
    """A GET's query fields; none from a query longer than :data:`MAX_FORM_BYTES` (a link
    of ours is far shorter, and a link rewriter's extra parameters are only unread)."""
    query = environ.get("QUERY_STRING", "")
    return parse_qs(query) if len(query) <= MAX_FORM_BYTES else {}


def first(fields: Fields, name: str) -> str:
    return (fields.get(name) or [""])[0].strip()


@dataclass(frozen=True, slots=True)
class SignUpJob:
    address: str
    name: str
    language: str
    categories: tuple[str, ...]
    ip: str


class SignUpWorker:
    """Signs people up in a thread of its own, one after another, after their answer.

    A sign-up handed over is a row of the store's queue before the answer goes out, and
    leaves it only once done, so a process killed in between loses none: the next worker
    (this process's, restarted, or another process's) takes it up. A row being worked on
    is claimed; a claim by a process of this host that is gone, or one older than
    :data:`LEASE` (a worker on another host), is taken to be a worker that died.
    """

    def __init__(self, config: Config, now: Callable[[], datetime]) -> None:
        self.config = config
        self.now = now
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, store: Store, job: SignUpJob) -> None:
        """Keep ``job`` in the store's queue (in the request) and wake the worker. The
        client's address is kept only as the consent record keeps it (``record_ip``)."""
        from .consent import truncate_ip

        ip = truncate_ip(job.ip) if job.ip and self.config.subscribe.record_ip else ""
        kept = store.queue_sign_up(
            address=job.address,
            name=job.name,
            language=job.language,
            categories=job.categories,
            ip=ip,
            now=self.now(),
            limit=QUEUE_SIZE,
        )
        if not kept:
            log.warning("sign-up dropped: %d already waiting", QUEUE_SIZE)
        self.start()
        self._wake.set()

    def start(self) -> None:
        """Start the thread (once): it takes up what is waiting, then what comes."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sign-up", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self._one()
            except Exception:  # a thread of its own: log the bug, try again later
                log.exception("sign-up worker")
                worked = False
            if not worked:
                # Woken by a submit, or now and then for what another process left.
                self._wake.wait(POLL_SECONDS)
                self._wake.clear()

    def _one(self) -> bool:
        """Take one waiting sign-up and do it; False when none waits."""
        with open_runtime(self.config, clock=self.now) as rt:
            dead = [w for w in rt.store.sign_up_claimers() if _gone(w)]
            queued = rt.store.claim_sign_up(rt.clock(), LEASE, worker=_me(), dead=dead)
            if queued is None:
                return False
            try:
                if not rt.store.sign_up_forgotten(queued.id):
                    self._sign_up(rt, queued)
            except Exception:  # not this sign-up again and again: logged, dropped
                log.exception("sign-up failed")
            from .subscriptions import forget

            # Forgotten on request while it was being done: what it added is erased before
            # its row goes, so whoever waits for the queue to empty never finds it.
            erased = rt.store.sign_up_forgotten(queued.id, gone=False)
            if erased:
                forget(rt.store, self.config, queued.address, rt.clock())
            if rt.store.finish_sign_up(queued.id) and not erased:  # done; forgotten just now
                forget(rt.store, self.config, queued.address, rt.clock())
        return True

    def _sign_up(self, rt: Runtime, job: QueuedSignUp) -> None:
        from .consent import ConsentVia
        from .signup import sign_up

        mailer = rt.mailer()
        try:
            done = sign_up(
                rt.store,
                self.config,
                mailer,
                address=job.address,
                name=job.name,
                language=job.language,
                categories=job.categories,
                via=ConsentVia.WEB_FORM,
                now=rt.clock(),
                ip=job.ip or None,
                retaken=job.retaken,
            )
        except IomfeedError as exc:
            log.warning("sign-up not done: %s", exc)
            return
        finally:
            mailer.close()
        log.info("web sign-up: subscriber %d: %s", done.subscriber_id, done.outcome.value)

    def drain(self, timeout: float) -> bool:
        """Wait until no sign-up waits in the store (every one handed over is done);
        False if ``timeout`` passed."""
        import time

        deadline = time.monotonic() + timeout
        with open_runtime(self.config, clock=self.now) as rt:
            while rt.store.queued_sign_ups():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
        return True

    def close(self, timeout: float = 30) -> None:
        """Finish the sign-ups waiting (up to ``timeout`` seconds), then stop; any still
        waiting then stay in the store for the next worker."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        if not self.drain(timeout):
            log.warning("stopping with sign-ups waiting: the next start takes them up")
        self._stop.set()
        self._wake.set()
        thread.join(timeout)


def _host() -> str:
    """This host and process-id space: two containers with one host name but processes of
    their own have different pid namespaces, and cannot tell each other's pids apart."""
    import os
    import socket

    try:
        space = os.readlink("/proc/self/ns/pid")
    except OSError:
        space = ""
    return f"{socket.gethostname()}:{space}"


def _me() -> str:
    import os

    return f"{_host()}:{os.getpid()}"


def _gone(worker: str) -> bool:
    """Whether ``worker`` (``host:pid namespace:pid``) is a process of this host and pid
    namespace that no longer runs (any other's, or a pid now reused, waits for the lease)."""
    import os

    host, _, pid = worker.rpartition(":")
    if host != _host() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # (PermissionError: it runs, as another user)
        return False
    return False


class Forms:
    """The answers of ``/subscribe`` and ``/confirm`` (``/preferences`` is
    :class:`~iomfeed.web_preferences.Preferences`'); ``now`` is the clock."""

    def __init__(self, config: Config, now: Callable[[], datetime]) -> None:
        self.config = config
        self.now = now
        from .web_preferences import Preferences  # (it imports this module's helpers)

        self.pages = Pages(config)
        self.worker = SignUpWorker(config, now)
        self.preferences = Preferences(config, now, self.pages)

    def _secret(self, store: Store) -> bytes:
        from .digest.unsubscribe import load_secret

        return load_secret(self.config, store)

    # ------------------------------------------------------------------ /subscribe

    def subscribe_get(self, query: Fields) -> Answer:
        lang = self.pages.lang(first(query, "lang"))
        return self._sign_up_page("200 OK", lang, None, {}, note="")

    def _sign_up_page(
        self,
        status: str,
        lang: str,
        form: SignUpForm | None,
        errors: Mapping[str, str],
        note: str,
        *,
        switch: bool = True,
    ) -> Answer:
        with open_runtime(self.config, clock=self.now) as rt:
            token = form_token(self._secret(rt.store), self.config.list_id, rt.clock())
        words = self.pages.words(lang)
        view = sign_up_view(
            self.config,
            action=self.pages.subscribe_path,
            lang=lang,
            token=token,
            form=form,
            errors=errors,
        )
        heading = words.step_title if note else words.subscribe_title
        notes = [("warning", getattr(words, note))] if note == "step_expired" else []
        lead = words.step_lead if note else words.subscribe_lead
        return self.pages.render(
            status,
            lang,
            heading.replace("{list}", self.pages.list_name(lang)),
            notes=notes,
            paragraphs=[lead],
            form=view,
            switch=switch,
        )

    def subscribe_post(self, fields: Fields, client: str) -> Answer:
        form = read_sign_up(fields, self.config)
        lang = self.pages.lang(first(fields, "lang"), form.language)
        checked = check_sign_up(form, self.config)
        with open_runtime(self.config, clock=self.now) as rt:
            now = rt.clock()
            secret = self._secret(rt.store)
            check = check_form_token(
                secret,
                self.config.list_id,
                form.token,
                now,
                min_seconds=self.config.subscribe.form_min_seconds,
                hours=self.config.subscribe.form_hours,
            )
            if check is not TokenCheck.OK or checked.errors:
                if check is not TokenCheck.OK:
                    log.info("sign-up form not acted on: token %s", check.value)
                note = {TokenCheck.OK: "", TokenCheck.MISSING: "step_lead"}.get(
                    check, "step_expired"
                )
                bad = checked.errors or check not in (TokenCheck.OK, TokenCheck.MISSING)
                status = "400 Bad Request" if bad else "200 OK"
                return self._sign_up_page(status, lang, form, checked.errors, note, switch=False)
            if form.honeypot:
                log.info("sign-up not acted on: the %r field was filled in", HONEYPOT)
            elif not admit(
                rt.store, self.config, secret, client=client, address=checked.address, now=now
            ):
                log.info("sign-up not acted on: over the rate limits")
            else:
                self.worker.submit(
                    rt.store,
                    SignUpJob(
                        checked.address, form.name, form.language, checked.categories, client
                    ),
                )
        return self.pages.message(
            "200 OK",
            lang,
            "sent_title",
            ("sent_lead", "sent_note"),
            values={"address": form.address},
            switch=False,
        )

    # ------------------------------------------------------------------ /confirm

    def confirm_get(self, query: Fields) -> Answer:
        """The page with the one button; changes nothing."""
        from .consent import State
        from .signup import confirm_holder, preferences_url

        token = first(query, "t")
        with open_runtime(self.config, clock=self.now) as rt:
            try:
                profile = confirm_holder(rt.store, self.config, token, rt.clock())
            except BadToken as exc:
                log.info("confirmation page refused: %s", exc)
                return self.pages.invalid(self.pages.lang(first(query, "lang")))
            lang = self.pages.lang(first(query, "lang"), profile.language)
            keep = {"t": token}
            values = {"address": profile.address}
            if profile.state is State.ACTIVE:
                link = self._preferences_link(lang, preferences_url(self.config, rt.store, profile))
                return self.pages.message(
                    "200 OK",
                    lang,
                    "confirmed_title",
                    ("confirmed_already",),
                    query=keep,
                    values=values,
                    link=link,
                )
            if profile.state is not State.PENDING:
                return self.pages.message(
                    "200 OK", lang, "invalid_title", ("not_pending",), query=keep, values=values
                )
        button = {
            "action": self.pages.confirm_path,
            "token": token,
            "label": self.pages.words(lang).confirm_button,
        }
        return self.pages.message(
            "200 OK",
            lang,
            "confirm_title",
            ("confirm_lead",),
            query=keep,
            values=values,
            button=button,
        )

    def _preferences_link(self, lang: str, url: str) -> dict[str, str]:
        """The preferences link, as a same-origin path."""
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return {
            "href": f"{parts.path}?{parts.query}",
            "label": self.pages.words(lang).preferences_link,
        }

    def confirm_post(self, fields: Fields) -> Answer:
        from .signup import ConfirmOutcome, confirm

        token = first(fields, "t")
        with open_runtime(self.config, clock=self.now) as rt:
            mailer = rt.mailer()
            try:
                done = confirm(rt.store, self.config, mailer, token, rt.clock())
            except BadToken as exc:
                log.info("confirmation refused: %s", exc)
                return self.pages.invalid(self.pages.lang(first(fields, "lang")))
            finally:
                mailer.close()
            profile = rt.store.profile(address=done.address)
        lang = self.pages.lang(first(fields, "lang"), profile.language if profile else "")
        values = {"address": done.address}
        if done.outcome is ConfirmOutcome.NOT_PENDING:
            return self.pages.message(
                "200 OK", lang, "invalid_title", ("not_pending",), values=values, switch=False
            )
        key = "confirmed_lead" if done.outcome is ConfirmOutcome.CONFIRMED else "confirmed_already"
        link = self._preferences_link(lang, done.preferences_url)
        return self.pages.message(
            "200 OK", lang, "confirmed_title", (key,), values=values, link=link, switch=False
        )


def client_address(environ: Mapping[str, Any], trusted_proxy: str) -> str:
    """The client's address as ``serve.trusted_proxy`` has it: waitress has already put a
    trusted proxy's ``X-Forwarded-For`` into ``REMOTE_ADDR``; another WSGI server
    (gunicorn) leaves the proxy's address there, so a request from the trusted proxy is
    taken to come from the last address its ``X-Forwarded-For`` names."""
    remote = str(environ.get("REMOTE_ADDR") or "")
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
    if trusted_proxy and forwarded and trusted_proxy in ("*", remote):
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return remote
