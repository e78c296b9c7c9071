"""The records ``iomfeed doctor`` passes around: one :class:`Check` per line of its
checklist, and the :class:`Report` of them all."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


class Status(Enum):
    """How a check came out. ``warn``: it works, but something should be done (or doctor
    could not tell); ``skip``: not tried, because a check before it failed or it does not
    apply (the line says which)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist: what was checked, what was found, what to do."""

    name: str  # short, fixed: "SPF", "DKIM", "relay TLS", "feed atom.xml", ...
    status: Status
    found: str  # what was checked and what came back, in plain words
    fix: str = ""  # what to do about it (empty when there is nothing to do)


@dataclass(frozen=True, slots=True)
class Report:
    checks: tuple[Check, ...]

    def passed(self, *, strict: bool = False) -> bool:
        """No check failed (and, ``strict``, none warned)."""
        bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
        return not any(c.status in bad for c in self.checks)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for c in self.checks:
            out[c.status.value] += 1
        return out


@dataclass(frozen=True, slots=True)
class DkimSettings:
    """What the DKIM check needs of ``[mail.dkim]``: the selector, the private key's file
    and the signing domain (``d=``)."""

    selector: str
    key_file: Path
    domain: str


def ok(name: str, found: str) -> Check:
    return Check(name, Status.OK, found)


def warn(name: str, found: str, fix: str) -> Check:
    return Check(name, Status.WARN, found, fix)


def fail(name: str, found: str, fix: str) -> Check:
    return Check(name, Status.FAIL, found, fix)


def skip(name: str, found: str) -> Check:
    return Check(name, Status.SKIP, found)
