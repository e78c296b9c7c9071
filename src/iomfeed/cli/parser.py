"""The command line's arguments: one small function per command, each adding its parser,
options and help texts; :func:`build_parser` puts them together in the order ``--help``
lists them. Every command names the function that runs it (``func``) and whether it loads
the configuration with the selectors compiled (``compile_selectors``) or at all
(``needs_config``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..config import CONFIG_ENV
from ..lock import DEFAULT_WAIT


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``command`` (see :func:`command_of`), only that
    command's, so a cron run builds and imports one command, not all fifteen."""
    parser = _Parser(
        prog="iomfeed",
        description="Scrape IOM Albania's news into a deduplicated store and publish it.",
        epilog="Exit codes: 0 success; 1 some source failed (the others still ran), some "
        "deliveries failed, some import rows were skipped, a subscriber named is not there "
        "or was not added, or the database or a backup could not be written (the message "
        "says which); 2 bad configuration or usage; "
        "65 bad input data (an address, a file to import, a token); 75 another run is using "
        "the same database (still, after --wait seconds); 141 the reader of the output "
        "stopped early.",
    )
    _add_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, add in COMMANDS:
        if command is None or name == command:
            add(sub)
    return parser


def _add_options(parser: argparse.ArgumentParser) -> None:
    """The options before the command."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV} or ./config.toml)",
    )
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", action="store_true", help="say more (debug output)")
    noise.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines as readable text (default) or one JSON object each",
    )


#: The options of iomfeed itself (:func:`_add_options`): before the command, not after it.
GLOBAL_OPTIONS = ("--config", "-v", "--verbose", "-q", "--quiet", "--log-format")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """argparse's error, and where an option of iomfeed itself goes when it was given
        after the command (``iomfeed run -q``)."""
        given = message.removeprefix("unrecognized arguments: ")
        if given != message:
            misplaced = [a for a in given.split() if a.split("=")[0] in GLOBAL_OPTIONS]
            if misplaced:
                message += (
                    f" (options of iomfeed itself, such as {misplaced[0]}, go before the"
                    " command: iomfeed [--config PATH] [-v | -q] [--log-format F] COMMAND ...)"
                )
        super().error(message)


class _Probe(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)  # (the whole parser says it, below)


def command_of(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names, read past the options before it as the whole parser
    reads them; ``None`` when it names none of :data:`COMMANDS`, or the options before it
    ask for help or are wrong: the whole parser then answers (its help, or its error)."""
    probe = _Probe(prog="iomfeed", add_help=False)
    _add_options(probe)
    probe.add_argument("command", nargs="?")
    probe.add_argument("rest", nargs=argparse.REMAINDER)
    try:
        found, unknown = probe.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    if unknown:  # before the command: -h, or an option to refuse
        return None
    command = found.command
    return command if any(name == command for name, _add in COMMANDS) else None


#: The largest count or id an option takes: past 2**63 SQLite cannot hold it (a traceback).
MAX_COUNT = 10**12


