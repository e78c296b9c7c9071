"""One TOML file parsed into one frozen, typed :class:`Config`.

Defaults live here and only here (the dataclass fields). Parsing walks the dataclasses, so an
unknown key, a wrong type, a bad URL, time zone or CSS selector is a :class:`ConfigError` that
names the dotted key (``sources[0].listing.titel: unknown key``). Secrets never live in the
file: keys ending in ``_env`` name the environment variable that holds them.

This module reads a file and returns data; it does no network or database work.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urljoin, urlsplit

from .errors import BadAddress, ConfigError

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "IOMFEED_CONFIG"
LIVE_ORIGIN = "https://albania.iom.int"
#: The largest value a fractional setting takes (seconds, hours, days, messages a second).
MAX_NUMBER = 1_000_000.0

#: The languages a digest is written in (templates/digest/chrome.toml has their words).
DIGEST_LANGUAGES = ("en", "sq")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ATTR_RE = re.compile(r"^[A-Za-z_:][-A-Za-z0-9_:.]*$")
_LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _check_http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "expected an absolute http(s) URL (this one is malformed)"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an absolute http(s) URL"
    return None


def _check_optional_http_url(value: str) -> str | None:
    return None if value == "" else _check_http_url(value)


def _check_user_agent(value: str) -> str | None:
    if "http://" in value or "https://" in value or "@" in value:
        return None
    return "expected an honest User-Agent with a contact URL or e-mail address in it"


def _check_timezone(value: str) -> str | None:
    if value == "":
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "expected an IANA time zone name such as 'Europe/Tirane'"
    return None


def _check_language(value: str) -> str | None:
    if value == "" or _LANG_RE.match(value):
        return None
    return "expected a language tag such as 'en' or 'sq'"


def _check_name(value: str) -> str | None:
    if _NAME_RE.match(value):
        return None
    return "expected a short name of lower-case letters, digits, '-' or '_'"


def _check_positive(value: float) -> str | None:
    return None if value > 0 else "expected a number greater than 0"


def _check_at_least_one(value: float) -> str | None:
    return None if value >= 1 else "expected a number of at least 1"


def _check_non_negative(value: float) -> str | None:
    return None if value >= 0 else "expected a number of at least 0"


def _check_summary_length(value: float) -> str | None:
    return None if value >= 40 else "expected a number of characters, at least 40"


def _check_regexes(values: tuple[str, ...]) -> str | None:
    for pattern in values:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"invalid regular expression {pattern!r}: {exc}"
    return None


def split_selector(spec: str) -> tuple[str, str | None]:
    """Split ``"css@attr"`` into the CSS part and the attribute to read (or ``None``: text)."""
    css, sep, attr = spec.rpartition("@")
    if sep and _ATTR_RE.match(attr) and css.count("[") == css.count("]") and css.strip():
        return css.strip(), attr
    return spec.strip(), None


def _check_selector_syntax(values: tuple[str, ...]) -> str | None:
    """The cheap part of selector checking, done on every load."""
    for spec in values:
        css, _attr = split_selector(spec)
        if not css:
            return f"empty CSS selector in {spec!r}"
    return None


#: Field metadata of selector lists: checked cheaply on load, compiled by check_selectors().
_SELECTORS: dict[str, Any] = {"check": _check_selector_syntax, "selectors": True}


def check_selectors(config: Config) -> None:
    """Compile every CSS selector in the config; a bad one is a ConfigError naming its key.

    Compiling loads soupsieve (about 0.1 s), so ``load_config`` does it only when asked and a
    cron ``fetch`` that gets nothing but 304s never pays for it; the html source calls
    :func:`check_source_selectors` before it parses its first page.
    """
    for index, src in enumerate(config.sources):
        check_source_selectors(src, f"sources[{index}]")


def check_source_selectors(src: SourceConfig, where: str) -> None:
    for group_name in ("listing", "article"):
        group = getattr(src, group_name)
        for f in dataclasses.fields(group):
            if not f.metadata.get("selectors"):
                continue
            for j, spec in enumerate(getattr(group, f.name)):
                css, _attr = split_selector(spec)
                error = selector_error(css)
                if error:
                    raise ConfigError(
                        f"{where}.{group_name}.{f.name}[{j}]: invalid CSS selector {spec!r}:"
                        f" {error}"
                    )


def selector_error(css: str) -> str | None:
    """Why ``css`` is not a valid selector, or ``None``. Loads soupsieve only when asked."""
    import soupsieve

    try:
        soupsieve.compile(css)
    except (soupsieve.SelectorSyntaxError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def _checked(check: Callable[[Any], str | None]) -> dict[str, Any]:
    """Field metadata: ``check(value)`` returns what is wrong with a value, or ``None``."""
    return {"check": check}


@dataclass(frozen=True, slots=True)
class SiteConfig:
    title: str = "IOM Albania: Latest News on Migration"
    home_url: str = field(default=LIVE_ORIGIN + "/news", metadata=_checked(_check_http_url))
    public_url: str = field(default="http://127.0.0.1:8080/", metadata=_checked(_check_http_url))
    language: str = field(default="en", metadata=_checked(_check_language))
    timezone: str = field(default="Europe/Tirane", metadata=_checked(_check_timezone))
    author: str = "IOM Albania"
    id_authority: str = ""
    websub_hub: str = field(default="", metadata=_checked(_check_optional_http_url))

    @property
    def tag_authority(self) -> str:
        return self.id_authority or (urlsplit(self.public_url).hostname or "localhost")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    database: str = "iomfeed.db"


@dataclass(frozen=True, slots=True)
class PublishConfig:
    folder: str = "feeds"
    max_items: int = field(default=50, metadata=_checked(_check_positive))
    by_category: bool = True
    by_source: bool = False
    archives: bool = True
    index_items: int = field(default=20, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    user_agent: str = field(
        default="iomfeed/0.1 (+https://github.com/iomfeed/iomfeed; news feed builder)",
        metadata=_checked(_check_user_agent),
    )
    timeout: float = field(default=20.0, metadata=_checked(_check_positive))
    min_delay: float = field(default=1.0, metadata=_checked(_check_non_negative))
    retries: int = field(default=3, metadata=_checked(_check_non_negative))
    backoff: float = field(default=1.0, metadata=_checked(_check_non_negative))
    max_retry_after: float = field(default=120.0, metadata=_checked(_check_non_negative))
    max_body_bytes: int = field(default=5_000_000, metadata=_checked(_check_positive))
    max_redirects: int = field(default=5, metadata=_checked(_check_non_negative))
    respect_robots_txt: bool = True


@dataclass(frozen=True, slots=True)
class ListingConfig:
    item: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    title: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    link: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    summary: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    date: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    image: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    next: tuple[str, ...] = field(
        default=("link[rel~=next]@href", "a[rel~=next]@href"),
        metadata=_SELECTORS,
    )


@dataclass(frozen=True, slots=True)
class ArticleConfig:
    container: tuple[str, ...] = field(
        default=("main article", "article", "main", "body"),
        metadata=_SELECTORS,
    )
    title: tuple[str, ...] = field(default=("h1",), metadata=_SELECTORS)
    date: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    body: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    image: tuple[str, ...] = field(
        default=("meta[property='og:image']@content",), metadata=_SELECTORS
    )
    category: tuple[str, ...] = field(default=(), metadata=_SELECTORS)
    remove: tuple[str, ...] = field(default=(), metadata=_SELECTORS)


@dataclass(frozen=True, slots=True)
class FilterConfig:
    include: tuple[str, ...] = field(default=(), metadata=_checked(_check_regexes))
    exclude: tuple[str, ...] = field(default=(), metadata=_checked(_check_regexes))


def _check_address(value: str) -> str | None:
    from .subscribers import is_plainly_valid, normalize_address

    if is_plainly_valid(value):  # the usual case, decided without email-validator
        return None
    try:
        normalize_address(value)
    except BadAddress as exc:
        return f"expected a plain e-mail address: {exc}"
    return None


def _check_optional_address(value: str) -> str | None:
    return None if value == "" else _check_address(value)


def _check_crontab_shape(value: str) -> str | None:
    from .cron import shape_error

    return shape_error(value)


def crontab_error(value: str) -> str | None:
    """Why ``value`` is not a valid crontab expression, or ``None`` (loads APScheduler)."""
    from .cron import trigger

    try:
        trigger(value, "UTC")
    except ConfigError as exc:
        return f"invalid crontab expression {value!r}: {exc}"
    return None


def _check_list_id(value: str) -> str | None:
    if value == "" or re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value):
        return None
    return "expected a dotted identifier such as 'digest.feeds.example.org' (RFC 2919)"


def _check_env_name(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return "expected the name of an environment variable (letters, digits, '_')"


def jinja_error(value: str) -> str | None:
    """Why ``value`` is not a valid Jinja2 template, or ``None`` (loads Jinja2)."""
    import jinja2

    try:
        jinja2.Environment().parse(value)
    except jinja2.TemplateSyntaxError as exc:
        return f"invalid template: {exc.message}"
    return None


def check_deep(config: Config) -> None:
    """The checks that load a library (soupsieve, APScheduler, Jinja2): CSS selectors, the
    digest schedule and subject templates. ``load_config`` runs them unless told not to (a
    cron ``fetch`` with nothing to do should not pay for them); the stage that uses a value
    checks it again before use."""
    check_selectors(config)
    for key in ("fetch", "digest"):
        problem = crontab_error(getattr(config.schedule, key))
        if problem:
            raise ConfigError(f"schedule.{key}: {problem}")
    for key in ("subject_en", "subject_sq"):
        problem = jinja_error(getattr(config.digest, key))
        if problem:
            raise ConfigError(f"digest.{key}: {problem}")


def _languages_table(value: Any, key: str, what: str) -> dict[str, Any]:
    """``value`` as a table keyed by digest language codes (each checked)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected {what}, got {_describe(value)}")
    for code in value:
        if code not in DIGEST_LANGUAGES:
            raise ConfigError(
                f"{_join(key, code)}: unknown language (digest languages:"
                f" {', '.join(DIGEST_LANGUAGES)})"
            )
    return value


