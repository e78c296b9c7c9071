"""Languages as data: a language is one TOML file of words, ``<code>.toml``, found by its code.

``en.toml`` and ``sq.toml`` ship in this package; an operator adds a language by putting a
file in the folder ``digest.languages_dir`` names (searched before the package, so a file
there also replaces a built-in language) and its code in ``digest.languages``. A file holds:

* ``subject``: the digest's subject line when the config gives none for the language;
* ``[digest]``: the words around the stories in the email digest (:class:`Chrome`);
* ``[unsubscribe]``: the words of the unsubscribe pages (:class:`UnsubscribeWords`);
* ``[subscribe]``: the words of the sign-up messages: confirmation, welcome, "already
  subscribed" (:class:`SubscribeWords`);
* ``[pages]``: the words of the feeds folder's pages (:class:`PagesWords`), needed only by
  the language those pages are written in (English);
* ``[forms]``: the words of the web forms (:class:`FormsWords`), optional: the forms are
  shown in the languages that have them;
* ``[categories]``: category names shown when ``digest.categories`` has no table for it.

Every key is required and an unknown one is refused: a mistake is a :class:`ConfigError`
naming the file and the key (no silent fall-back to English). Dates and month names are not
here: they come from CLDR through Babel (:mod:`iomfeed.dates`) for the language's code.

Pure: reads files, returns frozen records. TOML only; Babel is loaded when a file's
``date_format`` is checked.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from .words import CHROME_KEYS as CHROME_KEYS
    from .words import FORMS_KEYS as FORMS_KEYS
    from .words import PAGES_KEYS as PAGES_KEYS
    from .words import RETIRED_KEYS as RETIRED_KEYS
    from .words import SUBSCRIBE_KEYS as SUBSCRIBE_KEYS
    from .words import UNSUBSCRIBE_KEYS as UNSUBSCRIBE_KEYS
    from .words import Chrome as Chrome
    from .words import FormsWords as FormsWords
    from .words import Language as Language
    from .words import PagesWords as PagesWords
    from .words import SubscribeWords as SubscribeWords
    from .words import UnsubscribeWords as UnsubscribeWords
    from .words import chrome as chrome
    from .words import load as load

#: The languages that ship with iomfeed, and the default of ``digest.languages``.
BUILT_IN = ("en", "sq")
SUFFIX = ".toml"

#: What :mod:`.words` defines, imported from there when first asked for.
_WORDS = frozenset(
    {
        "CHROME_KEYS",
        "FORMS_KEYS",
        "PAGES_KEYS",
        "RETIRED_KEYS",
        "SUBSCRIBE_KEYS",
        "UNSUBSCRIBE_KEYS",
        "Chrome",
        "FormsWords",
        "Language",
        "PagesWords",
        "SubscribeWords",
        "UnsubscribeWords",
        "chrome",
        "load",
    }
)


def __getattr__(name: str) -> object:
    if name in _WORDS:
        from . import words

        value = getattr(words, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def own_folder() -> Traversable:
    """The package's own language files."""
    import importlib.resources

    return importlib.resources.files(__name__)


def find(code: str, folder: Path | None = None) -> Path | Traversable | None:
    """The file for ``code``: in ``folder`` (the operator's) first, then the package's."""
    name = code + SUFFIX
    if folder is not None and (folder / name).is_file():
        return folder / name
    own = own_folder() / name
    return own if own.is_file() else None


def where_to_look(folder: Path | None) -> str:
    """Where :func:`find` looks, for messages."""
    own = f"the built-in languages ({', '.join(BUILT_IN)})"
    return f"{folder} or {own}" if folder is not None else own


def read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from exc
