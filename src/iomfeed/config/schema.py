"""The config's shape: one frozen dataclass per TOML table. Defaults live here and only here
(the fields); :mod:`.load` walks these classes to read a file, so a new key is one field here
(and a line in the shipped ``config.toml``, which a test checks).

The annotations are objects, not strings (no ``from __future__ import annotations``): the
loader asks ``typing.get_type_hints`` for them, which compiles every string annotation anew
in each process, 2.7 ms of every command for these 20 classes (0.5 ms so)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit

from ..errors import ConfigError
from ..languages import BUILT_IN
from .checks import (
    _SELECTORS,
    LIVE_ORIGIN,
    _check_address,
    _check_at_least_one,
    _check_base_url,
    _check_connections,
    _check_crontab_shape,
    _check_days,
    _check_dkim_selector,
    _check_domain,
    _check_env_name,
    _check_http_url,
    _check_language,
    _check_languages,
    _check_list_id,
    _check_name,
    _check_non_negative,
    _check_optional_address,
    _check_optional_http_url,
    _check_optional_limit,
    _check_port,
    _check_positive,
    _check_positive_days,
    _check_proxy,
    _check_regexes,
    _check_summary_length,
    _check_timezone,
    _check_user_agent,
    _checked,
)
from .per_language import CategoryNames, PerLanguage


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """``[site]``: the publication's title, its addresses, language, time zone and author."""

    title: str = "IOM Albania: Latest News on Migration"
    home_url: str = field(default=LIVE_ORIGIN + "/news", metadata=_checked(_check_http_url))
    public_url: str = field(default="http://127.0.0.1:8080/", metadata=_checked(_check_base_url))
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
    """``[storage]``: where the SQLite store lives, how long it keeps the run history
    (``keep_runs_days``; 0: for ever), and the folder of what can be made again (``cache``,
    the compiled templates; "", unless the file sets one: none)."""

    database: str = "iomfeed.db"
    keep_runs_days: int = field(default=90, metadata=_checked(_check_days))
    cache: str = ""


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """``[publish]``: the folder the feeds and pages are written to, and what they hold."""

    folder: str = "feeds"
    max_items: int = field(default=50, metadata=_checked(_check_positive))
    by_category: bool = True
    by_source: bool = False
    archives: bool = True
    index_items: int = field(default=20, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """``[http]``: how sources are fetched: identity, timeouts, pace, retries, limits."""

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
    """The CSS selectors that read one entry of a source's listing page."""

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
    """The CSS selectors that read a source's article page, and what to remove from it."""

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
    """Which items of a source are kept: regular expressions to include and exclude."""

    include: tuple[str, ...] = field(default=(), metadata=_checked(_check_regexes))
    exclude: tuple[str, ...] = field(default=(), metadata=_checked(_check_regexes))


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """``[digest]``: what a digest holds, its languages, subject, title and templates."""

    max_items: int = field(default=20, metadata=_checked(_check_positive))
    first_items: int = field(default=5, metadata=_checked(_check_positive))
    skip_empty: bool = True
    max_bytes: int = field(default=100_000, metadata=_checked(_check_positive))
    #: The codes a digest is written in (and a subscriber may choose); each has a language
    #: file (iomfeed/languages/<code>.toml, or one in languages_dir).
    languages: tuple[str, ...] = field(default=BUILT_IN, metadata=_checked(_check_languages))
    languages_dir: str = ""
    #: Per language; a language it does not give uses its language file's subject.
    subject: PerLanguage = field(default=PerLanguage())
    title: PerLanguage = field(
        default=PerLanguage(
            "IOM Albania news", (("en", "IOM Albania news"), ("sq", "Lajme nga IOM Shqipëri"))
        )
    )
    categories: CategoryNames = field(default=CategoryNames())
    templates: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """``[schedule]``: when ``serve`` fetches and when a digest is due (cron lines)."""

    fetch: str = field(default="*/30 * * * *", metadata=_checked(_check_crontab_shape))
    digest: str = field(default="0 8 * * mon", metadata=_checked(_check_crontab_shape))
    misfire_grace: float = field(default=3600.0, metadata=_checked(_check_at_least_one))


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """``[serve]``: where ``iomfeed serve`` listens, and the proxy it trusts."""

    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata=_checked(_check_port))
    trusted_proxy: str = field(default="", metadata=_checked(_check_proxy))


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """``[operator]``: who is alerted, and after how many failures or stuck hours."""

    email: str = field(default="", metadata=_checked(_check_optional_address))
    failures: int = field(default=3, metadata=_checked(_check_positive))
    stuck_hours: float = field(default=24.0, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """``[mail.smtp]``: the relay digests are sent through."""

    host: str = "localhost"
    port: int = field(default=587, metadata=_checked(_check_port))
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: str = field(default="IOMFEED_SMTP_PASSWORD", metadata=_checked(_check_env_name))
    timeout: float = field(default=30.0, metadata=_checked(_check_positive))
    ca_file: str = ""


@dataclass(frozen=True, slots=True)
class DkimConfig:
    """DKIM signing (RFC 6376): off unless both selector and key_file are given. The key
    stays in its own file; this names the file."""

    selector: str = field(default="", metadata=_checked(_check_dkim_selector))
    key_file: str = ""
    #: The signing domain (d=); empty: the domain of mail.from_address.
    domain: str = field(default="", metadata=_checked(_check_domain))

    @property
    def enabled(self) -> bool:
        return bool(self.selector and self.key_file)


@dataclass(frozen=True, slots=True)
class MailConfig:
    """``[mail]``: how digests are sent: the transport, the sender, the list headers, the pace."""

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
    #: SMTP connections a send uses at once (1 to 4); one ledger, written by the send alone.
    connections: int = field(default=1, metadata=_checked(_check_connections))
    retries: int = field(default=3, metadata=_checked(_check_non_negative))
    backoff: float = field(default=2.0, metadata=_checked(_check_non_negative))
    max_attempts: int = field(default=12, metadata=_checked(_check_positive))
    bounce_after: int = field(default=3, metadata=_checked(_check_positive))
    #: The envelope sender's base for VERP (``local+TOKEN@domain``); empty: from_address.
    bounce_address: str = field(default="", metadata=_checked(_check_optional_address))
    #: Messages sent at most in any 24 hours / 60 minutes (:class:`..delivery.policy.Quota`);
    #: 0: no limit.
    daily_limit: int = field(default=0, metadata=_checked(_check_optional_limit))
    hourly_limit: int = field(default=0, metadata=_checked(_check_optional_limit))
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)

    @property
    def sender_domain(self) -> str:
        return self.from_address.rpartition("@")[2].lower()

    @property
    def dkim_domain(self) -> str:
        """The DKIM signing domain (d=): mail.dkim.domain, or the From address's domain."""
        return self.dkim.domain.lower() or self.sender_domain