@dataclass(frozen=True, slots=True)
class PerLanguage:
    """A text given once for every digest language (a plain string) or once per language
    code (a table ``{ en = "...", sq = "..." }`` naming every digest language)."""

    text: str = ""  # a plain string's value; for a table, the first language's
    languages: tuple[tuple[str, str], ...] = ()

    def get(self, language: str) -> str:
        """The text in ``language`` (a language the table does not have: :attr:`text`)."""
        for code, value in self.languages:
            if code == language:
                return value
        return self.text

    @classmethod
    def from_toml(cls, value: Any, key: str) -> PerLanguage:
        if isinstance(value, str):
            return cls(value)
        table = _languages_table(
            value,
            key,
            f"a string, or a table with one string per language ({', '.join(DIGEST_LANGUAGES)})",
        )
        for code in DIGEST_LANGUAGES:
            if code not in table:
                raise ConfigError(
                    f"{_join(key, code)}: required key is missing (a table"
                    " gives the text in every digest language; a plain string"
                    " is used for all)"
                )
            if not isinstance(table[code], str):
                raise ConfigError(
                    f"{_join(key, code)}: expected a string, got {_describe(table[code])}"
                )
        return cls(
            text=table[DIGEST_LANGUAGES[0]],
            languages=tuple((code, table[code]) for code in DIGEST_LANGUAGES),
        )


