"""One TOML file parsed into one frozen, typed :class:`Config`.

Defaults live in the dataclass fields (:mod:`.schema`) and only there. Parsing walks the
dataclasses (:mod:`.load`), so an unknown key, a wrong type, a bad URL, time zone or CSS
selector is a :class:`ConfigError` that names the dotted key (``sources[0].listing.titel:
unknown key``); single values are checked in :mod:`.checks`, the texts given per language in
:mod:`.per_language`. Secrets never live in the file: keys ending in ``_env`` name the
environment variable that holds them.

This package reads a file and returns data; it does no network or database work.
"""

from .checks import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    LIVE_ORIGIN,
    MAX_NUMBER,
    check_selectors,
    check_source_selectors,
    crontab_error,
    jinja_error,
    selector_error,
    split_selector,
)
from .load import check_deep, default_config_path, documented_keys, load_config
from .per_language import CategoryNames, PerLanguage, check_languages
from .schema import (
    ArticleConfig,
    BouncesConfig,
    Config,
    DigestConfig,
    DkimConfig,
    FilterConfig,
    HttpConfig,
    ListingConfig,
    MailConfig,
    OperatorConfig,
    PublishConfig,
    ScheduleConfig,
    ServeConfig,
    SiteConfig,
    SmtpConfig,
    SourceConfig,
    SourceKind,
    StorageConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "LIVE_ORIGIN",
    "MAX_NUMBER",
    "ArticleConfig",
    "BouncesConfig",
    "CategoryNames",
    "Config",
    "DigestConfig",
    "DkimConfig",
    "FilterConfig",
    "HttpConfig",
    "ListingConfig",
    "MailConfig",
    "OperatorConfig",
    "PerLanguage",
    "PublishConfig",
    "ScheduleConfig",
    "ServeConfig",
    "SiteConfig",
    "SmtpConfig",
    "SourceConfig",
    "SourceKind",
    "StorageConfig",
    "check_deep",
    "check_languages",
    "check_selectors",
    "check_source_selectors",
    "crontab_error",
    "default_config_path",
    "documented_keys",
    "jinja_error",
    "load_config",
    "selector_error",
    "split_selector",
]
