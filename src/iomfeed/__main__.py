"""The ``iomfeed`` command, and ``python -m iomfeed``: :func:`iomfeed.cli.main`, with the
records' generated methods (:mod:`iomfeed.method_cache`) and the libraries' regular
expressions (:mod:`iomfeed.pattern_cache`) compiled once per install."""

import sys

from . import method_cache, pattern_cache


def main() -> int:
    # Both before the command line imports its first record or library.
    pattern_cache.install()
    method_cache.install()
    try:
        from .cli import main as command_line

        return command_line()
    finally:
        method_cache.save()
        pattern_cache.save()


if __name__ == "__main__":
    sys.exit(main())
