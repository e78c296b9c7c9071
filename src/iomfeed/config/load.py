"""Reading a config file: TOML parsed, then the dataclasses of :mod:`.schema` walked so an
unknown key, a wrong type or a bad value is a :class:`ConfigError` naming the dotted key
(``sources[0].listing.titel: unknown key``); then the checks across keys."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from .. import languages
from ..errors import ConfigError
from .checks import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    MAX_INTEGER,
    MAX_NUMBER,
    _describe,
    _join,
    _nearest,
    check_selectors,
    crontab_error,
    jinja_error,
    private_key_error,
)
from .per_language import check_languages
from .schema import Config, DigestConfig

log = logging.getLogger(__name__)

#: The longest local part of mail.bounce_address: 64 (RFC 5321) less '+' and a VERP token
#: (``<digest>-<subscriber>-<16 letters>``) whose two numbers have 22 digits or fewer.
MAX_BOUNCE_LOCAL = 23


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
    for code in config.digest.languages:
        language = languages.load(code, config.languages_path)  # every key, named if missing
        given = config.digest.subject.given(code)
        key = f"digest.subject.{code}" if config.digest.subject.languages else "digest.subject"
        problem = jinja_error(language.subject if given is None else given)
        if problem:
            raise ConfigError(
                f"{key if given is not None else language.source + ': subject'}: {problem}"
            )


# --------------------------------------------------------------------------- loading

#: The per-language keys config.toml shipped before the tables (issue 10).
_OLD_KEY = re.compile(r"(subject|title)_(en|sq)")


def upgrade_old_keys(data: dict[str, Any], path: Path | str = "config") -> None:
    """Read the keys of older config files (``digest.subject_sq``, ``digest.title_en``) into
    their per-language tables (``[digest.subject] sq = ...``), each with a warning naming the
    new key; a key given both ways is an error naming both."""
    digest = data.get("digest")
    if not isinstance(digest, dict):
        return
    made: set[str] = set()  # tables made here, from the defaults
    for key in [k for k in digest if _OLD_KEY.fullmatch(k)]:
        name, code = key.split("_", 1)
        table = digest.get(name)
        if table is None:
            table = digest[name] = dict(getattr(DigestConfig(), name).languages)
            made.add(name)
        elif not isinstance(table, dict) or (code in table and name not in made):
            raise ConfigError(
                f"digest.{key}: also given as digest.{name}: keep only [digest.{name}] {code} = ..."
            )
        table[code] = digest.pop(key)
        log.warning(
            "%s: digest.%s is an old key: write it as [digest.%s] %s = ... (read for now)",
            path,
            key,
            name,
            code,
        )


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_NAME)


def _not_found(path: Path) -> str:
    """Where the missing file was looked for, and who named it."""
    where = "" if path.is_absolute() else f" (in {Path.cwd()})"
    named = os.environ.get(CONFIG_ENV)
    if named and Path(named) == path:
        return f"{path}{where}: configuration file not found (named by {CONFIG_ENV})"
    return f"{path}{where}: configuration file not found (use --config PATH or set {CONFIG_ENV})"


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
        text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        upgrade_old_keys(data, path)
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
    for name in ("from_address", "unsubscribe_mailto", "reply_to", "bounce_address"):
        value = getattr(config.mail, name)
        if value and not value.isascii():
            raise ConfigError(
                f"mail.{name}: write the address in ASCII (an international"
                " domain in its xn-- form)"
            )


def _check_paths(config: Config) -> None:
    """What a send or a render would refuse later, said when the file is read (so by
    ``iomfeed check`` too): a templates folder or a CA file that is not there, an SMTP
    transport with no host."""
    folder = config.templates_path
    if folder is not None and not folder.is_dir():
        raise ConfigError(
            f"digest.templates: {folder} is not a folder (it holds templates"
            ' that replace the built-in ones; "" for none)'
        )
    for key, value in (
        ("mail.smtp.ca_file", config.mail.smtp.ca_file),
        ("bounces.imap_ca_file", config.bounces.imap_ca_file),
    ):
        if value and not config.path(value).is_file():
            raise ConfigError(f"{key}: {config.path(value)}: no such file")
    if config.mail.transport == "smtp" and not config.mail.smtp.host.strip():
        raise ConfigError('mail.smtp.host: empty, while mail.transport is "smtp"')


def _check_bounces(config: Config) -> None:
    """The VERP address leaves room for its token; one mailbox; no clear text off-host."""
    local = config.mail.bounce_address.partition("@")[0]
    if len(local) > MAX_BOUNCE_LOCAL:
        raise ConfigError(
            f"mail.bounce_address: the part before the @ may have at most {MAX_BOUNCE_LOCAL}"
            " characters: each message adds '+' and a token (the digest's and the"
            " subscriber's numbers and 18 characters more), 41 characters in all while the"
            " two numbers have 22 digits or fewer together (RFC 5321 allows 64)"
        )
    b = config.bounces
    if b.maildir and b.imap_host:
        raise ConfigError("bounces.maildir: give either maildir or imap_host, not both")
    if b.imap_host and not b.imap_user:
        raise ConfigError("bounces.imap_user: required with bounces.imap_host")
    if b.imap_security == "none" and b.imap_host not in ("", "127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            f"bounces.imap_security: 'none' sends the password in clear text; it is allowed"
            f" only for a server on this host (127.0.0.1), not {b.imap_host!r}"
        )


def _check_dkim(config: Config) -> None:
    """Both keys or neither; the key file a readable PEM private key, named if not."""
    dkim = config.mail.dkim
    if bool(dkim.selector) != bool(dkim.key_file):
        given, missing = ("selector", "key_file") if dkim.selector else ("key_file", "selector")
        raise ConfigError(
            f"mail.dkim.{missing}: required with mail.dkim.{given} (give both to sign, or neither)"
        )
    if dkim.key_file:
        problem = private_key_error(config.path(dkim.key_file))
        if problem:
            raise ConfigError(f"mail.dkim.key_file: {problem}")


def _check_config(config: Config) -> None:
    from ..sources import check_source_config  # each kind says what it needs

    _check_mail(config)
    _check_bounces(config)
    _check_dkim(config)
    _check_paths(config)
    check_languages(config)
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
        if abs(value) > MAX_NUMBER:  # before float(): one past 1e308 would not convert
            raise ConfigError(
                f"{key}: expected a number no larger than {MAX_NUMBER:.0f},"
                f" got one of {len(str(abs(value)))} digits"
            )
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
        if tp is int and abs(value) > MAX_INTEGER:
            raise ConfigError(
                f"{key}: expected an integer no larger than {MAX_INTEGER}, got {value}"
            )
        return value
    raise TypeError(f"unsupported config type {tp}")  # pragma: no cover - a developer error


def _read_text(path: Path) -> str:
    """The file's text: UTF-8, with the byte-order mark some Windows editors write at the
    start read past; anything else names the line of the first byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(_not_found(path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8;"
            " save the file as UTF-8"
        ) from None


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
