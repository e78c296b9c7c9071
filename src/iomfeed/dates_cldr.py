"""CLDR's date words and patterns for the built-in languages, generated from Babel by
``python -m dev.cldr_dates`` (do not edit: a test regenerates it and compares).

``MONTHS[context][width]`` and ``DAYS[width]`` are lists (January and Monday first);
``DATE_FORMATS`` holds the patterns of CLDR's four lengths; ``NAME`` the language's name in
itself. :mod:`iomfeed.dates` writes a date from these without loading Babel.
"""

from __future__ import annotations

from typing import Any

#: Babel 2.19.0 (CLDR 49).
CLDR: dict[str, dict[str, Any]] = {
    "en": {
        "MONTHS": {
            "format": {
                "wide": [
                    "January",
                    "February",
                    "March",
                    "April",
                    "May",
                    "June",
                    "July",
                    "August",
                    "September",
                    "October",
                    "November",
                    "December",
                ],
                "abbreviated": [
                    "Jan",
                    "Feb",
                    "Mar",
                    "Apr",
                    "May",
                    "Jun",
                    "Jul",
                    "Aug",
                    "Sep",
                    "Oct",
                    "Nov",
                    "Dec",
                ],
            },
            "stand-alone": {
                "wide": [
                    "January",
                    "February",
                    "March",
                    "April",
                    "May",
                    "June",
                    "July",
                    "August",
                    "September",
                    "October",
                    "November",
                    "December",
                ],
                "abbreviated": [
                    "Jan",
                    "Feb",
                    "Mar",
                    "Apr",
                    "May",
                    "Jun",
                    "Jul",
                    "Aug",
                    "Sep",
                    "Oct",
                    "Nov",
                    "Dec",
                ],
            },
        },
        "DAYS": {
            "wide": [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ],
            "abbreviated": [
                "Mon",
                "Tue",
                "Wed",
                "Thu",
                "Fri",
                "Sat",
                "Sun",
            ],
        },
        "DATE_FORMATS": {
            "short": "M/d/yy",
            "medium": "MMM d, y",
            "long": "MMMM d, y",
            "full": "EEEE, MMMM d, y",
        },
        "NAME": "English",
    },
    "sq": {
        "MONTHS": {
            "format": {
                "wide": [
                    "janar",
                    "shkurt",
                    "mars",
                    "prill",
                    "maj",
                    "qershor",
                    "korrik",
                    "gusht",
                    "shtator",
                    "tetor",
                    "nëntor",
                    "dhjetor",
                ],
                "abbreviated": [
                    "jan",
                    "shk",
                    "mar",
                    "pri",
                    "maj",
                    "qer",
                    "korr",
                    "gush",
                    "sht",
                    "tet",
                    "nën",
                    "dhj",
                ],
            },
            "stand-alone": {
                "wide": [
                    "janar",
                    "shkurt",
                    "mars",
                    "prill",
                    "maj",
                    "qershor",
                    "korrik",
                    "gusht",
                    "shtator",
                    "tetor",
                    "nëntor",
                    "dhjetor",
                ],
                "abbreviated": [
                    "jan",
                    "shk",
                    "mar",
                    "pri",
                    "maj",
                    "qer",
                    "korr",
                    "gush",
                    "sht",
                    "tet",
                    "nën",
                    "dhj",
                ],
            },
        },
        "DAYS": {
            "wide": [
                "e hënë",
                "e martë",
                "e mërkurë",
                "e enjte",
                "e premte",
                "e shtunë",
                "e diel",
            ],
            "abbreviated": [
                "hën",
                "mar",
                "mër",
                "enj",
                "pre",
                "sht",
                "die",
            ],
        },
        "DATE_FORMATS": {
            "short": "d.M.yy",
            "medium": "d MMM y",
            "long": "d MMMM y",
            "full": "EEEE, d MMMM y",
        },
        "NAME": "shqip",
    },
}
