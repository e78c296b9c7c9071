"""The command line's exit codes (the parser's epilog says them in words)."""

EXIT_OK = 0
EXIT_SOURCE_FAILED = 1
EXIT_CONFIG = 2
EXIT_INPUT = 65  # EX_DATAERR: the data given (an address, a file, a token) is unusable
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run is going on; try again later
EXIT_PIPE = 141  # 128 + SIGPIPE: standard output was closed by its reader
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C


def exit_stopped(signal: int) -> int:
    """The exit code of a command that stopped cleanly on ``signal`` (128 + its number, as
    a shell reports a process it ended: 130 for Ctrl-C, 143 for SIGTERM), so cron and
    systemd see that the work was cut short, not done."""
    return 128 + signal if signal else EXIT_INTERRUPTED
