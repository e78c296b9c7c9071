"""``iomfeed subscribers add|show|forget|remove|list|import|export`` and ``iomfeed
unsubscribe TOKEN``.

The rules are :mod:`iomfeed.subscriptions`' (the same functions serve the web pages); this
module translates the arguments and prints the typed results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config
from ..errors import InputError
from ..runtime import Runtime, open_runtime
from .exits import EXIT_OK, EXIT_SOURCE_FAILED

#: How many of a subscriber's latest deliveries ``subscribers show`` prints.
SHOWN_DELIVERIES = 10


def cmd_unsubscribe(args: argparse.Namespace, config: Config) -> int:
    from ..digest.unsubscribe import BadToken
    from ..subscriptions import Via, leave, token_holder

    with open_runtime(config) as rt:
        try:
            sub = token_holder(rt.store, config, args.token)
        except BadToken as exc:
            raise InputError(f"{exc}; nothing changed") from None
        if sub is None:
            raise InputError("unsubscribe token names no subscriber; nothing changed")
        if leave(rt.store, sub, Via.COMMAND_LINE, rt.clock()):
            print(f"{sub.address}: unsubscribed")
        else:
            print(f"{sub.address}: already {sub.status}")
    return EXIT_OK


def cmd_subscribers(args: argparse.Namespace, config: Config) -> int:
    if args.action == "import":
        return _import(Path(args.file), config, resubscribe=args.resubscribe)
    action = {
        "add": _add,
        "show": _show,
        "forget": _forget,
        "remove": _remove,
        "list": _list,
        "export": _export,
    }[args.action]
    if args.action in ("show", "list", "export") and not config.database_path.exists():
        # Reading: no store is made for it (a mistyped storage.database is not a new one).
        print(f"iomfeed: no store at {config.database_path}: no subscribers", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    with open_runtime(config) as rt:
        return action(args, rt)


def _add(args: argparse.Namespace, rt: Runtime) -> int:
    from ..digest.unsubscribe import suppression_keys
    from ..subscriptions import Joined, subscribe

    done = subscribe(
        rt.store,
        args.address,
        args.name,
        args.lang or rt.config.digest.languages[0],
        rt.clock(),
        languages=rt.config.digest.languages,
        keys=suppression_keys(rt.config, rt.store, adding=True),
        resubscribe=args.resubscribe,
    )
    messages = {
        Joined.ADDED: "subscribed",
        Joined.EXISTS: "already subscribed",
        Joined.LEFT: "left earlier; add --resubscribe if they asked to come back",
        Joined.SUPPRESSED: "forgotten on request earlier; add --resubscribe if they asked"
        " to come back",
    }
    print(f"{done.address}: {messages[done.joined]}")
    return EXIT_OK if done.joined in (Joined.ADDED, Joined.EXISTS) else EXIT_SOURCE_FAILED


def _show(args: argparse.Namespace, rt: Runtime) -> int:
    from ..subscribers import normalize_address

    try:
        address = normalize_address(args.address)
    except InputError:
        address = args.address.strip()
    profile = rt.store.profile(address=address)
    if profile is None:
        print(f"{address}: not a subscriber", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    history = rt.store.history(profile.id, limit=SHOWN_DELIVERIES)
    bounces = rt.store.bounce_events(subscriber_id=profile.id, limit=SHOWN_DELIVERIES)
    if args.json:
        from ..jsonout import dumps

        print(dumps({"subscriber": profile, "deliveries": history, "bounces": bounces}))
    else:
        from ..subscribers import printable
        from .commands_bounces import bounce_lines
        from .show import profile_lines

        # The name, the reason, relays' replies and bounce details come from strangers.
        lines = profile_lines(profile, history, rt.clock()) + bounce_lines(bounces)
        print("\n".join(printable(line) for line in lines))
    return EXIT_OK


def _forget(args: argparse.Namespace, rt: Runtime) -> int:
    from ..subscriptions import forget

    done = forget(rt.store, rt.config, args.address, rt.clock())
    if done.found:
        print(f"{done.address}: forgotten (address and name erased; a hashed entry keeps it off")
        print("  the list until they sign up and confirm again, or --resubscribe)")
    else:
        print(f"{done.address}: not a subscriber; suppressed all the same (no import adds it)")
    return EXIT_OK


def _remove(args: argparse.Namespace, rt: Runtime) -> int:
    from ..subscriptions import remove

    address, before = remove(rt.store, args.address, args.reason, rt.clock())
    if before is None:
        print(f"{address}: not a subscriber", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    since = f" since {before.left:%Y-%m-%d}" if before.left else ""
    why = f" ({before.reason})" if before.reason else ""
    if before.status in ("unsubscribed", "bounced"):
        print(f"{address}: already {before.status}{since}{why}; nothing changed")
        return EXIT_OK
    if before.left is not None:
        after = rt.store.subscriber(address)
        state = after.status if after is not None else "unsubscribed"
        print(f"{address}: unconfirmed sign-up dropped; {state}{since}{why}, as before")
        return EXIT_OK
    print(f"{address}: unsubscribed")
    return EXIT_OK


def _list(args: argparse.Namespace, rt: Runtime) -> int:
    subs = list(rt.store.subscribers(args.status))
    if args.json:
        from ..jsonout import dumps

        print(dumps(subs))
    else:
        from ..subscribers import table

        lines = table(subs) or [" ".join(filter(None, ("no", args.status, "subscribers")))]
        print("\n".join(lines))
    return EXIT_OK


def _export(args: argparse.Namespace, rt: Runtime) -> int:
    from ..subscribers import to_csv

    data = to_csv(rt.store.subscribers(args.status))
    if args.file in (None, "-"):
        sys.stdout.write(data)
    else:
        from ..files import PRIVATE, write_if_changed

        write_if_changed(Path(args.file), data.encode("utf-8"), mode=PRIVATE)
    return EXIT_OK


def _import(path: Path, config: Config, *, resubscribe: bool) -> int:
    from ..subscriptions import import_rows, read_csv

    try:
        read = read_csv(path.read_bytes(), languages=config.digest.languages)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    from ..digest.unsubscribe import suppression_keys

    with open_runtime(config) as rt:
        keys = suppression_keys(config, rt.store, adding=True)
        done = import_rows(rt.store, read, rt.clock(), keys=keys, resubscribe=resubscribe)
    for note in done.notes:
        print(f"{path}: {note}", file=sys.stderr)
    if read.not_utf8:
        print(
            f"{path}: {read.not_utf8} row(s) are not UTF-8 text: save the file as UTF-8"
            ' (Excel: "CSV UTF-8") and import it again; the rows imported now will count'
            " as unchanged",
            file=sys.stderr,
        )
    delimiter = {",": "comma", ";": "semicolon", "\t": "tab"}[read.delimiter]
    print(f"{path}: {delimiter}-separated, {read.columns}")
    print(
        f"{path}: {done.added} subscriber(s) added, {done.unchanged} unchanged (already"
        f" subscribed), {len(done.left)} not added (they left),"
        + (f" {len(done.suppressed)} not added (forgotten)," if done.suppressed else "")
        + f" {len(read.problems)} row(s) skipped"
    )
    if done.resubscribed:
        print(
            f"{path}: {done.resubscribed} of those added had left or were forgotten (--resubscribe)"
        )
    return EXIT_OK if not read.problems else EXIT_SOURCE_FAILED
