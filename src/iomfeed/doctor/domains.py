"""Pure rules about names and tag records: a domain's organisational domain (for DMARC's
relaxed alignment), and the ``tag=value;`` records DKIM and DMARC publish in TXT.

The organisational domain is found by a simple rule instead of the Public Suffix List:
the last two labels (``news.example.org`` -> ``example.org``), or the last three when the
top-level domain is a two-letter country code and the label before it is one of the common
second-level names (``co``, ``com``, ``org``, ``net``, ``gov``, ``edu``, ``ac``, ...), as in
``news.iom.org.al`` -> ``iom.org.al`` or ``mail.example.co.uk`` -> ``example.co.uk``. It
can be wrong for unusual suffixes (``github.io`` is a public suffix but counts as one
organisation here), which errs towards calling two names aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

#: second-level labels under a country code that are registries, not organisations
SECOND_LEVEL = frozenset(
    ("co", "com", "org", "net", "gov", "edu", "ac", "mil", "nom", "ltd", "plc", "sch", "or", "ne")
)


def org_domain(domain: str) -> str:
    """The organisational domain of ``domain`` by the rule in this module's docstring."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 2
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in SECOND_LEVEL:
        keep = 3
    return ".".join(labels[-keep:])


def aligned(from_domain: str, other: str, *, strict: bool = False) -> bool:
    """DMARC identifier alignment (RFC 7489 3.1): the same name (strict), or the same
    organisational domain (relaxed)."""
    a, b = from_domain.lower().rstrip("."), other.lower().rstrip(".")
    return a == b if strict else org_domain(a) == org_domain(b)


def tags(record: str) -> dict[str, str]:
    """``v=DKIM1; k=rsa; p=MIIB...`` as {tag: value}, tags lower-cased, spaces inside a
    value removed (DNS tools split long keys), the first of a repeated tag kept."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            found.setdefault(name.strip().lower(), "".join(value.split()))
    return found


@dataclass(frozen=True, slots=True)
class Dmarc:
    """A DMARC record's parts that matter before a send."""

    policy: str  # none | quarantine | reject ("" when the record has none)
    subdomain_policy: str  # sp=, "" when not given
    strict_dkim: bool  # adkim=s
    strict_spf: bool  # aspf=s
    reports: str  # rua=, "" when no aggregate reports are asked for


def dmarc_records(texts: list[str]) -> list[str]:
    return [t.strip() for t in texts if t.strip().replace(" ", "").lower().startswith("v=dmarc1")]


def parse_dmarc(record: str) -> Dmarc:
    t = tags(record)
    return Dmarc(
        policy=t.get("p", "").lower(),
        subdomain_policy=t.get("sp", "").lower(),
        strict_dkim=t.get("adkim", "r").lower() == "s",
        strict_spf=t.get("aspf", "r").lower() == "s",
        reports=t.get("rua", ""),
    )


def dkim_records(texts: list[str]) -> list[str]:
    """The TXT records that can be a DKIM key record: with ``p=``, and ``v=DKIM1`` first
    when there is a ``v=`` at all (RFC 6376 3.6.1)."""
    found = []
    for text in texts:
        t = tags(text)
        first = text.strip().split(";", 1)[0].replace(" ", "").lower()
        if "p" in t and ("v" not in t or first == "v=dkim1"):
            found.append(text.strip())
    return found
