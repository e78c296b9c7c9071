"""The HTTP side of ``iomfeed serve``: one WSGI application, runnable under any WSGI server.

* the published ``feeds/`` folder, with the feed formats' own content types, ``ETag`` and
  ``Last-Modified``, ``304 Not Modified`` on conditional requests, and gzip when asked for;
* ``/unsubscribe?t=TOKEN``: a GET shows a confirmation page (in the subscriber's language)
  whose button POSTs; a POST (the button, or a mailbox provider's RFC 8058
  ``List-Unsubscribe=One-Click``) unsubscribes at once and answers 200, never a redirect;
  a forged or malformed token gets 400 and changes nothing; ``iomfeed doctor``'s probe
  token (signed, naming nobody) gets 200 and changes nothing;
* ``/healthz``: JSON about sources, digests and the schedule; 503 when something is wrong;
* ``/subscribe``, ``/confirm?t=…``, ``/preferences?t=…``: the web forms, answered by
  :mod:`iomfeed.web_forms` and :mod:`iomfeed.web_preferences` (a GET never changes anything).

It reads and writes only through the runtime's store (one connection per request), leaves the
rules of unsubscribing and signing up to :mod:`iomfeed.subscriptions` and
:mod:`iomfeed.signup`, and sends mail only through them (the sign-up's after its answer).
:mod:`iomfeed.web_server` runs it on waitress for ``serve`` (and the demo); :func:`make_app`
builds it for any other WSGI server (``gunicorn 'iomfeed.web:make_app()'``, see the README).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .clock import utc_now
from .config import Config, load_config
from .digest.unsubscribe import BadToken
from .errors import ConfigError
from .runtime import open_runtime
from .subscriptions import Via, leave, token_holder

if TYPE_CHECKING:
    from .store import Store
    from .web_forms import Forms

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = Mapping[str, Any]

CONTENT_TYPES = {
    "atom.xml": "application/atom+xml; charset=utf-8",
    "rss.xml": "application/rss+xml; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",  # archive pages
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
#: The form pages, at ``/<name>`` and under ``site.public_url``'s path.
FORM_PAGES = ("subscribe", "confirm", "preferences")
#: the answer to ``iomfeed doctor``'s one-click probe (for the program, not a person)
PROBE_ANSWER = "one-click unsubscribe works; a probe: nobody was unsubscribed\n"
MAX_PATH_CHARS = 1024  # the longest published path is far shorter; longer ones are 404
GZIP_MIN_BYTES = 512
#: The unsubscribe pages: their heading and paragraphs (keys of a language file's
#: ``[unsubscribe]`` table).
PAGES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "invalid": ("invalid_title", ("invalid",)),
    "confirm": ("title", ("confirm", "explain")),
    "already": ("done_title", ("already",)),
    "done": ("done_title", ("done",)),
}


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def stat_is_file(stat: os.stat_result) -> bool:
    import stat as st

    return st.S_ISREG(stat.st_mode)


def content_type(path: Path) -> str | None:
    return CONTENT_TYPES.get(path.name) or CONTENT_TYPES.get(path.suffix)


@lru_cache(maxsize=16)
def _strings(code: str, folder: Path | None) -> dict[str, str]:
    """The unsubscribe pages' words in language ``code`` (its language file)."""
    from . import languages

    words = languages.load(code, folder).unsubscribe
    return {key: getattr(words, key) for key in languages.UNSUBSCRIBE_KEYS}


@lru_cache(maxsize=1)
def _page_template() -> Any:
    from .publish.site import environment

    return environment().get_template("web/unsubscribe.html.j2")


