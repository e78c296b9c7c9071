"""The values given per language in the config (:class:`PerLanguage`, :class:`CategoryNames`)
and the checks that tie them to ``digest.languages``: a table may only name configured
languages, and a table the file writes must give every one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import languages
from ..errors import ConfigError
from .checks import _describe, _join

if TYPE_CHECKING:
    from .schema import Config


def _table(value: Any, key: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected {what}, got {_describe(value)}")
    return value


@dataclass(frozen=True, slots=True)
class PerLanguage:
    """A text given once for every digest language (a plain string) or once per language
    code (a table ``{ en = "...", sq = "..." }``, or ``[section.key]`` with a line per
    language). A table written in the file must name every language of ``digest.languages``
    (:func:`check_languages`); a built-in default that lacks one uses its first text."""

    text: str = ""  # a plain string's value; for a table, the first language's
    languages: tuple[tuple[str, str], ...] = ()
    explicit: bool = field(default=False, compare=False)  # written in the file

    def get(self, language: str) -> str:
        """The text in ``language`` (a language the table does not have: :attr:`text`)."""
        given = self.given(language)
        return self.text if given is None else given

    def given(self, language: str) -> str | None:
        """The text for ``language``: the plain string, the table's entry, or ``None``."""
        if not self.languages:
            return self.text or None
        for code, value in self.languages:
            if code == language:
                return value
        return None

    @classmethod
    def from_toml(cls, value: Any, key: str) -> PerLanguage:
        if isinstance(value, str):
            return cls(value, explicit=True)
        table = _table(value, key, "a string, or a table with one string per language")
        for code, text in table.items():
            if not isinstance(text, str):
                raise ConfigError(f"{_join(key, code)}: expected a string, got {_describe(text)}")
        if not table:
            raise ConfigError(f"{key}: expected a string, or a table with one string per language")
        return cls(text=next(iter(table.values())), languages=tuple(table.items()), explicit=True)


@dataclass(frozen=True, slots=True)
class CategoryNames:
    """How the digest shows category names, per language code:
    ``{ sq = { Local = "Vendore" } }``. Names are matched ignoring case; a category no
    table names is shown as stored. A language without a table here uses its language
    file's ``[categories]``."""

    languages: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def has(self, language: str) -> bool:
        """Whether a table names the categories in ``language``."""
        return any(code == language for code, _names in self.languages)

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
        tables = _table(value, key, 'a table of languages, each a table of category = "name shown"')
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


def check_languages(config: Config) -> None:
    """Every code of ``digest.languages`` has a language file; every per-language table names
    only those codes, and one written in the file names each of them."""
    digest = config.digest
    folder = config.languages_path
    if folder is not None and not folder.is_dir():
        raise ConfigError(
            f"digest.languages_dir: {folder} is not a folder (it holds language files"
            ' such as it.toml; "" for none)'
        )
    for index, code in enumerate(digest.languages):
        if languages.find(code, folder) is None:
            raise ConfigError(
                f"digest.languages[{index}]: no language file {code}{languages.SUFFIX} in"
                f" {languages.where_to_look(folder)} (set digest.languages_dir to the folder"
                " that holds it)"
            )
    codes = digest.languages
    tables = (
        ("digest.subject", digest.subject, False),
        ("digest.title", digest.title, True),
        ("mail.from_name", config.mail.from_name, True),
        ("mail.postal_address", config.mail.postal_address, True),
    )
    for key, value, every in tables:
        if value.explicit:  # a built-in default may name languages the config does not use
            _known(key, [code for code, _text in value.languages], codes)
        if every and value.explicit and value.languages:
            given = {code for code, _text in value.languages}
            for code in codes:
                if code not in given:
                    raise ConfigError(
                        f"{_join(key, code)}: required key is missing (a table gives the"
                        " text in every language of digest.languages; a plain string is"
                        " used for all)"
                    )
    _known("digest.categories", [code for code, _names in digest.categories.languages], codes)


def _known(key: str, given: list[str], codes: tuple[str, ...]) -> None:
    for code in given:
        if code not in codes:
            raise ConfigError(
                f"{_join(key, code)}: unknown language (digest languages: {', '.join(codes)})"
            )
