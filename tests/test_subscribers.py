"""Subscribers: addresses checked, CSV import that names every bad row, consent respected."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iomfeed.cli import main
from iomfeed.demo.server import SnapshotServer
from iomfeed.errors import BadAddress, InputError
from iomfeed.store import MIGRATIONS, Store
from iomfeed.subscribers import (
    Subscriber,
    decode_csv,
    display_width,
    is_plainly_valid,
    normalize_address,
    parse_csv,
    table,
    to_csv,
)

from .conftest import NOW


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fatos.Cocoli@Example.ORG", "Fatos.Cocoli@example.org"),
        ("  ana+digest@mail.example.al ", "ana+digest@mail.example.al"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("ana@shqipëri.al", "ana@xn--shqipri-vya.al"),
        ("ana@xn--shqipri-vya.al", "ana@xn--shqipri-vya.al"),
    ],
)
def test_good_addresses_are_normalised(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty address"),
        ("no-at-sign.example.org", "needs one '@'"),
        ("a@b", "invalid domain"),
        ("Ana <ana@example.org>", "not a plain e-mail address"),
        ("ana@exa mple.org", "not a plain"),
        ("a..b@example.org", "invalid name part"),
        ("ana@-example.org", "invalid domain"),
        ("ana@example.123", "invalid domain"),
    ],
)
def test_bad_addresses_say_why(raw: str, problem: str) -> None:
    with pytest.raises(BadAddress, match=problem):
        normalize_address(raw)


@given(st.text(max_size=40))
def test_normalising_is_idempotent_or_refuses(raw: str) -> None:
    try:
        once = normalize_address(raw)
    except BadAddress:
        return
    assert normalize_address(once) == once
    assert "\n" not in once and "\r" not in once


def test_csv_import_reports_every_bad_row_with_its_line() -> None:
    text = (
        "address,name,language\n"
        "fatos@example.org,Fatos Çoçoli,sq\n"
        "not-an-address,Someone,en\n"
        "ana@example.org,Ana,fr\n"
        "FATOS@example.ORG,Fatos again,en\n"
        "\n"
        'mira@example.org,"Mira,\nTirana",\n'
        "x@example.org,a,en,extra\n"
    )
    read = parse_csv(text)
    assert [(line, s.address, s.name, s.language) for line, s in read.rows] == [
        (2, "fatos@example.org", "Fatos Çoçoli", "sq"),
        (7, "mira@example.org", "Mira, Tirana", "en"),
        (9, "x@example.org", "a", "en"),
    ]  # with a header, other columns are ignored
    assert [str(p) for p in read.problems] == [
        "line 3: not-an-address: an address needs one '@' with a name before it and a domain after",
        "line 4: ana@example.org: unknown language 'fr' (expected en or sq)",
        "line 5: FATOS@example.ORG: duplicate of line 2",
    ]
    positional = parse_csv("a@example.org,A,en\nb@example.org,B,en,extra\n")
    assert [str(p) for p in positional.problems] == [
        "line 2: b@example.org: 4 columns, expected at most 3 (address, name, language)"
        " without a header row"
    ]


MAILCHIMP = (
    "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,"
    "OPTIN_TIME,LEID,TAGS\n"
    'fatos@example.org,Fatos,Çoçoli,"Rruga e Durrësit, Tirana",,2,'
    "2024-01-02 10:00:00,123,\n"
    'ana@example.org,Ana,,,,1,2024-01-03 11:00:00,124,"news"\n'
)


@pytest.mark.parametrize(
    ("text", "expected", "columns"),
    [
        (
            "address;name;language\nfatos@example.org;Fatos Çoçoli;sq\nana@example.org;Ana;\n",
            [("fatos@example.org", "Fatos Çoçoli", "sq"), ("ana@example.org", "Ana", "en")],
            "address from 'address', name from 'name', language from 'language'",
        ),
        (
            "fatos@example.org\tFatos, Çoçoli\tsq\n",
            [("fatos@example.org", "Fatos, Çoçoli", "sq")],
            "no header: address, name, language",
        ),
        (
            'fatos@example.org,"Çoçoli; Fatos",sq\n',
            [("fatos@example.org", "Çoçoli; Fatos", "sq")],
            "no header: address, name, language",
        ),
        (
            "ana@example.org\nfatos@example.org\n",
            [("ana@example.org", "", "en"), ("fatos@example.org", "", "en")],
            "no header: address, name, language",
        ),
        (
            MAILCHIMP,
            [("fatos@example.org", "Fatos Çoçoli", "en"), ("ana@example.org", "Ana", "en")],
            "address from 'Email Address', name from 'First Name' + 'Last Name'",
        ),
        (
            'email,name,attributes\nfatos@example.org,Fatos Çoçoli,"{""language"": ""sq""}"\n'
            'ana@example.org,Ana,"{""city"": ""Vlorë""}"\n',
            [("fatos@example.org", "Fatos Çoçoli", "sq"), ("ana@example.org", "Ana", "en")],
            "address from 'email', name from 'name', language from 'attributes' (JSON)",
        ),
        (
            "E-mail;Language\nfatos@example.org;sq_AL\nana@example.org;en-GB\n",
            [("fatos@example.org", "", "sq"), ("ana@example.org", "", "en")],
            "address from 'E-mail', language from 'Language'",
        ),
    ],
    ids=[
        "semicolon",
        "tab",
        "comma-quoted-semicolon",
        "addresses-only",
        "mailchimp",
        "listmonk",
        "regions",
    ],
)
def test_csv_delimiters_and_the_columns_of_common_exports(
    text: str, expected: list[tuple[str, str, str]], columns: str
) -> None:
    read = parse_csv(text)
    assert not read.problems
    assert [(s.address, s.name, s.language) for _line, s in read.rows] == expected
    assert read.columns == columns


def test_rows_of_people_who_left_in_the_file_are_never_imported() -> None:
    export = (
        "address,name,language,status,subscribed,left,reason\n"
        "fatos@example.org,Fatos,sq,active,2024-01-02T10:00:00+00:00,,\n"
        "ana@example.org,Ana,en,unsubscribed,2024-01-02T10:00:00+00:00,"
        "2024-02-01T10:00:00+00:00,asked by phone\n"
    )
    read = parse_csv(export)
    assert [s.address for _line, s in read.rows] == ["fatos@example.org"]
    assert [str(p) for p in read.left] == [
        "line 3: ana@example.org: status is 'unsubscribed' in the file: not imported"
    ]
    mailchimp_unsubscribed = (
        "Email Address,First Name,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE\n"
        "ana@example.org,Ana,2024-02-01 10:00:00,March news\n"
    )
    read = parse_csv(mailchimp_unsubscribed)
    assert not read.rows and [p.line for p in read.left] == [2]


def test_encodings_a_bom_utf16_and_lines_that_are_not_utf8() -> None:
    text = "address,name\nfatos@example.org,Fatos Çoçoli\n"
    for data in (
        text.encode("utf-8-sig"),
        text.encode("utf-16"),
        text.replace("\n", "\r\n").encode("utf-8"),
    ):
        read = parse_csv(decode_csv(data))
        assert [(s.address, s.name) for _line, s in read.rows] == [
            ("fatos@example.org", "Fatos Çoçoli")
        ] and not read.problems
    latin1 = (
        "address,name\nfatos@example.org,Fatos Çoçoli\nana@example.org,Ana\nmira@example.org,Mirë\n"
    ).encode("cp1252")
    read = parse_csv(decode_csv(latin1))
    assert [s.address for _line, s in read.rows] == ["ana@example.org"]
    assert [str(p) for p in read.problems] == [
        "line 2: fatos@example.org: not UTF-8 text (byte 0xc7)",
        "line 4: mira@example.org: not UTF-8 text (byte 0xeb)",
    ]
    assert read.not_utf8 == 2


def test_a_header_without_an_address_column_is_refused_by_name() -> None:
    with pytest.raises(
        InputError,
        match=r"line 1: a header row \('Subscriber', 'Full name'\)"
        r" without an address column",
    ):
        parse_csv("Subscriber,Full name\nfatos@example.org,Fatos\n")


def test_list_lines_are_aligned_by_display_width() -> None:
    subs = [
        Subscriber("fatos@example.org", "Fatos Çoçoli", "sq", subscribed=NOW),
        Subscriber("li@example.org", "李小龍", "en", subscribed=NOW),
        Subscriber(
            "e@example.org",
            "Zoe\u0308 \x1b[31mred",
            "en",
            "unsubscribed",
            subscribed=NOW,
            left=NOW,
            reason="asked",
        ),
    ]
    lines = table(subs)
    assert lines[0].split() == ["address", "name", "lang", "status", "joined", "left", "reason"]
    # "lang" starts in the same terminal column on every line, wide names included
    starts = {
        display_width(line[: line.index(lang) + 1])
        for line, lang in zip(lines, [" lang", " sq ", " en ", " en "], strict=True)
    }
    assert len(starts) == 1
    assert "\x1b" not in "".join(lines) and "Zoe\u0308 \ufffd[31mred" in lines[3]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[sources]]\nname = "manual"\nkind = "json"\npath = "x.json"\n', encoding="utf-8"
    )
    return path


def cli(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), "subscribers", *args])


def test_the_subscribers_commands(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "fatos@example.org,Fatos Çoçoli,sq\nbad,,\nana@example.org,Ana,en\n", encoding="utf-8"
    )
    assert cli(config_file, "import", str(csv_file)) == 1
    out = capsys.readouterr()
    assert (
        "2 subscriber(s) added, 0 unchanged (already subscribed), 0 not added (they left),"
        " 1 row(s) skipped" in out.out
    )
    assert f"{csv_file}: line 2: bad: an address needs one '@'" in out.err
    assert cli(config_file, "add", "mira@example.org", "--name", "Mira", "--lang", "sq") == 0
    assert cli(config_file, "remove", "ana@example.org", "--reason", "asked by phone") == 0
    capsys.readouterr()
    assert cli(config_file, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["address"], s["status"], s["language"]) for s in listed] == [
        ("fatos@example.org", "active", "sq"),
        ("ana@example.org", "unsubscribed", "en"),
        ("mira@example.org", "active", "sq"),
    ]
    assert listed[1]["reason"] == "asked by phone" and listed[1]["left"]
    # Someone who left is not re-added by an import, nor by add without --resubscribe; that
    # is not an error of the file.
    csv_file.write_text(
        "fatos@example.org,Fatos Çoçoli,sq\nana@example.org,Ana,en\n", encoding="utf-8"
    )
    assert cli(config_file, "import", str(csv_file)) == 0
    out = capsys.readouterr()
    assert (
        f"{csv_file}: line 2: ana@example.org: unsubscribed or bounced earlier; not"
        " re-added" in out.err
    )
    assert (
        "0 subscriber(s) added, 1 unchanged (already subscribed), 1 not added (they left),"
        " 0 row(s) skipped" in out.out
    )
    assert cli(config_file, "add", "ana@example.org") == 1
    assert cli(config_file, "add", "ana@example.org", "--resubscribe") == 0
    export = tmp_path / "out.csv"
    assert cli(config_file, "export", str(export)) == 0
    rows = list(csv.reader(io.StringIO(export.read_text(encoding="utf-8"))))
    assert rows[0][:4] == ["address", "name", "language", "status"]
    assert rows[1][:4] == ["fatos@example.org", "Fatos Çoçoli", "sq", "active"]
    assert len(rows) == 4
    assert cli(config_file, "add", "not an address") == 65
    assert (
        "iomfeed: bad input: not an address: not a plain e-mail address" in capsys.readouterr().err
    )


def iomfeed(config_file: Path, *args: str, umask: int = -1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iomfeed", "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=config_file.parent,
        umask=umask,
    )


def test_a_reimport_counts_the_rows_as_unchanged_and_exits_0(
    config_file: Path, tmp_path: Path
) -> None:
    export = tmp_path / "mailchimp.csv"
    export.write_text(MAILCHIMP, encoding="utf-8")
    first = iomfeed(config_file, "subscribers", "import", str(export))
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        f"{export}: comma-separated, address from 'Email Address', name from 'First Name' +"
        " 'Last Name'\n"
        f"{export}: 2 subscriber(s) added, 0 unchanged (already subscribed), 0 not added (they"
        " left), 0 row(s) skipped\n"
    )
    again = iomfeed(config_file, "subscribers", "import", str(export))
    assert (again.returncode, again.stderr) == (0, "")
    assert "0 subscriber(s) added, 2 unchanged (already subscribed)" in again.stdout
    with Store(tmp_path / "iomfeed.db") as store:
        assert [(s.address, s.name) for s in store.subscribers()] == [
            ("fatos@example.org", "Fatos Çoçoli"),
            ("ana@example.org", "Ana"),
        ]


def test_a_file_not_in_utf8_is_reported_by_line_and_the_rest_imported(
    config_file: Path, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"  # what Excel's plain "CSV" gives in a Western locale
    people.write_bytes(
        "Email;Name;Language\r\nfatos@example.org;Fatos Çoçoli;sq\r\n"
        "ana@example.org;Ana;en\r\n".encode("cp1252")
    )
    run = iomfeed(config_file, "subscribers", "import", str(people))
    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines() == [
        f"{people}: line 2: fatos@example.org: not UTF-8 text (byte 0xc7)",
        f'{people}: 1 row(s) are not UTF-8 text: save the file as UTF-8 (Excel: "CSV UTF-8")'
        " and import it again; the rows imported now will count as unchanged",
    ]
    assert "1 subscriber(s) added" in run.stdout and "1 row(s) skipped" in run.stdout
    people.write_bytes(
        "\ufeffEmail;Name;Language\r\nfatos@example.org;Fatos Çoçoli;sq\r\n"
        "ana@example.org;Ana;en\r\n".encode()
    )  # Excel's "CSV UTF-8"
    again = iomfeed(config_file, "subscribers", "import", str(people))
    assert (again.returncode, again.stderr) == (0, "")
    assert "1 subscriber(s) added, 1 unchanged (already subscribed)" in again.stdout


def test_bad_input_is_labelled_as_such_with_its_own_exit_code(
    config_file: Path, tmp_path: Path
) -> None:
    missing = iomfeed(config_file, "subscribers", "import", str(tmp_path / "nope.csv"))
    assert (missing.returncode, missing.stderr) == (
        65,
        f"iomfeed: bad input: {tmp_path / 'nope.csv'}: no such file\n",
    )
    header = tmp_path / "header.csv"
    header.write_text("Subscriber,Full name\nfatos@example.org,Fatos\n", encoding="utf-8")
    refused = iomfeed(config_file, "subscribers", "import", str(header))
    assert refused.returncode == 65 and "without an address column" in refused.stderr
    for args in (
        ("subscribers", "add", "ana@"),
        ("subscribers", "remove", "x y@example.org"),
        ("digest", "--to", "nobody"),
    ):
        bad = iomfeed(config_file, *args)
        assert bad.returncode == 65 and bad.stderr.startswith("iomfeed: bad input: "), args
        assert "configuration error" not in bad.stderr
    forged = iomfeed(config_file, "unsubscribe", "1.AAAAAAAAAAAAAAAAAAAAAA")
    assert forged.returncode == 65 and "nothing changed" in forged.stderr
    # the configuration and the command line are still exit code 2
    config_file.write_text("[site]\ntitel = 'x'\n", encoding="utf-8")
    assert iomfeed(config_file, "subscribers", "list").returncode == 2
    assert iomfeed(config_file, "subscribers", "list", "--status", "gone").returncode == 2


def test_list_prints_aligned_columns(config_file: Path, tmp_path: Path) -> None:
    for address, name in (
        ("fatos@example.org", "Fatos Çoçoli"),
        ("li@example.org", "李小龍"),
        ("a@example.org", ""),
    ):
        assert (
            iomfeed(
                config_file, "subscribers", "add", address, "--name", name, "--lang", "sq"
            ).returncode
            == 0
        )
    run = iomfeed(config_file, "subscribers", "list")
    lines = run.stdout.splitlines()
    assert run.returncode == 0 and len(lines) == 4 and lines[0].startswith("address ")
    assert (
        len(
            {display_width(line[: line.index(" sq ") + 1]) for line in lines[1:]}
            | {display_width(lines[0][: lines[0].index(" lang") + 1])}
        )
        == 1
    )
    listed = json.loads(iomfeed(config_file, "subscribers", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["Fatos Çoçoli", "李小龍", ""]
    empty = iomfeed(config_file, "subscribers", "list", "--status", "bounced")
    assert (empty.returncode, empty.stdout) == (0, "no bounced subscribers\n")


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


_ATOM = st.text("abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
_LABEL = st.text("abz09-", min_size=1, max_size=10)


@given(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda atoms, labels: ".".join(atoms) + "@" + ".".join(labels),
            st.lists(_ATOM, min_size=1, max_size=3),
            st.lists(
                st.one_of(
                    _LABEL,
                    st.sampled_from(["test", "local", "xn--bcher-kva", "ORG", "a" * 64, "123"]),
                ),
                min_size=1,
                max_size=4,
            ),
        ),
    )
)
def test_the_quick_check_accepts_only_what_email_validator_keeps_unchanged(raw: str) -> None:
    """The configuration's addresses are checked at every load without importing
    email-validator: whatever that check accepts, email-validator accepts as it is."""
    from email_validator import EmailNotValidError, validate_email

    if not is_plainly_valid(raw):
        return
    try:
        checked = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise AssertionError(f"{raw!r} passed the quick check, not email-validator: {exc}") from exc
    assert checked.ascii_email == raw == normalize_address(raw)


def test_the_quick_check_knows_email_validators_special_use_names() -> None:
    import email_validator

    from iomfeed.subscribers import _SPECIAL_USE

    assert sorted(_SPECIAL_USE) == sorted(email_validator.SPECIAL_USE_DOMAIN_NAMES)
    assert is_plainly_valid("digest@iom-albania.example.org")
    assert not is_plainly_valid("digest@iom.test")


def test_email_validators_words_say_which_part_is_wrong() -> None:
    with pytest.raises(BadAddress, match=r"invalid domain 'exa_mple\.org': .*invalid char"):
        normalize_address("ana@exa_mple.org")
    with pytest.raises(BadAddress, match=r"invalid domain 'shop\.localhost': .*special-use"):
        normalize_address("ana@shop.localhost")
    with pytest.raises(BadAddress, match=r"invalid name part 'ana\.'"):
        normalize_address("ana.@example.org")
    # an address stored by an older iomfeed (ASCII domain) is its own normal form
    assert normalize_address("ana@xn--shqipri-vya.al") == "ana@xn--shqipri-vya.al"
    assert normalize_address("Ana@SHQIPËRI.al") == "Ana@xn--shqipri-vya.al"


def test_a_run_that_checks_no_address_does_not_import_email_validator(tmp_path: Path) -> None:
    """Loading the configuration (its mail.from and the other addresses) is on the cron
    path: the quick check decides them, and email-validator (about 55 ms to import) is
    left for addresses people type or import."""
    from iomfeed.shipped import shipped_config

    config_file = tmp_path / "config.toml"
    config_file.write_text(shipped_config().read_text(encoding="utf-8"), encoding="utf-8")
    code = (
        "import sys\nfrom pathlib import Path\nfrom iomfeed.config import load_config\n"
        f"load_config(Path({str(config_file)!r}))\n"
        "print('email_validator' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
    bad = config_file.read_text(encoding="utf-8").replace(
        '\nemail = ""', '\nemail = "ops@exa_mple.org"', 1
    )
    config_file.write_text(bad, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "operator.email" in out.stderr and "invalid domain 'exa_mple.org'" in out.stderr


def test_an_address_stored_under_the_older_check_can_still_be_removed(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The older hand-written check let special-use domains (".test") in; email-validator
    refuses them as new addresses, but a subscriber stored so can still be removed."""
    with Store(config_file.parent / "iomfeed.db") as store:
        store.add_subscriber(Subscriber("old@shop.test", "Old", "en"), NOW)
    capsys.readouterr()
    assert cli(config_file, "add", "new@shop.test") == 65
    assert "special-use" in capsys.readouterr().err
    assert cli(config_file, "remove", "old@shop.test") == 0
    assert "old@shop.test: unsubscribed" in capsys.readouterr().out
    assert cli(config_file, "remove", "other@shop.test") == 65


