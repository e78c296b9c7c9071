"""The json source: hand-written or exported items, bad ones named, good ones kept."""

from __future__ import annotations

import json
from pathlib import Path

from iomfeed.config import Config, load_config
from iomfeed.models import DateSource

from .conftest import fetch, stored


def config_for(tmp_path: Path, filename: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[site]\ntimezone = "Europe/Tirane"\n[[sources]]\nname = "manual"\nkind = "json"\n'
        f'path = "{filename}"\n',
        encoding="utf-8",
    )
    return load_config(path)


def test_a_json_feed_style_file_is_ingested(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text(
        json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "items": [
                    {
                        "id": "1",
                        "url": "https://albania.iom.int/news/manual-one",
                        "title": "Takim me diasporën në Tiranë",
                        "content_html": "<p>Për <b>ju</b></p>",
                        "date_published": "2024-03-05",
                        "tags": ["Local"],
                        "language": "sq",
                        "authors": [{"name": "IOM Albania"}],
                    },
                    {
                        "url": "https://albania.iom.int/news/manual-two",
                        "title": "Second",
                        "content_text": "Para one.\n\nPara <two>.",
                        "date_published": "2024-03-06T10:00:00+01:00",
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    config = config_for(tmp_path, "items.json")
    report = fetch(config)
    assert report.ok and report.sources[0].new == 2
    items = {i.title: i for i in stored(config)}
    one = items["Takim me diasporën në Tiranë"]
    assert one.language == "sq" and one.categories == ("Local",) and one.author == "IOM Albania"
    assert one.published.isoformat() == "2024-03-05T00:00:00+01:00"
    assert one.date_source is DateSource.JSON
    assert items["Second"].content_html == "<p>Para one.</p><p>Para &lt;two&gt;.</p>"
    # Running again changes nothing.
    again = fetch(config)
    assert again.sources[0].new == 0 and again.sources[0].updated == 0


def test_json_lines_with_bad_rows_reports_each_and_keeps_the_rest(tmp_path: Path) -> None:
    rows = [
        json.dumps({"url": "https://albania.iom.int/news/ok", "title": "Fine"}),
        json.dumps({"url": "albania.iom.int/news/x", "title": "No scheme"}),
        "{not json",
        json.dumps({"url": "https://albania.iom.int/news/y", "title": "T", "colour": "red"}),
        json.dumps(
            {
                "url": "https://albania.iom.int/news/z",
                "title": "T",
                "date_published": "last Tuesday",
            }
        ),
    ]
    (tmp_path / "items.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = config_for(tmp_path, "items.jsonl")
    report = fetch(config)
    result = report.sources[0]
    assert not result.ok and result.new == 1
    path = str(tmp_path / "items.jsonl")
    assert f"{path}:2: 'url' is missing or not an absolute http(s) URL" in result.error
    assert f"{path}:3: not valid JSON" in result.error
    assert f"{path}:4: unknown field 'colour'" in result.error
    assert f"{path}:5: 'date_published' is not an ISO 8601 date" in result.error
    assert [i.title for i in stored(config)] == ["Fine"]


def test_a_missing_file_fails_the_source_with_its_path(tmp_path: Path) -> None:
    config = config_for(tmp_path, "nowhere.json")
    result = fetch(config).sources[0]
    assert not result.ok
    assert f"{tmp_path / 'nowhere.json'}: file not found (sources.path)" in result.error


def test_date_modified_dates_the_stored_update(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text(
        json.dumps(
            [
                {
                    "url": "https://albania.iom.int/news/manual-m",
                    "title": "Modified later",
                    "content_html": "<p>x</p>",
                    "date_published": "2024-03-05T10:00:00+01:00",
                    "date_modified": "2024-03-07T12:30:00+01:00",
                },
            ]
        ),
        encoding="utf-8",
    )
    config = config_for(tmp_path, "items.json")
    assert fetch(config).ok
    item = stored(config)[0]
    assert item.published.isoformat() == "2024-03-05T10:00:00+01:00"
    assert item.updated.isoformat() == "2024-03-07T11:30:00+00:00"
