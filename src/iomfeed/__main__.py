"""The ``iomfeed`` command, and ``python -m iomfeed``: :func:`iomfeed.cli.main`, with the
records' generated methods compiled once per install (:mod:`iomfeed.method_cache`)."""

import sys

from . import method_cache


def main() -> int:
    method_cache.install()  # before the command line imports its first record
    try:
        from .cli import main as command_line

        return command_line()
    finally:
        method_cache.save()


if __name__ == "__main__":
    sys.exit(main())