def test_iomfeed_run_with_nothing_new_does_not_import_email_validator(
    server: SnapshotServer, tmp_path: Path
) -> None:
    from .test_cli_snapshot import write_config

    config = write_config(server, tmp_path)
    runs = [
        subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "iomfeed", "--config", str(config), "run"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    assert "0 new" in runs[1].stderr and "| iomfeed.pipeline" in runs[1].stderr
    assert "email_validator" not in runs[1].stderr


def test_the_export_keeps_a_spreadsheet_from_running_a_name_and_reads_back_as_it_was() -> None:
    """Names come from the public form: ``=HYPERLINK(...)`` was exported as it is, and a
    spreadsheet opening the file ran it. Such cells start with an apostrophe (which the
    spreadsheet hides); an import reads past it, so the round trip changes nothing."""
    from datetime import UTC, datetime

    names = [
        '=HYPERLINK("http://x.example/","click")',
        "+1 555",
        "-Ana",
        "@cmd",
        "'=x",
        "Ana Hoxha",
    ]
    subs = [
        Subscriber(f"r{n}@example.org", name, "en", subscribed=datetime(2026, 1, 1, tzinfo=UTC))
        for n, name in enumerate(names)
    ]
    text = to_csv(subs)
    cells = [row[1] for row in csv.reader(io.StringIO(text))][1:]
    assert cells == ["'" + name for name in names[:5]] + ["Ana Hoxha"]
    read = parse_csv(text, default_language="en", languages=("en",))
    assert [sub.name for _line, sub in read.rows] == names