@dataclass(frozen=True, slots=True)
class CategoryNames:
    """How the digest shows category names, per language code:
    ``{ sq = { Local = "Vendore" } }``. Names are matched ignoring case; a category no
    table names is shown as stored."""

    languages: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def get(self, category: str, language: str) -> str:
        folded = category.casefold()
        for code, names in self.languages:
            if code == language:
                for name, shown in names:
                    if name.casefold() == folded:
                        return shown
        return category

    @classmethod
    def from_toml(cls, value: Any, key: str) -> CategoryNames:
        tables = _languages_table(
            value, key, 'a table of languages, each a table of category = "name shown"'
        )
        languages = []
        for code, names in tables.items():
            where = _join(key, code)
            if not isinstance(names, dict):
                raise ConfigError(
                    f'{where}: expected a table of category = "name shown", got {_describe(names)}'
                )
            seen: dict[str, str] = {}
            for name, shown in names.items():
                if not isinstance(shown, str) or not shown.strip():
                    raise ConfigError(
                        f"{where}.{name}: expected the name to show, got {_describe(shown)}"
                    )
                if name.casefold() in seen:
                    raise ConfigError(
                        f"{where}.{name}: the same category as"
                        f" {seen[name.casefold()]!r} (names are matched"
                        " ignoring case)"
                    )
                seen[name.casefold()] = name
            languages.append((code, tuple(names.items())))
        return cls(tuple(languages))


