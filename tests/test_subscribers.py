"""Subscribers: addresses checked, CSV import that names every bad row, consent respected."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iomfeed.cli import main
from iomfeed.store import MIGRATIONS, Store
from iomfeed.subscribers import normalize_address, parse_csv

from .conftest import NOW


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Fatos.Cocoli@Example.ORG", "Fatos.Cocoli@example.org"),
     ("  ana+digest@mail.example.al ", "ana+digest@mail.example.al"),
     ("user@bücher.example", "user@xn--bcher-kva.example"),
     ("ana@shqipëri.al", "ana@xn--shqipri-vya.al"),
     ("ana@xn--shqipri-vya.al", "ana@xn--shqipri-vya.al")],
)
def test_good_addresses_are_normalised(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("", "empty address"), ("no-at-sign.example.org", "needs one '@'"),
     ("a@b", "invalid domain"), ("Ana <ana@example.org>", "not a plain e-mail address"),
     ("ana@exa mple.org", "not a plain"), ("a..b@example.org", "invalid name part"),
     ("ana@-example.org", "invalid domain"), ("ana@example.123", "invalid domain")],
)
def test_bad_addresses_say_why(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize_address(raw)


@given(st.text(max_size=40))
def test_normalising_is_idempotent_or_refuses(raw: str) -> None:
    try:
        once = normalize_address(raw)
    except ValueError:
        return
    assert normalize_address(once) == once
    assert "\n" not in once and "\r" not in once


def test_csv_import_reports_every_bad_row_with_its_line() -> None:
    text = ("address,name,language\n"
            "fatos@example.org,Fatos Çoçoli,sq\n"
            "not-an-address,Someone,en\n"
            "ana@example.org,Ana,fr\n"
            "FATOS@example.ORG,Fatos again,en\n"
            "\n"
            "mira@example.org,\"Mira, Tirana\",\n"
            "x@example.org,a,en,extra\n")
    good, problems = parse_csv(text)
    assert [(line, s.address, s.name, s.language) for line, s in good] == [
        (2, "fatos@example.org", "Fatos Çoçoli", "sq"),
        (7, "mira@example.org", "Mira, Tirana", "en")]
    assert [str(p) for p in problems] == [
        "line 3: not-an-address: an address needs one '@' with a name before it and a domain"
        " after",
        "line 4: ana@example.org: unknown language 'fr' (expected en or sq)",
        "line 5: FATOS@example.ORG: duplicate of line 2",
        "line 8: x@example.org: 4 columns, expected at most 3 (address, name, language)",
    ]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[[sources]]\nname = "manual"\nkind = "json"\npath = "x.json"\n',
                    encoding="utf-8")
    return path


def cli(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), "subscribers", *args])


def test_the_subscribers_commands(config_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("fatos@example.org,Fatos Çoçoli,sq\nbad,,\nana@example.org,Ana,en\n",
                        encoding="utf-8")
    assert cli(config_file, "import", str(csv_file)) == 1
    out = capsys.readouterr()
    assert "2 subscriber(s) added, 1 row(s) skipped" in out.out
    assert f"{csv_file}: line 2: bad: an address needs one '@'" in out.err
    assert cli(config_file, "add", "mira@example.org", "--name", "Mira", "--lang", "sq") == 0
    assert cli(config_file, "remove", "ana@example.org", "--reason", "asked by phone") == 0
    capsys.readouterr()
    assert cli(config_file, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["address"], s["status"], s["language"]) for s in listed] == [
        ("fatos@example.org", "active", "sq"), ("ana@example.org", "unsubscribed", "en"),
        ("mira@example.org", "active", "sq")]
    assert listed[1]["reason"] == "asked by phone" and listed[1]["left"]
    # Someone who left is not re-added by an import, nor by add without --resubscribe.
    assert cli(config_file, "import", str(csv_file)) == 1
    assert "ana@example.org: unsubscribed or bounced earlier; not re-added" in \
        capsys.readouterr().err
    assert cli(config_file, "add", "ana@example.org") == 1
    assert cli(config_file, "add", "ana@example.org", "--resubscribe") == 0
    export = tmp_path / "out.csv"
    assert cli(config_file, "export", str(export)) == 0
    rows = list(csv.reader(io.StringIO(export.read_text(encoding="utf-8"))))
    assert rows[0][:4] == ["address", "name", "language", "status"]
    assert rows[1][:4] == ["fatos@example.org", "Fatos Çoçoli", "sq", "active"]
    assert len(rows) == 4
    assert cli(config_file, "add", "not an address") == 2


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.close()
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 2
        from iomfeed.subscribers import Subscriber

        assert store.add_subscriber(Subscriber("a@example.org", "A", "en"), NOW) == "added"
        assert store.subscriber_counts() == {"active": 1}
