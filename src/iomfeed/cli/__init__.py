"""The ``iomfeed`` command line. An entry point: it parses arguments, sets up logging, calls
the pipeline and turns the outcome into an exit code. It holds no logic of its own.

``parser.py`` builds the arguments (one small function per command); ``commands_*.py`` run
the commands through :func:`iomfeed.runtime.open_runtime` and render the typed results;
this module is :func:`main`: logging, the configuration and the errors as exit codes.

Exit codes (:mod:`iomfeed.cli.exits`): 0 success; 1 a source, a delivery or an import row
failed; 2 bad configuration or usage; 65 bad input data; 75 another run holds the lock; 141
the reader of standard output stopped early."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ..config import Config, default_config_path, load_config
from ..errors import ConfigError, InputError, IomfeedError
from ..lock import AlreadyRunning
from .exits import (
    EXIT_CONFIG,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_SOURCE_FAILED,
)
from .parser import build_parser, command_of

__all__ = [
    "EXIT_CONFIG",
    "EXIT_INPUT",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_SOURCE_FAILED",
    "JsonFormatter",
    "build_parser",
    "main",
    "setup_logging",
]

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for a service's log collector."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(verbose: bool, quiet: bool, log_format: str = "text") -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The scheduler says "Running job ..." at INFO for every job; only worth it when asked.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # flufl.bounce says "Running detector ..." at INFO for each of its detectors and message.
    logging.getLogger("flufl.bounce").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point. When whoever reads standard output stops early (``iomfeed items |
    head``), the command ends quietly with 141 (128 + SIGPIPE, as a shell reports for other
    programs cut off by a pipe) instead of a BrokenPipeError traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at interpreter exit, where it could not be caught
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # some other pipe or socket: a bug, with its traceback
        # Point stdout at /dev/null: the interpreter flushes it again on exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE
    return code


def _stdout_closed() -> bool:
    """Whether standard output is a pipe or socket whose reading end has gone."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (OSError, ValueError):  # no file descriptor (output captured in memory)
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _fd, mask in events)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser(command_of(argv))  # only the command asked for
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet, args.log_format)
    args.config_given = args.config
    args.config = str(Path(args.config) if args.config else default_config_path())
    config: Config | None = None
    try:
        config = (
            load_config(
                Path(args.config), compile_selectors=getattr(args, "compile_selectors", True)
            )
            if getattr(args, "needs_config", True)
            else None
        )  # demo and init
        code: int = args.func(args, config)
    except ConfigError as exc:
        print(f"iomfeed: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except InputError as exc:
        print(f"iomfeed: bad input: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except AlreadyRunning as exc:
        print(f"iomfeed: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except IomfeedError as exc:
        print(f"iomfeed: {exc}", file=sys.stderr)
        return EXIT_SOURCE_FAILED
    except KeyboardInterrupt:
        print("iomfeed: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
