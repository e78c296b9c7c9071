"""The words of a language as frozen records, and the reading and checking of its file
(:func:`load`). Imported on first use through :mod:`iomfeed.languages`: finding a file, which
every configuration does, does not build these records (about 6 ms of a cron run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import SUFFIX, find, read_toml, where_to_look


@dataclass(frozen=True, slots=True)
class Chrome:
    """The words around the stories in one language (a file's ``[digest]`` table;
    placeholders in braces are described there)."""

    date_format: str  # a CLDR date pattern or length; month names are CLDR's
    preheader: str
    heading: str
    dateline: str
    greeting: str
    greeting_no_name: str
    intro: str
    intro_first: str
    empty: str
    other_news: str
    read_more: str
    more_one: str
    more_many: str
    more_first_one: str
    more_first_many: str
    more_link: str
    why: str
    sent_to: str
    unsubscribe_prompt: str
    unsubscribe: str
    website: str
    index_link: str
    view_in_browser: str
    web_note: str
    web_manage: str
    web_archive: str
    language: str = "en"  # the language's code (not a key of the file)


@dataclass(frozen=True, slots=True)
class UnsubscribeWords:
    """The unsubscribe pages' words (``{address}`` and ``{list}`` are filled in)."""

    title: str
    confirm: str
    explain: str
    button: str
    done_title: str
    done: str
    already: str
    invalid_title: str
    invalid: str


@dataclass(frozen=True, slots=True)
class SubscribeWords:
    """The sign-up messages' words (``{address}``, ``{list}`` and ``{days}`` are filled
    in)."""

    confirm_subject: str
    confirm_heading: str
    confirm_intro: str
    confirm_action: str
    confirm_button: str
    confirm_ignore: str
    welcome_subject: str
    welcome_heading: str
    welcome_intro: str
    welcome_latest: str
    welcome_none: str
    already_subject: str
    already_heading: str
    already_intro: str
    preferences_prompt: str
    preferences: str


@dataclass(frozen=True, slots=True)
class PagesWords:
    """The words of ``index.html`` and the month pages (placeholders described in the
    file's ``[pages]`` table)."""

    date_format: str  # a CLDR date pattern or length
    website: str
    lead: str
    subscribe: str
    explain: str
    latest: str
    older: str
    other_months: str
    newer_month: str
    older_month: str
    month_heading: str
    month_lead_one: str
    month_lead_many: str
    month_description: str
    last_change: str
    footer: str
    digests_link: str
    digests_heading: str
    digests_lead: str
    digests_feed: str
    digests_one: str
    digests_many: str


@dataclass(frozen=True, slots=True)
class FormsWords:
    """The web forms' words (``/subscribe``, ``/confirm``, ``/preferences`` and the form
    on ``index.html``; ``{list}``, ``{address}`` and ``{date}`` are filled in)."""

    switch: str
    subscribe_title: str
    subscribe_lead: str
    email_label: str
    name_label: str
    language_label: str
    categories_label: str
    honeypot_label: str
    subscribe_button: str
    error_email: str
    error_name: str
    error_categories: str
    step_title: str
    step_lead: str
    step_expired: str
    sent_title: str
    sent_lead: str
    sent_note: str
    confirm_title: str
    confirm_lead: str
    confirm_button: str
    confirmed_title: str
    confirmed_lead: str
    confirmed_already: str
    not_pending: str
    preferences_link: str
    invalid_title: str
    invalid_lead: str
    subscribe_again: str
    too_large: str
    unavailable_title: str
    unavailable_lead: str
    prefs_title: str
    prefs_lead: str
    prefs_saved: str
    save_button: str
    state_active: str
    state_paused: str
    state_pending: str
    state_left: str
    pause_heading: str
    pause_label: str
    pause_button: str
    resume_button: str
    error_pause: str
    leave_heading: str
    leave_lead: str
    leave_button: str
    data_heading: str
    data_lead: str
    data_button: str
    delete_heading: str
    delete_lead: str
    delete_check: str
    delete_button: str
    error_delete: str
    deleted_title: str
    deleted_lead: str


@dataclass(frozen=True, slots=True)
class Language:
    """Everything iomfeed writes in one language, read from ``source``."""

    code: str
    source: str  # the file it was read from, for messages
    subject: str
    chrome: Chrome
    unsubscribe: UnsubscribeWords
    subscribe: SubscribeWords
    categories: tuple[tuple[str, str], ...] = ()
    pages: PagesWords | None = None  # None: the file has no [pages] table
    forms: FormsWords | None = None  # None: the file has no [forms] table

    def category(self, name: str) -> str | None:
        """The file's name for category ``name`` (matched ignoring case), or ``None``."""
        folded = name.casefold()
        for stored, shown in self.categories:
            if stored.casefold() == folded:
                return shown
        return None


