"""Write ``src/iomfeed/dates_cldr.py``: the few CLDR words and patterns the built-in
languages' dates are written with, and the month names of the languages the date parser
always reads (``iomfeed.dates.PARSE_LANGUAGES``), taken from Babel.

Writing a date on the publish path needs only these (month and day names, the four
standard date patterns, the language's name in itself); loading them through Babel costs a
publish about 40-70 ms of pickle loads and merges, and reading the month names a fetch
about 35 ms. ``iomfeed.dates`` writes and reads a date from this table when it can and asks
Babel for anything else (another language, a field the table does not hold). A test
regenerates the table from the installed Babel and compares, so the two cannot drift.

Run ``python -m dev.cldr_dates`` from the repository's root after upgrading Babel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "iomfeed" / "dates_cldr.py"

HEADER = '''"""CLDR's date words and patterns for the built-in languages, generated from Babel by
``python -m dev.cldr_dates`` (do not edit: a test regenerates it and compares).

``MONTHS[context][width]`` and ``DAYS[width]`` are lists (January and Monday first);
``DATE_FORMATS`` holds the patterns of CLDR's four lengths; ``NAME`` the language's name in
itself. For the built-in languages and those the date parser always reads,
:mod:`iomfeed.dates` writes and reads a date from these without loading Babel.
"""

from __future__ import annotations

from typing import Any

#: Babel {version} (CLDR {cldr}).
'''


def extract(languages: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The table for ``languages`` (CLDR locale ids), from the installed Babel."""
    from babel import Locale

    table: dict[str, dict[str, Any]] = {}
    for code in languages:
        locale = Locale.parse(code)
        table[code] = {
            "MONTHS": {
                context: {
                    width: [str(locale.months[context][width][m]) for m in range(1, 13)]
                    for width in ("wide", "abbreviated")
                }
                for context in ("format", "stand-alone")
            },
            "DAYS": {
                width: [str(locale.days["format"][width][d]) for d in range(7)]
                for width in ("wide", "abbreviated")
            },
            "DATE_FORMATS": {
                length: str(locale.date_formats[length].pattern)
                for length in ("short", "medium", "long", "full")
            },
            "NAME": str(locale.get_display_name(code) or code),
        }
    return table


def render() -> str:
    """The module's text for the built-in languages."""
    import babel
    from babel.core import get_cldr_version

    from iomfeed.dates import PARSE_LANGUAGES
    from iomfeed.languages import BUILT_IN

    text = HEADER.replace("{version}", babel.__version__).replace("{cldr}", get_cldr_version())
    languages = tuple(dict.fromkeys(BUILT_IN + PARSE_LANGUAGES))
    return text + f"CLDR: dict[str, dict[str, Any]] = {_literal(extract(languages), 0)}\n"


def _literal(value: Any, depth: int) -> str:
    """``value`` as Python, one entry a line with a trailing comma (as ruff formats it)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    inner, outer = "    " * (depth + 1), "    " * depth
    if isinstance(value, dict):
        lines = [f"{inner}{_literal(k, 0)}: {_literal(v, depth + 1)},\n" for k, v in value.items()]
        return "{\n" + "".join(lines) + outer + "}"
    lines = [f"{inner}{_literal(v, depth + 1)},\n" for v in value]
    return "[\n" + "".join(lines) + outer + "]"


def main() -> None:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
