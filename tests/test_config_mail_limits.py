"""The deliverability keys: [mail.dkim] (a key file named, never the key) and the quotas."""

from __future__ import annotations

from pathlib import Path

import pytest

from iomfeed.config import Config, load_config
from iomfeed.errors import ConfigError

from .conftest import CONFIG_FILE
from .dkimkit import make_key

SOURCE = """
[[sources]]
name = "manual"
kind = "json"
path = "items.json"
"""


def load(text: str, tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text + SOURCE, encoding="utf-8")
    return load_config(path)


def test_shipped_config_signs_nothing_and_limits_nothing() -> None:
    config = load_config(CONFIG_FILE)
    assert not config.mail.dkim.enabled
    assert (config.mail.daily_limit, config.mail.hourly_limit) == (0, 0)


def test_dkim_keys_read_with_a_relative_key_file(tmp_path: Path) -> None:
    make_key(tmp_path, name="mail.pem")
    config = load('[mail.dkim]\nselector = "s2026"\nkey_file = "mail.pem"\n', tmp_path)
    assert config.mail.dkim.enabled
    assert config.path(config.mail.dkim.key_file) == tmp_path.resolve() / "mail.pem"
    assert config.mail.dkim_domain == "feeds.example.org"  # From's domain by default
    config = load(
        '[mail.dkim]\nselector = "s2026"\nkey_file = "mail.pem"\ndomain = "Example.ORG"\n',
        tmp_path,
    )
    assert config.mail.dkim_domain == "example.org"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        (b"v=DKIM1; k=rsa; p=MIIB", "not a PEM private key"),
        (b"-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----\n", "not a PEM private"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted",
        ),
        (b"-----BEGIN PRIVATE KEY-----\nMIIB=A\n-----END PRIVATE KEY-----\n", "damaged"),
    ],
)
def test_a_bad_key_file_is_named(tmp_path: Path, content: bytes | None, problem: str) -> None:
    if content is not None:
        (tmp_path / "k.pem").write_bytes(content)
    text = '[mail.dkim]\nselector = "s1"\nkey_file = "k.pem"\n'
    with pytest.raises(ConfigError, match=rf"mail\.dkim\.key_file: .*k\.pem.*{problem}"):
        load(text, tmp_path)


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    text = '[mail.dkim]\nselector = "s1"\nkey_file = "keys"\n'
    with pytest.raises(ConfigError, match=r"mail\.dkim\.key_file: .*keys: is a folder"):
        load(text, tmp_path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[mail.dkim]\nselector = "s1"\n', r"mail\.dkim\.key_file: required with mail\.dkim\.sel"),
        ('[mail.dkim]\nkey_file = "k.pem"\n', r"mail\.dkim\.selector: required with mail\.dkim\.k"),
        ('[mail.dkim]\nselector = "bad selector"\n', r"mail\.dkim\.selector: expected a DNS"),
        ('[mail.dkim]\ndomain = "localhost"\n', r"mail\.dkim\.domain: expected a domain"),
        ('[mail.dkim]\nprivate_key = "MIIB"\n', r"mail\.dkim\.private_key: unknown key"),
        ("[mail]\ndaily_limit = -1\n", r"mail\.daily_limit: expected a number of messages"),
        ("[mail]\nhourly_limit = 2.5\n", r"mail\.hourly_limit: expected an integer"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load(text, tmp_path)


def test_limits_read(tmp_path: Path) -> None:
    config = load("[mail]\ndaily_limit = 500\nhourly_limit = 1\n", tmp_path)
    assert (config.mail.daily_limit, config.mail.hourly_limit) == (500, 1)


def test_an_ed25519_key_is_named_as_such(tmp_path: Path) -> None:
    make_key(tmp_path, kind="ed25519", name="k.pem")
    text = '[mail.dkim]\nselector = "s1"\nkey_file = "k.pem"\n'
    with pytest.raises(ConfigError, match=r"mail\.dkim\.key_file: .*an Ed25519 key"):
        load(text, tmp_path)
