"""The web forms' rules: what a sign-up form and a preferences form may hold, the signed
form token that proves a form was loaded before it was sent, the honeypot, the rate limits,
and which categories and languages the forms offer.

The lifecycle itself (pending, confirmed, the messages and their limits) is
:mod:`iomfeed.signup`'s and :mod:`iomfeed.subscriptions`'; this module only decides whether
a form's content is acted on, and reports what is wrong with it per field, for the page to
show next to that field. No HTTP here (:mod:`iomfeed.web_forms` is the thin web side).

The form token is ``<issued, Unix seconds>.<random nonce>.<HMAC of (purpose, list, issued,
nonce)>``, signed with the list's secret (the one that signs every link). It is accepted
from ``subscribe.form_min_seconds`` (2) to ``subscribe.form_hours`` (2) after it was issued:
a robot that posts at once, or replays a token it kept, is not acted on. It is not single-use
(a person may press the button twice); the rate limits bound what a replay can do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .errors import BadAddress, InputError

if TYPE_CHECKING:
    from .config import Config
    from .store import Store

_FORM = "iomfeed-form"
_LIMIT = "iomfeed-form-limit"
_TOKEN_RE = re.compile(r"^([0-9]{1,12})\.([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{22})$")
#: The honeypot: a field people never see (hidden by the stylesheet, labelled "leave this
#: empty" for screen readers); a robot that fills every field fills it.
HONEYPOT = "website"
MAX_NAME = 200
MAX_ADDRESS = 320
#: A pause may end at most this far ahead.
MAX_PAUSE = timedelta(days=366)


class TokenCheck(Enum):
    OK = "ok"
    MISSING = "missing"  # the form came from a static page (index.html, another site)
    BAD = "forged or malformed"
    TOO_YOUNG = "sent too soon after it was loaded"
    EXPIRED = "expired"


def _mac(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "\0".join(parts).encode("utf-8"), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def form_token(secret: bytes, list_id: str, now: datetime) -> str:
    """A new form token, issued ``now``."""
    stamp = str(int(now.timestamp()))
    nonce = secrets.token_urlsafe(9)  # 12 characters
    return f"{stamp}.{nonce}.{_mac(secret, _FORM, list_id, stamp, nonce)}"


def check_form_token(
    secret: bytes, list_id: str, token: str, now: datetime, *, min_seconds: float, hours: float
) -> TokenCheck:
    """Whether a form carrying ``token`` may be acted on ``now``."""
    if not token:
        return TokenCheck.MISSING
    match = _TOKEN_RE.match(token)
    if match is None:
        return TokenCheck.BAD
    stamp, nonce, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(secret, _FORM, list_id, stamp, nonce)):
        return TokenCheck.BAD
    age = now.timestamp() - int(stamp)
    if age < min_seconds:
        return TokenCheck.TOO_YOUNG
    if age > hours * 3600:
        return TokenCheck.EXPIRED
    return TokenCheck.OK


# ------------------------------------------------------------------ what the forms offer


def offered_languages(config: Config) -> tuple[str, ...]:
    """The codes a subscriber may choose: ``digest.languages``."""
    return config.digest.languages


def offered_categories(config: Config) -> tuple[str, ...]:
    """The categories the forms offer as checkboxes: those a digest segments by, the
    names of ``digest.categories`` (every language's table)."""
    from .digest.segments import offered_categories as offered

    return offered(config)


def category_labels(config: Config, code: str, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Each of ``names`` with its label as the digest in language ``code`` shows it (the
    language's file read once for all of them)."""
    from .digest.segments import category_name
    from .languages import load

    names = tuple(names)
    if not names:  # (no file to read)
        return ()
    language = load(code, config.languages_path)
    return tuple((name, category_name(config, language, name)) for name in names)


def chosen_categories(config: Config, values: Sequence[str]) -> tuple[str, ...] | None:
    """The categories ticked, as stored: the offered ones ticked, in the offered order;
    ``()`` (every category, also ones added later) when all are ticked or none are
    offered; None when some are offered and none is ticked (an error to show)."""
    offered = offered_categories(config)
    if not offered:
        return ()
    ticked = {v.casefold() for v in values}
    chosen = tuple(c for c in offered if c.casefold() in ticked)
    if not chosen:
        return None
    return () if len(chosen) == len(offered) else chosen


def ticked(config: Config, stored: Sequence[str]) -> frozenset[str]:
    """The offered categories to show ticked for what is stored (``()``: all)."""
    offered = offered_categories(config)
    if not stored:
        return frozenset(offered)
    folded = {s.casefold() for s in stored}
    return frozenset(c for c in offered if c.casefold() in folded)


# ------------------------------------------------------------------ the sign-up form


@dataclass(frozen=True, slots=True)
class SignUpForm:
    """A sign-up form as sent (values as typed, for showing back)."""

    address: str
    name: str
    language: str
    categories: tuple[str, ...]  # the boxes ticked, as sent
    token: str
    honeypot: str


def _first(fields: Mapping[str, Sequence[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0].strip()


def read_sign_up(fields: Mapping[str, Sequence[str]], config: Config) -> SignUpForm:
    """The sign-up form's fields; a language that is not offered becomes the first one."""
    language = _first(fields, "language")
    if language not in offered_languages(config):
        language = offered_languages(config)[0]
    return SignUpForm(
        address=_first(fields, "email")[: MAX_ADDRESS + 1],
        name=_first(fields, "name")[: MAX_NAME + 1],
        language=language,
        categories=tuple(v for v in fields.get("category", ()) if v)[:100],
        token=_first(fields, "form_token"),
        honeypot=_first(fields, HONEYPOT),
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """A sign-up form checked: the address as it would be stored, the categories as they
    would be stored, and per field the key of the ``[forms]`` word that says what is wrong
    (empty: nothing)."""

    address: str
    categories: tuple[str, ...]
    errors: Mapping[str, str]


def check_sign_up(form: SignUpForm, config: Config) -> Checked:
    """What is wrong with ``form``, field by field (it depends only on what was typed, so
    it tells nobody who is on the list). Role and disposable addresses are accepted."""
    from .subscribers import normalize_address

    errors: dict[str, str] = {}
    address = ""
    try:
        if len(form.address) > MAX_ADDRESS:
            raise BadAddress("too long")
        address = normalize_address(form.address)
    except BadAddress:
        errors["email"] = "error_email"
    if len(form.name) > MAX_NAME:
        errors["name"] = "error_name"
    categories = chosen_categories(config, form.categories)
    if categories is None:
        errors["category"] = "error_categories"
    return Checked(address, categories or (), errors)


# ------------------------------------------------------------------ rate limits


def _limit_key(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{_LIMIT}\0{kind}\0{value}".encode(), hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:32]}"


def admit(
    store: Store, config: Config, secret: bytes, *, client: str, address: str, now: datetime
) -> bool:
    """Whether a sign-up from ``client`` (an IP address; '' when unknown) for ``address``
    is within the rate limits (``subscribe.client_per_hour``, ``subscribe.address_per_day``);
    if so it is counted. The counts are kept in the store under keyed hashes."""
    limits = [(_limit_key(secret, "address", address.lower()), config.subscribe.address_per_day)]
    windows = [timedelta(days=1)]
    if client:
        limits.append((_limit_key(secret, "client", client), config.subscribe.client_per_hour))
        windows.append(timedelta(hours=1))
    return store.count_hits(
        [(key, limit, window) for (key, limit), window in zip(limits, windows, strict=True)],
        now,
        keep=timedelta(days=1),
    )


# ------------------------------------------------------------------ the preferences form


def parse_pause(value: str, config: Config, now: datetime) -> datetime:
    """The end of a pause given as a date (``YYYY-MM-DD``): its midnight in
    ``site.timezone``; :class:`InputError` unless it is after today and within a year."""
    from datetime import date, time

    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"pause: {value[:40]!r} is not a date") from None
    tz = ZoneInfo(config.site.timezone)
    today = now.astimezone(tz).date()
    if day <= today or day > today + MAX_PAUSE:
        raise InputError(f"pause: {day} is not after today and within a year")
    return datetime.combine(day, time(0), tzinfo=tz)


# ------------------------------------------------------------------ what a form page shows


@dataclass(frozen=True, slots=True)
class SignUpView:
    """What the sign-up form (``templates/web/_subscribe_form.html.j2``) shows: on
    ``/subscribe`` with a fresh token, on ``index.html`` and other sites without one."""

    action: str
    lang: str  # the page's language
    token: str
    address: str
    name: str
    language: str  # the digest language selected
    languages: tuple[tuple[str, str], ...]  # (code, its name in itself)
    categories: tuple[tuple[str, str], ...]  # (value, label in the page's language)
    ticked: frozenset[str]
    errors: Mapping[str, str]
    list_name: str = ""  # the digest's name in the page's language
    honeypot: str = HONEYPOT


def language_names(config: Config) -> tuple[tuple[str, str], ...]:
    """Each offered language with its own name for itself (CLDR's: "English", "Shqip"),
    from the kept CLDR table for the built-in languages, so publishing the index (which
    carries the form) loads no Babel."""
    from .digest.pages import language_name

    names = []
    for code in offered_languages(config):
        name = language_name(code)
        names.append((code, name[:1].upper() + name[1:]))
    return tuple(names)


def sign_up_view(
    config: Config,
    *,
    action: str,
    lang: str,
    token: str = "",
    form: SignUpForm | None = None,
    errors: Mapping[str, str] | None = None,
) -> SignUpView:
    """The sign-up form in page language ``lang``: empty (every category ticked, the
    page's language selected) or showing ``form`` back with its ``errors``."""
    offered = offered_categories(config)
    if form is None:
        values = ("", "", lang if lang in offered_languages(config) else "", frozenset(offered))
    else:
        sent = {c.casefold() for c in form.categories}
        chosen = frozenset(c for c in offered if c.casefold() in sent)
        values = (form.address, form.name, form.language, chosen)
    address, name, language, chosen = values
    return SignUpView(
        action=action,
        lang=lang,
        token=token,
        address=address,
        name=name,
        language=language or offered_languages(config)[0],
        languages=language_names(config),
        categories=category_labels(config, lang, offered),
        ticked=chosen,
        errors=dict(errors or {}),
        list_name=config.digest.title.get(lang),
    )