@dataclass(frozen=True, slots=True)
class SubscribeConfig:
    """``[subscribe]``: the sign-up's confirmation window, notices and rate limits."""

    confirm_days: float = field(default=7.0, metadata=_checked(_check_positive_days))
    record_ip: bool = False
    confirm_resend_hours: float = field(default=1.0, metadata=_checked(_check_positive))
    notice_hours: float = field(default=24.0, metadata=_checked(_check_positive))
    form_min_seconds: float = field(default=2.0, metadata=_checked(_check_non_negative))
    form_hours: float = field(default=2.0, metadata=_checked(_check_positive))
    client_per_hour: int = field(default=10, metadata=_checked(_check_positive))
    address_per_day: int = field(default=5, metadata=_checked(_check_positive))


@dataclass(frozen=True, slots=True)
class BouncesConfig:
    """Where bounces and complaints arrive (a Maildir folder or an IMAP mailbox), and the
    rules that turn them into a subscriber's state (:mod:`iomfeed.bounces`)."""

    maildir: str = ""
    imap_host: str = ""
    imap_port: int = field(default=993, metadata=_checked(_check_port))
    imap_security: Literal["tls", "starttls", "none"] = "tls"
    imap_user: str = ""
    imap_password_env: str = field(
        default="IOMFEED_IMAP_PASSWORD", metadata=_checked(_check_env_name)
    )
    imap_folder: str = "INBOX"
    imap_done_folder: str = ""
    imap_ca_file: str = ""
    imap_timeout: float = field(default=30.0, metadata=_checked(_check_positive))
    trust_days: float = field(default=14.0, metadata=_checked(_check_days))
    soft_after: int = field(default=3, metadata=_checked(_check_positive))
    soft_days: float = field(default=14.0, metadata=_checked(_check_days))

    @property
    def configured(self) -> bool:
        return bool(self.maildir or self.imap_host)


SourceKind = Literal["html", "feed", "json"]


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[sources]]`` table: where the news comes from and how it is read."""

    name: str = field(metadata=_checked(_check_name))
    kind: SourceKind
    url: str = field(default="", metadata=_checked(_check_optional_http_url))
    path: str = ""
    enabled: bool = True
    max_pages: int = field(default=10, metadata=_checked(_check_positive))
    follow_articles: bool = True
    recheck_days: float = field(default=7.0, metadata=_checked(_check_days))
    summary_length: int = field(default=400, metadata=_checked(_check_summary_length))
    retry_missing_days: float = field(default=7.0, metadata=_checked(_check_days))
    timezone: str = field(default="", metadata=_checked(_check_timezone))
    language: str = field(default="", metadata=_checked(_check_language))
    listing: ListingConfig = field(default_factory=ListingConfig)
    article: ArticleConfig = field(default_factory=ArticleConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, checked: one record per table of ``config.toml``."""

    site: SiteConfig = field(default_factory=SiteConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    subscribe: SubscribeConfig = field(default_factory=SubscribeConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
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
    def cache_path(self) -> Path | None:
        return self.path(self.storage.cache) if self.storage.cache else None

    @property
    def feeds_path(self) -> Path:
        return self.path(self.publish.folder)

    @property
    def outbox_path(self) -> Path:
        return self.path(self.mail.outbox)

    @property
    def maildir_path(self) -> Path | None:
        return self.path(self.bounces.maildir) if self.bounces.maildir else None

    @property
    def templates_path(self) -> Path | None:
        return self.path(self.digest.templates) if self.digest.templates else None

    @property
    def languages_path(self) -> Path | None:
        """The operator's folder of language files (searched before the built-in ones)."""
        return self.path(self.digest.languages_dir) if self.digest.languages_dir else None

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
    def preferences_url(self) -> str:
        return urljoin(self.site.public_url, "preferences")

    @property
    def confirm_url(self) -> str:
        return urljoin(self.site.public_url, "confirm")

    @property
    def unsubscribe_mailto(self) -> str:
        """The List-Unsubscribe mailto address: the one set, else, when a bounce mailbox is
        read (whose pass acts on such mail), the address whose mail reaches it
        (``bounce_address``, or ``from_address`` without VERP), else none ('')."""
        if self.mail.unsubscribe_mailto:
            return self.mail.unsubscribe_mailto
        if not self.bounces.configured:
            return ""
        return self.mail.bounce_address or self.mail.from_address

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