CHROME_KEYS = tuple(f.name for f in dataclasses.fields(Chrome) if f.name != "language")
UNSUBSCRIBE_KEYS = tuple(f.name for f in dataclasses.fields(UnsubscribeWords))
SUBSCRIBE_KEYS = tuple(f.name for f in dataclasses.fields(SubscribeWords))
PAGES_KEYS = tuple(f.name for f in dataclasses.fields(PagesWords))
FORMS_KEYS = tuple(f.name for f in dataclasses.fields(FormsWords))
#: Keys of older word files, and what replaced them.
RETIRED_KEYS = {
    "months": "month names come from CLDR (Babel) for the language; write"
    " date_format as a CLDR pattern such as 'd MMMM y'"
}


def load(code: str, folder: Path | None = None) -> Language:
    """The language ``code``, read and checked; a problem is a ConfigError naming the file
    and the key."""
    path = find(code, folder)
    if path is None:
        raise ConfigError(f"language {code!r}: no file {code}{SUFFIX} in {where_to_look(folder)}")
    where = str(path) if isinstance(path, Path) else f"iomfeed/languages/{code}{SUFFIX}"
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark read past
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read: {exc}") from exc
    data = read_toml(text, where)
    tables = ("digest", "unsubscribe", "subscribe", "pages", "forms", "categories")
    _keys(data, ("subject", *tables), where, "")
    subject = data.get("subject")
    if not isinstance(subject, str):
        raise ConfigError(f"{where}: subject: {_missing_or_wrong(subject, 'a string')}")
    return Language(
        code=code,
        source=where,
        subject=subject,
        chrome=chrome(_table(data, "digest", where), f"{where}: [digest]", code),
        unsubscribe=UnsubscribeWords(
            **_strings(_table(data, "unsubscribe", where), where, "unsubscribe", UNSUBSCRIBE_KEYS)
        ),
        subscribe=SubscribeWords(
            **_strings(_table(data, "subscribe", where), where, "subscribe", SUBSCRIBE_KEYS)
        ),
        categories=_categories(data.get("categories", {}), where),
        pages=_pages(data, where, code),
        forms=(
            FormsWords(**_strings(_table(data, "forms", where), where, "forms", FORMS_KEYS))
            if "forms" in data
            else None
        ),
    )


def _pages(data: dict[str, Any], where: str, code: str) -> PagesWords | None:
    from ..dates import check_pattern

    if "pages" not in data:
        return None
    values = _strings(_table(data, "pages", where), where, "pages", PAGES_KEYS)
    problem = check_pattern(values["date_format"], code)
    if problem:
        raise ConfigError(f"{where}: [pages] date_format: {problem}")
    return PagesWords(**values)


def chrome(values: dict[str, Any], where: str, code: str) -> Chrome:
    """A :class:`Chrome` from a ``[digest]`` table; ``where`` names it in messages."""
    from ..dates import check_pattern

    for key in values:
        if key in RETIRED_KEYS:
            raise ConfigError(f"{where} {key}: no longer used: {RETIRED_KEYS[key]}")
        if key not in CHROME_KEYS:
            raise ConfigError(f"{where} {key}: unknown key")
    for key in CHROME_KEYS:
        if key not in values:
            raise ConfigError(f"{where} {key}: required key is missing")
        value = values[key]
        if not isinstance(value, str):
            raise ConfigError(f"{where} {key}: expected a string, got {value!r}"[:200])
    problem = check_pattern(values["date_format"], code)
    if problem:
        raise ConfigError(f"{where} date_format: {problem}")
    return Chrome(**values, language=code)


def _missing_or_wrong(value: Any, what: str) -> str:
    if value is None:
        return "required key is missing"
    return f"expected {what}, got {value!r}"[:200]


def _keys(data: dict[str, Any], known: tuple[str, ...], where: str, table: str) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: {table}{key}: unknown key")


def _table(data: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{name}]: {_missing_or_wrong(value, 'a table')}")
    return value


def _strings(
    values: dict[str, Any], where: str, table: str, keys: tuple[str, ...]
) -> dict[str, str]:
    _keys(values, keys, where, f"[{table}] ")
    for key in keys:
        value = values.get(key)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: [{table}] {key}: {_missing_or_wrong(value, 'a string')}")
    return values


def _categories(values: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [categories]: expected a table, got {values!r}"[:200])
    for name, shown in values.items():
        if not isinstance(shown, str) or not shown.strip():
            raise ConfigError(f"{where}: [categories] {name}: expected the name to show")
    return tuple(values.items())