@dataclass(frozen=True, slots=True)
class DigestConfig:
    max_items: int = field(default=20, metadata=_checked(_check_positive))
    first_items: int = field(default=5, metadata=_checked(_check_positive))
    skip_empty: bool = True
    max_bytes: int = field(default=100_000, metadata=_checked(_check_positive))
    subject_en: str = (
        "{{ title }}: {% if first %}the latest stories{% else %}{{ count }} new"
        " {{ 'story' if count == 1 else 'stories' }}{% endif %}, {{ date }}"
    )
    subject_sq: str = (
        "{{ title }}: {% if first %}lajmet më të fundit{% else %}{{ count }}"
        " {{ 'lajm i ri' if count == 1 else 'lajme të reja' }}{% endif %}, {{ date }}"
    )
    title_en: str = "IOM Albania news"
    title_sq: str = "Lajme nga IOM Shqipëri"
    categories: CategoryNames = field(
        default=CategoryNames((("sq", (("Local", "Vendore"), ("Global", "Globale"))),))
    )
    templates: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    fetch: str = field(default="*/30 * * * *", metadata=_checked(_check_crontab_shape))
    digest: str = field(default="0 8 * * mon", metadata=_checked(_check_crontab_shape))
    misfire_grace: float = field(default=3600.0, metadata=_checked(_check_at_least_one))