class App:
    """The WSGI application. ``now`` and ``next_times`` are injected (the scheduler knows
    when its jobs run next)."""

    def __init__(
        self,
        config: Config,
        *,
        now: Callable[[], datetime],
        next_times: Callable[[], Mapping[str, datetime | None]] | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.next_times = next_times
        self.root = config.feeds_path.resolve()
        self.prefix = urlsplit(config.site.public_url).path.rstrip("/")
        self.unsubscribe_path = urlsplit(config.unsubscribe_url).path
        self._forms: Forms | None = None
        self._lock = threading.Lock()

    @property
    def forms(self) -> Forms:
        """The sign-up, confirmation and preferences pages (:mod:`iomfeed.web_forms`),
        made on first use."""
        with self._lock:
            if self._forms is None:
                from .web_forms import Forms

                self._forms = Forms(self.config, self.now)
            return self._forms

    def resume_sign_ups(self) -> bool:
        """Start the sign-up worker when sign-ups wait in the store (a process before this
        one was killed with some): ``serve`` calls it at start. Whether any waited."""
        from .runtime import open_runtime

        with open_runtime(self.config, clock=self.now) as rt:
            waiting = rt.store.queued_sign_ups()
        if waiting:
            log.info("%d web sign-up(s) left waiting: taking them up", waiting)
            self.forms.worker.start()
        return bool(waiting)

    def close(self, timeout: float = 30) -> None:
        """Finish the sign-ups handed over to the background worker (up to ``timeout``)."""
        if self._forms is not None:
            self._forms.worker.close(timeout)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        try:
            if path in ("/unsubscribe", self.unsubscribe_path):
                return self.unsubscribe(environ, start_response, method)
            if path == "/healthz":
                return self.healthz(start_response, method)
            form = self._form_page(path)
            if form:
                return self.form_page(environ, start_response, method, form)
            if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
                path = path[len(self.prefix) :] or "/"
            return self.static(environ, start_response, method, path)
        except ConfigError as exc:  # the operator's to fix (a lost secret): one line, 503
            log.error("cannot answer %s %.200s: configuration error: %s", method, path, exc)
            return self._unavailable(environ, start_response, method)
        except Exception:  # an entry point: log the bug, answer 500, keep serving
            log.exception("error answering %s %.200s", method, path)  # (paths can be long)
            return self._plain(
                start_response,
                "500 Internal Server Error",
                "internal error; see the service's log\n",
            )

    # ----------------------------------------------------------------- helpers

    def _unavailable(
        self, environ: Environ, start_response: StartResponse, method: str
    ) -> list[bytes]:
        """503 while the configuration needs the operator: for the person who followed a
        link, a page in their language (``?lang=``) that says nothing changed; plain text
        if even that page cannot be made."""
        from .web_forms import query_fields
        from .web_pages import RETRY_LATER

        try:
            answer = self.forms.pages.unavailable(query_fields(environ))
        except Exception:  # (an entry point's last answer: nothing more to go wrong)
            log.debug("no page for the 503", exc_info=True)
            text = "temporarily unavailable; please try again later\n"
            return self._plain(start_response, "503 Service Unavailable", text, [RETRY_LATER])
        return answer.send(start_response, method)

    @staticmethod
    def _plain(
        start_response: StartResponse,
        status: str,
        text: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = text.encode("utf-8")
        start_response(
            status,
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
            + (headers or []),
        )
        return [body]

    # ----------------------------------------------------------------- forms

    def _form_page(self, path: str) -> str:
        """'subscribe', 'confirm' or 'preferences' when ``path`` names one ('' else)."""
        for name in FORM_PAGES:
            if path in (f"/{name}", f"{self.prefix}/{name}"):
                return name
        return ""

    def form_page(
        self, environ: Environ, start_response: StartResponse, method: str, name: str
    ) -> list[bytes]:
        """GET (and HEAD) shows a page and changes nothing; POST acts (see web_forms)."""
        from .web_forms import client_address, query_fields, read_fields

        if method not in ("GET", "HEAD", "POST"):
            return self._plain(
                start_response,
                "405 Method Not Allowed",
                "GET or POST\n",
                [("Allow", "GET, HEAD, POST")],
            )
        forms = self.forms
        if method == "POST":
            fields = read_fields(environ)
            if fields is None:  # in the page's language, as its form's action URL says it
                shown = forms.pages.lang(*query_fields(environ).get("lang", []))
                answer = forms.pages.message(
                    "413 Content Too Large", shown, "step_title", ("too_large",)
                )
            elif name == "subscribe":
                client = client_address(environ, self.config.serve.trusted_proxy)
                answer = forms.subscribe_post(fields, client)
            elif name == "confirm":
                answer = forms.confirm_post(fields)
            else:
                answer = forms.preferences.post(fields)
        else:
            query = query_fields(environ)
            get = {
                "subscribe": forms.subscribe_get,
                "confirm": forms.confirm_get,
                "preferences": forms.preferences.get,
            }[name]
            answer = get(query)
        return answer.send(start_response, method)

    # ----------------------------------------------------------------- feeds

    def static(
        self, environ: Environ, start_response: StartResponse, method: str, path: str
    ) -> list[bytes]:
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response,
                "405 Method Not Allowed",
                "GET or HEAD only\n",
                [("Allow", "GET, HEAD")],
            )
        found = self._lookup(path)
        if found is None:
            return self._plain(start_response, "404 Not Found", "not found\n")
        target, stat, kind = found
        tag = hashlib.sha1(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:20]
        modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
        wants_gzip = (
            accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", "")) and stat.st_size >= GZIP_MIN_BYTES
        )
        etag = f'"{tag}-gz"' if wants_gzip else f'"{tag}"'
        headers = [
            ("Content-Type", kind),
            ("ETag", etag),
            ("Last-Modified", format_datetime(modified, usegmt=True)),
            ("Cache-Control", "public, max-age=300"),
            ("Vary", "Accept-Encoding"),
        ]
        if self._not_modified(environ, tag, modified):
            start_response("304 Not Modified", headers)
            return []
        data = target.read_bytes()
        if wants_gzip:
            data = gzip.compress(data, compresslevel=6, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(data))))
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [data]

    def _lookup(self, path: str) -> tuple[Path, os.stat_result, str] | None:
        """The published file a request path names, with its stat and content type; None
        for anything else. Odd paths (too long, NUL bytes, dot segments, ``..`` however it
        was encoded, a file asked for as a folder) are answered 404, never an error."""
        if len(path) > MAX_PATH_CHARS or "\0" in path:
            return None
        parts = [p for p in path.split("/") if p]
        # WSGI servers decode %2F and %2E before this, so "..%2F" arrives as "../".
        if any(p.startswith(".") or len(p.encode("utf-8", "replace")) > 255 for p in parts):
            return None
        try:
            target = self.root.joinpath(*parts) if parts else self.root
            if target.is_dir():
                target = target / "index.html"
            elif path.endswith("/"):
                return None  # "/atom.xml/": a file is not a folder
            target = target.resolve()
            target.relative_to(self.root)  # a symlink out of the folder: ValueError
            stat = target.stat()
        except (ValueError, OSError):
            return None
        kind = content_type(target)
        if kind is None or not stat_is_file(stat):
            return None
        return target, stat, kind

    @staticmethod
    def _not_modified(environ: Environ, tag: str, modified: datetime) -> bool:
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            wanted = {m.strip().removeprefix("W/") for m in match.split(",")}
            return "*" in wanted or bool(wanted & {f'"{tag}"', f'"{tag}-gz"'})
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if since:
            try:
                return modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
        return False

    # ----------------------------------------------------------------- health

    def healthz(self, start_response: StartResponse, method: str) -> list[bytes]:
        from .health import check
        from .jsonout import dumps

        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", "GET only\n", [("Allow", "GET, HEAD")]
            )
        with open_runtime(self.config, clock=self.now) as rt:
            health = check(
                self.config,
                rt.store,
                rt.clock(),
                next_times=self.next_times() if self.next_times else None,
            )
        body = dumps(health).encode() + b"\n"
        start_response(
            "200 OK" if health.ok else "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [] if method == "HEAD" else [body]

    # ----------------------------------------------------------------- unsubscribe

    def unsubscribe(
        self, environ: Environ, start_response: StartResponse, method: str
    ) -> list[bytes]:
        """GET (and HEAD): the confirmation page, changing nothing; POST (the page's button
        or a mailbox's one-click request): unsubscribed at once, 200 either way."""
        if method not in ("GET", "HEAD", "POST"):
            return self._plain(
                start_response,
                "405 Method Not Allowed",
                "GET or POST\n",
                [("Allow", "GET, HEAD, POST")],
            )
        from .web_forms import read_fields

        # A POST without a length (chunked, under gunicorn) is the page's button: not read.
        form = read_fields(environ) if method == "POST" and environ.get("CONTENT_LENGTH") else {}
        if form is None:
            return self._plain(start_response, "413 Content Too Large", "too large\n")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        token = (form.get("t") or query.get("t") or [""])[0]
        head = method == "HEAD"
        with open_runtime(self.config, clock=self.now) as rt:
            if method == "POST" and self._probe(rt.store, token):
                return self._plain(start_response, "200 OK", PROBE_ANSWER)
            try:
                sub = token_holder(rt.store, self.config, token)
                refused = "no such subscriber"
            except BadToken as exc:
                sub, refused = None, str(exc)
            if sub is None:
                log.info("unsubscribe refused: %s", refused)
                # Not in the named subscriber's language: the token did not prove who it is.
                lang = self.config.site.language
                return self._page(start_response, "400 Bad Request", lang, "invalid", head=head)
            if method != "POST":
                shown = "confirm" if sub.status == "active" else "already"
                return self._page(
                    start_response, "200 OK", sub.language, shown, sub.address, token, head
                )
            one_click = form.get("List-Unsubscribe") == ["One-Click"]
            if not leave(rt.store, sub, Via.ONE_CLICK if one_click else Via.PAGE, rt.clock()):
                return self._page(start_response, "200 OK", sub.language, "already", sub.address)
        log.info("unsubscribed %s (%s)", sub.address, "one-click" if one_click else "page")
        return self._page(start_response, "200 OK", sub.language, "done", sub.address)

    def _probe(self, store: Store, token: str) -> bool:
        """Whether ``token`` is ``iomfeed doctor``'s probe (signed with this list's secret,
        naming nobody): answered 200, changing nothing."""
        from .digest.unsubscribe import PROBE_PREFIX, is_probe, load_secret

        if not token.startswith(PROBE_PREFIX):
            return False
        return is_probe(load_secret(self.config, store), self.config.list_id, token)

    def _page(
        self,
        start_response: StartResponse,
        status: str,
        lang: str,
        page: str,
        address: str = "",
        token: str = "",
        head: bool = False,
    ) -> list[bytes]:
        """One of :data:`PAGES`; with a ``token``, the confirmation form that POSTs it."""
        heading, paragraphs = PAGES[page]
        token = token if page == "confirm" else ""
        if lang not in self.config.digest.languages:
            lang = self.config.digest.languages[0]
        strings = _strings(lang, self.config.languages_path)
        list_name = self.config.digest.title.get(lang)
        values = {"address": address, "list": list_name}
        html = (
            _page_template()
            .render(
                lang=lang,
                heading=strings[heading],
                paragraphs=[strings[p].format(**values) for p in paragraphs],
                form=bool(token),
                token=token,
                action=self.unsubscribe_path or "/unsubscribe",
                button=strings["button"],
                list_name=list_name,
            )
            .encode("utf-8")
        )
        from .web_pages import Answer

        # The forms' headers: a page with one button that acts must not be framed (and
        # clicked through by a page that has the link).
        return Answer(status, html).send(start_response, "HEAD" if head else "GET")


def make_app(config_path: str | None = None) -> App:
    """The application for a WSGI server other than ``serve``'s (gunicorn:
    ``gunicorn 'iomfeed.web:make_app()'``): the configuration at ``config_path``, else
    ``$IOMFEED_CONFIG``, else ``./config.toml``. The store is created or migrated now, once
    per process, before the first request. No scheduler runs here: cron runs the cycles."""
    config = load_config(Path(config_path) if config_path else None)
    with open_runtime(config) as rt:
        rt.store  # noqa: B018  (opened: created or migrated)
    return App(config, now=utc_now)


__all__ = ["App", "accepts_gzip", "make_app"]
