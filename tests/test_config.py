"""Configuration: one typed object, defaults in one place, every mistake named by its key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from iomfeed.config import Config, documented_keys, load_config, split_selector
from iomfeed.errors import ConfigError

from .conftest import CONFIG_FILE

MINIMAL = """
[[sources]]
name = "news"
kind = "html"
url = "https://albania.iom.int/news"
[sources.listing]
item = ".views-row"
title = "h3 a"
link = "h3 a@href"
[sources.article]
body = ".field--name-body"
"""


def load(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_shipped_config_loads_and_is_frozen() -> None:
    config = load_config(CONFIG_FILE)
    assert config.sources[0].name == "iom-albania"
    assert config.sources[0].listing.item[0] == ".view-content .views-row"
    with pytest.raises(AttributeError):
        config.site.title = "changed"  # type: ignore[misc]


def test_defaults_fill_what_the_file_leaves_out(tmp_path: Path) -> None:
    config = load(MINIMAL, tmp_path)
    src = config.sources[0]
    assert src.listing.item == (".views-row",)  # a single string becomes a one-item list
    assert src.max_pages == 10
    assert config.http.respect_robots_txt is True
    assert config.source_timezone(src) == "Europe/Tirane"
    assert config.database_path == tmp_path.resolve() / "iomfeed.db"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("[sources.listing]", "[sources.listing]\ntitel = 'h3'"),
            "sources[0].listing.titel: unknown key (did you mean 'title'?)",
        ),
        (('kind = "html"', 'kind = "rss"'), "sources[0].kind: expected one of"),
        (
            ('url = "https://albania.iom.int/news"', 'url = "albania.iom.int/news"'),
            "sources[0].url: expected an absolute http(s) URL",
        ),
        (
            ('item = ".views-row"', 'item = ".views-row >> a"'),
            "sources[0].listing.item[0]: invalid CSS selector '.views-row >> a'",
        ),
        (
            ('name = "news"', 'name = "news"\nmax_pages = "5"'),
            "sources[0].max_pages: expected an integer, got string '5'",
        ),
        (
            ('name = "news"', 'name = "news"\ntimezone = "Europe/Tirana"'),
            "sources[0].timezone: expected an IANA time zone",
        ),
        (('name = "news"', 'name = "News Site"'), "sources[0].name: expected a short name"),
        (('link = "h3 a@href"\n', ""), "sources[0].listing.link: required for kind = 'html'"),
        (
            ("[[sources]]", "[http]\ntimeout = 0\n[[sources]]"),
            "http.timeout: expected a number greater than 0",
        ),
        (("[[sources]]", "[sites]\ntitle = 'x'\n[[sources]]"), "sites: unknown key"),
        (
            ("[[sources]]", "[http]\nuser_agent = 'Mozilla/5.0'\n[[sources]]"),
            "http.user_agent: expected an honest User-Agent with a contact URL",
        ),
        (
            ('name = "news"', 'name = "news"\nretry_missing_days = inf'),
            "sources[0].retry_missing_days: expected a finite number, got inf",
        ),
        (
            ('name = "news"', 'name = "news"\nrecheck_days = 1e9'),
            "sources[0].recheck_days: expected a number no larger than 1000000, got 1e+09",
        ),
        (("[[sources]]", "[http]\ntimeout = nan\n[[sources]]"), "http.timeout: expected a finite"),
        (
            ('name = "news"', 'name = "news"\nrecheck_days = 1000000'),
            "sources[0].recheck_days: expected a number of days from 0 to 36500",
        ),
        (
            ("[[sources]]", "[storage]\nkeep_runs_days = -1\n[[sources]]"),
            "storage.keep_runs_days: expected a number of days from 0 to 36500",
        ),
        (
            ("[[sources]]", "[storage]\nkeep_runs_days = 30.5\n[[sources]]"),
            "storage.keep_runs_days: expected an integer, got number 30.5",
        ),
        (
            ("[[sources]]", "[subscribe]\nconfirm_days = 0\n[[sources]]"),
            "subscribe.confirm_days: expected a number of days greater than 0",
        ),
        (
            ("[[sources]]", "[publish]\nmax_items = 99999999999999999\n[[sources]]"),
            "publish.max_items: expected an integer no larger than 1000000000000",
        ),
        (
            ("[[sources]]", "[site]\npublic_url = 'http://127.0.0.1:8899/x/?a=1'\n[[sources]]"),
            "site.public_url: expected an address without '?' or '#'",
        ),
        (
            ("[[sources]]", "[site]\npublic_url = 'http://127.0.0.1:8899/x/?'\n[[sources]]"),
            "site.public_url: expected an address without '?' or '#'",
        ),
        (
            ("[[sources]]", "[http]\ntimeout = 1" + "0" * 400 + "\n[[sources]]"),
            "http.timeout: expected a number no larger than 1000000",
        ),
        (
            ("[[sources]]", "[serve]\nport = 70000\n[[sources]]"),
            "serve.port: expected a TCP port from 1 to 65535",
        ),
        (
            ("[[sources]]", "[mail.smtp]\nport = 0\n[[sources]]"),
            "mail.smtp.port: expected a TCP port from 1 to 65535",
        ),
        (
            ("[[sources]]", "[bounces]\nimap_port = 65536\n[[sources]]"),
            "bounces.imap_port: expected a TCP port from 1 to 65535",
        ),
        (
            ("[[sources]]", "[bounces]\ntrust_days = 40000\n[[sources]]"),
            "bounces.trust_days: expected a number of days from 0 to 36500",
        ),
    ],
)
def test_mistakes_name_the_dotted_key(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in MINIMAL
    with pytest.raises(ConfigError) as caught:
        load(MINIMAL.replace(old, new, 1), tmp_path)
    assert message in str(caught.value)
    assert str(tmp_path / "config.toml") in str(caught.value)


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[1\]\.name: duplicate source name 'news'"):
        load(MINIMAL + MINIMAL, tmp_path)


def test_a_missing_file_says_where_it_was_looked_for_and_who_named_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iomfeed.config import CONFIG_ENV, default_config_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(default_config_path())
    assert str(caught.value) == (
        f"config.toml (in {tmp_path}): configuration file not found"
        f" (use --config PATH or set {CONFIG_ENV})"
    )
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "etc" / "iomfeed.toml"))
    with pytest.raises(ConfigError) as caught:
        load_config(default_config_path())
    assert str(caught.value) == (
        f"{tmp_path / 'etc' / 'iomfeed.toml'}: configuration file not found (named by {CONFIG_ENV})"
    )


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load("[site\n", tmp_path)


def test_json_source_needs_a_path_not_a_url(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "manual"\nkind = "json"\n'
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: required"):
        load(text, tmp_path)
    config = load(text + 'path = "items.json"\n', tmp_path)
    assert config.path(config.sources[0].path) == tmp_path.resolve() / "items.json"


def test_every_key_is_documented_in_the_shipped_config() -> None:
    """Each key appears in config.toml, set, with a comment line right above it."""
    text = CONFIG_FILE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    lines = text.splitlines()
    for dotted in documented_keys():
        parts = dotted.split(".")
        node: object = data
        for part in parts:
            if isinstance(node, list):
                node = node[0]
            assert isinstance(node, dict) and part in node, f"{dotted} is not in config.toml"
            node = node[part]
        key = parts[-1]
        # a key may be set as "key = ..." or, a per-language table, as "[its.dotted.name]"
        pattern = re.compile(rf"^{re.escape(key)}\s*=|^\[{re.escape(dotted)}\]$")
        indexes = [i for i, line in enumerate(lines) if pattern.match(line)]
        assert indexes, f"{dotted} is not set in config.toml"
        assert any(lines[i - 1].startswith("#") for i in indexes), f"{dotted} has no comment"


def test_selector_attribute_split() -> None:
    assert split_selector("h3 a@href") == ("h3 a", "href")
    assert split_selector("h3 a") == ("h3 a", None)
    assert split_selector("a[href^='mailto:x@y.org']") == ("a[href^='mailto:x@y.org']", None)
    assert split_selector("meta[property='og:image']@content") == (
        "meta[property='og:image']",
        "content",
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            '[mail]\nunsubscribe_url = "http://feeds.example.org/unsubscribe"\n',
            "mail.unsubscribe_url",
        ),
        ('[site]\npublic_url = "http://feeds.example.org/"\n', "site.public_url"),
        (
            '[mail]\nunsubscribe_url = "https://feeds.example.org/un subscribe"\n',
            "mail.unsubscribe_url",
        ),
        ('[mail]\nfrom_address = "news@shqipëri.al"\n', "mail.from_address"),
        ('[schedule]\ndigest = "0 8 * *"\n', "schedule.digest"),
        ('[schedule]\nfetch = "61 * * * *"\n', "schedule.fetch"),
        ('[mail]\ntransport = "carrier-pigeon"\n', "mail.transport"),
        ('[mail.smtp]\nsecurity = "ssl"\n', "mail.smtp.security"),
        ('[digest.subject]\nen = "{{ title "\n', "digest.subject.en"),
        ('[digest]\nsubject = "{{ title "\n', "digest.subject"),
        ('[operator]\nemail = "not an address"\n', "operator.email"),
        # What a render or a send refused later, now when the file is read (so by `check`):
        ('[digest]\ntemplates = "no-such-folder"\n', "digest.templates: "),
        ('[mail.smtp]\nca_file = "no-such.pem"\n', "mail.smtp.ca_file: "),
        ('[bounces]\nimap_ca_file = "no-such.pem"\n', "bounces.imap_ca_file: "),
        ('[mail]\ntransport = "smtp"\n[mail.smtp]\nhost = " "\n', "mail.smtp.host: empty"),
    ],
)
def test_mail_and_schedule_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load(text, tmp_path)


def test_weekday_numbers_mean_what_they_mean_in_crontab() -> None:
    from datetime import UTC, datetime

    from iomfeed.cron import trigger

    monday = trigger("0 8 * * 1", "UTC").get_next_fire_time(
        None, datetime(2026, 11, 24, tzinfo=UTC)
    )
    sunday = trigger("0 8 * * 0", "UTC").get_next_fire_time(
        None, datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert (monday.weekday(), sunday.weekday()) == (0, 6)
    start = datetime(2026, 11, 22, tzinfo=UTC)  # a Sunday
    days = set()
    when = start
    for _ in range(7):
        when = trigger("0 8 * * 0-4", "UTC").get_next_fire_time(None, when)
        days.add(when.weekday())
        when = when.replace(hour=9)
    assert days == {6, 0, 1, 2, 3}  # Sunday to Thursday, as in crontab
    step = trigger("0 8 * * */2", "UTC").get_next_fire_time(None, start)
    assert step.weekday() == 6  # crontab's */2 starts on Sunday


def test_every_days_key_is_bounded_so_a_date_that_far_back_exists(tmp_path: Path) -> None:
    """Every number may reach a million, but a million days before now is before year 1:
    ``recheck_days = 1000000`` loaded, then stopped the fetch with an OverflowError. Each
    ``*_days`` key, present or to come, refuses more than a hundred years."""
    from iomfeed.config.checks import MAX_DAYS

    keys = [key for key in documented_keys() if key.endswith("_days")]
    assert len(keys) >= 6, keys
    for key in keys:
        section, _, name = key.rpartition(".")
        if section == "sources":
            text = MINIMAL.replace('name = "news"', f'name = "news"\n{name} = {MAX_DAYS + 1}')
            shown = f"sources[0].{name}"
        else:
            text = MINIMAL.replace(
                "[[sources]]", f"[{section}]\n{name} = {MAX_DAYS + 1}\n[[sources]]"
            )
            shown = key
        with pytest.raises(ConfigError, match=re.escape(f"{shown}: expected a number of days")):
            load(text, tmp_path)
        load(text.replace(str(MAX_DAYS + 1), str(MAX_DAYS)), tmp_path)


def test_a_byte_order_mark_is_read_past_and_bad_bytes_name_their_line(tmp_path: Path) -> None:
    """Notepad starts a UTF-8 file with a byte-order mark (it was "Invalid statement at line
    1"); a Latin-1 file was refused with a byte offset instead of a line."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(path).sources[0].name == "news"
    path.write_bytes(MINIMAL.encode() + b"[site]\ntitle = 'Lajm\xeb'\n")
    line = MINIMAL.count("\n") + 2
    with pytest.raises(ConfigError, match=rf"config\.toml: line {line}: byte 0xeb is not UTF-8"):
        load_config(path)


def test_check_warns_when_no_source_is_enabled(tmp_path: Path) -> None:
    """An operator's trial checked an empty file: 'configuration is valid', then 'run'
    refused with a configuration error; 'check' now says so before."""
    import dataclasses

    from iomfeed.preflight import warnings

    config = load("", tmp_path)
    assert not config.sources
    assert any(w.startswith("sources: none enabled") for w in warnings(config, {}))
    off = dataclasses.replace(
        load_config(CONFIG_FILE),
        sources=tuple(
            dataclasses.replace(s, enabled=False) for s in load_config(CONFIG_FILE).sources
        ),
    )
    assert any(w.startswith("sources: none enabled") for w in warnings(off, {}))
    assert not any(w.startswith("sources:") for w in warnings(load_config(CONFIG_FILE), {}))


def test_a_send_by_smtp_refuses_loopback_links_and_check_warns_of_an_example_sender(
    tmp_path: Path,
) -> None:
    """An operator's trial left site.public_url out (it defaults to http://127.0.0.1:8080/)
    and sent by SMTP: the links in the mail led to each reader's own machine, and the
    example from_address went out, with nothing said."""
    import dataclasses

    from iomfeed.preflight import require_sendable, warnings

    config = load(
        '[mail]\ntransport = "smtp"\n[site]\npublic_url = "http://127.0.0.1:8080/"\n', tmp_path
    )
    with pytest.raises(ConfigError, match=r"^site\.public_url: .* is still a loopback address"):
        require_sendable(config, {})
    found = warnings(config, {})
    assert any(
        w.startswith("mail.from_address: news@feeds.example.org is still the example")
        for w in found
    )
    real = dataclasses.replace(
        config,
        site=dataclasses.replace(config.site, public_url="https://news.iom.example.al/"),
        mail=dataclasses.replace(config.mail, from_address="news@iom.example.al"),
    )
    require_sendable(real, {})  # ("example.al" is no documentation name)
    for url in (
        "http://127.1.2.3:8080/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:8080/",
        "http://LOCALHOST./",
        "http://news.localhost/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0/",
        "http://[::127.0.0.1]/",
        "http://localhost.localdomain/",
        "http://ip6-localhost/",
    ):
        looped = dataclasses.replace(real, site=dataclasses.replace(real.site, public_url=url))
        with pytest.raises(ConfigError, match="is still a loopback address"):
            require_sendable(looped, {})
    for url in (
        "http://localhost.example.al/",
        "http://127.0.0.1.nip.example.al/",
        "http://128.0.0.1/",
        "http://[::2:7f00:1]/",
    ):
        named = dataclasses.replace(real, site=dataclasses.replace(real.site, public_url=url))
        require_sendable(named, {})  # names that only look like it
    assert not any(
        w.startswith(("mail.from_address", "site.public_url")) for w in warnings(real, {})
    )
    outbox = dataclasses.replace(config, mail=dataclasses.replace(config.mail, transport="outbox"))
    require_sendable(outbox, {})  # files on this machine: the demo's loopback links are fine


def test_the_config_records_annotations_are_objects_not_strings() -> None:
    """Each command reads them through typing.get_type_hints, which would compile every
    string annotation anew (see the schema module's docstring)."""
    import dataclasses

    from iomfeed.config import schema

    records = [
        c
        for c in vars(schema).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == schema.__name__
    ]
    assert len(records) > 15
    strings = [
        f"{c.__name__}.{f.name}"
        for c in records
        for f in dataclasses.fields(c)
        if isinstance(f.type, str)
    ]
    assert strings == []