def _whole(text: str, high: int, *, kind: str = "a whole number", be: str = "") -> int:
    """``text`` as a whole number from 1 to ``high``; a usage error saying so otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {kind}: {text!r}") from None
    if not 1 <= value <= high:
        raise argparse.ArgumentTypeError(f"must be {be}from 1 to {high}, got {value}")
    return value


def _at_least_one(text: str) -> int:
    return _whole(text, MAX_COUNT)


def _port(text: str) -> int:
    # Past 65535 the socket layer would take the port modulo 65536.
    return _whole(text, 65535, kind="a port number", be="a TCP port ")


def _demo_port(text: str) -> int:
    """The demo's port: 0 (free ones) or one with a port after it (the feeds' server)."""
    value = 0 if text.strip() == "0" else _port(text)
    if value == 65535:
        raise argparse.ArgumentTypeError("must be from 1 to 65534 (the feeds take the next), or 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86_400:  # nan fails both comparisons
        raise argparse.ArgumentTypeError(f"must be from 0 to 86400 seconds, got {text}")
    return value


def _add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT,
        metavar="SECONDS",
        help="how long to wait for another run (or serve's cycle) on the same"
        f" database to finish before exiting 75 (default {DEFAULT_WAIT:.0f}; 0:"
        " do not wait)",
    )


def _add_fetch(sub: Any) -> None:
    from .commands_cycle import cmd_fetch

    p = sub.add_parser(
        "fetch",
        help="fetch every enabled source into the store",
        description="Fetch every enabled source (or the named ones) into the "
        "store, politely, and record the run.",
    )
    p.add_argument(
        "--source", action="append", metavar="NAME", help="fetch only this source (repeatable)"
    )
    # A cron fetch that only sees 304s must not pay for compiling selectors; the html source
    # compiles them before its first parse, and `check` always does.
    _add_wait(p)
    p.set_defaults(func=cmd_fetch, compile_selectors=False)


def _add_publish(sub: Any) -> None:
    from .commands_cycle import cmd_publish

    p = sub.add_parser(
        "publish",
        help="write the feeds, archives and index.html",
        description="Write the Atom, RSS and JSON feeds, their archives and "
        "index.html from the store into publish.folder. A file is rendered when what it "
        "shows changed since it was written, or it is missing or was touched; files whose "
        "bytes did not change are left alone.",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="render every file again (after an upgrade of feedgen, lxml or Jinja2, say); "
        "files whose bytes come out the same are still left alone",
    )
    _add_wait(p)
    p.set_defaults(func=cmd_publish, compile_selectors=False)


def _add_run(sub: Any) -> None:
    from .commands_cycle import cmd_run

    p = sub.add_parser(
        "run",
        help="fetch, publish, and send the digest when it is due",
        description="One full cycle: fetch every enabled source, publish, and "
        "send the email digest when schedule.digest says it is due (or finish "
        "one a previous run left unfinished), and mail the operator about "
        "problems. Quiet with -q unless something is wrong; meant for cron.",
    )
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    _add_wait(p)
    p.set_defaults(func=cmd_run, compile_selectors=False)


def _add_serve(sub: Any) -> None:
    from .commands_cycle import cmd_serve

    p = sub.add_parser(
        "serve",
        help="the long-running service: schedule, feeds, unsubscribe",
        description="Run the cycle on schedule.fetch and the digest on "
        "schedule.digest (a cycle also runs at start), and serve the feeds, "
        "/unsubscribe and /healthz over HTTP. SIGTERM or Ctrl-C stops cleanly; SIGHUP stops "
        "cleanly and starts again with the configuration read anew.",
    )
    p.add_argument("--host", help="address to listen on (default: serve.host)")
    p.add_argument("--port", type=_port, help="port to listen on (default: serve.port)")
    p.set_defaults(func=cmd_serve, compile_selectors=True)


def _add_status(sub: Any) -> None:
    from .commands_cycle import cmd_status

    p = sub.add_parser(
        "status",
        help="sources, store, digests, subscribers, next times",
        description="Show how iomfeed is doing: each source's last run "
        "(ok, failed now, failing for N runs), last success and error, the "
        "store, the last digests, subscribers by status and the next scheduled "
        "times. Exit 1 when the last run of an enabled source failed or "
        "something else needs attention.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status, compile_selectors=False)


def _add_digest(sub: Any) -> None:
    from .commands_digest import cmd_digest

    p = sub.add_parser(
        "digest",
        help="preview, test or send the email digest",
        description="The email digest of the items first seen since the last "
        "digest that went out. Without an option: --dry-run.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run",
        action="store_true",
        help="render it and report who would get what (changes nothing)",
    )
    what.add_argument(
        "--send",
        action="store_true",
        help="send it now (or finish the one being sent), whatever the schedule",
    )
    what.add_argument(
        "--to", metavar="ADDRESS", help="send one test copy, marked [TEST], to ADDRESS (no ledger)"
    )
    what.add_argument(
        "--preview", metavar="FILE.html", help="write the rendered HTML digest to FILE.html"
    )
    p.add_argument(
        "--lang",
        dest="lang_given",
        metavar="CODE",
        help="language of --preview (default: the first of digest.languages) or --to (default:"
        " theirs): a code of digest.languages",
    )
    _add_wait(p)
    p.set_defaults(func=cmd_digest, compile_selectors=False)


def _add_unsubscribe(sub: Any) -> None:
    from .commands_subscribers import cmd_unsubscribe

    p = sub.add_parser(
        "unsubscribe",
        help="apply an unsubscribe token",
        description="Unsubscribe the subscriber an unsubscribe token (from a "
        "digest's link) names. A forged or malformed token changes nothing "
        "and exits with 65 (bad input).",
    )
    p.add_argument("token", help="the token (the t= value of the unsubscribe link)")
    p.set_defaults(func=cmd_unsubscribe, compile_selectors=False)


def _add_check(sub: Any) -> None:
    from .commands_other import cmd_check

    p = sub.add_parser(
        "check",
        help="validate the configuration",
        description="Validate the configuration file and warn about what "
        "loads but would not work or would leak: site.public_url left at the "
        "example, an SMTP username whose password variable is unset, a "
        "database others can read. With --live also fetch one page of each "
        "source and report what the selectors find.",
    )
    p.add_argument(
        "--live", action="store_true", help="fetch one listing page and one article per source"
    )
    p.add_argument(
        "--new-secret",
        action="store_true",
        help="sign the links with the secret at hand from now on, though the links in mail"
        " already sent were signed with another (they stop working)",
    )
    p.set_defaults(func=cmd_check)


def _add_doctor(sub: Any) -> None:
    from .commands_doctor import cmd_doctor

    p = sub.add_parser(
        "doctor",
        help="before the first send: SPF, DKIM, DMARC, the relay, unsubscribe, size, feeds",
        description="Check what decides whether the digest lands: SPF for the envelope"
        " domain permits the relay, the DKIM record matches the key, DMARC and its policy,"
        " the From domain's alignment, the relay's TLS certificate and login (no mail is"
        " sent), the one-click unsubscribe POST (a probe: nobody is unsubscribed), the"
        " digest's size against Gmail's clipping, the feeds' public URLs. Prints a"
        " checklist with what to fix; exit 0 when nothing failed (warnings allowed unless"
        " --strict), 1 otherwise.",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument(
        "--resolver",
        metavar="HOST[:PORT]",
        help="ask this DNS server (an IP address) instead of the system's resolver",
    )
    p.add_argument("--strict", action="store_true", help="a warning fails too (exit 1)")
    p.set_defaults(func=cmd_doctor, compile_selectors=False)


def _add_items(sub: Any) -> None:
    from .commands_other import cmd_items

    p = sub.add_parser(
        "items",
        help="list stored items, newest first",
        description="List the stored items, newest first.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--limit",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="at most N items (1 or more; default: all)",
    )
    p.add_argument(
        "--source",
        metavar="NAME",
        help="only items of this source (configured, or with items stored)",
    )
    p.set_defaults(func=cmd_items, compile_selectors=False)  # lists rows: no soupsieve


def _add_subscribers(sub: Any) -> None:
    from .parser_subscribers import add_subscribers  # (its parsers: only when asked for)

    add_subscribers(sub)


def _add_bounces(sub: Any) -> None:
    from .commands_bounces import cmd_bounces

    p = sub.add_parser(
        "bounces",
        help="read the bounce mailbox now: bounces, complaints, auto-replies",
        description="Read the new messages of the mailbox [bounces] names (a Maildir "
        "folder or IMAP), classify each (hard or soft bounce, complaint, auto-reply, "
        "unrecognised), apply the bounce rules and mark each processed. `run` and "
        "`serve` do this every cycle when [bounces] is configured.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_wait(p)
    p.set_defaults(func=cmd_bounces, compile_selectors=False)


def _add_digests(sub: Any) -> None:
    from .commands_bounces import cmd_digests

    p = sub.add_parser(
        "digests",
        help="what became of a digest: who got it, who bounced, who complained",
        description="Show one digest's recipients, from the delivery ledger and the "
        "bounce log together.",
    )
    p.set_defaults(func=cmd_digests, compile_selectors=False)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, help="what to do")
    a = actions.add_parser(
        "show",
        help="one digest's recipients and what came back",
        description="Every recipient of digest N: the ledger's status and reply, and the "
        "bounces and complaints that came back for it.",
    )
    a.add_argument("id", type=_at_least_one, metavar="N", help="the digest's number")
    a.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_demo(sub: Any) -> None:
    from .commands_other import cmd_demo

    p = sub.add_parser(
        "demo",
        help="run iomfeed on the bundled snapshot of the site",
        description="Serve the bundled snapshot of the IOM Albania site on "
        "127.0.0.1 and run iomfeed against it with the packaged configuration "
        "(or --config), the site's address and site.public_url swapped for "
        "local ones. Works from any folder.",
    )
    p.add_argument(
        "--dir",
        default="demo",
        metavar="DIR",
        help="folder for the demo's database and output (default: ./demo)",
    )
    p.add_argument(
        "--port",
        type=_demo_port,
        default=8791,
        metavar="N",
        help="port for the snapshot on 127.0.0.1, the feeds on N+1 (default 8791;"
        " 0 or busy: free ones)",
    )
    p.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the run, keep serving the feeds (at the local address used as"
        " site.public_url) and the snapshot until Ctrl-C (default: when run from"
        " a terminal)",
    )
    p.set_defaults(func=cmd_demo, needs_config=False)


def _add_init(sub: Any) -> None:
    from .commands_other import cmd_init

    p = sub.add_parser(
        "init",
        help="write the documented configuration file to edit",
        description="Write the configuration shipped with iomfeed (every key,"
        " commented, set for the live IOM Albania site) to PATH, to edit."
        " An existing file is kept unless --force.",
    )
    p.add_argument(
        "path",
        nargs="?",
        default="config.toml",
        metavar="PATH",
        help="where to write it (default: ./config.toml; a folder gets a config.toml)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init, needs_config=False)


def _add_backup(sub: Any) -> None:
    from .commands_other import cmd_backup

    p = sub.add_parser(
        "backup",
        help="copy the store to PATH, safely while iomfeed runs",
        description="Write a consistent copy of the SQLite store (what its -wal file holds"
        " too) to PATH with SQLite's online backup, while runs and serve go on: one file,"
        " readable by its owner only. An existing PATH is never overwritten.",
    )
    p.add_argument("path", metavar="PATH", help="the file to write (must not exist)")
    p.set_defaults(func=cmd_backup)


#: the commands (name, the function adding its parser), in the order ``iomfeed --help`` lists
#: them
COMMANDS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("fetch", _add_fetch),
    ("publish", _add_publish),
    ("run", _add_run),
    ("serve", _add_serve),
    ("status", _add_status),
    ("digest", _add_digest),
    ("unsubscribe", _add_unsubscribe),
    ("check", _add_check),
    ("doctor", _add_doctor),
    ("items", _add_items),
    ("subscribers", _add_subscribers),
    ("bounces", _add_bounces),
    ("digests", _add_digests),
    ("backup", _add_backup),
    ("demo", _add_demo),
    ("init", _add_init),
)
