"""The benchmark's synthetic sites look like real ones at any size: a big one spans years,
not centuries."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from dev.sitegen import synthetic_items


def test_a_large_site_spans_at_most_fifteen_years() -> None:
    items = synthetic_items(20_000)
    span = items[0].published_utc - items[-1].published_utc
    assert timedelta(days=365 * 13) < span <= timedelta(days=365.25 * 15)
    dates = [item.published_utc for item in items]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) > 19_000


def test_a_small_site_keeps_its_spacing_of_a_few_days() -> None:
    items = synthetic_items(500)
    gaps = [a.published_utc - b.published_utc for a, b in pairwise(items)]
    assert min(gaps) >= timedelta(hours=18) and max(gaps) <= timedelta(days=5, minutes=1)
    assert synthetic_items(500, years=1)[-1].published_utc > items[-1].published_utc


def test_a_share_of_undated_items_changes_only_their_dates() -> None:
    plain, some_undated = synthetic_items(400), synthetic_items(400, undated=0.1)
    changed = [(a, b) for a, b in zip(plain, some_undated, strict=True) if a != b]
    assert 20 <= len(changed) <= 60
    for a, b in changed:
        assert (b.date_markup, b.language) == ("none", "en")
        assert b.slug == a.slug and b.title == a.title and b.published == a.published
        assert a.teaser.endswith(b.teaser) and a.body.replace(a.teaser, b.teaser, 1) == b.body
