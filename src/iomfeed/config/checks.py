"""The checks of single config values: each returns what is wrong with a value, or ``None``.

Cheap ones run on every load (through field metadata, see :func:`_checked`); those that load
a library (soupsieve, APScheduler, Jinja2) are functions the deep check and the stages call.
"""

from __future__ import annotations

import binascii
import dataclasses
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import BadAddress, ConfigError

if TYPE_CHECKING:
    from .schema import Config, SourceConfig

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "IOMFEED_CONFIG"
LIVE_ORIGIN = "https://albania.iom.int"
#: The largest value a fractional setting takes (seconds, hours, days, messages a second).
MAX_NUMBER = 1_000_000.0
#: The largest whole-number setting (items, pages, bytes, messages): TOML reaches 2**63 - 1,
#: and SQLite, which some of them go to, holds nothing past it.
MAX_INTEGER = 10**12

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


def _check_base_url(value: str) -> str | None:
    """An address the feeds' and pages' addresses are made under (``site.public_url``)."""
    problem = _check_http_url(value)
    if problem is None and ("?" in value or "#" in value):
        return "expected an address without '?' or '#' (the feeds' addresses are made under it)"
    return problem


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


def _check_languages(values: tuple[str, ...]) -> str | None:
    if not values:
        return 'expected at least one language code, such as ["en", "sq"]'
    for value in values:
        if not _LANG_RE.match(value):
            return f"{value!r}: expected a language code such as 'en', 'sq' or 'it'"
        if values.count(value) > 1:
            return f"{value!r} is listed twice"
    return None


def _check_name(value: str) -> str | None:
    if _NAME_RE.match(value):
        return None
    return "expected a short name of lower-case letters, digits, '-' or '_'"


def _check_positive(value: float) -> str | None:
    return None if value > 0 else "expected a number greater than 0"


def _check_at_least_one(value: float) -> str | None:
    return None if value >= 1 else "expected a number of at least 1"


def _check_optional_limit(value: int) -> str | None:
    return None if value >= 0 else "expected a number of messages, at least 1 (0: no limit)"


#: The most SMTP connections a send opens at once (``mail.connections``).
MAX_CONNECTIONS = 4


def _check_connections(value: int) -> str | None:
    if 1 <= value <= MAX_CONNECTIONS:
        return None
    return f"expected a number of connections from 1 to {MAX_CONNECTIONS}"


def _check_port(value: int) -> str | None:
    # Past 65535 the socket layer takes the port modulo 65536: 70000 listened on 4464.
    return None if 1 <= value <= 65535 else "expected a TCP port from 1 to 65535"


def _check_non_negative(value: float) -> str | None:
    return None if value >= 0 else "expected a number of at least 0"


#: The most days a ``*_days`` key may hold (a hundred years): a date that far back is still
#: a date, where a million days (which every other number may reach) is before year 1.
MAX_DAYS = 36_500


def _check_days(value: float) -> str | None:
    return None if 0 <= value <= MAX_DAYS else f"expected a number of days from 0 to {MAX_DAYS}"


def _check_positive_days(value: float) -> str | None:
    if 0 < value <= MAX_DAYS:
        return None
    return f"expected a number of days greater than 0, at most {MAX_DAYS}"


def _check_summary_length(value: float) -> str | None:
    return None if value >= 40 else "expected a number of characters, at least 40"


def _check_regexes(values: tuple[str, ...]) -> str | None:
    for pattern in values:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"invalid regular expression {pattern!r}: {exc}"
    return None


@lru_cache(maxsize=512)
def split_selector(spec: str) -> tuple[str, str | None]:
    """Split ``"css@attr"`` into the CSS part and the attribute to read (or ``None``: text).
    Kept per spec: the parsers ask for the same few on every page."""
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
    """Why ``css`` is not a valid selector, or ``None``. Loads soupsieve only when asked;
    a selector of the simple grammar is compiled (once) without its tokenizer."""
    import soupsieve

    from ..sources.html_select import compile_css

    try:
        if compile_css(css) is None:  # a namespace prefix: bs4 compiles it on the page
            soupsieve.compile(css)
    except (soupsieve.SelectorSyntaxError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def _checked(check: Callable[[Any], str | None]) -> dict[str, Any]:
    """Field metadata: ``check(value)`` returns what is wrong with a value, or ``None``."""
    return {"check": check}


def _check_address(value: str) -> str | None:
    from ..addresses import is_plainly_valid, normalize_address

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
    from ..cron import shape_error

    return shape_error(value)


def crontab_error(value: str) -> str | None:
    """Why ``value`` is not a valid crontab expression, or ``None`` (loads APScheduler)."""
    from ..cron import trigger

    try:
        trigger(value, "UTC")
    except ConfigError as exc:
        return f"invalid crontab expression {value!r}: {exc}"
    return None


def _check_list_id(value: str) -> str | None:
    if value == "" or re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value):
        return None
    return "expected a dotted identifier such as 'digest.feeds.example.org' (RFC 2919)"


def _check_proxy(value: str) -> str | None:
    """``serve.trusted_proxy``: empty, ``*`` or one IP address (what the proxy connects from)."""
    import ipaddress

    if value in ("", "*"):
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "expected the IP address the proxy connects from (e.g. 127.0.0.1), '*' or ''"
    return None


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


def _check_dkim_selector(value: str) -> str | None:
    if value == "" or _DNS_NAME_RE.match(value):
        return None
    return "expected a DNS label such as 'iomfeed2026' (letters, digits, '-', '.')"


def _check_domain(value: str) -> str | None:
    if value == "" or (_DNS_NAME_RE.match(value) and "." in value and len(value) <= 253):
        return None
    return "expected a domain name such as 'feeds.example.org' (ASCII: an IDN in its xn-- form)"


#: PEM armour of the unencrypted private keys dkimpy reads: PKCS#1 RSA and PKCS#8.
_PEM_KEY_RE = re.compile(
    rb"-----BEGIN (RSA )?PRIVATE KEY-----\s+([A-Za-z0-9+/=\s]+?)\s*-----END \1?PRIVATE KEY-----"
)


_ED25519_OID = b"\x06\x03\x2b\x65\x70"  # 1.3.101.112 in a PKCS#8 key


def private_key_error(path: Path) -> str | None:
    """What keeps ``path`` from being a PEM private key dkimpy can sign with, or ``None``.
    Reads the file only (no crypto library): the signer parses it before the first send."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path}: no such file"
    except IsADirectoryError:
        return f"{path}: is a folder, expected a PEM private key file"
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror or exc})"
    if b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return f"{path}: the key is encrypted; give an unencrypted PEM key readable by iomfeed only"
    match = _PEM_KEY_RE.search(data)
    if match is None:
        return (
            f"{path}: not a PEM private key (expected '-----BEGIN PRIVATE KEY-----' or"
            " '-----BEGIN RSA PRIVATE KEY-----'; a public key or certificate will not sign)"
        )
    try:
        der = binascii.a2b_base64(b"".join(match.group(2).split()))
    except binascii.Error:
        return f"{path}: the PEM private key's base64 body is damaged"
    if _ED25519_OID in der:
        return f"{path}: an Ed25519 key; iomfeed signs with RSA keys (openssl genrsa 2048)"
    return None


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
