"""The ``subscribers`` command's arguments and its actions' (``list``, ``add``, ``import``
and the rest), apart from :mod:`.parser` for their number."""

from __future__ import annotations

from typing import Any

#: consent.State's values (not imported: the parser is on every command's path).
STATUSES = ("pending", "active", "unsubscribed", "bounced")


def add_subscribers(sub: Any) -> None:
    from .commands_subscribers import cmd_subscribers

    p = sub.add_parser(
        "subscribers",
        help="manage the digest's subscribers",
        description="Add, remove, list, import and export the subscribers of "
        "the email digest (kept in the store).",
    )
    p.set_defaults(func=cmd_subscribers, compile_selectors=False)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, help="what to do")
    a = actions.add_parser(
        "add", help="subscribe one address", description="Subscribe one address."
    )
    a.add_argument("address", help="the e-mail address")
    a.add_argument("--name", default="", help="the subscriber's name (any language)")
    a.add_argument(
        "--lang", metavar="CODE", help="digest language (of digest.languages; default: the first)"
    )
    a.add_argument(
        "--resubscribe",
        action="store_true",
        help="re-add someone who unsubscribed or was forgotten (only when they asked for it)",
    )
    _add_subscriber_records(actions)
    a = actions.add_parser(
        "remove",
        help="unsubscribe one address",
        description="Unsubscribe one address (kept, marked unsubscribed).",
    )
    a.add_argument("address", help="the e-mail address")
    a.add_argument("--reason", default="removed by an operator", help="why they left")
    a = actions.add_parser(
        "list",
        help="list subscribers",
        description="List subscribers in the order they joined, in "
        "aligned columns (address, name, language, status, joined, left, "
        "reason).",
    )
    a.add_argument("--status", choices=STATUSES, help="only these")
    a.add_argument("--json", action="store_true", help="print JSON instead of text")
    _add_subscriber_import(actions)
    a = actions.add_parser(
        "export",
        help="export subscribers as CSV",
        description="Write the subscribers as CSV (a file is made readable by its owner only).",
    )
    a.add_argument("file", nargs="?", help="where to write (default: standard output)")
    a.add_argument("--status", choices=STATUSES, help="only these")


def _add_subscriber_records(actions: Any) -> None:
    """``subscribers show`` and ``subscribers forget``: one person's record."""
    a = actions.add_parser(
        "show",
        help="show one subscriber's record",
        description="Show one subscriber: status, the consent record (when, how, the "
        "form's language, the truncated client address when recorded, when confirmed), "
        "categories, pause, failures, and the recent deliveries.",
    )
    a.add_argument("address", help="the e-mail address")
    a.add_argument("--json", action="store_true", help="print JSON instead of text")
    a = actions.add_parser(
        "forget",
        help="erase one address, keeping only a hashed suppression entry",
        description="Erase an address and its name from the list (the person asked to be "
        "deleted). Only a keyed hash of the address is kept, so no import re-adds it "
        "without --resubscribe; the delivery history keeps no address.",
    )
    a.add_argument("address", help="the e-mail address")


def _add_subscriber_import(actions: Any) -> None:
    """``subscribers import FILE [--resubscribe]``."""
    a = actions.add_parser(
        "import",
        help="import subscribers from a CSV file",
        description="Import subscribers from a CSV file: comma, semicolon "
        "or tab separated (sniffed); with a header row naming the columns "
        "(Mailchimp's and listmonk's exports and iomfeed's own are "
        "understood) or without one (address, name, language). Addresses "
        "already subscribed count as unchanged; people who left (here or "
        "by the file's status column) are not added. Every bad row is "
        "reported with its line number and skipped, the others imported: exit "
        "code 1 when any bad row was skipped, 65 when the file cannot be read. "
        "Rows of people who unsubscribed, bounced or were forgotten are reported "
        "and not added unless --resubscribe (not an error: exit code 0).",
    )
    a.add_argument("file", help="the CSV file (UTF-8, with or without a BOM, or UTF-16)")
    a.add_argument(
        "--resubscribe",
        action="store_true",
        help="re-add the rows of people who left or were forgotten (you have their fresh consent)",
    )
