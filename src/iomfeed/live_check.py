"""``iomfeed check --live``: fetch one page of each source and say what the selectors found.

For an operator adjusting selectors after a site redesign. It reads, never writes: nothing is
stored and no validators are saved.
"""

from __future__ import annotations

from typing import TextIO

from .config import Config, SourceConfig
from .errors import SourceError
from .http import HttpClient


def check_sources(config: Config, out: TextIO, http: HttpClient) -> bool:
    """Report on every enabled source, fetched with ``http`` (which keeps no validators);
    True when each one gave items."""
    ok = True
    for src in config.sources:
        if not src.enabled:
            out.write(f"\n[{src.name}] disabled, skipped\n")
            continue
        out.write(f"\n[{src.name}] kind = {src.kind}\n")
        try:
            good = _check(config, src, http, out)
        except SourceError as exc:
            out.write(f"  FAILED: {exc}\n")
            good = False
        ok = ok and good
    return ok


def _check(config: Config, src: SourceConfig, http: HttpClient, out: TextIO) -> bool:
    from .sources import KINDS

    return KINDS[src.kind].live_check(config, src, http, out)
