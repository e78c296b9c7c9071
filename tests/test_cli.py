"""The command line: help on every command, documented exit codes, python -m iomfeed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iomfeed.cli import build_parser, main

from .conftest import CONFIG_FILE


def subcommands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


def test_every_command_and_option_has_help_text() -> None:
    import argparse

    parser = build_parser()
    assert parser.description and "Exit codes" in (parser.epilog or "")
    checked = 0

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        nonlocal checked
        for action in p._actions:
            if action.dest in ("help", "command"):
                continue
            assert action.help, f"{path} {action.option_strings or action.dest} has no help"
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    assert sub.description, f"{path} {name} has no description"
                    checked += 1
                    walk(sub, f"{path} {name}")

    for name, sub in subcommands().items():
        assert sub.description, f"{name} has no description"  # type: ignore[attr-defined]
        checked += 1
        walk(sub, name)  # type: ignore[arg-type]
    walk(parser, "iomfeed")
    assert checked >= 12  # the commands and the subscribers actions


def test_expected_commands_exist() -> None:
    assert {"fetch", "publish", "run", "check", "items", "demo"} <= set(subcommands())


def test_check_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(CONFIG_FILE), "check"]) == 0
    assert "configuration is valid; 1 source(s): iom-albania" in capsys.readouterr().out


@pytest.mark.parametrize("mode", [["--send"], []])
def test_lang_with_a_send_or_its_dry_run_is_refused_not_ignored(
    tmp_path: Path, mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--config", str(config), "digest", *mode, "--lang", "sq"]) == 2
    assert "--lang goes with --preview or --to" in capsys.readouterr().err
    assert not (tmp_path / "iomfeed.db").exists()  # refused before anything was done


def test_status_and_items_before_the_first_run_say_so_without_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was "configuration error: ... no store yet", exit 2: nothing was wrong with it."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--config", str(config), "status"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("status: never run\n! no store yet at ") and "configuration" not in err
    assert main(["--config", str(config), "status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "never_run"
    assert main(["--config", str(config), "items"]) == 1
    assert "no items: no store yet at" in capsys.readouterr().err
    assert not (tmp_path / "iomfeed.db").exists()  # asking made none


def test_check_refuses_a_secret_too_short_to_sign_with(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The send refuses it (exit 2); check said "valid", so cron found out at digest time."""
    monkeypatch.setenv("IOMFEED_SECRET", "abc")
    assert main(["--config", str(CONFIG_FILE), "check"]) == 2
    err = capsys.readouterr().err
    assert "mail.secret_env: the environment variable IOMFEED_SECRET holds a secret" in err
    monkeypatch.setenv("IOMFEED_SECRET", "x" * 32)
    assert main(["--config", str(CONFIG_FILE), "check"]) == 0


def test_a_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text(
        CONFIG_FILE.read_text(encoding="utf-8").replace(
            "[sources.listing]", "[sources.listing]\ntitel = []"
        )
    )
    assert main(["--config", str(bad), "check"]) == 2
    err = capsys.readouterr().err
    assert "sources[0].listing.titel: unknown key (did you mean 'title'?)" in err


def test_the_config_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOMFEED_CONFIG", str(tmp_path / "missing.toml"))
    assert main(["check"]) == 2
    monkeypatch.setenv("IOMFEED_CONFIG", str(CONFIG_FILE))
    assert main(["check"]) == 0


def test_an_unknown_source_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(CONFIG_FILE), "fetch", "--source", "nope"]) == 2
    assert "no source named 'nope' (configured: iom-albania)" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["serve", "--port", "65537"], "--port: must be a TCP port from 1 to 65535, got 65537"),
        (["serve", "--port", "-1"], "--port: must be a TCP port from 1 to 65535, got -1"),
        (["run", "--wait", "nan"], "--wait: must be from 0 to 86400 seconds, got nan"),
        (["demo", "--port", "70000"], "--port: must be a TCP port from 1 to 65535, got 70000"),
        (["demo", "--port", "65535"], "--port: must be from 1 to 65534 (the feeds take the next)"),
        (["fetch", "--wait", "-5"], "--wait: must be from 0 to 86400 seconds, got -5"),
        (
            ["items", "--limit", "9" * 20],
            f"--limit: must be from 1 to 1000000000000, got {'9' * 20}",
        ),
        (["digests", "show", "9" * 20], f"must be from 1 to 1000000000000, got {'9' * 20}"),
    ],
)
def test_out_of_range_options_are_usage_errors_not_tracebacks(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, a port past 65535 was served modulo 65536, ``--wait nan`` meant 0 and a count
    past 2**63 ended in SQLite's OverflowError."""
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(CONFIG_FILE), *argv])
    assert caught.value.code == 2
    assert said in capsys.readouterr().err


