"""The web forms' pages as bytes: which language a page is in, its language switch, the
words, the security headers. Rendering only: :mod:`iomfeed.web_forms` decides which page
answers a request, :mod:`iomfeed.forms` what a form may hold.

Every page is ``templates/web/forms.html.j2`` (or one extending it) with the feeds' own
stylesheet (``site/index.css``) and the forms' (``site/forms.css``), inline: no
JavaScript, no other request. A page is in the language asked for (``?lang=``, a form's
``lang`` field, the subscriber's) when its language file has a ``[forms]`` table, else in
the first of ``digest.languages`` that has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config
    from .languages import FormsWords

HTML = "text/html; charset=utf-8"
#: Sent with every form page: not cached (they hold tokens), no token leaks in a Referer,
#: no framing (a hidden "delete me" button), forms post only to this origin.
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'",
    ),
)


#: Sent with a 503: come back in an hour (a mailbox provider's one-click POST may).
RETRY_LATER = ("Retry-After", "3600")


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the forms: status line, body, its type, headers of its own."""

    status: str
    body: bytes
    content_type: str = HTML
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, start_response: Callable[..., Any], method: str) -> list[bytes]:
        """The response begun (its type and length, the pages' security headers, its own
        headers) and its body, none for HEAD: what a WSGI app returns."""
        length = str(len(self.body))
        sent = [("Content-Type", self.content_type), ("Content-Length", length)]
        start_response(self.status, sent + list(SECURITY_HEADERS) + list(self.headers))
        return [] if method == "HEAD" else [self.body]


@lru_cache(maxsize=8)
def _template(name: str) -> Any:
    from .publish.site import environment

    return environment().get_template(name)


@lru_cache(maxsize=16)
def _words(code: str, folder: Any) -> FormsWords | None:
    from .languages import load

    return load(code, folder).forms


class Pages:
    """The pages of one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.shown = tuple(
            c for c in config.digest.languages if _words(c, config.languages_path) is not None
        )
        if not self.shown:
            raise ConfigError(
                "digest.languages: no language file has a [forms] table (the web forms' words)"
            )
        self.subscribe_path = self.path("subscribe")
        self.confirm_path = self.path("confirm")
        self.preferences_path = self.path("preferences")

    def path(self, name: str) -> str:
        """The same-origin path of page ``name`` under ``site.public_url``."""
        return urlsplit(urljoin(self.config.site.public_url, name)).path

    def lang(self, *wanted: str) -> str:
        """The first of ``wanted`` the pages can be shown in, else the first shown."""
        for code in wanted:
            if code in self.shown:
                return code
        return self.shown[0]

    def words(self, lang: str) -> FormsWords:
        words = _words(lang, self.config.languages_path)
        assert words is not None  # lang is one of self.shown
        return words

    def list_name(self, lang: str) -> str:
        return self.config.digest.title.get(lang)

    def switch(self, lang: str, query: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """Links to this page in the other languages: relative (``?lang=sq&t=…``)."""
        from .forms import language_names

        names = dict(language_names(self.config))
        return [
            (code, names.get(code, code), "?" + urlencode({**query, "lang": code}))
            for code in self.shown
            if code != lang
        ]

    def render(
        self,
        status: str,
        lang: str,
        heading: str,
        *,
        template: str = "web/forms.html.j2",
        query: Mapping[str, str] | None = None,
        switch: bool = True,
        **context: Any,
    ) -> Answer:
        """A page in ``lang``; ``query`` is what its language switch links keep. The answer
        to a POST has no switch (``switch=False``): a link cannot show it again in another
        language without doing it again, and the form's own page would greet the person
        with an empty form instead of their answer."""
        values: dict[str, Any] = {
            "notes": (),
            "paragraphs": (),
            "button": None,
            "link": None,
            "form": None,
            **context,
        }
        html = _template(template).render(
            lang=lang,
            heading=heading,
            list_name=self.list_name(lang),
            fw=self.words(lang),
            switch=self.switch(lang, query or {}) if switch else [],
            **values,
        )
        return Answer(status, html.encode("utf-8"))

    def unavailable(self, query: Mapping[str, Sequence[str]]) -> Answer:
        """The 503 page, in the request's ``lang``: nothing changed, come back. Its language
        links keep the rest of the query (the token of the link followed)."""
        kept = {k: v[0] for k, v in query.items() if v and k != "lang"}
        page = self.message(
            "503 Service Unavailable",
            self.lang(*query.get("lang", [])),
            "unavailable_title",
            ("unavailable_lead",),
            query=kept,
        )
        return replace(page, headers=(*page.headers, RETRY_LATER))

    def message(
        self,
        status: str,
        lang: str,
        heading_key: str,
        paragraph_keys: tuple[str, ...],
        *,
        query: Mapping[str, str] | None = None,
        values: Mapping[str, str] | None = None,
        switch: bool = True,
        **context: Any,
    ) -> Answer:
        """A page of words: a heading and paragraphs (keys of ``[forms]``), ``{list}``,
        ``{address}`` and the other ``values`` filled in."""
        words = self.words(lang)
        filled = {"list": self.list_name(lang), **(values or {})}
        paragraphs = [fill(getattr(words, key), filled) for key in paragraph_keys]
        return self.render(
            status,
            lang,
            fill(getattr(words, heading_key), filled),
            query=query,
            switch=switch,
            paragraphs=paragraphs,
            **context,
        )

    def invalid(self, lang: str) -> Answer:
        """400: the link does not work (forged, changed, expired, or its person is gone)."""
        return self.message(
            "400 Bad Request",
            lang,
            "invalid_title",
            ("invalid_lead",),
            link={"href": self.subscribe_path, "label": self.words(lang).subscribe_again},
        )


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of ``values`` put in (other braces kept)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text