@dataclass(frozen=True, slots=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    email: str = field(default="", metadata=_checked(_check_optional_address))
    failures: int = field(default=3, metadata=_checked(_check_positive))
    stuck_hours: float = field(default=24.0, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = field(default=587, metadata=_checked(_check_positive))
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: str = field(default="IOMFEED_SMTP_PASSWORD", metadata=_checked(_check_env_name))
    timeout: float = field(default=30.0, metadata=_checked(_check_positive))
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class MailConfig:
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: str = "outbox"
    from_address: str = field(default="news@feeds.example.org", metadata=_checked(_check_address))
    from_name: PerLanguage = field(
        default=PerLanguage(
            "IOM Albania news", (("en", "IOM Albania news"), ("sq", "Lajme nga IOM Shqipëri"))
        )
    )
    reply_to: str = field(default="", metadata=_checked(_check_optional_address))
    postal_address: PerLanguage = field(
        default=PerLanguage(
            "International Organization for Migration (IOM), Mission in Albania, Tirana, Albania"
        )
    )
    list_id: str = field(default="", metadata=_checked(_check_list_id))
    unsubscribe_url: str = field(default="", metadata=_checked(_check_optional_http_url))
    unsubscribe_mailto: str = field(default="", metadata=_checked(_check_optional_address))
    secret_env: str = field(default="IOMFEED_SECRET", metadata=_checked(_check_env_name))
    rate: float = field(default=0.0, metadata=_checked(_check_non_negative))
    retries: int = field(default=3, metadata=_checked(_check_non_negative))
    backoff: float = field(default=2.0, metadata=_checked(_check_non_negative))
    max_attempts: int = field(default=12, metadata=_checked(_check_positive))
    bounce_after: int = field(default=3, metadata=_checked(_check_positive))
    smtp: SmtpConfig = field(default_factory=SmtpConfig)

    @property
    def sender_domain(self) -> str:
        return self.from_address.rpartition("@")[2].lower()


SourceKind = Literal["html", "feed", "json"]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    name: str = field(metadata=_checked(_check_name))
    kind: SourceKind
    url: str = field(default="", metadata=_checked(_check_optional_http_url))
    path: str = ""
    enabled: bool = True
    max_pages: int = field(default=10, metadata=_checked(_check_positive))
    follow_articles: bool = True
    recheck_days: float = field(default=7.0, metadata=_checked(_check_non_negative))
    summary_length: int = field(default=400, metadata=_checked(_check_summary_length))
    retry_missing_days: float = field(default=7.0, metadata=_checked(_check_non_negative))
    timezone: str = field(default="", metadata=_checked(_check_timezone))
    language: str = field(default="", metadata=_checked(_check_language))
    listing: ListingConfig = field(default_factory=ListingConfig)
    article: ArticleConfig = field(default_factory=ArticleConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)


@dataclass(frozen=True, slots=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    sources: tuple[SourceConfig, ...] = field(default=())
    # Not a key: the folder relative paths in the file are resolved against.
    base_dir: Path = field(default=Path("."), metadata={"internal": True})

    def path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def database_path(self) -> Path:
        return self.path(self.storage.database)

    @property
    def feeds_path(self) -> Path:
        return self.path(self.publish.folder)

    @property
    def outbox_path(self) -> Path:
        return self.path(self.mail.outbox)

    @property
    def templates_path(self) -> Path | None:
        return self.path(self.digest.templates) if self.digest.templates else None

    @property
    def list_id(self) -> str:
        """The List-Id (RFC 2919) identifier: ``mail.list_id`` or one made from public_url."""
        if self.mail.list_id:
            return self.mail.list_id
        host = urlsplit(self.site.public_url).hostname or "localhost"
        return f"digest.{host}"

    @property
    def unsubscribe_url(self) -> str:
        return self.mail.unsubscribe_url or urljoin(self.site.public_url, "unsubscribe")

    @property
    def unsubscribe_mailto(self) -> str:
        return self.mail.unsubscribe_mailto or self.mail.from_address

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} (configured: {known})")

    def source_timezone(self, src: SourceConfig) -> str:
        return src.timezone or self.site.timezone

    def source_language(self, src: SourceConfig) -> str:
        return src.language or self.site.language


# --------------------------------------------------------------------------- loading


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def load_config(
    path: Path | None = None,
    *,
    text: str | None = None,
    base_dir: Path | None = None,
    compile_selectors: bool = True,
) -> Config:
    """Read and validate a config file; every problem is a ConfigError naming the key.

    ``text`` replaces the file's content and ``base_dir`` the folder relative paths are
    resolved against (the demo uses both to run the live file against a local snapshot).
    ``compile_selectors=False`` defers compiling the CSS selectors to the first page parsed.
    """
    path = path if path is not None else default_config_path()
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: configuration file not found (use --config PATH or set {CONFIG_ENV})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        config: Config = _build(Config, data, "")
        config = dataclasses.replace(config, base_dir=(base_dir or path.resolve().parent))
        _check_config(config)
        if compile_selectors:
            check_deep(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def _check_mail(config: Config) -> None:
    url = config.unsubscribe_url
    key = "mail.unsubscribe_url" if config.mail.unsubscribe_url else "site.public_url"
    parts = urlsplit(url)
    if not url.isascii() or any(c in url for c in ' <>,"\\') or not url.isprintable():
        raise ConfigError(
            f"{key}: the unsubscribe address {url!r} must be plain ASCII without"
            " spaces, quotes, commas or angle brackets (it goes into a header)"
        )
    if parts.scheme != "https" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise ConfigError(
            f"{key}: the unsubscribe address {url!r} must use https"
            " (RFC 8058 one-click unsubscribe)"
        )
    for name in ("from_address", "unsubscribe_mailto", "reply_to"):
        value = getattr(config.mail, name)
        if value and not value.isascii():
            raise ConfigError(
                f"mail.{name}: write the address in ASCII (an international"
                " domain in its xn-- form)"
            )


def _check_config(config: Config) -> None:
    from .sources import check_source_config  # each kind says what it needs

    _check_mail(config)
    seen: set[str] = set()
    for i, src in enumerate(config.sources):
        key = f"sources[{i}]"
        if src.name in seen:
            raise ConfigError(f"{key}.name: duplicate source name {src.name!r}")
        seen.add(src.name)
        check_source_config(src, key)


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: expected a table, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            near = _nearest(key, fields)
            hint = f" (did you mean {near!r}?)" if near else ""
            raise ConfigError(f"{_join(where, key)}: unknown key{hint}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required key is missing")
            continue
        value = _convert(hints[name], data[name], key)
        check = f.metadata.get("check")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(f"{key}: {problem}")
        values[name] = value
    return cls(**values)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if isinstance(tp, type) and hasattr(tp, "from_toml"):  # a value that reads itself
        return tp.from_toml(value, key)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            allowed = " | ".join(repr(c) for c in choices)
            raise ConfigError(f"{key}: expected one of {allowed}, got {value!r}")
        return value
    if origin is tuple:
        (inner, _ellipsis) = get_args(tp)
        if isinstance(value, str) and inner is str:
            value = [value]  # a single selector or pattern may be written without brackets
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        return tuple(_convert(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise TypeError(f"unsupported config type {tp}")  # pragma: no cover - a developer error
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and isinstance(value, float):
        # Every float here is seconds, hours, days or a rate: TOML's inf and nan, or a value
        # past a million, would only overflow a timedelta or a sleep later, mid-run.
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value}")
        if abs(value) > MAX_NUMBER:
            raise ConfigError(
                f"{key}: expected a number no larger than {MAX_NUMBER:.0f}, got {value:g}"
            )
        return value
    if tp in _TYPE_NAMES:
        if type(value) is not tp:
            raise ConfigError(f"{key}: expected {_TYPE_NAMES[tp]}, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {tp}")  # pragma: no cover - a developer error


def _describe(value: Any) -> str:
    names = {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        list: "list",
        dict: "table",
    }
    return f"{names.get(type(value), type(value).__name__)} {value!r}"[:80]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _nearest(key: str, options: Mapping[str, Any]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(options), n=1, cutoff=0.7)
    return matches[0] if matches else None


def documented_keys(cls: type[Any] = Config, prefix: str = "") -> list[str]:
    """Every dotted key the file may hold (``sources.listing.item``), for the docs test."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        key = _join(prefix, f.name)
        tp = hints[f.name]
        if isinstance(tp, type) and hasattr(tp, "from_toml"):
            keys.append(key)  # one key, whatever shape its value takes
        elif get_origin(tp) is tuple and dataclasses.is_dataclass(get_args(tp)[0]):
            keys.extend(documented_keys(get_args(tp)[0], key))
        elif dataclasses.is_dataclass(tp):
            keys.extend(documented_keys(typing.cast(type[Any], tp), key))
        else:
            keys.append(key)
    return keys