def test_serve_on_an_address_that_is_not_one_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["--config", str(config), "serve", "--host", "999.1.1.1", "--port", "9"]) == 2
    err = capsys.readouterr().err
    assert "configuration error: serve.host, serve.port (or --host, --port) 999.1.1.1:9:" in err
    assert "cannot listen there" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "extra", "named"),
    [
        (["run", "--json", "-q"], "-q", "-q"),
        (["items", "--config", "x.toml"], "--config x.toml", "--config"),
    ],
)
def test_an_option_of_iomfeed_after_the_command_is_said_to_go_before_it(
    argv: list[str], extra: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    said = capsys.readouterr().err
    assert f"unrecognized arguments: {extra} (options of iomfeed itself, such as {named}," in said
    assert "go before the command: iomfeed [--config PATH] [-v | -q]" in said


def test_an_unknown_option_after_the_command_has_no_such_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--bogus"])
    said = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in said and "go before" not in said


def test_python_dash_m_runs_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "iomfeed", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "fetch" in result.stdout and "Exit codes" in result.stdout


def test_items_json_lists_what_a_json_source_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "items.json").write_text(
        json.dumps(
            [
                {
                    "url": "https://albania.iom.int/news/a",
                    "title": "Older",
                    "date_published": "2020-01-01",
                },
                {
                    "url": "https://albania.iom.int/news/b",
                    "title": "Newer",
                    "date_published": "2021-01-01",
                },
            ]
        ),
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        '[[sources]]\nname = "manual"\nkind = "json"\npath = "items.json"\n', encoding="utf-8"
    )
    assert main(["--config", str(config), "--quiet", "fetch"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "items", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [i["title"] for i in listed] == ["Newer", "Older"]
    assert listed[0]["id"].startswith("tag:")


#: Command lines read both ways: options before the command, abbreviated, with ``=``, a
#: value that is a command's name, nested actions, positionals.
READ_ALIKE = [
    ["run"],
    ["-q", "run", "--json"],
    ["--config", "status", "status"],
    ["--conf=x.toml", "--log-format", "json", "-v", "fetch", "--source", "a", "--source", "b"],
    ["--log-f=json", "items", "--limit", "20"],
    ["subscribers", "list", "--status", "active"],
    ["subscribers", "import", "people.csv"],
    ["digests", "show", "3"],
    ["init", "here.toml", "--force"],
    ["demo"],
]

#: Command lines the parser refuses, or answers with help.
REFUSED = [
    [],
    ["bogus"],
    ["-v", "-q", "run"],
    ["--log-format", "xml", "run"],
    ["--bogus", "run"],
    ["run", "--bogus"],
    ["run", "-q"],
    ["items", "--limit", "0"],
    ["subscribers"],
    ["--help"],
    ["-h", "run"],
    ["run", "--help"],
    ["subscribers", "import", "--help"],
]


@pytest.mark.parametrize("argv", READ_ALIKE, ids=" ".join)
def test_the_parser_of_the_command_asked_for_reads_as_the_whole_one(argv: list[str]) -> None:
    from iomfeed.cli.parser import command_of

    command = command_of(argv)
    assert command is not None and command in subcommands()
    whole = vars(build_parser().parse_args(argv))
    assert vars(build_parser(command).parse_args(argv)) == whole
    assert whole["command"] == command


@pytest.mark.parametrize("argv", REFUSED, ids=lambda a: " ".join(a) or "(nothing)")
def test_what_it_refuses_or_helps_with_is_said_as_the_whole_parser_says_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from iomfeed.cli.parser import command_of

    said = []
    for parser in (build_parser(), build_parser(command_of(argv))):
        with pytest.raises(SystemExit) as ended:
            parser.parse_args(argv)
        out, err = capsys.readouterr()
        said.append((ended.value.code, out, err))
    assert said[0] == said[1]
    assert said[0][1] or said[0][2]


def test_a_cron_run_builds_and_imports_its_own_command_only() -> None:
    probe = (
        "import sys\n"
        "from iomfeed.cli.parser import build_parser, command_of\n"
        "argv = ['-q', 'run']\n"
        "parser = build_parser(command_of(argv))\n"
        "parser.parse_args(argv)\n"
        "print(sorted(m for m in sys.modules if m.startswith('iomfeed.cli.commands_')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["['iomfeed.cli.commands_cycle']"], done.stderr
