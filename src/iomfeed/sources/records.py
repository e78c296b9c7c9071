"""What flows between a source and the pipeline, in each direction.

In: :class:`StoredView`, read-only look-ups of what is stored (the pipeline backs it with the
store; a test can back it with a dict). Out: :class:`SourcePage`, what the source saw on one
page (a listing page, a feed, a file): the items, the validators of the pages they came from,
the articles that answered 404 and those found again, and whether a full walk just ended.
The pipeline stores a page's items and its other facts in one transaction, so a page is marked
as seen only together with what it brought.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..models import Item, KnownItem, MissingArticle, Response, StoredItem


class StoredView(Protocol):
    """What a source may know of the store: read-only, by canonical URL or by source."""

    def known(self, url: str, *, filter_hash: str = "") -> KnownItem | None: ...

    def missing_article(self, url: str) -> MissingArticle | None: ...

    def missing_due(self, source: str, now: datetime) -> list[MissingArticle]: ...

    def backfilled(self, source: str, filter_hash: str = "") -> bool: ...

    def recent(self, source: str, since: datetime) -> list[KnownItem]: ...

    def get(self, item_id: str) -> StoredItem | None: ...


@dataclass(frozen=True, slots=True)
class Validators:
    """ETag and Last-Modified of a page fetched with 200, kept for its next conditional GET."""

    url: str
    etag: str | None
    last_modified: str | None

    @classmethod
    def of(cls, response: Response) -> Validators | None:
        if response.status != 200:
            return None
        return cls(response.final_url, response.etag, response.last_modified)


@dataclass(frozen=True, slots=True)
class SourcePage:
    """What a source saw on one page. ``found_again``: canonical URLs of articles that had
    answered 404 and are among ``items`` now. ``backfilled``: a full walk of the source
    under ``filter_hash`` has just ended."""

    items: tuple[Item, ...] = ()
    validators: tuple[Validators, ...] = ()
    missing: tuple[MissingArticle, ...] = ()
    found_again: tuple[str, ...] = ()
    backfilled: bool = False
    filter_hash: str = ""

    def is_empty(self) -> bool:
        """Nothing to store: a listing that answered 304 ends with such pages."""
        return not (
            self.items or self.validators or self.missing or self.found_again or self.backfilled
        )


def validators_of(responses: Iterable[Response | None]) -> tuple[Validators, ...]:
    """The validators of the 200 answers among ``responses``."""
    return tuple(v for r in responses if r is not None and (v := Validators.of(r)) is not None)
